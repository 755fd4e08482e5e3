package engine_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
)

func newEngine(tb testing.TB, seed bool) *engine.Engine {
	tb.Helper()
	if seed {
		return newEngineWith(tb, engine.Options{Model: score.Seed(), Ladder: score.SeedLadder})
	}
	return newEngineWith(tb, engine.Options{})
}

// newEngineWith returns an engine with o, filling in a tracker with the
// default parameters, the vigil model and its default ladder where o has
// none. The caller closes it.
func newEngineWith(tb testing.TB, o engine.Options) *engine.Engine {
	tb.Helper()
	if o.Tracker == nil {
		o.Tracker = mustTracker(tb)
	}
	if o.Model == nil {
		o.Model = mustVigil(tb)
	}
	if o.Ladder == (policy.Ladder{}) {
		o.Ladder = policy.Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 1, Hold: 5 * time.Minute}
	}
	e, err := engine.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func mustTracker(tb testing.TB) *profile.Tracker {
	tb.Helper()
	tr, err := profile.NewTracker(profile.Params{})
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func mustVigil(tb testing.TB) *score.Model {
	tb.Helper()
	m, err := score.Vigil(score.VigilOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// benchEvents makes a pool of events over creds credentials: each
// credential has a home network and a few endpoints; one event in 50 comes
// from elsewhere.
func benchEvents(creds, n int) []event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, creds)
	for i := range ids {
		ids[i] = fmt.Sprintf("tk_%032x", r.Uint64())
	}
	endpoints := []string{"/v1/accounts/{id}", "/v1/orders", "/v1/orders/{id}", "/v1/me", "/v1/search", "/v1/reports/{id}"}
	agents := []string{"okhttp/4.12.0", "python-requests/2.31.0", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"}
	countries := []string{"US", "DE", "FR", "BR", "JP"}
	evs := make([]event.Event, n)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range evs {
		c := r.IntN(creds)
		home := uint32(c)
		if r.IntN(50) == 0 {
			home = r.Uint32()
		}
		evs[i] = event.Event{
			Time: t0 + int64(i)*int64(time.Millisecond),
			// A copy per event, allocated in event order, as a decoder
			// lays strings out: the engine reads each event's token id
			// from memory near the event, not from a shared string.
			TokenID:      strings.Clone(ids[c]),
			SourceIP:     netip.AddrFrom4([4]byte{byte(home >> 16), byte(home >> 8), byte(home), byte(r.IntN(4))}),
			Endpoint:     endpoints[(c+r.IntN(3))%len(endpoints)],
			Status:       200,
			UserAgent:    agents[c%len(agents)],
			Country:      countries[int(home)%len(countries)],
			ASN:          64512 + home%1000,
			PayloadBytes: int64(500 + r.IntN(5000)),
			LatencyMS:    float64(r.IntN(300)),
			Has:          event.HasUserAgent | event.HasCountry | event.HasASN | event.HasPayloadBytes | event.HasLatency,
		}
	}
	return evs
}

// BenchmarkEngine measures the core per event: profile lookup, observe,
// score, decide, learn, on one goroutine, after every credential has a
// profile (steady state). "batch" is ProcessBatch, the path replay uses;
// "single" is Process, one event at a time. keys=decoder is the pipeline's
// split, where decode workers hash the event's values (profile.Keyer) in
// parallel; keys=engine makes the engine hash them too.
func BenchmarkEngine(b *testing.B) {
	for _, model := range []string{"vigil", "seed"} {
		for _, creds := range []int{1, 1000, 100_000} {
			for _, mode := range []string{"batch", "single"} {
				for _, keys := range []string{"decoder", "engine"} {
					b.Run(fmt.Sprintf("model=%s/credentials=%d/%s/keys=%s", model, creds, mode, keys), func(b *testing.B) {
						benchEngine(b, model == "seed", creds, mode == "batch", keys == "decoder")
					})
				}
			}
		}
	}
}

func benchEngine(b *testing.B, seed bool, creds int, batch, prekeyed bool) {
	const pool = 1 << 20
	e := newEngine(b, seed)
	evs := benchEvents(creds, pool)
	var kr profile.Keyer
	for i := range evs {
		kr.Fill(&evs[i])
	}
	if !prekeyed {
		defer func() {
			for i := range evs {
				evs[i].Keys = event.Keys{}
			}
		}()
		for i := range evs {
			evs[i].Keys = event.Keys{}
		}
	}
	span := evs[pool-1].Time - evs[0].Time + int64(time.Millisecond)
	vs := make([]engine.Verdict, 1024)
	e.ProcessBatch(evs[:pool/2], make([]engine.Verdict, pool/2)) // every credential seen
	e.ProcessBatch(evs[pool/2:], make([]engine.Verdict, pool/2))
	shift := func() {
		b.StopTimer()
		for i := range evs {
			evs[i].Time += span
			if !prekeyed {
				evs[i].Keys.Set = false
			}
		}
		b.StartTimer()
	}
	shift()
	runtime.GC() // no collection of the set-up's garbage in the timed loop
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	for done < b.N {
		for off := 0; off < pool && done < b.N; off += len(vs) {
			n := min(len(vs), b.N-done)
			if batch {
				e.ProcessBatch(evs[off:off+n], vs[:n])
			} else {
				for i := range n {
					e.Process(&evs[off+i], &vs[i])
				}
			}
			done += n
		}
		shift()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
