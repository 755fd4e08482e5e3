package extauthz

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/gate/gatetest"
	"github.com/vigil-sec/vigil/policy"
)

// seen is what the test Checker received, copied.
type seen struct {
	gate.Request
	Headers map[string]string
}

// tableChecker answers by the request's path, and records every request by
// its RequestID.
type tableChecker struct {
	calls atomic.Int64
	mu    sync.Mutex
	seen  map[string]seen
}

func newTableChecker() *tableChecker { return &tableChecker{seen: map[string]seen{}} }

const problemBody = `{"type":"https://vigil.dev/problems/blocked","title":"Forbidden","status":403}`

// Check adapts decide to gate.Checker.
func (c *tableChecker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	out, err := c.decide(ctx, r)
	return gatetest.Fill(res, out, err)
}

func (c *tableChecker) decide(_ context.Context, r *gate.Request) (*gate.Result, error) {
	c.calls.Add(1)
	if r.Header == nil {
		return nil, errors.New("test: nil Header")
	}
	cp := seen{Request: *r, Headers: map[string]string{}}
	if m, ok := r.Header.(gate.MapHeaders); ok {
		for k, v := range m {
			cp.Headers[k] = v
		}
	}
	c.mu.Lock()
	c.seen[r.RequestID] = cp
	c.mu.Unlock()

	path, _, _ := strings.Cut(r.URI, "?")
	res := &gate.Result{Verdict: gate.Verdict{TokenID: "tk_test", RequestID: r.RequestID}}
	switch path {
	case "/allow":
		res.Response = gate.Response{
			Status: http.StatusOK,
			Upstream: http.Header{
				"X-Vigil-Decision": {"allow"},
				"X-Vigil-Risk":     {"1.5"},
				"X-Vigil-Token-Id": {"tk_test"},
				"X-Vigil-Reason":   {"rate", "new_network"},
			},
			Header: http.Header{"Ratelimit": {`"default";r=99;t=30`}},
		}
	case "/throttle":
		res.Verdict.Level, res.Verdict.Limited = policy.Throttle, true
		res.Response = gate.Response{
			Status: http.StatusTooManyRequests,
			Header: http.Header{"Retry-After": {"7"}, "Content-Type": {"text/plain; charset=utf-8"}},
			Body:   []byte("slow down\n"),
		}
	case "/stepup":
		res.Verdict.Level = policy.StepUp
		res.Response = gate.Response{
			Status: http.StatusUnauthorized,
			Header: http.Header{"Www-Authenticate": {
				`Bearer error="insufficient_user_authentication", error_description="step up"`,
				`DPoP algs="ES256"`,
			}},
		}
	case "/block":
		res.Verdict.Level = policy.Block
		res.Response = gate.Response{
			Status: http.StatusForbidden,
			Header: http.Header{"Content-Type": {"application/problem+json"}},
			Body:   []byte(problemBody),
		}
	case "/invalid":
		res.Verdict.Problem = "invalid_token"
		res.Response = gate.Response{Status: http.StatusBadRequest}
	case "/badheaders":
		res.Response = gate.Response{
			Status: http.StatusOK,
			Upstream: http.Header{
				"X-Vigil-Note":  {"ok", "bad\r\nInjected: 1"},
				"X-Vigil-Order": {"bad\x00", "good"},
				"Bad Name":      {"x"},
				"X-Vigil-Latin": {"caf\xe9"},
			},
		}
	case "/badbody":
		res.Verdict.Problem = "bad\xffproblem"
		res.Response = gate.Response{Status: http.StatusForbidden, Body: []byte("caf\xe9")}
	case "/error":
		return nil, errors.New("engine is shutting down")
	case "/nil":
		return nil, nil
	case "/badstatus":
		res.Response = gate.Response{Status: 101}
	default:
		res.Response = gate.Response{Status: http.StatusOK}
	}
	return res, nil
}

func (c *tableChecker) Report(gate.Ticket, gate.Outcome) {}

