package engine_test

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
)

func newCapped(tb testing.TB, max int) *engine.Engine {
	tb.Helper()
	e := newEngineWith(tb, engine.Options{MaxCredentials: max})
	tb.Cleanup(e.Close)
	return e
}

var capT0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func capEvent(tok string, at time.Duration) event.Event {
	return event.Event{Time: capT0.Add(at).UnixNano(), TokenID: tok, SourceIP: netip.MustParseAddr("198.51.100.7"),
		Endpoint: "/v1/orders", Status: 200, UserAgent: "okhttp/4.12.0", Has: event.HasUserAgent}
}

// floodCredentials is how many distinct made-up credentials the flood test
// sends; the race detector makes each event ~10× slower, so under it the
// test sends fewer (raceFlood in race_test.go).
func floodCredentials() int {
	if raceEnabled {
		return 300_000
	}
	return 5_000_000
}

// TestCapHoldsUnderFlood: established credentials, then millions of
// distinct random credentials seen once each. The cap holds, memory stops
// growing, and every established credential keeps its profile.
func TestCapHoldsUnderFlood(t *testing.T) {
	const capacity, established = 20_000, 2_000
	e := newCapped(t, capacity)
	var v engine.Verdict
	for round := range 30 {
		for i := range established {
			ev := capEvent(fmt.Sprintf("tk_owner_%05d", i), time.Duration(round)*time.Minute+time.Duration(i)*time.Millisecond)
			e.Process(&ev, &v)
		}
	}
	flood := floodCredentials()
	batch := make([]event.Event, 4096)
	vs := make([]engine.Verdict, len(batch))
	at := 31 * time.Minute
	var footprint int
	for sent := 0; sent < flood; {
		n := min(len(batch), flood-sent)
		for i := range n {
			batch[i] = capEvent(fmt.Sprintf("tk_flood_%08d", sent+i), at)
			at += time.Microsecond
		}
		e.ProcessBatch(batch[:n], vs[:n])
		sent += n
		if footprint == 0 && sent >= flood/2 {
			footprint = e.Footprint()
		}
	}
	if c := e.Credentials(); c > capacity {
		t.Fatalf("%d credentials held, cap %d", c, capacity)
	}
	if f := e.Footprint(); f != footprint {
		t.Errorf("footprint grew from %d to %d bytes in the flood's second half", footprint, f)
	}
	for i := range established {
		s, ok := e.Inspect(fmt.Sprintf("tk_owner_%05d", i))
		if !ok || s.Events != 30 {
			t.Fatalf("established credential %d lost its profile: %v %+v", i, ok, s.Summary)
		}
	}
	t.Logf("%d flood credentials: %d held, %d evictions, %d requests judged without a profile, footprint %d MiB",
		flood, e.Credentials(), e.Evictions(), e.Rejected(), e.Footprint()>>20)
}

// TestRecurringNewcomerIsAdmitted: at the cap, a credential seen once is
// judged without a profile, but one that keeps coming back gets a profile
// within a few requests, replacing a one-off credential.
func TestRecurringNewcomerIsAdmitted(t *testing.T) {
	e := newCapped(t, 1000)
	var v engine.Verdict
	for i := range 1000 {
		ev := capEvent(fmt.Sprintf("tk_once_%04d", i), time.Duration(i)*time.Millisecond)
		e.Process(&ev, &v)
	}
	for i := range 10 {
		ev := capEvent("tk_newcomer", time.Second+time.Duration(i)*time.Second)
		e.Process(&ev, &v)
	}
	s, ok := e.Inspect("tk_newcomer")
	if !ok || s.Events < 7 {
		t.Fatalf("recurring newcomer: held %v, %d events learned", ok, s.Events)
	}
	if e.Credentials() != 1000 || e.Evictions() != 1 {
		t.Errorf("%d credentials, %d evictions", e.Credentials(), e.Evictions())
	}
}

// TestCappedBatchEqualsSequential: admission and eviction happen in event
// order in ProcessBatch exactly as in Process.
func TestCappedBatchEqualsSequential(t *testing.T) {
	evs := benchEvents(3000, 20_000)
	for i := range evs {
		if i%13 == 0 { // one-off credentials among the regulars
			evs[i].TokenID = fmt.Sprintf("tk_once_%06d", i)
		}
	}
	seq := newCapped(t, 500)
	want := make([]engine.Verdict, len(evs))
	for i := range evs {
		ev := evs[i]
		seq.Process(&ev, &want[i])
	}
	if seq.Evictions() == 0 || seq.Rejected() == 0 {
		t.Fatalf("the test exercises nothing: %d evictions, %d rejected", seq.Evictions(), seq.Rejected())
	}
	for _, size := range []int{1, 5, 64, 4096} {
		bat := newCapped(t, 500)
		got := make([]engine.Verdict, len(evs))
		cp := append([]event.Event(nil), evs...)
		for off := 0; off < len(cp); off += size {
			end := min(off+size, len(cp))
			bat.ProcessBatch(cp[off:end], got[off:end])
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("batch size %d, event %d differs", size, i)
			}
		}
		if bat.Evictions() != seq.Evictions() || bat.Rejected() != seq.Rejected() || bat.Credentials() != seq.Credentials() {
			t.Fatalf("batch size %d: %d/%d/%d vs %d/%d/%d", size, bat.Evictions(), bat.Rejected(), bat.Credentials(),
				seq.Evictions(), seq.Rejected(), seq.Credentials())
		}
	}
}

// TestStaleEstablishedMakeRoom: a table full of established credentials
// that stopped being used does not lock new credentials out: a newcomer
// that keeps coming back gets a profile once they have been idle a while,
// while active established credentials keep theirs.
func TestStaleEstablishedMakeRoom(t *testing.T) {
	e := newCapped(t, 500)
	var v engine.Verdict
	for round := range 25 { // 500 established credentials, then silence
		for i := range 500 {
			ev := capEvent(fmt.Sprintf("tk_old_%03d", i), time.Duration(round)*time.Minute+time.Duration(i)*time.Millisecond)
			e.Process(&ev, &v)
		}
	}
	newcomer := func(at time.Duration) (bool, uint64) {
		for i := range 20 {
			ev := capEvent("tk_newcomer", at+time.Duration(i)*time.Minute)
			e.Process(&ev, &v)
		}
		s, ok := e.Inspect("tk_newcomer")
		return ok, s.Events
	}
	if ok, _ := newcomer(time.Hour); ok {
		t.Fatal("a newcomer displaced an established credential active within the day")
	}
	if ok, n := newcomer(40 * 24 * time.Hour); !ok || n == 0 {
		t.Fatalf("established credentials idle for 40 days still lock a recurring newcomer out (held %v, %d events)", ok, n)
	}
}
