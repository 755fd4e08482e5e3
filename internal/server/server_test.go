package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/server"
)

// testConfig is the default configuration with a short warm-up and a
// ladder low enough that a stolen token's first requests from elsewhere
// (new network, new client) reach each level in a few requests.
const testConfig = `
scoring: {warmup_events: 20, warmup_age: 0s}
policy: {throttle: 2, step_up_auth: 3.5, block: 4.5, hysteresis: {margin: 0.5, hold: 0s}}
enforce: {throttle_default_per_minute: 1}
serve: {listen: "127.0.0.1:0", grpc_listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var testEnv = env(map[string]string{"VIGIL_FINGERPRINT_KEY": "0123456789abcdef0123456789abcdef"})

func newServer(t *testing.T, yaml string, o server.Options) (*server.Server, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig+yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := server.New(context.Background(), cfg, testEnv, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), o)
	if err != nil {
		t.Fatal(err)
	}
	return s, &logs
}

// run starts s on loopback ports and stops it when the test ends.
func run(t *testing.T, s *server.Server) server.Listeners {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan server.Listeners, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(l server.Listeners) { ready <- l }) }()
	var ls server.Listeners
	select {
	case ls = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ls
}

// ask sends a forward-auth request as Traefik or Caddy would.
func ask(t *testing.T, base, token, ua, client, uri string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", base+server.PathForwardAuth, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", uri)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

const secret = "s3cr3t-T0KEN-never-logged-4242"

// TestServeEscalates: a credential's owner works from home; the same token
// used from another network with another client is throttled (429 with
// Retry-After once over its limit), then, probing endpoints it never used,
// stepped up (401, RFC 9470) and blocked (403) — while the owner's own
// requests stay allowed. The read API and the metrics show it, and the raw
// token appears in no log line, header or metric.
func TestServeEscalates(t *testing.T) {
	s, logs := newServer(t, "", server.Options{})
	ls := run(t, s)
	base := "http://" + ls.HTTP.String()
	admin := "http://" + ls.Admin.String()

	var tokenID string
	for i := range 30 {
		resp := ask(t, base, secret, "okhttp/4.12.0", "198.51.100.7", fmt.Sprintf("/v1/orders?page=%d", i))
		if resp.StatusCode != 200 {
			t.Fatalf("owner request %d: %d", i, resp.StatusCode)
		}
		tokenID = resp.Header.Get("X-Vigil-Token-Id")
	}
	if !strings.HasPrefix(tokenID, "tk_") {
		t.Fatalf("token id %q", tokenID)
	}

	// The thief: another network, another client.
	seen := map[int]http.Header{}
	for i := range 12 {
		resp := ask(t, base, secret, "curl/8.5.0", "203.0.113.66", fmt.Sprintf("/v1/admin/area-%c", 'a'+i))
		if _, ok := seen[resp.StatusCode]; !ok {
			seen[resp.StatusCode] = resp.Header
		}
		// The owner keeps working, undisturbed.
		if r := ask(t, base, secret, "okhttp/4.12.0", "198.51.100.7", "/v1/orders"); r.StatusCode != 200 {
			t.Fatalf("owner request during the attack: %d (%s)", r.StatusCode, r.Header.Get("X-Vigil-Decision"))
		}
	}
	if h, ok := seen[429]; !ok {
		t.Errorf("no 429 in %v", keys(seen))
	} else if h.Get("Retry-After") == "" || h.Get("RateLimit") == "" {
		t.Errorf("429 without Retry-After/RateLimit: %v", h)
	}
	if h, ok := seen[401]; !ok {
		t.Errorf("no 401 in %v", keys(seen))
	} else if !strings.Contains(h.Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) {
		t.Errorf("401 challenge: %q", h.Get("WWW-Authenticate"))
	}
	if _, ok := seen[403]; !ok {
		t.Errorf("no 403 in %v", keys(seen))
	}

	// Read API.
	resp, err := http.Get(admin + server.PathCredentials + tokenID)
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		Known   bool `json:"known"`
		Profile struct {
			Events uint64            `json:"events"`
			Levels map[string]string `json:"levels"`
		} `json:"profile"`
		Recent []struct {
			Decision string `json:"decision"`
			Reasons  []struct {
				Signal string `json:"signal"`
			} `json:"reasons"`
		} `json:"recent_decisions"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &view); err != nil {
		t.Fatalf("read API: %v: %s", err, body)
	}
	if !view.Known || view.Profile.Events != 54 || view.Profile.Levels["established_context"] != "allow" || view.Profile.Levels["elsewhere"] != "block" {
		t.Errorf("read API: %s", body)
	}
	if len(view.Recent) == 0 || view.Recent[0].Decision != "allow" || view.Recent[1].Decision != "block" {
		t.Errorf("recent decisions: %s", body)
	}
	if r, _ := http.Get(admin + server.PathCredentials + "tk_nobody"); r.StatusCode != 404 {
		t.Errorf("unknown credential: %d", r.StatusCode)
	}

	metrics := get(t, admin+"/metrics")
	for _, want := range []string{`vigil_decisions_total{decision="block",enforced="block"}`, `vigil_active_profiles 1`, "vigil_decision_duration_seconds_count 54"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for what, text := range map[string]string{"logs": logs.String(), "metrics": metrics, "read API": string(body)} {
		if strings.Contains(text, secret) {
			t.Errorf("the raw credential appears in the %s", what)
		}
	}
}

