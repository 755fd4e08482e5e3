package forwardauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/gate/gatetest"
)

// fuzzChecker allows or throttles by the length of the URI and keeps what
// it saw.
type fuzzChecker struct{ got *gate.Request }

// Check adapts decide to gate.Checker.
func (c *fuzzChecker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	out, err := c.decide(ctx, r)
	return gatetest.Fill(res, out, err)
}

func (c *fuzzChecker) decide(_ context.Context, r *gate.Request) (*gate.Result, error) {
	c.got = r
	res := &gate.Result{Response: gate.Response{Status: http.StatusOK, Upstream: http.Header{"X-Vigil-Decision": {"allow"}}}}
	switch len(r.URI) % 4 {
	case 1:
		res.Response = gate.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}, Body: []byte("slow down")}
	case 2:
		res.Response = gate.Response{Status: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {"Bearer", "DPoP"}}}
	}
	return res, nil
}

func (c *fuzzChecker) Report(gate.Ticket, gate.Outcome) {}

// FuzzHandler feeds arbitrary forwarding headers, from trusted and
// untrusted peers, to each gateway dialect. The Handler must never panic
// nor answer 5xx other than its own, and what it passes to the Checker must
// be well-formed.
func FuzzHandler(f *testing.F) {
	f.Add(uint8(0), "127.0.0.1:1", "GET", "/v1/items?x=1", "api.example.com", "198.51.100.1", "")
	f.Add(uint8(1), "127.0.0.1:1", "POST", "/a b", "api.example.com", "192.0.2.1, 198.51.100.1", "198.51.100.1")
	f.Add(uint8(1), "[::1]:1", "DELETE", "http://h/x", "[2001:db8::1]:8443", "[2001:db8::1]:443,,unknown", "not-an-ip")
	f.Add(uint8(2), "127.0.0.1:1", "PUT", "/authz/v1/x", "", "10.0.0.1, ::ffff:198.51.100.9", "")
	f.Add(uint8(0), "203.0.113.5:1", "G\x00T", "javascript:x", "a@b", "\xff\xfe", "1.2.3.4:5")
	f.Add(uint8(1), "pipe", "", "", "", strings.Repeat("127.0.0.1,", 40), "127.0.0.1")
	f.Add(uint8(2), "127.0.0.1:1", "GET", "/authz", "h", "", "")
	f.Fuzz(func(t *testing.T, gw uint8, remote, method, uri, host, xff, realIP string) {
		o := Options{Gateway: Gateway(gw % uint8(numGateways)), MaxURIBytes: 256,
			CertHeader: "X-Client-Cert", CertFormat: binding.CertFormat(gw / uint8(numGateways) % 3)}
		if o.Gateway == Envoy {
			o.PathPrefix = "/authz"
		}
		chk := &fuzzChecker{}
		h, err := New(chk, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Built by hand, not parsed: header values the HTTP server would
		// refuse must not hurt either.
		r := &http.Request{
			Method: http.MethodGet, RequestURI: "/auth", URL: &url.URL{Path: "/auth"},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "vigil.internal", RemoteAddr: remote,
		}
		if o.Gateway == Envoy {
			r.Method, r.RequestURI, r.Host = method, uri, host
		}
		set := func(k, v string) {
			if v != "" {
				r.Header[k] = []string{v}
			}
		}
		set("X-Original-Method", method)
		set("X-Forwarded-Method", method)
		set("X-Original-Uri", uri)
		set("X-Forwarded-Uri", uri)
		set("X-Forwarded-Host", host)
		set("X-Forwarded-For", xff)
		set("X-Real-Ip", realIP)
		set("X-Client-Cert", realIP)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		switch w.Code {
		case 200, 400, 401, 403, 414, 429:
		default:
			t.Fatalf("status %d", w.Code)
		}
		if o.Gateway == Nginx && w.Code != 200 && w.Code != 401 && w.Code != 403 {
			t.Fatalf("nginx dialect answered %d, which auth_request turns into 500", w.Code)
		}
		st := h.Stats()
		if st.Requests != 1 || st.Allowed+st.Denied != 1 {
			t.Fatalf("stats %+v", st)
		}
		g := chk.got
		if g == nil {
			if st.BadRequests != 1 {
				t.Fatalf("the Checker was not asked, yet no bad request was counted: %+v", st)
			}
			return
		}
		if !validMethod(g.Method) {
			t.Fatalf("the Checker got method %q", g.Method)
		}
		if g.URI != "*" && !validPath(g.URI) || len(g.URI) > 256+1 {
			t.Fatalf("the Checker got URI %q", g.URI)
		}
		if !validHost(g.Host) {
			t.Fatalf("the Checker got host %q", g.Host)
		}
		peer := PeerAddr(r)
		if !isTrusted(peer, DefaultTrustedProxies()) && g.ClientIP != peer {
			t.Fatalf("untrusted peer %v, yet the client is %v", peer, g.ClientIP)
		}
		if g.ClientCert != "" && (!isTrusted(peer, DefaultTrustedProxies()) || len(g.ClientCert) != 43) {
			t.Fatalf("client certificate %q from peer %v", g.ClientCert, peer)
		}
		if g.ClientIP.IsValid() && (g.ClientIP.Zone() != "" || g.ClientIP.Is4In6()) {
			t.Fatalf("client %v not normalized", g.ClientIP)
		}
		if isTrusted(peer, DefaultTrustedProxies()) && g.ClientIP == peer {
			// Only if the gateway named its own address as the client.
			walked := walkForwardedFor(peer, r.Header.Values("X-Forwarded-For"), DefaultTrustedProxies()).hops > 0
			real, ok := parseForwardedAddr(strings.Trim(realIP, " \t"))
			if !walked && !(ok && real == peer) {
				t.Fatalf("the trusted gateway %v was taken for the client", peer)
			}
		}
	})
}
