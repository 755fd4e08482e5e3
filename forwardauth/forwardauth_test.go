package forwardauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/forwardauth"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/gate/gatetest"
	"github.com/vigil-sec/vigil/policy"
)

// fixedChecker answers every request with res or err and keeps the last
// request.
type fixedChecker struct {
	res *gate.Result
	err error

	mu  sync.Mutex
	got *gate.Request
	n   int
}

// Check adapts decide to gate.Checker.
func (c *fixedChecker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	out, err := c.decide(ctx, r)
	return gatetest.Fill(res, out, err)
}

func (c *fixedChecker) decide(_ context.Context, r *gate.Request) (*gate.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *r
	c.got, c.n = &cp, c.n+1
	return c.res, c.err
}

func (c *fixedChecker) Report(gate.Ticket, gate.Outcome) {}

func allowResult() *gate.Result {
	return &gate.Result{Response: gate.Response{
		Status: http.StatusOK,
		Header: http.Header{"Ratelimit": {`"default";r=9;t=60`}, "Content-Length": {"999"}},
		Upstream: http.Header{
			"X-Vigil-Decision": {"allow"},
			"X-Vigil-Risk":     {"0.5"},
			"x-vigil-token-id": {"tk_1"}, // not canonical: the Handler copes
		},
	}}
}

func denyResult(status int, level policy.Level, h http.Header) *gate.Result {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/problem+json")
	return &gate.Result{
		Verdict:  gate.Verdict{Level: level, Decided: level},
		Response: gate.Response{Status: status, Header: h, Body: []byte(`{"status":` + http.StatusText(status) + `}`)},
	}
}

var (
	lan     = netip.MustParsePrefix("10.0.0.0/8")
	gateway = "127.0.0.1:40000"
	outside = "203.0.113.5:40000"
)

type handlerCase struct {
	name    string
	opts    forwardauth.Options
	remote  string
	method  string // the request to vigil; GET when empty
	target  string // "/auth" when empty
	header  map[string]string
	res     *gate.Result
	err     error
	wantSt  int
	wantHdr map[string]string // "" means absent
	// what the Checker saw; nil means it was not asked
	want  *gate.Request
	stats forwardauth.Stats // the counters other than Requests, Allowed, Denied
}