func (c *tableChecker) get(t *testing.T, id string) seen {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seen[id]
	if !ok {
		t.Fatalf("the Checker never saw request %q", id)
	}
	return s
}

// testServer is a real gRPC server on a loopback port.
type testServer struct {
	srv     *Server
	checker *tableChecker
	client  authv3.AuthorizationClient
	health  healthpb.HealthClient
}

func startServer(t testing.TB, o Options) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := newTableChecker()
	s := NewServer(c, o)
	g := grpc.NewServer()
	s.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &testServer{srv: s, checker: c, client: authv3.NewAuthorizationClient(conn), health: healthpb.NewHealthClient(conn)}
}

var testTime = time.Date(2026, 3, 4, 1, 56, 55, 350_000_000, time.UTC)

// newRequest returns a CheckRequest as Envoy's HTTP filter sends it.
func newRequest(id, uri string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: socketAddress("203.0.113.9", 53211)},
		Destination: &authv3.AttributeContext_Peer{
			Address: socketAddress("10.0.0.2", 8080),
		},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(testTime),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:     id,
				Method: "GET",
				Path:   uri,
				Host:   "api.example.com",
				Headers: map[string]string{
					":authority":    "api.example.com",
					":method":       "GET",
					":path":         uri,
					"authorization": "Bearer tok-abc-secret",
					"user-agent":    "curl/8.5.0",
					"x-request-id":  id,
				},
				Scheme:   "https",
				Protocol: "HTTP/2",
				Size:     -1,
			},
		},
		ContextExtensions: map[string]string{"vigil_route": "/v1/things/{id}"},
	}}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// hv is one header mutation, as the test reads it.
type hv struct {
	Value  string
	Action corev3.HeaderValueOption_HeaderAppendAction
}

const (
	overwrite = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	appendAdd = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
)

// mutations groups header options by name, keeping their order per name.
func mutations(t *testing.T, opts []*corev3.HeaderValueOption) map[string][]hv {
	t.Helper()
	m := map[string][]hv{}
	for _, o := range opts {
		if o.GetAppend() != nil {
			t.Errorf("header %q sets the deprecated append field", o.GetHeader().GetKey())
		}
		k := o.GetHeader().GetKey()
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lower-case", k)
		}
		if len(o.GetHeader().GetRawValue()) > 0 {
			t.Errorf("header %q uses raw_value, which Envoy ignores", k)
		}
		m[k] = append(m[k], hv{o.GetHeader().GetValue(), o.GetAppendAction()})
	}
	return m
}

func equalMutations(t *testing.T, what string, got, want map[string][]hv) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d header names %v, want %d %v", what, len(got), got, len(want), want)
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: header %q = %v, want %v", what, k, got[k], w)
		}
	}
}

