package event_test

import (
	"net/netip"
	"testing"

	"github.com/vigil-sec/vigil/event"
)

func TestAppendRoute(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "/",
		"/":                            "/",
		"/v1/accounts":                 "/v1/accounts",
		"/v1/accounts/42":              "/v1/accounts/{id}",
		"/v1/accounts/42/orders/7?x=1": "/v1/accounts/{id}/orders/{id}",
		"/v1/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301": "/v1/users/{id}",
		"/v1/objects/507f1f77bcf86cd799439011":           "/v1/objects/{id}",
		"/v1/files/report-2024.pdf":                      "/v1/files/report-2024.pdf",
		"/v2/healthz#frag":                               "/v2/healthz",
		"/api/v1//x":                                     "/api/v1//x",
		"relative/12":                                    "relative/{id}",
		"?only=query":                                    "/",
	} {
		if got := string(event.AppendRoute(nil, in)); got != want {
			t.Errorf("AppendRoute(%q) = %q, want %q", in, got, want)
		}
		if got := string(event.AppendRoute(nil, []byte(in))); got != want {
			t.Errorf("AppendRoute([]byte(%q)) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendAnonymousKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":              "ip:198.51.100.7",
		"::ffff:198.51.100.7":       "ip:198.51.100.7",
		"2001:db8:1:2:aaaa::1":      "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:bbbb::9%eth0": "ip:2001:db8:1:2::/64",
	} {
		if got := string(event.AppendAnonymousKey(nil, netip.MustParseAddr(in))); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	if got := string(event.AppendAnonymousKey(nil, netip.Addr{})); got != "ip:unknown" {
		t.Errorf("invalid address: %q", got)
	}
}

func BenchmarkAppendRoute(b *testing.B) {
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for range b.N {
		dst = event.AppendRoute(dst[:0], "/v1/accounts/42/orders/507f1f77bcf86cd799439011?x=1")
	}
}