func TestHandler(t *testing.T) {
	fwd := forwardauth.Options{}
	ngx := forwardauth.Options{Gateway: forwardauth.Nginx}
	ngxLAN := forwardauth.Options{Gateway: forwardauth.Nginx, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), lan}}
	envoy := forwardauth.Options{Gateway: forwardauth.Envoy, PathPrefix: "/authz"}
	traefikHeaders := map[string]string{
		"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/v1/items?x=1",
		"X-Forwarded-Host": "api.example.com", "X-Forwarded-For": "198.51.100.1",
		"Authorization": "Bearer abc",
	}
	nginxHeaders := map[string]string{
		"X-Original-Method": "DELETE", "X-Original-Uri": "/v1/items/7",
		"X-Forwarded-Host": "api.example.com", "X-Real-Ip": "198.51.100.2",
		"X-Forwarded-For": "192.0.2.66, 198.51.100.2",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	req := func(method, uri, host, client string) *gate.Request {
		r := &gate.Request{Method: method, URI: uri, Host: host}
		if client != "" {
			r.ClientIP = netip.MustParseAddr(client)
		}
		return r
	}

	for _, c := range []handlerCase{
		{
			name: "forwarded allow", opts: fwd, remote: gateway, header: traefikHeaders, res: allowResult(),
			wantSt:  200,
			wantHdr: map[string]string{"X-Vigil-Decision": "allow", "X-Vigil-Risk": "0.5", "X-Vigil-Token-Id": "tk_1", "Ratelimit": `"default";r=9;t=60`},
			want:    req("POST", "/v1/items?x=1", "api.example.com", "198.51.100.1"),
		},
		{
			name: "forwarded ignores nginx's headers", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Original-Uri", "/allowed", "X-Original-Method", "GET", "X-Real-Ip", "192.0.2.1"),
			res:    allowResult(), wantSt: 200,
			want: req("POST", "/v1/items?x=1", "api.example.com", "198.51.100.1"),
		},
		{
			name: "untrusted peer: headers ignored, judged as it came", opts: fwd, remote: outside, method: "PATCH", target: "/auth?a=1",
			header: traefikHeaders, res: allowResult(), wantSt: 200,
			want:  req("PATCH", "/auth?a=1", "vigil.internal", "203.0.113.5"),
			stats: forwardauth.Stats{ForwardingIgnored: 1},
		},
		{
			name: "untrusted peer without forwarding headers", opts: fwd, remote: outside,
			header: map[string]string{"Authorization": "Bearer abc"}, res: allowResult(), wantSt: 200,
			want: req("GET", "/auth", "vigil.internal", "203.0.113.5"),
		},
		{
			name: "missing X-Forwarded-Uri", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-Uri", ""), res: allowResult(),
			wantSt: 400, wantHdr: map[string]string{"Content-Type": "application/problem+json"},
			stats: forwardauth.Stats{BadRequests: 1},
		},
		{
			name: "missing X-Original-Method", opts: ngx, remote: gateway,
			header: with(nginxHeaders, "X-Original-Method", ""), res: allowResult(),
			wantSt: 403, wantHdr: map[string]string{"X-Vigil-Status": "400", "Content-Type": "application/problem+json"},
			stats: forwardauth.Stats{BadRequests: 1},
		},
		{
			name: "not a method", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-Method", "GE T"), res: allowResult(),
			wantSt: 400, stats: forwardauth.Stats{BadRequests: 1},
		},
		{
			name: "not a request target", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-Uri", "javascript:alert(1)"), res: allowResult(),
			wantSt: 400, stats: forwardauth.Stats{BadRequests: 1},
		},
		{
			name: "absolute form reduced", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-Uri", "http://api.example.com/v2?y=2"), res: allowResult(),
			wantSt: 200, want: req("POST", "/v2?y=2", "api.example.com", "198.51.100.1"),
		},
		{
			name: "target too long", opts: forwardauth.Options{MaxURIBytes: 64}, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-Uri", "/"+strings.Repeat("a", 64)), res: allowResult(),
			wantSt: 414, stats: forwardauth.Stats{BadRequests: 1},
		},
		{
			name: "not a host", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-Host", "a b/c"), res: allowResult(),
			wantSt: 400, stats: forwardauth.Stats{BadRequests: 1},
		},
		{
			name: "trusted peer sends no client", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-For", ""), res: allowResult(),
			wantSt: 200, want: req("POST", "/v1/items?x=1", "api.example.com", ""),
			stats: forwardauth.Stats{ClientUnknown: 1},
		},
		{
			name: "trusted peer sends a malformed client", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Forwarded-For", "198.51.100.1, not-an-ip"), res: allowResult(),
			wantSt: 200, want: req("POST", "/v1/items?x=1", "api.example.com", ""),
			stats: forwardauth.Stats{ClientUnknown: 1, ForwardingMalformed: 1},
		},
		{
			name: "request id from a trusted peer", opts: fwd, remote: gateway,
			header: with(traefikHeaders, "X-Request-Id", "req-42"), res: allowResult(),
			wantSt: 200, want: &gate.Request{Method: "POST", URI: "/v1/items?x=1", Host: "api.example.com", ClientIP: netip.MustParseAddr("198.51.100.1"), RequestID: "req-42"},
		},
		{
			name: "request id from an untrusted peer is not taken", opts: fwd, remote: outside,
			header: map[string]string{"X-Request-Id": "req-42"}, res: allowResult(),
			wantSt: 200, want: req("GET", "/auth", "vigil.internal", "203.0.113.5"),
		},
		{
			name: "nginx allow, X-Real-IP", opts: ngx, remote: gateway, header: nginxHeaders, res: allowResult(),
			wantSt: 200, wantHdr: map[string]string{"X-Vigil-Decision": "allow"},
			want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.2"),
		},
		{
			name: "nginx ignores Traefik's headers", opts: ngx, remote: gateway,
			header: with(nginxHeaders, "X-Forwarded-Uri", "/allowed", "X-Forwarded-Method", "GET"), res: allowResult(),
			wantSt: 200, want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.2"),
		},
		{
			name: "nginx, malformed X-Real-IP: X-Forwarded-For", opts: ngx, remote: gateway,
			header: with(nginxHeaders, "X-Real-Ip", "999.1.1.1"), res: allowResult(),
			wantSt: 200, want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.2"),
			stats: forwardauth.Stats{ForwardingMalformed: 1},
		},
		{
			name: "nginx behind a trusted balancer", opts: ngxLAN, remote: gateway,
			header: with(nginxHeaders, "X-Real-Ip", "10.0.0.9", "X-Forwarded-For", "192.0.2.66, 198.51.100.3, 10.0.0.9"), res: allowResult(),
			wantSt: 200, want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.3"),
		},
		{
			name: "nginx, only X-Real-IP of a trusted balancer", opts: ngxLAN, remote: gateway,
			header: with(nginxHeaders, "X-Real-Ip", "10.0.0.9", "X-Forwarded-For", ""), res: allowResult(),
			wantSt: 200, want: req("DELETE", "/v1/items/7", "api.example.com", "10.0.0.9"),
		},
		{
			name: "nginx throttle: 403 with the marker", opts: ngx, remote: gateway, header: nginxHeaders,
			res: func() *gate.Result {
				r := denyResult(429, policy.Throttle, http.Header{"Ratelimit": {`"default";r=0;t=3`}})
				r.Verdict.RetryAfter = 2500 * time.Millisecond
				return r
			}(),
			wantSt: 403, wantHdr: map[string]string{"X-Vigil-Decision": "throttle", "X-Vigil-Status": "429", "Retry-After": "3", "Ratelimit": `"default";r=0;t=3`},
			want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.2"),
		},
		{
			name: "nginx block", opts: ngx, remote: gateway, header: nginxHeaders, res: denyResult(403, policy.Block, nil),
			wantSt: 403, wantHdr: map[string]string{"X-Vigil-Decision": "block", "X-Vigil-Status": ""},
			want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.2"),
		},
		{
			name: "nginx step-up: one WWW-Authenticate", opts: ngx, remote: gateway, header: nginxHeaders,
			res:    denyResult(401, policy.StepUp, http.Header{"Www-Authenticate": {`Bearer error="insufficient_user_authentication"`, `DPoP algs="ES256"`}}),
			wantSt: 401, wantHdr: map[string]string{"Www-Authenticate": `Bearer error="insufficient_user_authentication", DPoP algs="ES256"`},
			want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.2"),
		},
		{
			name: "nginx, Checker error", opts: ngx, remote: gateway, header: nginxHeaders, err: errors.New("shutting down"),
			wantSt: 403, wantHdr: map[string]string{"X-Vigil-Status": "503"},
			want: req("DELETE", "/v1/items/7", "api.example.com", "198.51.100.2"), stats: forwardauth.Stats{CheckErrors: 1},
		},
		{
			name: "forwarded throttle as it is", opts: fwd, remote: gateway, header: traefikHeaders,
			res:    denyResult(429, policy.Throttle, http.Header{"Retry-After": {"9"}}),
			wantSt: 429, wantHdr: map[string]string{"Retry-After": "9", "X-Vigil-Status": "", "X-Vigil-Decision": "", "Content-Type": "application/problem+json"},
			want: req("POST", "/v1/items?x=1", "api.example.com", "198.51.100.1"),
		},
		{
			name: "forwarded step-up keeps both challenges", opts: fwd, remote: gateway, header: traefikHeaders,
			res:    denyResult(401, policy.StepUp, http.Header{"Www-Authenticate": {"Bearer", "DPoP"}}),
			wantSt: 401, wantHdr: map[string]string{"Www-Authenticate": "Bearer"},
			want: req("POST", "/v1/items?x=1", "api.example.com", "198.51.100.1"),
		},
		{
			name: "Checker error fails closed", opts: fwd, remote: gateway, header: traefikHeaders, err: errors.New("shutting down"),
			wantSt: 503, wantHdr: map[string]string{"Content-Type": "application/problem+json"},
			want: req("POST", "/v1/items?x=1", "api.example.com", "198.51.100.1"), stats: forwardauth.Stats{CheckErrors: 1},
		},
		{
			name: "Checker error fails open", opts: forwardauth.Options{FailOpen: true}, remote: gateway, header: traefikHeaders, err: errors.New("shutting down"),
			wantSt: 200, wantHdr: map[string]string{"X-Vigil-Decision": "unchecked"},
			want: req("POST", "/v1/items?x=1", "api.example.com", "198.51.100.1"), stats: forwardauth.Stats{CheckErrors: 1, FailedOpen: 1},
		},
		{
			name: "Checker answers no status", opts: fwd, remote: gateway, header: traefikHeaders, res: &gate.Result{},
			wantSt: 503, want: req("POST", "/v1/items?x=1", "api.example.com", "198.51.100.1"), stats: forwardauth.Stats{CheckErrors: 1},
		},
		{
			name: "Envoy: the prefix is stripped", opts: envoy, remote: gateway, method: "PUT", target: "/authz/v1/items?x=1",
			header: map[string]string{"X-Forwarded-For": "198.51.100.4", "Authorization": "Bearer abc"}, res: allowResult(),
			wantSt: 200, want: req("PUT", "/v1/items?x=1", "vigil.internal", "198.51.100.4"),
		},
		{
			name: "Envoy: the prefix alone", opts: envoy, remote: gateway, target: "/authz?x=1",
			header: map[string]string{"X-Forwarded-For": "198.51.100.4"}, res: allowResult(),
			wantSt: 200, want: req("GET", "/?x=1", "vigil.internal", "198.51.100.4"),
		},
		{
			name: "Envoy ignores forward-auth headers", opts: envoy, remote: gateway, target: "/authz/v1",
			header: map[string]string{"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Uri": "/other", "X-Original-Uri": "/other"}, res: allowResult(),
			wantSt: 200, want: req("GET", "/v1", "vigil.internal", "198.51.100.4"),
		},
		{
			name: "Envoy: outside the prefix", opts: envoy, remote: gateway, target: "/authzfoo",
			res: allowResult(), wantSt: 400, stats: forwardauth.Stats{BadRequests: 1},
		},
		{
			name: "Envoy: untrusted peer", opts: envoy, remote: outside, target: "/authz/v1",
			header: map[string]string{"X-Forwarded-For": "198.51.100.4"}, res: allowResult(),
			wantSt: 200, want: req("GET", "/v1", "vigil.internal", "203.0.113.5"), stats: forwardauth.Stats{ForwardingIgnored: 1},
		},
	} {
		t.Run(c.name, func(t *testing.T) { runHandlerCase(t, c) })
	}
}