func TestCheckOverGRPC(t *testing.T) {
	ts := startServer(t, Options{})
	tests := []struct {
		name     string
		uri      string
		code     codes.Code
		status   int // HTTP status of a denial
		upstream map[string][]hv
		header   map[string][]hv
		body     string
	}{
		{
			name: "allow", uri: "/allow?page=2&q=a%20b", code: codes.OK,
			upstream: map[string][]hv{
				"x-vigil-decision": {{"allow", overwrite}},
				"x-vigil-risk":     {{"1.5", overwrite}},
				"x-vigil-token-id": {{"tk_test", overwrite}},
				"x-vigil-reason":   {{"rate", overwrite}, {"new_network", appendAdd}},
			},
			header: map[string][]hv{"ratelimit": {{`"default";r=99;t=30`, overwrite}}},
		},
		{
			name: "throttle", uri: "/throttle", code: codes.PermissionDenied, status: 429,
			header: map[string][]hv{
				"retry-after":  {{"7", overwrite}},
				"content-type": {{"text/plain; charset=utf-8", overwrite}},
			},
			body: "slow down\n",
		},
		{
			name: "step up", uri: "/stepup", code: codes.Unauthenticated, status: 401,
			header: map[string][]hv{"www-authenticate": {
				{`Bearer error="insufficient_user_authentication", error_description="step up"`, overwrite},
				{`DPoP algs="ES256"`, appendAdd},
			}},
		},
		{
			name: "block", uri: "/block", code: codes.PermissionDenied, status: 403,
			header: map[string][]hv{"content-type": {{"application/problem+json", overwrite}}},
			body:   problemBody,
		},
		{name: "checker's 400", uri: "/invalid", code: codes.PermissionDenied, status: 400, header: map[string][]hv{}},
		{name: "checker error", uri: "/error", code: codes.Unavailable, status: 503, header: map[string][]hv{}},
		{name: "no result", uri: "/nil", code: codes.Unavailable, status: 503, header: map[string][]hv{}},
		{name: "unusable status", uri: "/badstatus", code: codes.Unavailable, status: 503, header: map[string][]hv{}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "req-" + tt.name
			resp, err := ts.client.Check(context.Background(), newRequest(id, tt.uri))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.code {
				t.Fatalf("gRPC status %v, want %v", got, tt.code)
			}
			if tt.code == codes.OK {
				ok := resp.GetOkResponse()
				if ok == nil || resp.GetDeniedResponse() != nil {
					t.Fatalf("OK status without OkHttpResponse: %v", resp)
				}
				equalMutations(t, "upstream", mutations(t, ok.GetHeaders()), tt.upstream)
				equalMutations(t, "response", mutations(t, ok.GetResponseHeadersToAdd()), tt.header)
				if len(ok.GetHeadersToRemove()) != 0 {
					t.Errorf("headers_to_remove %v, want none", ok.GetHeadersToRemove())
				}
			} else {
				d := resp.GetDeniedResponse()
				if d == nil || resp.GetOkResponse() != nil {
					t.Fatalf("denial without DeniedHttpResponse: %v", resp)
				}
				if got := int(d.GetStatus().GetCode()); got != tt.status {
					t.Errorf("HTTP status %d, want %d", got, tt.status)
				}
				equalMutations(t, "denial", mutations(t, d.GetHeaders()), tt.header)
				if d.GetBody() != tt.body {
					t.Errorf("body %q, want %q", d.GetBody(), tt.body)
				}
			}

			got := ts.checker.get(t, id)
			if got.Method != "GET" || got.URI != tt.uri || got.Host != "api.example.com" {
				t.Errorf("Checker got method %q URI %q host %q", got.Method, got.URI, got.Host)
			}
			if got.ClientIP != netip.MustParseAddr("203.0.113.9") {
				t.Errorf("Checker got client %v, want 203.0.113.9", got.ClientIP)
			}
			if !got.Time.Equal(testTime) {
				t.Errorf("Checker got time %v, want %v", got.Time, testTime)
			}
			if got.Route != "/v1/things/{id}" {
				t.Errorf("Checker got route %q", got.Route)
			}
			if got.RequestID != id {
				t.Errorf("Checker got request id %q", got.RequestID)
			}
			if v := got.Header.Get("Authorization"); v != "Bearer tok-abc-secret" {
				t.Errorf("Checker got Authorization %q", v)
			}
			if v := got.Header.Get("user-agent"); v != "curl/8.5.0" {
				t.Errorf("Checker got User-Agent %q", v)
			}
			if st := ts.srv.Stats(); st.Checks != uint64(i+1) || st.Allowed+st.Denied != st.Checks {
				t.Errorf("stats %+v after %d checks", st, i+1)
			}
		})
	}
	st := ts.srv.Stats()
	want := Stats{Checks: 8, Allowed: 1, Denied: 7, CheckerErrors: 3}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