func keys(m map[int]http.Header) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestAdminBind: the admin endpoints bind to loopback unless a token
// protects them, and with a token every admin request needs it.
func TestAdminBind(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig), "t")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Serve.AdminListen = "0.0.0.0:0"
	if _, err := server.New(context.Background(), cfg, testEnv, slog.New(slog.DiscardHandler), server.Options{}); err == nil ||
		!strings.Contains(err.Error(), "serve.admin_listen") {
		t.Fatalf("non-loopback admin without a token: %v", err)
	}
	s, err := server.New(context.Background(), cfg, env(map[string]string{"VIGIL_ADMIN_TOKEN": "adm1n-token"}), slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := s.AdminHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 401 {
		t.Errorf("no token: %d", rec.Code)
	}
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer adm1n-token")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("with the token: %d", rec.Code)
	}
	s.Checker.Close()
}

// TestReport: outcomes posted by a gateway reach the credential's profile;
// bad lines are named by number and do not stop the good ones.
func TestReport(t *testing.T) {
	s, _ := newServer(t, "", server.Options{})
	defer s.Checker.Close()
	h := s.Handler()
	fa := httptest.NewRequest("GET", server.PathForwardAuth, nil)
	fa.RemoteAddr = "127.0.0.1:5555"
	fa.Header.Set("Authorization", "Bearer "+secret)
	fa.Header.Set("X-Forwarded-Method", "GET")
	fa.Header.Set("X-Forwarded-Uri", "/v1/export")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, fa)
	id := rec.Header().Get("X-Vigil-Token-Id")
	body := fmt.Sprintf(`{"token_id":%q,"status":200,"response_bytes":52428800}
not json
{"token_id":%q,"status":99}

{"token_id":%q,"status":403,"response_bytes":10}
`, id, id, id)
	// Reports move a credential's counters: only trusted proxies send them.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", server.PathReport, strings.NewReader(body)))
	if rec.Code != 403 {
		t.Fatalf("report from an untrusted peer: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	post := httptest.NewRequest("POST", server.PathReport, strings.NewReader(body))
	post.RemoteAddr = "127.0.0.1:6000"
	h.ServeHTTP(rec, post)
	var out struct {
		Applied int      `json:"applied"`
		Errors  []string `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err, rec.Body.String())
	}
	if out.Applied != 2 || len(out.Errors) != 2 || !strings.HasPrefix(out.Errors[0], "line 2:") || !strings.HasPrefix(out.Errors[1], "line 3: status") {
		t.Errorf("report: %d %+v", rec.Code, out)
	}
	// The 50 MB response shows in the next decision's volume: one huge
	// response is scored once the baseline has a few sizes, so here we only
	// check that the profile holds it.
	snap, _, ok, _ := s.Checker.Inspect(context.Background(), id, 1)
	if !ok || snap.Events != 1 {
		t.Fatalf("profile: %+v %v", snap, ok)
	}
}

// TestProxy: `vigil proxy` passes allowed requests upstream with x-vigil
// headers (a client's forged ones removed), answers denials itself and
// feeds the upstream's answers back.
func TestProxy(t *testing.T) {
	var got atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Clone())
		w.WriteHeader(200)
		io.WriteString(w, strings.Repeat("x", 1000))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	s, _ := newServer(t, "", server.Options{Upstream: u})
	ls := run(t, s)
	req, _ := http.NewRequest("GET", "http://"+ls.HTTP.String()+"/v1/orders", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("X-Vigil-Decision", "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 1000 {
		t.Fatalf("proxied: %d, %d bytes", resp.StatusCode, len(b))
	}
	h := got.Load().(http.Header)
	if h.Get("X-Vigil-Decision") != "allow" || !strings.HasPrefix(h.Get("X-Vigil-Token-Id"), "tk_") || len(h.Values("X-Vigil-Decision")) != 1 {
		t.Errorf("upstream headers: %v", h)
	}
	if strings.Contains(fmt.Sprint(h), secret) && h.Get("Authorization") == "" {
		t.Errorf("secret leaked upstream in a vigil header")
	}
	// A malformed credential never reaches the upstream.
	got.Store(http.Header{})
	req, _ = http.NewRequest("GET", "http://"+ls.HTTP.String()+"/v1/orders", nil)
	req.Header.Set("Authorization", "Bearer")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || len(got.Load().(http.Header)) != 0 {
		t.Errorf("malformed credential: %d, upstream saw %v", resp.StatusCode, got.Load())
	}
	time.Sleep(0) // the report is synchronous with the response; nothing to wait for
	snap, _, ok, _ := s.Checker.Inspect(context.Background(), h.Get("X-Vigil-Token-Id"), 1)
	if !ok || snap.Events != 1 {
		t.Errorf("profile after one proxied request: %+v", snap)
	}
}

// TestEnvoyHTTPMode: Envoy's ext_authz in HTTP mode sends the original
// method and path under path_prefix, with the original headers; vigil
// answers 200 with its headers for the upstream, or the denial as is.
func TestEnvoyHTTPMode(t *testing.T) {
	s, _ := newServer(t, "", server.Options{})
	defer s.Checker.Close()
	h := s.Handler()
	req := httptest.NewRequest("POST", "/v1/ext-authz/v1/orders/17?expand=1", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("X-Vigil-Decision") != "allow" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	_, recent, _, _ := s.Checker.Inspect(context.Background(), rec.Header().Get("X-Vigil-Token-Id"), 1)
	if len(recent) != 1 || recent[0].Route != "/v1/orders/{id}" || recent[0].Method != "POST" {
		t.Errorf("judged as %+v", recent)
	}
	// Outside the prefix: not an ext_authz request.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/other", nil))
	if rec.Code != 404 {
		t.Errorf("outside the prefix: %d", rec.Code)
	}
}

// TestMalformedRequests: through a running `vigil serve`, malformed
// requests get a clear 4xx or are scored; never a 5xx, never a crash.
func TestMalformedRequests(t *testing.T) {
	s, logs := newServer(t, "", server.Options{})
	ls := run(t, s)
	base := "http://" + ls.HTTP.String()
	for _, c := range []struct {
		name   string
		path   string
		header map[string]string
		want   int
	}{
		{"huge header", server.PathForwardAuth, map[string]string{"X-Filler": strings.Repeat("a", 100<<10)}, 431},
		{"garbage Authorization", server.PathForwardAuth, map[string]string{"Authorization": "Bearer " + secret + " extra words", "X-Forwarded-Uri": "/v1/x", "X-Forwarded-Method": "GET"}, 401},
		{"Basic is a credential", server.PathForwardAuth, map[string]string{"Authorization": "Basic " + secret, "X-Forwarded-Uri": "/v1/x", "X-Forwarded-Method": "GET"}, 200},
		{"an unknown scheme is scored anonymously", server.PathForwardAuth, map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + secret, "X-Forwarded-Uri": "/v1/x", "X-Forwarded-Method": "GET"}, 200},
		{"empty bearer", server.PathForwardAuth, map[string]string{"Authorization": "Bearer ", "X-Forwarded-Uri": "/v1/x", "X-Forwarded-Method": "GET"}, 400},
		{"JWT-shaped garbage is an opaque token", server.PathForwardAuth, map[string]string{"Authorization": "Bearer eyJhbGciOi.e30.sig" + secret, "X-Forwarded-Uri": "/v1/x", "X-Forwarded-Method": "GET"}, 200},
		{"two credentials", server.PathForwardAuth, map[string]string{"Authorization": "Bearer a,Bearer b", "X-Forwarded-Uri": "/v1/x", "X-Forwarded-Method": "GET"}, 401},
		// nginx's auth_request passes only 401 and 403: vigil's nginx dialect
		// answers 403 with the real status in X-Vigil-Status.
		{"nginx without X-Original-URI", server.PathForwardAuthNginx, map[string]string{"Authorization": "Bearer " + secret}, 403},
		{"nginx with a non-URI", server.PathForwardAuthNginx, map[string]string{"Authorization": "Bearer " + secret, "X-Original-URI": "not a uri", "X-Original-Method": "GET"}, 403},
		{"invalid X-Forwarded-For", server.PathForwardAuth, map[string]string{"Authorization": "Bearer " + secret, "X-Forwarded-For": "999.1.1.1, ::zz", "X-Forwarded-Uri": "/v1/x", "X-Forwarded-Method": "GET"}, 200},
	} {
		req, _ := http.NewRequest("GET", base+c.path, nil)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, resp.StatusCode, c.want, b)
		}
		if c.path == server.PathForwardAuthNginx && resp.Header.Get("X-Vigil-Status") != "400" {
			t.Errorf("%s: X-Vigil-Status %q", c.name, resp.Header.Get("X-Vigil-Status"))
		}
		if strings.Contains(string(b), secret) || strings.Contains(fmt.Sprint(resp.Header), secret) {
			t.Errorf("%s: the credential is echoed", c.name)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the credential is in the logs")
	}
}

// TestServeKeepsProfilesAcrossRestarts: with profile.data_dir, a restarted
// vigil serve knows the credentials its predecessor learned.
func TestServeKeepsProfilesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf("profile: {data_dir: %q, sync_every: 100ms}\n", dir)
	var id string
	for round := range 2 {
		cfg, err := config.Parse([]byte(testConfig+yaml), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.New(context.Background(), cfg, testEnv, slog.New(slog.DiscardHandler), server.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan server.Listeners, 1)
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, func(l server.Listeners) { ready <- l }) }()
		ls := <-ready
		for range 10 {
			id = ask(t, "http://"+ls.HTTP.String(), secret, "okhttp/4.12.0", "198.51.100.7", "/v1/orders").Header.Get("X-Vigil-Token-Id")
		}
		snap, _, ok, _ := s.Checker.Inspect(context.Background(), id, 1)
		if want := uint64(10 * (round + 1)); !ok || snap.Events != want {
			t.Fatalf("round %d: %v, %d events, want %d", round, ok, snap.Events, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDataDirNeedsAFingerprintKey(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig+fmt.Sprintf("profile: {data_dir: %q}\n", t.TempDir())), "t")
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, env(nil), slog.New(slog.DiscardHandler), server.Options{})
	if err == nil || !strings.Contains(err.Error(), "VIGIL_FINGERPRINT_KEY") {
		t.Fatalf("%v", err)
	}
}
