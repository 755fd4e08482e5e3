package score_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
)

// articleEngine is the article's toy engine transcribed literally, with its
// unbounded sets, as the reference the seed profile must reproduce.
type articleProfile struct {
	failures, volume float64
	ips, endpoints   map[string]bool
	lastSeen         time.Time
	seen             bool
}

func (p *articleProfile) update(e *event.Event) {
	decay := 1.0
	if p.seen {
		elapsedMinutes := e.Timestamp().Sub(p.lastSeen).Seconds() / 60.0
		decay = math.Pow(0.5, elapsedMinutes/30.0)
	}
	p.failures *= decay
	p.volume *= decay
	if e.Status == 401 || e.Status == 403 {
		p.failures += 1.0
	}
	p.volume += float64(e.PayloadBytes)
	p.ips[e.SourceIP.String()] = true
	p.endpoints[e.Endpoint] = true
	p.lastSeen, p.seen = e.Timestamp(), true
}

func (p *articleProfile) score(e *event.Event) float64 {
	s := 0.0
	s += math.Min(p.failures*1.5, 6.0)
	if len(p.ips) >= 4 {
		s += 3.0
	}
	if len(p.endpoints) >= 8 {
		s += 2.0
	}
	if p.volume > 5_000_000 {
		s += 2.5
	}
	if e.LatencyMS > 2500 {
		s += 0.5
	}
	return math.Round(s*100) / 100 // round(score, 2); ties cannot occur here
}

func articleDecide(r float64) policy.Level {
	switch {
	case r >= 9.0:
		return policy.Block
	case r >= 6.0:
		return policy.StepUp
	case r >= 3.5:
		return policy.Throttle
	}
	return policy.Allow
}

// TestSeedReproducesArticle runs random traffic through the seed profile and
// the literal reference and requires the same risk and decision for every
// event.
func TestSeedReproducesArticle(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			tr, err := profile.NewTracker(profile.Params{HalfLife: 30 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			m := score.Seed()
			const creds = 25
			profs := make([]profile.Profile, creds)
			states := make([]policy.State, creds)
			ref := make([]*articleProfile, creds)
			for i := range ref {
				ref[i] = &articleProfile{ips: map[string]bool{}, endpoints: map[string]bool{}}
			}
			var kr profile.Keyer
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			counts := map[policy.Level]int{}
			for n := range 40_000 {
				now = now.Add(time.Duration(r.ExpFloat64() * float64(20*time.Second)))
				c := r.IntN(creds)
				statuses := []int{200, 200, 200, 200, 201, 204, 401, 403, 404, 500}
				e := &event.Event{
					Time:         now.UnixNano(),
					TokenID:      fmt.Sprint("tk_", c),
					SourceIP:     netip.AddrFrom4([4]byte{198, 51, byte(c), byte(r.IntN(2 + c%6))}),
					Endpoint:     fmt.Sprintf("/v1/r%d/{id}", r.IntN(3+c%10)),
					Status:       statuses[r.IntN(len(statuses))],
					LatencyMS:    float64(r.IntN(3000)),
					PayloadBytes: int64(r.ExpFloat64() * float64(100_000*(1+c%7))),
					Has:          event.HasLatency | event.HasPayloadBytes,
				}
				kr.Fill(e)
				var o profile.Observation
				var a score.Assessment
				tr.Observe(&profs[c], e, &o)
				m.Assess(&o, e, &a)
				got := score.SeedLadder.Decide(&states[c], a.Risk, o.Now)
				trust := profile.Untrusted
				if got == policy.Allow {
					trust = profile.Trusted
				}
				tr.Learn(&profs[c], e, &o, trust)

				ref[c].update(e)
				wantRisk := ref[c].score(e)
				if a.Risk != wantRisk || got != articleDecide(wantRisk) {
					t.Fatalf("event %d (credential %d): risk %v decision %v, article says %v %v", n, c, a.Risk, got, wantRisk, articleDecide(wantRisk))
				}
				counts[got]++
			}
			// The stream must exercise every rung, or the test proves little.
			for l := policy.Allow; l < policy.NumLevels; l++ {
				if counts[l] == 0 {
					t.Errorf("no %v decisions in the stream: %v", l, counts)
				}
			}
		})
	}
}