// TestForgedReservedHeaders: a client cannot pass its own x-vigil-* headers
// upstream, whether vigil sets that header or not.
func TestForgedReservedHeaders(t *testing.T) {
	forge := func(req *authv3.CheckRequest) *authv3.CheckRequest {
		h := req.Attributes.Request.Http.Headers
		h["x-vigil-decision"] = "allow"
		h["x-vigil-shadow"] = "true"
		h["x-vigilant"] = "not reserved"
		return req
	}
	t.Run("allow", func(t *testing.T) {
		ts := startServer(t, Options{})
		resp, err := ts.client.Check(context.Background(), forge(newRequest("r1", "/allow")))
		if err != nil {
			t.Fatal(err)
		}
		ok := resp.GetOkResponse()
		if got := mutations(t, ok.GetHeaders())["x-vigil-decision"]; !slices.Equal(got, []hv{{"allow", overwrite}}) {
			t.Errorf("x-vigil-decision mutations %v", got)
		}
		if got := ok.GetHeadersToRemove(); !slices.Equal(got, []string{"x-vigil-shadow"}) {
			t.Errorf("headers_to_remove %v, want [x-vigil-shadow]", got)
		}
	})
	t.Run("fail open", func(t *testing.T) {
		ts := startServer(t, Options{FailOpen: true})
		resp, err := ts.client.Check(context.Background(), forge(newRequest("r1", "/error")))
		if err != nil {
			t.Fatal(err)
		}
		if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			t.Fatalf("fail open answered %v", resp.GetStatus())
		}
		ok := resp.GetOkResponse()
		got := slices.Sorted(slices.Values(ok.GetHeadersToRemove()))
		if !slices.Equal(got, []string{"x-vigil-decision", "x-vigil-shadow"}) {
			t.Errorf("headers_to_remove %v", got)
		}
		if len(ok.GetHeaders()) != 0 {
			t.Errorf("fail open added headers %v", ok.GetHeaders())
		}
	})
	t.Run("custom prefix", func(t *testing.T) {
		ts := startServer(t, Options{ReservedPrefix: "X-Corp-"})
		req := newRequest("r1", "/allow")
		req.Attributes.Request.Http.Headers["x-corp-user"] = "admin"
		resp, err := ts.client.Check(context.Background(), forge(req))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetOkResponse().GetHeadersToRemove(); !slices.Equal(got, []string{"x-corp-user"}) {
			t.Errorf("headers_to_remove %v, want [x-corp-user]", got)
		}
	})
}

func TestFailOpenAndLogging(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		var buf bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(lockedWriter{&buf, &mu}, nil))
		ts := startServer(t, Options{FailOpen: failOpen, Logger: log})
		for range 3 {
			resp, err := ts.client.Check(context.Background(), newRequest("e", "/error"))
			if err != nil {
				t.Fatal(err)
			}
			code := codes.Code(resp.GetStatus().GetCode())
			if failOpen && (code != codes.OK || resp.GetOkResponse() == nil) {
				t.Errorf("fail open: %v", resp)
			}
			if !failOpen && (code != codes.Unavailable || resp.GetDeniedResponse().GetStatus().GetCode() != 503) {
				t.Errorf("fail closed: %v", resp)
			}
		}
		st := ts.srv.Stats()
		want := Stats{Checks: 3, CheckerErrors: 3}
		if failOpen {
			want.Allowed = 3
		} else {
			want.Denied = 3
		}
		if st != want {
			t.Errorf("fail open %v: stats %+v, want %+v", failOpen, st, want)
		}
		mu.Lock()
		out := buf.String()
		mu.Unlock()
		if n := strings.Count(out, "checker could not decide"); n != 1 {
			t.Errorf("%d warnings in a second, want 1 (rate limited):\n%s", n, out)
		}
		if !strings.Contains(out, "engine is shutting down") {
			t.Errorf("warning does not carry the error:\n%s", out)
		}
		if strings.Contains(out, "tok-abc") {
			t.Errorf("log contains the credential:\n%s", out)
		}
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestInvalidCheckerHeaders: what the Checker sends is made valid for
// Envoy and for protobuf, not passed through.
func TestInvalidCheckerHeaders(t *testing.T) {
	ts := startServer(t, Options{})
	req := newRequest("bad", "/badheaders")
	req.Attributes.Request.Http.Headers["x-vigil-order"] = "forged"
	resp, err := ts.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOkResponse()
	equalMutations(t, "upstream", mutations(t, ok.GetHeaders()), map[string][]hv{
		"x-vigil-note":  {{"ok", overwrite}},
		"x-vigil-order": {{"good", overwrite}},
		"x-vigil-latin": {{"caf!", overwrite}},
	})
	if len(ok.GetHeadersToRemove()) != 0 {
		t.Errorf("headers_to_remove %v", ok.GetHeadersToRemove())
	}
	if st := ts.srv.Stats(); st.InvalidHeaders != 3 {
		t.Errorf("stats %+v, want 3 invalid headers", st)
	}

	resp, err = ts.client.Check(context.Background(), newRequest("badbody", "/badbody"))
	if err != nil {
		t.Fatalf("a body that is not UTF-8: %v", err)
	}
	if b := resp.GetDeniedResponse().GetBody(); b != "caf\uFFFD" {
		t.Errorf("body %q", b)
	}
	if m := resp.GetStatus().GetMessage(); m != "bad\uFFFDproblem" {
		t.Errorf("status message %q", m)
	}
}

