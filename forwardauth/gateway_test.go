package forwardauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/forwardauth"
	"github.com/vigil-sec/vigil/forwardauth/gatewaytest"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/gate/gatetest"
	"github.com/vigil-sec/vigil/policy"
)

// These tests put a real nginx and a real Caddy, configured with the files
// in deploy/, between a client and an upstream, with the forward-auth
// Handler behind them. The Handler's Checker answers by the path the
// gateway forwarded, so what is tested is the translation: does the
// Checker see the original request, does each answer reach the client (or
// the upstream) as it should. The client connects from 127.0.0.2; only
// 127.0.0.1 (the gateway) is a trusted proxy, so the client's address is
// told apart from the gateway's.

// clientAddr is the address test clients connect from.
var clientAddr = netip.MustParseAddr("127.0.0.2")

// pathChecker is a gate.Checker whose answer is chosen by the original
// path: /allow, /allow/anonymous (no token id), /throttle, /stepup, /block,
// /error (a Check error); anything else is allowed. It records each request
// it sees under the X-Test-Case header the client sent.
type pathChecker struct {
	mu   sync.Mutex
	seen map[string]gate.Request
}

func newPathChecker() *pathChecker { return &pathChecker{seen: map[string]gate.Request{}} }

// Check adapts decide to gate.Checker.
func (c *pathChecker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	out, err := c.decide(ctx, r)
	return gatetest.Fill(res, out, err)
}

func (c *pathChecker) decide(_ context.Context, r *gate.Request) (*gate.Result, error) {
	rec := *r
	rec.Header = r.Header.(http.Header).Clone()
	c.mu.Lock()
	c.seen[r.Header.Get("X-Test-Case")] = rec
	c.mu.Unlock()

	path, _, _ := strings.Cut(r.URI, "?")
	if first, _, found := strings.Cut(path[1:], "/"); found && first != "allow" {
		path = "/" + first // "/stepup/42" is "/stepup"
	}
	res := &gate.Result{Verdict: gate.Verdict{TokenID: "tk_test", Kind: gate.Bearer}}
	switch {
	case path == "/error":
		return nil, errors.New("engine stopped")
	case path == "/throttle":
		res.Verdict.Decided, res.Verdict.Level, res.Verdict.Limited = policy.Throttle, policy.Throttle, true
		res.Verdict.RetryAfter = 7 * time.Second
		res.Response = problemResponse(http.StatusTooManyRequests, http.Header{
			"Retry-After":      {"7"},
			"Ratelimit":        {`"default";r=0;t=7`},
			"Ratelimit-Policy": {`"default";q=100;w=60`},
		})
	case path == "/stepup":
		res.Verdict.Decided, res.Verdict.Level = policy.StepUp, policy.StepUp
		res.Response = problemResponse(http.StatusUnauthorized, http.Header{
			"Www-Authenticate": {
				`Bearer error="insufficient_user_authentication", acr_values="mfa"`,
				`DPoP algs="ES256"`,
			},
		})
	case path == "/block":
		res.Verdict.Decided, res.Verdict.Level = policy.Block, policy.Block
		res.Response = problemResponse(http.StatusForbidden, nil)
	default:
		res.Response = gate.Response{
			Status: http.StatusOK,
			Header: http.Header{"Ratelimit": {`"default";r=41;t=30`}},
			Upstream: http.Header{
				"X-Vigil-Decision": {"allow"},
				"X-Vigil-Risk":     {"1.5"},
				"X-Vigil-Token-Id": {"tk_test"},
			},
		}
		if path == "/allow/anonymous" {
			res.Verdict.TokenID, res.Verdict.Kind = "", gate.Anonymous
			res.Response.Upstream.Del("X-Vigil-Token-Id")
		}
	}
	return res, nil
}

func (c *pathChecker) Report(gate.Ticket, gate.Outcome) {}

func (c *pathChecker) request(t *testing.T, testCase string) gate.Request {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.seen[testCase]
	if !ok {
		t.Fatalf("the Checker was not asked about %s", testCase)
	}
	return r
}

func problemResponse(status int, h http.Header) gate.Response {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/problem+json")
	body, _ := json.Marshal(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status})
	return gate.Response{Status: status, Header: h, Body: body}
}

