package inline

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/geoip"
	"github.com/vigil-sec/vigil/geoip/geoiptest"
	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/zone"
)

func testJWT(sub, client, scope string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": sub, "client_id": client, "scope": scope})
	return enc([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." + enc(claims) + "." + enc([]byte("sig"))
}

// TestOnWake: with OnWake, the first request after the scoring's dormancy
// (30 days) is challenged whatever its risk; without, the score decides.
func TestOnWake(t *testing.T) {
	for _, want := range []policy.Level{policy.Allow, policy.StepUp, policy.Block} {
		t.Run(want.String(), func(t *testing.T) {
			c := newChecker(t, testOpts{ladder: policy.Ladder{Throttle: 20, StepUp: 30, Block: 40}, lifecycle: Lifecycle{OnWake: want}})
			tok := testJWT("svc", "app", "read")
			warm(t, c, tok)
			res := check(t, c, request(40*24*time.Hour, tok, "198.51.100.7", "okhttp/4.12.0", "/v1/orders"))
			if res.Verdict.Level != want {
				t.Errorf("level %s, want %s (reasons %+v)", res.Verdict.Level, want, res.Verdict.Reasons)
			}
		})
	}
}

// lifecycleParts is the lifecycle of a realistic deployment: an
// inventory, GeoIP, a few hundred zone rules and a scope map.
func lifecycleParts(t testing.TB) Lifecycle {
	city, asn := geoiptest.Write(t, t.TempDir(),
		[]geoiptest.CityNet{{CIDR: "198.51.100.0/24", Country: "US", Lat: 40.7, Lon: -74}, {CIDR: "203.0.113.0/24", Country: "DE", Lat: 50.1, Lon: 8.7}},
		[]geoiptest.ASNNet{{CIDR: "198.51.100.0/24", ASN: 64500}, {CIDR: "203.0.113.0/24", ASN: 64501}})
	db, err := geoip.Open(geoip.Options{CityPath: city, ASNPath: asn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rules := []zone.Rule{{Name: "no-tor", Scope: zone.Global, Effect: zone.Deny, CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Action: zone.Block}}
	for i := range 300 {
		rules = append(rules, zone.Rule{Name: fmt.Sprint("client-", i), Scope: zone.Client, Subject: fmt.Sprint("client", i),
			Effect: zone.Allow, ASNs: []uint32{64500}, Action: zone.StepUp})
	}
	zs, err := zone.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := inventory.NewMemory(inventory.Options{})
	sm, _ := inventory.NewScopeMap(map[string]string{"GET /v1/orders": "orders:read", "POST /v1/orders": "orders:write"})
	return Lifecycle{Inventory: inv, Scopes: sm, GeoIP: db, Zones: zs}
}

// TestZonesInline: a request from outside its client's zone is challenged
// by rule and not judged; the global deny rule blocks; the inventory sees
// both, with their networks.
func TestZonesInline(t *testing.T) {
	lc := lifecycleParts(t)
	c := newChecker(t, testOpts{lifecycle: lc})
	tok := testJWT("svc", "client7", "orders:read orders:write")
	warm(t, c, tok)
	res := check(t, c, request(time.Hour, tok, "203.0.113.9", "okhttp/4.12.0", "/v1/orders"))
	if v := res.Verdict; v.Level != policy.StepUp || len(v.Reasons) != 1 || v.Reasons[0].Signal != SignalNetworkZone || res.Ticket.TokenID != "" {
		t.Errorf("outside the zone: %+v ticket %+v", v, res.Ticket)
	}
	res = check(t, c, request(time.Hour+time.Second, tok, "192.0.2.1", "okhttp/4.12.0", "/v1/orders"))
	if v := res.Verdict; v.Level != policy.Block || v.Reasons[0].Signal != SignalNetworkZone {
		t.Errorf("deny rule: %+v", v)
	}
	e, ok, _ := lc.Inventory.Get(context.Background(), res.Verdict.TokenID)
	if !ok || e.Requests != 32 || e.Decisions.StepUp != 1 || e.Decisions.Block != 1 || len(e.ASNs) != 2 || e.Used[0].Value != "orders:read" {
		t.Errorf("inventory entry %+v", e)
	}
	if e.Endpoints[0].Value != "GET /v1/orders" {
		t.Errorf("endpoint %q", e.Endpoints[0].Value)
	}
}

// BenchmarkCheckLifecycle: one inline decision with the lifecycle parts
// off and on (inventory, GeoIP, 301 zone rules, scope map), 1,000
// credentials of 300 clients, in one run for a ratio.
func BenchmarkCheckLifecycle(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprint("lifecycle=", on), func(b *testing.B) {
			var o testOpts
			o.ladder = policy.Ladder{Throttle: 50, StepUp: 60, Block: 70}
			if on {
				o.lifecycle = lifecycleParts(b)
			}
			c := newChecker(b, o)
			reqs := make([]*gate.Request, 1000)
			for i := range reqs {
				reqs[i] = request(0, testJWT(fmt.Sprint("svc", i), fmt.Sprint("client", i%300), "orders:read"), "198.51.100.7", "okhttp/4.12.0", "/v1/orders/42")
			}
			var res gate.Result
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := reqs[i%len(reqs)]
				r.Time = r.Time.Add(time.Second)
				if err := c.Check(ctx, r, &res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