func TestMalformed(t *testing.T) {
	ts := startServer(t, Options{})
	reqs := map[string]*authv3.CheckRequest{
		"empty":           {},
		"no request":      {Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Address: socketAddress("192.0.2.1", 1)}}},
		"no http":         {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Time: timestamppb.Now()}}},
		"empty extension": {Attributes: &authv3.AttributeContext{ContextExtensions: map[string]string{"vigil_route": "/x"}}},
	}
	for name, req := range reqs {
		resp, err := ts.client.Check(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if codes.Code(resp.GetStatus().GetCode()) != codes.InvalidArgument || resp.GetDeniedResponse().GetStatus().GetCode() != 400 {
			t.Errorf("%s: answered %v, want INVALID_ARGUMENT and 400", name, resp)
		}
	}
	if n := ts.checker.calls.Load(); n != 0 {
		t.Errorf("the Checker was asked %d times about malformed requests", n)
	}
	if st := ts.srv.Stats(); st != (Stats{Checks: 4, Denied: 4, Malformed: 4}) {
		t.Errorf("stats %+v", st)
	}

	// An HTTP request with nothing in it is the Checker's to judge, with a
	// usable (non-nil) Header.
	bare := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Id: "bare"},
	}}}
	resp, err := ts.client.Check(context.Background(), bare)
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Errorf("bare request: %v", resp)
	}
	got := ts.checker.get(t, "bare")
	if got.Header == nil || got.Header.Get("authorization") != "" || got.ClientIP.IsValid() || got.URI != "" {
		t.Errorf("bare request reached the Checker as %+v", got.Request)
	}
}

func TestHeaderMap(t *testing.T) {
	ts := startServer(t, Options{})
	req := newRequest("hm", "")
	h := req.Attributes.Request.Http
	h.Headers = nil
	h.Method = ""
	h.Host = ""
	h.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":method", RawValue: []byte("POST")},
		{Key: ":path", RawValue: []byte("/allow?x=1")},
		{Key: ":authority", RawValue: []byte("raw.example.com")},
		{Key: "authorization", RawValue: []byte("Bearer raw-token")},
		{Key: "X-Custom", Value: "a"},
		{Key: "x-custom", RawValue: []byte("b")},
		{Key: "x-vigil-risk", RawValue: []byte("0")},
		{Key: "", RawValue: []byte("nameless")},
	}}
	resp, err := ts.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := ts.checker.get(t, "hm")
	if got.Method != "POST" || got.URI != "/allow?x=1" || got.Host != "raw.example.com" {
		t.Errorf("Checker got method %q URI %q host %q", got.Method, got.URI, got.Host)
	}
	if v := got.Header.Get("Authorization"); v != "Bearer raw-token" {
		t.Errorf("Authorization %q", v)
	}
	if v := got.Header.Get("X-Custom"); v != "a,b" {
		t.Errorf("X-Custom %q, want a,b", v)
	}
	if _, ok := got.Headers[""]; ok {
		t.Errorf("nameless header kept")
	}
	// Forged reserved headers are found in header_map too.
	if m := mutations(t, resp.GetOkResponse().GetHeaders()); !slices.Equal(m["x-vigil-risk"], []hv{{"1.5", overwrite}}) {
		t.Errorf("x-vigil-risk %v", m["x-vigil-risk"])
	}

	// When Envoy sends both, the headers map wins.
	req = newRequest("both", "/allow")
	req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "authorization", RawValue: []byte("Bearer other")},
	}}
	if _, err := ts.client.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if v := ts.checker.get(t, "both").Header.Get("authorization"); v != "Bearer tok-abc-secret" {
		t.Errorf("with both, Authorization %q", v)
	}
}

