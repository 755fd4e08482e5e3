//go:build linux

package engine_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
)

func newDurable(tb testing.TB, dir string, max int) *engine.Engine {
	tb.Helper()
	return newEngineWith(tb, engine.Options{Dir: dir, MaxCredentials: max})
}

// TestDurableRestartGivesSameDecisions: a durable engine closed and
// reopened halfway through a stream makes exactly the decisions of one
// that never stopped (in memory), peer groups and the profile cap
// included.
func TestDurableRestartGivesSameDecisions(t *testing.T) {
	for _, max := range []int{0, 400} {
		t.Run(fmt.Sprintf("max=%d", max), func(t *testing.T) {
			evs := benchEvents(2000, 30_000)
			for i := range evs {
				if i%5 == 0 {
					evs[i].ClientID, evs[i].Has = fmt.Sprintf("client-%d", i%7), evs[i].Has|event.HasClientID
				}
			}
			mem := newCapped(t, max)
			want := make([]engine.Verdict, len(evs))
			for i := range evs {
				ev := evs[i]
				mem.Process(&ev, &want[i])
			}
			dir := t.TempDir()
			got := make([]engine.Verdict, len(evs))
			half := len(evs) / 2
			d := newDurable(t, dir, max)
			cp := append([]event.Event(nil), evs...)
			d.ProcessBatch(cp[:half], got[:half])
			d.Close()
			d = newDurable(t, dir, max)
			defer d.Close()
			d.ProcessBatch(cp[half:], got[half:])
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("event %d (after the restart at %d) differs", i, half)
				}
			}
			if d.Credentials() != mem.Credentials() || d.Clients() != mem.Clients() {
				t.Errorf("credentials %d vs %d, clients %d vs %d", d.Credentials(), mem.Credentials(), d.Clients(), mem.Clients())
			}
		})
	}
}

// TestDurableSurvivesKill9: a process that is killed (SIGKILL) right after
// judging events, without closing or syncing, leaves every profile it
// wrote: the records are the kernel's, not the process's.
func TestDurableSurvivesKill9(t *testing.T) {
	if dir := os.Getenv("VIGIL_KILL9_DIR"); dir != "" {
		// The child: judge, say so, wait to be killed.
		n, _ := strconv.Atoi(os.Getenv("VIGIL_KILL9_N"))
		e := newDurable(t, dir, 0)
		var v engine.Verdict
		for i := range n {
			ev := capEvent(fmt.Sprintf("tk_%04d", i%100), time.Duration(i)*time.Second)
			e.Process(&ev, &v)
		}
		fmt.Println("judged")
		time.Sleep(time.Minute)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurableSurvivesKill9$", "-test.v")
	cmd.Env = append(os.Environ(), "VIGIL_KILL9_DIR="+dir, "VIGIL_KILL9_N=5000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "judged") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("child: %v, output %q", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	cmd.Process.Kill()
	cmd.Wait()

	e := newDurable(t, dir, 0)
	defer e.Close()
	if e.Credentials() != 100 {
		t.Fatalf("%d credentials after kill -9, want 100", e.Credentials())
	}
	for i := range 100 {
		s, ok := e.Inspect(fmt.Sprintf("tk_%04d", i))
		if !ok || s.Events != 50 {
			t.Fatalf("credential %d after kill -9: %v, %d events, want 50", i, ok, s.Events)
		}
	}
}

// TestDurableRefusesForeignFiles: a file that is not vigil's, or from a
// vigil with another record layout, is refused with an error naming it.
func TestDurableRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	e := newDurable(t, dir, 0)
	var v engine.Verdict
	ev := capEvent("tk_a", 0)
	e.Process(&ev, &v)
	e.Close()
	name := filepath.Join(dir, "records.vgl")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	for what, mutate := range map[string]func([]byte){
		"not a vigil profile file":   func(b []byte) { copy(b, "GARBAGE!") },
		"written by another version": func(b []byte) { b[12]++ },
		"format version":             func(b []byte) { b[8] = 9 },
	} {
		c := append([]byte(nil), b...)
		mutate(c)
		if err := os.WriteFile(name, c, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := engine.New(engine.Options{Tracker: mustTracker(t), Model: mustVigil(t), Dir: dir,
			Ladder: policy.Ladder{Throttle: 4, StepUp: 7, Block: 10}})
		if err == nil || !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), "records.vgl") {
			t.Errorf("%s: %v", what, err)
		}
	}
	if err := os.WriteFile(name, b[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(engine.Options{Tracker: mustTracker(t), Model: mustVigil(t), Dir: dir,
		Ladder: policy.Ladder{Throttle: 4, StepUp: 7, Block: 10}}); err == nil || !strings.Contains(err.Error(), "shorter than its header") {
		t.Errorf("truncated file: %v", err)
	}
}

// BenchmarkDurable: the engine with its profiles in files, 100,000
// credentials, batches as replay sends them, against the same in memory.
func BenchmarkDurable(b *testing.B) {
	evs := benchEvents(100_000, 1_000_000)
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) {
			var e *engine.Engine
			if durable {
				e = newDurable(b, b.TempDir(), 0)
			} else {
				e = newEngine(b, false)
			}
			defer e.Close()
			vs := make([]engine.Verdict, 1024)
			cp := append([]event.Event(nil), evs...)
			for off := 0; off < len(cp); off += 1024 { // every credential seen
				e.ProcessBatch(cp[off:min(off+1024, len(cp))], vs)
			}
			b.ReportAllocs()
			b.ResetTimer()
			off := 0
			for b.Loop() {
				if off+1024 > len(cp) {
					off = 0
				}
				e.ProcessBatch(cp[off:off+1024], vs)
				off += 1024
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1024), "ns/event")
		})
	}
}
