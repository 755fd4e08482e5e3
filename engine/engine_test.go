package engine_test

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
)

// TestBatchEqualsSequential: ProcessBatch must give exactly the verdicts of
// Process, event by event, whatever the batch boundaries.
func TestBatchEqualsSequential(t *testing.T) {
	for _, model := range []string{"vigil", "seed"} {
		t.Run(model, func(t *testing.T) {
			evs := benchEvents(300, 60_000)
			// Events with attack-like bursts so that verdicts vary.
			for i := range evs {
				if i%97 < 20 {
					evs[i].Status = 403
					evs[i].PayloadBytes = 3e7
				}
			}
			seq := newEngine(t, model == "seed")
			want := make([]engine.Verdict, len(evs))
			for i := range evs {
				e := evs[i] // copies, so keys are computed afresh by each engine
				seq.Process(&e, &want[i])
			}
			for _, size := range []int{1, 7, 100, 4096} {
				bat := newEngine(t, model == "seed")
				got := make([]engine.Verdict, len(evs))
				cp := append([]event.Event(nil), evs...)
				for off := 0; off < len(cp); off += size {
					end := min(off+size, len(cp))
					bat.ProcessBatch(cp[off:end], got[off:end])
				}
				for i := range got {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("batch size %d, event %d: %+v, sequential %+v", size, i, got[i], want[i])
					}
				}
				if bat.Credentials() != seq.Credentials() {
					t.Fatalf("credentials %d vs %d", bat.Credentials(), seq.Credentials())
				}
				bat.Close()
			}
			levels := map[policy.Level]int{}
			for _, v := range want {
				levels[v.Level]++
				if math.IsNaN(v.Risk) || v.Risk < 0 {
					t.Fatalf("risk %v", v.Risk)
				}
			}
			if len(levels) < 2 {
				t.Errorf("verdicts do not vary (%v): the comparison proves little", levels)
			}
		})
	}
}

// TestMemoryPerCredential holds the budget: at most 1 KiB per active
// credential, index included, at several sizes.
func TestMemoryPerCredential(t *testing.T) {
	if engine.RecordSize != 512 {
		t.Fatalf("record is %d bytes, want 512 (eight cache lines)", engine.RecordSize)
	}
	e := newEngine(t, false)
	defer e.Close()
	var v engine.Verdict
	n := 0
	for _, target := range []int{5_000, 50_000, 200_000} {
		for ; n < target; n++ {
			ev := event.Event{TokenID: fmt.Sprintf("tk_%08d", n), Endpoint: "/", Status: 200, Time: int64(n)}
			e.Process(&ev, &v)
		}
		per := float64(e.Footprint()) / float64(e.Credentials())
		t.Logf("%d credentials: %.0f bytes each", e.Credentials(), per)
		if per > 1024 {
			t.Errorf("%d credentials: %.0f bytes per credential, budget 1024", e.Credentials(), per)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := engine.New(engine.Options{}); err == nil {
		t.Error("engine without tracker and model accepted")
	}
}
