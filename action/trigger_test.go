package action

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestTriggers(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	type obs struct {
		id, level string
		at        time.Duration
		fire      bool
		rule      string
	}
	for _, tc := range []struct {
		name string
		o    TriggerOptions
		seq  []obs
	}{
		{"block fires once per hour", TriggerOptions{OnBlock: true}, []obs{
			{"a", "allow", 0, false, ""},
			{"a", "block", time.Second, true, RuleBlock},
			{"a", "block", time.Minute, false, ""},
			{"b", "block", time.Minute, true, RuleBlock},
			{"a", "block", 59 * time.Minute, false, ""},
			{"a", "block", 61 * time.Minute, true, RuleBlock},
			{"a", "block", 30 * time.Minute, false, ""}, // out of order, within the hour of the last firing
		}},
		{"block off", TriggerOptions{StepUpsPerHour: 2}, []obs{
			{"a", "block", 0, false, ""},
		}},
		{"step-ups", TriggerOptions{StepUpsPerHour: 3}, []obs{
			{"a", "step_up_auth", 0, false, ""},
			{"a", "throttle", time.Minute, false, ""},
			{"a", "step_up_auth", 10 * time.Minute, false, ""},
			{"a", "step_up_auth", 61 * time.Minute, false, ""}, // the first is over an hour old
			{"a", "step_up_auth", 62 * time.Minute, true, RuleStepUps},
			{"a", "step_up_auth", 63 * time.Minute, false, ""}, // fired within the hour
			{"a", "block", 64 * time.Minute, false, ""},        // OnBlock off
			{"a", "step_up_auth", 123 * time.Minute, false, ""},
			{"a", "step_up_auth", 124 * time.Minute, false, ""}, // 63, 123, 124: not within an hour
			{"a", "step_up_auth", 125 * time.Minute, true, RuleStepUps},
		}},
		{"step-ups then block", TriggerOptions{OnBlock: true, StepUpsPerHour: 2}, []obs{
			{"a", "step_up_auth", 0, false, ""},
			{"a", "step_up_auth", time.Minute, true, RuleStepUps},
			{"a", "block", 2 * time.Minute, false, ""},
		}},
		{"unknown level and empty id", TriggerOptions{OnBlock: true, StepUpsPerHour: 1}, []obs{
			{"a", "deny", 0, false, ""},
			{"", "block", 0, false, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTriggers(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range tc.seq {
				if fire, rule := tr.Observe(o.id, o.level, t0.Add(o.at)); fire != o.fire || rule != o.rule {
					t.Fatalf("%d %+v: got %v %q", i, o, fire, rule)
				}
			}
		})
	}
	for _, o := range []TriggerOptions{{StepUpsPerHour: -1}, {StepUpsPerHour: MaxStepUpsPerHour + 1}, {MaxTracked: -1}} {
		if _, err := NewTriggers(o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
}

func TestTriggersBounded(t *testing.T) {
	tr, _ := NewTriggers(TriggerOptions{OnBlock: true, MaxTracked: 160})
	t0 := time.Now()
	for i := range 10_000 {
		tr.Observe(fmt.Sprint("tk_", i), "block", t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := tr.Tracked(); n > 160 {
		t.Fatalf("%d tracked, at most 160", n)
	}
}

func TestTriggersConcurrent(t *testing.T) {
	tr, _ := NewTriggers(TriggerOptions{OnBlock: true})
	t0 := time.Now()
	var mu sync.Mutex
	fired := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if f, _ := tr.Observe("tk_same", "block", t0.Add(time.Duration(i)*time.Millisecond)); f {
					mu.Lock()
					fired++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if fired != 1 {
		t.Fatalf("fired %d times within the hour", fired)
	}
}

func TestObserveAllowAllocs(t *testing.T) {
	tr, _ := NewTriggers(TriggerOptions{OnBlock: true, StepUpsPerHour: 5})
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { tr.Observe("tk_1", "allow", now) }); n != 0 {
		t.Fatalf("%v allocs on the allow path", n)
	}
	tr.Observe("tk_1", "block", now)
	if n := testing.AllocsPerRun(1000, func() { tr.Observe("tk_1", "block", now) }); n != 0 {
		t.Fatalf("%v allocs on a tracked block", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	now := time.Now()
	for _, n := range []int{1, 1000, 100_000} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("tk_%032x", i)
		}
		for _, level := range []string{"allow", "step_up_auth", "block"} {
			b.Run(fmt.Sprintf("%s/creds=%d", level, n), func(b *testing.B) {
				tr, _ := NewTriggers(TriggerOptions{OnBlock: true, StepUpsPerHour: 10})
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					tr.Observe(ids[i%n], level, now)
					i++
				}
			})
		}
		b.Run(fmt.Sprintf("parallel_mixed/creds=%d", n), func(b *testing.B) {
			tr, _ := NewTriggers(TriggerOptions{OnBlock: true, StepUpsPerHour: 10})
			levels := [...]string{"allow", "allow", "allow", "allow", "allow", "allow", "throttle", "step_up_auth", "block", "allow"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					tr.Observe(ids[i%n], levels[i%len(levels)], now)
					i++
				}
			})
		})
	}
}
