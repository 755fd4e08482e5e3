package investigate_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/investigate"
	"github.com/vigil-sec/vigil/policy"
)

func simple(token string, t time.Time, ip netip.Addr, endpoint string) event.Event {
	return event.Event{Time: t.UnixNano(), TokenID: token, SourceIP: ip, Endpoint: endpoint, Status: 200}
}

// TestTimelineBound: a credential with many suspicious events keeps the
// first and the latest in full, counts those between, and its series
// stays within the budget.
func TestTimelineBound(t *testing.T) {
	c := investigate.NewCollector(investigate.Options{MaxTimeline: 64})
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("192.0.2.1")
	for i := range 1000 {
		e := simple("tk_a", t0.Add(time.Duration(i)*time.Second), ip, "/x")
		v := engine.Verdict{Level: policy.Allow}
		if i >= 100 {
			v.Level, v.Risk = policy.Block, 10+float64(i%7)
		}
		c.Observe(&e, &v)
	}
	r := c.Report()
	cr := r.Credentials[0]
	if len(cr.Timeline) != 32 || cr.TimelineGap != 16 || cr.TimelineOmitted != 900-32 {
		t.Fatalf("timeline of %d (gap at %d, %d omitted)", len(cr.Timeline), cr.TimelineGap, cr.TimelineOmitted)
	}
	if first, last := cr.Timeline[0].Time, cr.Timeline[31].Time; !first.Equal(t0.Add(100*time.Second)) || !last.Equal(t0.Add(999*time.Second)) {
		t.Errorf("timeline from %v to %v", first, last)
	}
	for i := 1; i < len(cr.Timeline); i++ {
		if !cr.Timeline[i].Time.After(cr.Timeline[i-1].Time) {
			t.Fatalf("timeline out of order at %d", i)
		}
	}
	if len(cr.Series) > 32 || cr.Peak.Risk != 16 {
		t.Errorf("%d series points, peak %v", len(cr.Series), cr.Peak.Risk)
	}
	var n int64
	for _, p := range cr.Series {
		n += p.Events
	}
	if n != 1000 {
		t.Errorf("the series stands for %d events, want 1000", n)
	}
}

// TestCredentialBound: beyond MaxCredentials the least risky are dropped
// and counted, the suspicious one stays, and one seen again after being
// dropped is marked.
func TestCredentialBound(t *testing.T) {
	c := investigate.NewCollector(investigate.Options{MaxCredentials: 10})
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("192.0.2.1")
	e := simple("tk_bad", t0, ip, "/x")
	c.Observe(&e, verdictOf(policy.Block, 12))
	for i := range 30 {
		e := simple(fmt.Sprintf("tk_%02d", i), t0.Add(time.Duration(i)*time.Minute), ip, "/x")
		c.Observe(&e, verdictOf(policy.Allow, float64(i%3)))
	}
	e = simple("tk_00", t0.Add(time.Hour), ip, "/x")
	c.Observe(&e, verdictOf(policy.Throttle, 5))
	r := c.Report()
	if r.Dropped != 22 || r.DroppedSuspicious != 0 || r.CredentialsSeen != 32 {
		t.Errorf("dropped %d (%d suspicious) of %d", r.Dropped, r.DroppedSuspicious, r.CredentialsSeen)
	}
	if len(r.Credentials) != 2 || r.Credentials[0].TokenID != "tk_bad" || r.Credentials[0].HistoryIncomplete {
		t.Fatalf("suspicious credentials %+v", r.Credentials)
	}
	if cr := r.Credentials[1]; cr.TokenID != "tk_00" || !cr.HistoryIncomplete {
		t.Errorf("%s readmitted: %v", cr.TokenID, cr.HistoryIncomplete)
	}
	if r.Events != 32 || r.Others.Credentials+len(r.Credentials) > 10 {
		t.Errorf("%d events, %d others", r.Events, r.Others.Credentials)
	}
}

func verdictOf(l policy.Level, risk float64) *engine.Verdict {
	v := &engine.Verdict{Level: l}
	v.Risk = risk
	return v
}
