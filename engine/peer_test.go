package engine_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
)

// TestPeerGroupJudgesNewCredentials: a client's established credentials
// teach its peer profile; a freshly minted credential of that client used
// from a network none of them used is flagged at once, while a new
// credential used from the client's usual network is not.
func TestPeerGroupJudgesNewCredentials(t *testing.T) {
	e := newEngine(t, false)
	defer e.Close()
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	mk := func(tok string, at time.Duration, ip string, asn uint32, country string) *event.Event {
		return &event.Event{Time: t0.Add(at).UnixNano(), TokenID: tok, ClientID: "chat-integration",
			SourceIP: netip.MustParseAddr(ip), Endpoint: "/v1/messages", Status: 200, ASN: asn, Country: country,
			UserAgent: "Drift-Connector/3.1", Has: event.HasASN | event.HasCountry | event.HasUserAgent | event.HasClientID}
	}
	var v engine.Verdict
	for i := range 2000 { // ten credentials over two days, from AWS us-east-1
		e.Process(mk(fmt.Sprintf("tk_owner%d", i%10), time.Duration(i)*90*time.Second, fmt.Sprintf("3.80.%d.%d", i%4, i%250), 14618, "US"), &v)
		if v.Level != policy.Allow {
			t.Fatalf("owner request %d: %v", i, v.Level)
		}
	}
	if e.Clients() != 1 {
		t.Fatalf("%d clients", e.Clients())
	}
	at := 2000 * 90 * time.Second
	fresh := mk("tk_minted_good", at, "3.80.1.9", 14618, "US")
	e.Process(fresh, &v)
	if v.Level != policy.Allow || v.Risk != 0 {
		t.Errorf("new credential from the client's own network: %v risk %v", v.Level, v.Risk)
	}
	stolen := mk("tk_minted_bad", at+time.Second, "203.0.113.66", 14061, "SG")
	e.Process(stolen, &v)
	if v.Level < policy.Throttle {
		t.Errorf("minted credential first used from a network its client never used: %v risk %v", v.Level, v.Risk)
	}
	line := string(decision.NewEncoder(e.Model()).Append(nil, "x", stolen, &v))
	if !strings.Contains(line, `"signal":"peer_network"`) || !strings.Contains(line, "new credential of client chat-integration used from country SG, from AS14061, which none of the client's credentials did; the client's traffic only ever came from hosting providers") {
		t.Errorf("reason missing: %s", line)
	}
}

// TestProbationDespiteHysteresis: a request whose own risk is below the
// throttle threshold, held at throttle only because its context's level
// was raised by another network's requests, still counts towards its
// network's probation: after uses on two days the network is known.
func TestProbationDespiteHysteresis(t *testing.T) {
	e := newEngine(t, false)
	defer e.Close()
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	mk := func(at time.Duration, ip string, asn uint32, country string) *event.Event {
		return &event.Event{Time: t0.Add(at).UnixNano(), TokenID: "tk_vpn", SourceIP: netip.MustParseAddr(ip),
			Endpoint: "/v1/me", Status: 200, ASN: asn, Country: country, UserAgent: "Mozilla/5.0 Firefox/140.0",
			Has: event.HasASN | event.HasCountry | event.HasUserAgent}
	}
	var v engine.Verdict
	for i := range 40 { // warm-up at home
		e.Process(mk(time.Duration(i)*2*time.Minute, "91.64.3.7", 3209, "DE"), &v)
	}
	for day := range 3 {
		base := time.Duration(day)*24*time.Hour + 3*time.Hour
		for i := range 5 {
			at := base + time.Duration(i)*time.Minute
			// A new country from a new provider keeps the away level up...
			e.Process(mk(at, "185.153.178.64", 60068, "NL"), &v)
			if v.Level < policy.Throttle {
				t.Fatalf("day %d: new country and hosting provider: %v risk %v", day, v.Level, v.Risk)
			}
			// ...and holds a new network in the home country there.
			e.Process(mk(at+time.Second, "91.66.1.2", 3320, "DE"), &v)
			if day == 0 && (v.Risk == 0 || v.Risk >= 4 || v.Level != policy.Throttle) {
				t.Fatalf("day %d: new ASN in the home country: %v risk %v", day, v.Level, v.Risk)
			}
		}
	}
	if v.Risk != 0 {
		t.Errorf("a network used on three days, each request below the throttle threshold, still scores %v", v.Risk)
	}
}

// TestClientsCapped: made-up client_ids beyond MaxClients get no peer
// group, and the engine does not grow with them.
func TestClientsCapped(t *testing.T) {
	e2, err := engine.New(engine.Options{Tracker: mustTracker(t), Model: mustVigil(t), MaxClients: 100,
		Ladder: policy.Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	var v engine.Verdict
	for i := range 5000 {
		ev := capEvent(fmt.Sprintf("tk_%d", i), time.Duration(i)*time.Millisecond)
		ev.ClientID, ev.Has = fmt.Sprintf("forged-client-%d", i), ev.Has|event.HasClientID
		e2.Process(&ev, &v)
	}
	if n := e2.Clients(); n != 100 {
		t.Errorf("%d peer groups, cap 100", n)
	}
}