func TestHugeHeader(t *testing.T) {
	ts := startServer(t, Options{})
	big := "Bearer " + strings.Repeat("x", 1<<20)
	req := newRequest("big", "/allow")
	req.Attributes.Request.Http.Headers["authorization"] = big
	req.Attributes.Request.Http.Headers["x-long"] = strings.Repeat("é", 100_000)
	resp, err := ts.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Errorf("answered %v", resp.GetStatus())
	}
	if got := ts.checker.get(t, "big").Header.Get("authorization"); got != big {
		t.Errorf("Authorization of %d bytes arrived as %d bytes", len(big), len(got))
	}

	// Beyond gRPC's default 4 MiB message limit the call fails in gRPC,
	// before the adapter, and the server keeps serving.
	req = newRequest("huge", "/allow")
	req.Attributes.Request.Http.Headers["authorization"] = "Bearer " + strings.Repeat("x", 5<<20)
	_, err = ts.client.Check(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("5 MiB header: err %v, want ResourceExhausted", err)
	}
	if _, err := ts.client.Check(context.Background(), newRequest("after", "/allow")); err != nil {
		t.Errorf("after a too large message: %v", err)
	}
}

func TestSourceAddress(t *testing.T) {
	ts := startServer(t, Options{})
	pipe := &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy/ingress.sock"}}}
	internal := &corev3.Address{Address: &corev3.Address_EnvoyInternalAddress{EnvoyInternalAddress: &corev3.EnvoyInternalAddress{
		AddressNameSpecifier: &corev3.EnvoyInternalAddress_ServerListenerName{ServerListenerName: "inner"},
	}}}
	tests := []struct {
		name string
		addr *corev3.Address
		want string // "" means invalid
	}{
		{"IPv4", socketAddress("198.51.100.23", 443), "198.51.100.23"},
		{"IPv6", socketAddress("2001:db8::42", 443), "2001:db8::42"},
		{"IPv4-mapped IPv6", socketAddress("::ffff:192.0.2.7", 443), "192.0.2.7"},
		{"IPv6 with zone", socketAddress("fe80::1%eth0", 443), "fe80::1"},
		{"hostname", socketAddress("client.example.com", 443), ""},
		{"bracketed", socketAddress("[2001:db8::1]", 443), ""},
		{"pipe", pipe, ""},
		{"envoy internal", internal, ""},
		{"no address", nil, ""},
	}
	for _, tt := range tests {
		req := newRequest(tt.name, "/allow")
		req.Attributes.Source.Address = tt.addr
		resp, err := ts.client.Check(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			t.Errorf("%s: answered %v", tt.name, resp.GetStatus())
		}
		got := ts.checker.get(t, tt.name).ClientIP
		if tt.want == "" {
			if got.IsValid() {
				t.Errorf("%s: client %v, want invalid", tt.name, got)
			}
		} else if got != netip.MustParseAddr(tt.want) {
			t.Errorf("%s: client %v, want %s", tt.name, got, tt.want)
		}
	}
	// No source at all.
	req := newRequest("no source", "/allow")
	req.Attributes.Source = nil
	if _, err := ts.client.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := ts.checker.get(t, "no source").ClientIP; got.IsValid() {
		t.Errorf("no source: client %v", got)
	}
}