func runHandlerCase(t *testing.T, c handlerCase) {
	chk := &fixedChecker{res: c.res, err: c.err}
	h, err := forwardauth.New(chk, c.opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	method, target := c.method, c.target
	if method == "" {
		method = http.MethodGet
	}
	if target == "" {
		target = "/auth"
	}
	r := httptest.NewRequest(method, target, nil)
	r.Host = "vigil.internal"
	r.RemoteAddr = c.remote
	for k, v := range c.header {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	if w.Code != c.wantSt {
		t.Errorf("status %d, want %d; body %q", w.Code, c.wantSt, w.Body)
	}
	for k, v := range c.wantHdr {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if w.Code != 200 {
		if w.Body.Len() == 0 {
			t.Errorf("a denial without a body")
		}
		if w.Header().Get("Content-Length") == "999" {
			t.Errorf("the Checker's Content-Length was copied")
		}
	}
	if w.Header().Get("Content-Type") == "application/problem+json" && (c.err != nil || c.res == nil || c.want == nil) {
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Detail == "" {
			t.Errorf("problem body %q: %v", w.Body, err)
		}
	}

	switch {
	case c.want == nil && chk.got != nil:
		t.Errorf("the Checker was asked about %+v", *chk.got)
	case c.want != nil && chk.got == nil:
		t.Errorf("the Checker was not asked")
	case c.want != nil:
		g := chk.got
		if g.Method != c.want.Method || g.URI != c.want.URI || g.Host != c.want.Host || g.ClientIP != c.want.ClientIP || g.RequestID != c.want.RequestID {
			t.Errorf("the Checker saw %s %s host %q client %v id %q, want %s %s host %q client %v id %q",
				g.Method, g.URI, g.Host, g.ClientIP, g.RequestID, c.want.Method, c.want.URI, c.want.Host, c.want.ClientIP, c.want.RequestID)
		}
		if a := c.header["Authorization"]; a != "" && g.Header.Get("Authorization") != a {
			t.Errorf("the Checker saw Authorization %q, want %q", g.Header.Get("Authorization"), a)
		}
	}

	st := h.Stats()
	wantStats := c.stats
	wantStats.Requests = 1
	if w.Code == 200 {
		wantStats.Allowed = 1
	} else {
		wantStats.Denied = 1
	}
	if st != wantStats {
		t.Errorf("stats %+v, want %+v", st, wantStats)
	}
}

func TestNewRejects(t *testing.T) {
	chk := &fixedChecker{}
	for _, c := range []struct {
		name string
		c    gate.Checker
		o    forwardauth.Options
		want string
	}{
		{"nil checker", nil, forwardauth.Options{}, "nil Checker"},
		{"unknown gateway", chk, forwardauth.Options{Gateway: 9}, "gateway 9"},
		{"invalid prefix", chk, forwardauth.Options{TrustedProxies: []netip.Prefix{{}}}, "trusted proxy 0"},
		{"path prefix without Envoy", chk, forwardauth.Options{PathPrefix: "/authz"}, "only Envoy"},
		{"relative path prefix", chk, forwardauth.Options{Gateway: forwardauth.Envoy, PathPrefix: "authz"}, "must start with /"},
		{"path prefix ending in /", chk, forwardauth.Options{Gateway: forwardauth.Envoy, PathPrefix: "/authz/"}, "must start with /"},
		{"path prefix with a space", chk, forwardauth.Options{Gateway: forwardauth.Envoy, PathPrefix: "/a z"}, "not a URI path"},
		{"negative max URI", chk, forwardauth.Options{MaxURIBytes: -1}, "must not be negative"},
	} {
		_, err := forwardauth.New(c.c, c.o, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one saying %q", c.name, err, c.want)
		}
	}
}

func TestParseGateway(t *testing.T) {
	for in, want := range map[string]forwardauth.Gateway{
		"forwarded": forwardauth.Forwarded, "Traefik": forwardauth.Forwarded, "caddy": forwardauth.Forwarded,
		"nginx": forwardauth.Nginx, "envoy": forwardauth.Envoy,
	} {
		got, err := forwardauth.ParseGateway(in)
		if err != nil || got != want {
			t.Errorf("ParseGateway(%q) = %v, %v, want %v", in, got, err, want)
		}
		if g, _ := forwardauth.ParseGateway(got.String()); g != got {
			t.Errorf("%v does not round-trip", got)
		}
	}
	if _, err := forwardauth.ParseGateway("haproxy"); err == nil {
		t.Error("ParseGateway(haproxy): no error")
	}
	if s := forwardauth.Gateway(7).String(); s != "gateway(7)" {
		t.Errorf("Gateway(7) = %q", s)
	}
}

// TestHugeHeaders: a header near the server's limit is handled without
// harm, and one beyond it is refused by the server before the Handler.
func TestHugeHeaders(t *testing.T) {
	chk := &fixedChecker{res: allowResult()}
	h, err := forwardauth.New(chk, forwardauth.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = 1 << 20
	srv.Start()
	defer srv.Close()

	send := func(xff, uri string) int {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, srv.URL+"/auth", nil)
		r.Header.Set("X-Forwarded-Method", "GET")
		r.Header.Set("X-Forwarded-Uri", uri)
		r.Header.Set("X-Forwarded-For", xff)
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// 50,000 entries, the client last: only the last is read.
	if st := send(strings.Repeat("192.0.2.1, ", 50_000)+"198.51.100.1", "/x"); st != 200 || chk.got == nil || chk.got.ClientIP != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("long X-Forwarded-For: status %d, Checker saw %+v", st, chk.got)
	}
	// 50,000 trusted entries: the walk stops at the hop limit.
	if st := send(strings.Repeat("127.0.0.1,", 50_000), "/x"); st != 200 {
		t.Errorf("long trusted X-Forwarded-For: status %d", st)
	}
	if st := send("198.51.100.1", "/"+strings.Repeat("a", 500_000)); st != http.StatusRequestURITooLong {
		t.Errorf("500 kB target: status %d, want 414", st)
	}
	if st := send("198.51.100.1", "/"+strings.Repeat("a", 2<<20)); st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MB target: status %d, want the server's 431", st)
	}
	if st := h.Stats(); st.ForwardingMalformed != 1 || st.BadRequests != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestEnvoyHeadersToRemove: an allow in the Envoy dialect lists in
// X-Envoy-Auth-Headers-To-Remove every X-Vigil-* header the upstream must
// not see because vigil's answer does not set it: the client's forgeries
// and vigil's own names. Envoy's allowed_upstream_headers replaces only the
// headers present in the answer, so without the list a client's
// X-Vigil-Token-Id reaches the upstream with an anonymous request.
func TestEnvoyHeadersToRemove(t *testing.T) {
	envoy := forwardauth.Options{Gateway: forwardauth.Envoy, PathPrefix: "/authz"}
	forged := map[string]string{
		"X-Vigil-Decision": "forged", "X-Vigil-Token-Id": "forged", "x-vigil-shadow": "forged", "X-Vigilant": "not ours",
	}
	anonymous := allowResult()
	delete(anonymous.Response.Upstream, "x-vigil-token-id") // not canonical
	noUpstream := allowResult()
	noUpstream.Response.Upstream = nil // enforce.upstream_headers: false
	stripping := allowResult()
	stripping.Response.Header.Set("X-Envoy-Auth-Headers-To-Remove", "Authorization")
	delete(stripping.Response.Upstream, "x-vigil-token-id")

	for _, c := range []struct {
		name   string
		opts   forwardauth.Options
		header map[string]string
		res    *gate.Result
		err    error
		wantSt int
		want   string // the header's value; "" means absent
	}{
		{"allow: forgeries vigil does not replace", envoy, forged, allowResult(), nil, 200, "x-vigil-shadow"},
		{"allow: nothing forged", envoy, nil, allowResult(), nil, 200, ""},
		{"anonymous allow", envoy, forged, anonymous, nil, 200, "x-vigil-shadow, x-vigil-token-id"},
		{"anonymous allow, nothing forwarded", envoy, nil, anonymous, nil, 200, "x-vigil-token-id"},
		{"upstream headers off", envoy, forged, noUpstream, nil, 200, "x-vigil-decision, x-vigil-risk, x-vigil-shadow, x-vigil-token-id"},
		{"fail open", forwardauth.Options{Gateway: forwardauth.Envoy, FailOpen: true}, forged, nil, errors.New("down"), 200, "x-vigil-risk, x-vigil-shadow, x-vigil-token-id"},
		{"the Checker's own list is kept", envoy, forged, stripping, nil, 200, "authorization, x-vigil-shadow, x-vigil-token-id"},
		{"denial", envoy, forged, denyResult(http.StatusForbidden, policy.Block, nil), nil, 403, ""},
		{"fail closed", envoy, forged, nil, errors.New("down"), 503, ""},
		{"forwarded dialect", forwardauth.Options{}, with(forged, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/"), anonymous, nil, 200, ""},
		{"nginx dialect", forwardauth.Options{Gateway: forwardauth.Nginx}, with(forged, "X-Original-Method", "GET", "X-Original-Uri", "/"), anonymous, nil, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := forwardauth.New(&fixedChecker{res: c.res, err: c.err}, c.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/authz/v1/items", nil)
			r.RemoteAddr = gateway
			for k, v := range c.header {
				r.Header[k] = []string{v} // as sent, not canonicalized
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.wantSt {
				t.Fatalf("status %d, want %d", w.Code, c.wantSt)
			}
			if got := w.Header().Values("X-Envoy-Auth-Headers-To-Remove"); c.want == "" && got != nil || c.want != "" && (len(got) != 1 || got[0] != c.want) {
				t.Errorf("X-Envoy-Auth-Headers-To-Remove %q, want %q", got, c.want)
			}
			// What vigil sets upstream is never listed: Envoy removes
			// after it sets.
			for _, name := range strings.Split(w.Header().Get("X-Envoy-Auth-Headers-To-Remove"), ", ") {
				if name != "" && w.Header().Get(name) != "" {
					t.Errorf("%s is both set and listed for removal", name)
				}
			}
		})
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