// upstreamSaw is what the echo upstream answers: what reached it.
type upstreamSaw struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Body   string              `json:"body"`
	Vigil  map[string][]string `json:"vigil"` // the X-Vigil-* headers
}

func newUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		saw := upstreamSaw{Method: r.Method, URI: r.RequestURI, Body: string(body), Vigil: map[string][]string{}}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-Vigil-") {
				saw.Vigil[k] = v
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		_ = json.NewEncoder(w).Encode(saw)
	}))
	t.Cleanup(s.Close)
	return s
}

// rig is a forward-auth Handler with its Checker, an upstream, and a
// client connecting from clientAddr.
type rig struct {
	checker  *pathChecker
	handler  *forwardauth.Handler
	vigil    string // host:port of the Handler
	upstream string // host:port of the upstream
	client   *http.Client
}

func newRig(t *testing.T, gw forwardauth.Gateway) *rig {
	t.Helper()
	c := newPathChecker()
	h, err := forwardauth.New(c, forwardauth.Options{
		Gateway:        gw,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vigil := httptest.NewServer(h)
	t.Cleanup(vigil.Close)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: clientAddr.AsSlice()}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &rig{
		checker:  c,
		handler:  h,
		vigil:    vigil.Listener.Addr().String(),
		upstream: newUpstream(t).Listener.Addr().String(),
		client:   &http.Client{Transport: tr, Timeout: 15 * time.Second},
	}
}

// forgeries are headers a client sends to fool vigil or the upstream.
var forgeries = http.Header{
	"X-Forwarded-For":    {"203.0.113.9"},
	"X-Real-Ip":          {"198.51.100.7"},
	"X-Original-Uri":     {"/allow/forged"},
	"X-Original-Method":  {"PURGE"},
	"X-Forwarded-Uri":    {"/allow/forged"},
	"X-Forwarded-Method": {"PURGE"},
	"X-Forwarded-Host":   {"forged.example"},
	"X-Vigil-Decision":   {"forged"},
	"X-Vigil-Token-Id":   {"forged"},
	"X-Vigil-Shadow":     {"forged"}, // a name vigil does not send
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (r *rig) do(t *testing.T, gwURL, testCase, method, uri, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, gwURL+uri, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example.com"
	for k, v := range forgeries {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer t0k3n-"+testCase)
	req.Header.Set("User-Agent", "vigil-gateway-test/1")
	req.Header.Set("X-Test-Case", testCase)
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, uri, err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// checkSaw checks that the Checker saw the original request, not the
// forgeries.
func (r *rig) checkSaw(t *testing.T, testCase, method, uri string) gate.Request {
	t.Helper()
	got := r.checker.request(t, testCase)
	if got.Method != method || got.URI != uri || got.Host != "api.example.com" || got.ClientIP != clientAddr {
		t.Errorf("%s: the Checker saw %s %s (host %q) from %v, want %s %s (host api.example.com) from %v",
			testCase, got.Method, got.URI, got.Host, got.ClientIP, method, uri, clientAddr)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer t0k3n-"+testCase {
		t.Errorf("%s: the Checker saw Authorization %q, want the request's own", testCase, a)
	}
	if ua := got.Header.Get("User-Agent"); ua != "vigil-gateway-test/1" {
		t.Errorf("%s: the Checker saw User-Agent %q, want the request's own", testCase, ua)
	}
	return got
}

func upstreamReply(t *testing.T, testCase string, rep reply) upstreamSaw {
	t.Helper()
	if rep.status != http.StatusOK || rep.header.Get("X-Upstream") != "yes" {
		t.Fatalf("%s: status %d, X-Upstream %q, want 200 from the upstream; body %q", testCase, rep.status, rep.header.Get("X-Upstream"), rep.body)
	}
	var saw upstreamSaw
	if err := json.Unmarshal([]byte(rep.body), &saw); err != nil {
		t.Fatalf("%s: upstream answer %q: %v", testCase, rep.body, err)
	}
	return saw
}

func wantProblem(t *testing.T, testCase string, rep reply, status int) {
	t.Helper()
	if rep.status != status {
		t.Fatalf("%s: status %d, want %d; headers %v; body %q", testCase, rep.status, status, rep.header, rep.body)
	}
	if rep.header.Get("X-Upstream") != "" {
		t.Errorf("%s: the upstream was reached", testCase)
	}
	if ct := rep.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", testCase, ct)
	}
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal([]byte(rep.body), &p); err != nil || p.Status != status || p.Title == "" {
		t.Errorf("%s: body %q is not a problem with status %d (%v)", testCase, rep.body, status, err)
	}
}

// gatewayDiffs are the few answers that differ between gateways.
type gatewayDiffs struct {
	// allowRateLimit: the client sees vigil's RateLimit header on an allow
	// (and does not without it).
	allowRateLimit bool
	// requestID: the gateway sends vigil its own request id.
	requestID bool
	// stripsVigil: the gateway removes every X-Vigil-* header a client
	// sent, not only those vigil sets (nginx replaces only those).
	stripsVigil bool
}

func testGateway(t *testing.T, r *rig, url string, diffs gatewayDiffs) {
	t.Run("allow", func(t *testing.T) {
		rep := r.do(t, url, "allow", http.MethodGet, "/allow?page=2&q=a%20b", "")
		saw := upstreamReply(t, "allow", rep)
		if saw.Method != http.MethodGet || saw.URI != "/allow?page=2&q=a%20b" {
			t.Errorf("upstream saw %s %s", saw.Method, saw.URI)
		}
		want := map[string]string{"X-Vigil-Decision": "allow", "X-Vigil-Risk": "1.5", "X-Vigil-Token-Id": "tk_test"}
		for k, v := range want {
			if got := saw.Vigil[k]; len(got) != 1 || got[0] != v {
				t.Errorf("upstream saw %s %q, want %q", k, got, v)
			}
		}
		if got := saw.Vigil["X-Vigil-Shadow"]; diffs.stripsVigil && got != nil {
			t.Errorf("upstream saw the client's X-Vigil-Shadow %q", got)
		}
		// Caddy's copy_headers (like Traefik's authResponseHeaders) copies
		// onto the upstream request only, as deploy/README.md says.
		switch got := rep.header.Get("Ratelimit"); {
		case diffs.allowRateLimit && got != `"default";r=41;t=30`:
			t.Errorf("client saw RateLimit %q on an allow", got)
		case !diffs.allowRateLimit && got != "":
			t.Errorf("client saw RateLimit %q on an allow; deploy/README.md says it does not", got)
		}
		seen := r.checkSaw(t, "allow", http.MethodGet, "/allow?page=2&q=a%20b")
		if diffs.requestID && seen.RequestID == "" {
			t.Errorf("the Checker saw no request id")
		}
	})
	t.Run("allow-anonymous-post", func(t *testing.T) {
		rep := r.do(t, url, "anonymous", http.MethodPost, "/allow/anonymous", "the request body")
		saw := upstreamReply(t, "anonymous", rep)
		if saw.Method != http.MethodPost || saw.Body != "the request body" {
			t.Errorf("upstream saw %s with body %q, want POST with the request body", saw.Method, saw.Body)
		}
		// vigil sent no token id: the client's forged one must not pass.
		if got := saw.Vigil["X-Vigil-Token-Id"]; got != nil {
			t.Errorf("upstream saw X-Vigil-Token-Id %q, which vigil did not send", got)
		}
		if got := saw.Vigil["X-Vigil-Decision"]; len(got) != 1 || got[0] != "allow" {
			t.Errorf("upstream saw X-Vigil-Decision %q", got)
		}
		r.checkSaw(t, "anonymous", http.MethodPost, "/allow/anonymous")
	})
	t.Run("throttle", func(t *testing.T) {
		rep := r.do(t, url, "throttle", http.MethodGet, "/throttle", "")
		wantProblem(t, "throttle", rep, http.StatusTooManyRequests)
		for k, v := range map[string]string{"Retry-After": "7", "Ratelimit": `"default";r=0;t=7`, "Ratelimit-Policy": `"default";q=100;w=60`} {
			if got := rep.header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("throttle: %s %q, want %q", k, got, v)
			}
		}
		r.checkSaw(t, "throttle", http.MethodGet, "/throttle")
	})
	t.Run("step-up", func(t *testing.T) {
		rep := r.do(t, url, "stepup", http.MethodDelete, "/stepup/42", "")
		wantProblem(t, "stepup", rep, http.StatusUnauthorized)
		challenges := strings.Join(rep.header.Values("Www-Authenticate"), ", ")
		for _, c := range []string{`Bearer error="insufficient_user_authentication", acr_values="mfa"`, `DPoP algs="ES256"`} {
			if !strings.Contains(challenges, c) {
				t.Errorf("step-up: WWW-Authenticate %q lacks %q", rep.header.Values("Www-Authenticate"), c)
			}
		}
		r.checkSaw(t, "stepup", http.MethodDelete, "/stepup/42")
	})
	t.Run("block", func(t *testing.T) {
		rep := r.do(t, url, "block", http.MethodPut, "/block", "payload")
		wantProblem(t, "block", rep, http.StatusForbidden)
		r.checkSaw(t, "block", http.MethodPut, "/block")
	})
	t.Run("check-error", func(t *testing.T) {
		rep := r.do(t, url, "error", http.MethodGet, "/error", "")
		wantProblem(t, "error", rep, http.StatusServiceUnavailable)
	})
	t.Run("stats", func(t *testing.T) {
		st := r.handler.Stats()
		if st.Requests != 6 || st.Allowed != 2 || st.Denied != 4 || st.CheckErrors != 1 || st.BadRequests != 0 || st.ClientUnknown != 0 || st.ForwardingIgnored != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestThroughNginx(t *testing.T) {
	t.Parallel()
	r := newRig(t, forwardauth.Nginx)
	gw := gatewaytest.StartNginx(t, func(listen string) string {
		return gatewaytest.NginxSite(t, listen, r.vigil, r.upstream)
	})
	testGateway(t, r, gw.URL, gatewayDiffs{allowRateLimit: true, requestID: true})
	// Every answer of vigil's was one auth_request passes on: nothing was
	// turned into a 500 ("auth request unexpected status"), nothing else
	// went wrong.
	for _, line := range strings.Split(gw.Log(), "\n") {
		for _, level := range []string{"[warn]", "[error]", "[crit]", "[alert]", "[emerg]"} {
			if strings.Contains(line, level) {
				t.Errorf("nginx logged: %s", line)
			}
		}
	}
}

func TestThroughCaddy(t *testing.T) {
	t.Parallel()
	r := newRig(t, forwardauth.Forwarded)
	gw := gatewaytest.StartCaddy(t, func(listen string) string {
		return gatewaytest.CaddySite(t, listen, r.vigil, r.upstream)
	})
	testGateway(t, r, gw.URL, gatewayDiffs{stripsVigil: true})
	if strings.Contains(gw.Log(), "not formatted") {
		t.Errorf("deploy/caddy/Caddyfile is not as `caddy fmt` writes it")
	}
}

// TestGatewaysFailClosed: when vigil cannot be reached, the shipped
// configurations keep requests from the upstream (nginx answers 500, Caddy
// 502).
func TestGatewaysFailClosed(t *testing.T) {
	t.Parallel()
	dead := gatewaytest.FreeAddr(t) // nothing listens there
	upstream := newUpstream(t).Listener.Addr().String()
	nginx := gatewaytest.StartNginx(t, func(listen string) string {
		return gatewaytest.NginxSite(t, listen, dead, upstream)
	})
	caddy := gatewaytest.StartCaddy(t, func(listen string) string {
		return gatewaytest.CaddySite(t, listen, dead, upstream)
	})
	for _, c := range []struct {
		name, url string
		want      int
	}{{"nginx", nginx.URL, http.StatusInternalServerError}, {"caddy", caddy.URL, http.StatusBadGateway}} {
		resp, err := http.Get(c.url + "/allow")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || resp.Header.Get("X-Upstream") != "" {
			t.Errorf("%s with vigil down: status %d, X-Upstream %q, want %d without the upstream",
				c.name, resp.StatusCode, resp.Header.Get("X-Upstream"), c.want)
		}
	}
}