func TestRequestTime(t *testing.T) {
	ts := startServer(t, Options{})
	tests := []struct {
		name string
		ts   *timestamppb.Timestamp
		now  bool
	}{
		{"set", timestamppb.New(testTime), false},
		{"unset", nil, true},
		{"zero", &timestamppb.Timestamp{}, true},
		{"invalid nanos", &timestamppb.Timestamp{Seconds: 1e9, Nanos: -1}, true},
		{"beyond year 9999", &timestamppb.Timestamp{Seconds: 1 << 40}, true},
	}
	for _, tt := range tests {
		req := newRequest(tt.name, "/allow")
		req.Attributes.Request.Time = tt.ts
		before := time.Now()
		if _, err := ts.client.Check(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		got := ts.checker.get(t, tt.name).Time
		if tt.now {
			if got.Before(before) || got.After(after) {
				t.Errorf("%s: time %v, want now (%v…%v)", tt.name, got, before, after)
			}
		} else if !got.Equal(testTime) {
			t.Errorf("%s: time %v, want %v", tt.name, got, testTime)
		}
	}
}

func TestHealth(t *testing.T) {
	ts := startServer(t, Options{})
	for _, svc := range []string{"", ServiceName} {
		r, err := ts.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v %v", svc, r, err)
		}
	}
	ts.srv.Drain()
	for _, svc := range []string{"", ServiceName} {
		r, err := ts.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health of %q after Drain: %v %v", svc, r, err)
		}
	}
	// Draining does not stop answering.
	if _, err := ts.client.Check(context.Background(), newRequest("x", "/allow")); err != nil {
		t.Errorf("Check after Drain: %v", err)
	}
}

func TestConcurrentChecks(t *testing.T) {
	ts := startServer(t, Options{})
	paths := []struct {
		uri  string
		code codes.Code
	}{{"/allow", codes.OK}, {"/throttle", codes.PermissionDenied}, {"/stepup", codes.Unauthenticated}, {"/block", codes.PermissionDenied}, {"/error", codes.Unavailable}}
	const workers, per = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				p := paths[(w+i)%len(paths)]
				resp, err := ts.client.Check(context.Background(), newRequest("", p.uri))
				if err != nil {
					errs <- err
					return
				}
				if got := codes.Code(resp.GetStatus().GetCode()); got != p.code {
					errs <- errors.New(p.uri + ": got " + got.String())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := ts.srv.Stats()
	if st.Checks != workers*per || st.Allowed != workers*per/5 || st.CheckerErrors != workers*per/5 || st.Allowed+st.Denied != st.Checks {
		t.Errorf("stats %+v", st)
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, Options{})
	for _, uri := range []string{"/allow", "/allow", "/block", "/error"} {
		if _, err := ts.client.Check(context.Background(), newRequest("", uri)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.client.Check(context.Background(), &authv3.CheckRequest{}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ts.srv)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"vigil_extauthz_decisions_total/allowed":  2,
		"vigil_extauthz_decisions_total/denied":   3,
		"vigil_extauthz_checker_errors_total":     1,
		"vigil_extauthz_malformed_requests_total": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestNameCache(t *testing.T) {
	var c nameCache
	for i := range maxCachedNames + 10 {
		name := "X-Name-" + string(rune('A'+i%26)) + strings.Repeat("Q", i/26)
		if got := c.lower(name); got != strings.ToLower(name) {
			t.Fatalf("lower(%q) = %q", name, got)
		}
		if got := c.lower(name); got != strings.ToLower(name) {
			t.Fatalf("cached lower(%q) = %q", name, got)
		}
	}
	if n := len(*c.m.Load()); n != maxCachedNames {
		t.Errorf("cache holds %d names, want the bound %d", n, maxCachedNames)
	}
	if got := c.lower("already-lower"); got != "already-lower" {
		t.Errorf("lower of a lower-case name: %q", got)
	}
}
