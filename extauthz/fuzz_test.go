package extauthz

import (
	"context"
	"errors"
	"hash/fnv"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/gate/gatetest"
)

// echoChecker answers from a hash of the request, echoing request values
// into the headers and body it returns, so fuzzed bytes reach every part of
// the response.
type echoChecker struct{}

// Check adapts decide to gate.Checker.
func (c echoChecker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	out, err := c.decide(ctx, r)
	return gatetest.Fill(res, out, err)
}

func (echoChecker) decide(_ context.Context, r *gate.Request) (*gate.Result, error) {
	if r.Header == nil {
		return nil, errors.New("nil Header")
	}
	h := fnv.New32a()
	h.Write([]byte(r.URI))
	h.Write([]byte(r.Header.Get("authorization")))
	res := &gate.Result{}
	// Envoy's HeaderValue allows 16 KiB; vigil's headers are far shorter.
	cut := func(s string) string { return s[:min(len(s), 4096)] }
	echo := http.Header{
		"X-Vigil-Host":  {cut(r.Host)},
		"X-Vigil-Auth":  {cut(r.Header.Get("Authorization")), cut(r.Header.Get("x-custom"))},
		cut(r.Method):   {cut(r.URI)},
		cut(r.Route):    {cut(r.RequestID)},
		"X-Vigil-Route": {cut(r.Route)},
	}
	switch v := h.Sum32(); v % 8 {
	case 0:
		return nil, errors.New("cannot decide")
	case 1:
		return nil, nil
	case 2, 3:
		res.Response = gate.Response{Status: 200, Upstream: echo, Header: echo}
	default:
		res.Verdict.Problem = r.Method
		res.Response = gate.Response{Status: int(v % 700), Header: echo, Body: []byte(r.URI)}
	}
	return res, nil
}

func (echoChecker) Report(gate.Ticket, gate.Outcome) {}

func FuzzCheck(f *testing.F) {
	for _, uri := range []string{"/allow?x=1", "/block", "/", ""} {
		req := newRequest("fuzz", uri)
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		req.Attributes.Request.Http.Headers = nil
		req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "Authorization", RawValue: []byte("Bearer \xff\xfe")},
			{Key: "x-vigil-risk", RawValue: []byte("0")},
			{Key: "x-custom", Value: "a\r\nb"},
		}}
		req.Attributes.Source.Address = socketAddress("::ffff:10.1.2.3%eth0", 1)
		if b, err = proto.Marshal(req); err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})

	servers := [2]*Server{
		NewServer(echoChecker{}, Options{}),
		NewServer(echoChecker{}, Options{FailOpen: true}),
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req authv3.CheckRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		s := servers[len(b)%2]
		resp, err := s.Check(context.Background(), &req)
		if err != nil {
			t.Fatalf("Check returned an error: %v", err)
		}
		checkResponse(t, s, &req, resp)
	})
}

// checkResponse asserts what every CheckResponse must satisfy.
func checkResponse(t *testing.T, s *Server, req *authv3.CheckRequest, resp *authv3.CheckResponse) {
	t.Helper()
	if resp.GetStatus() == nil {
		t.Fatal("no status")
	}
	if _, err := proto.Marshal(resp); err != nil {
		t.Fatalf("the response does not marshal: %v", err)
	}
	// The protos' own validation rules hold, except that the HTTP status is
	// passed through even when Envoy's StatusCode enum does not name it (proto3
	// enums are open; Envoy sends the number as it is).
	v := proto.Clone(resp).(*authv3.CheckResponse)
	if st := v.GetDeniedResponse().GetStatus(); st != nil {
		if _, named := typev3.StatusCode_name[int32(st.Code)]; !named {
			st.Code = typev3.StatusCode_Forbidden
		}
	}
	if err := v.ValidateAll(); err != nil {
		t.Fatalf("the response does not validate: %v", err)
	}
	code := codes.Code(resp.GetStatus().GetCode())
	if code == codes.OK {
		ok := resp.GetOkResponse()
		if ok == nil || resp.GetDeniedResponse() != nil {
			t.Fatalf("OK without OkHttpResponse: %v", resp)
		}
		checkHeaders(t, ok.GetHeaders())
		checkHeaders(t, ok.GetResponseHeadersToAdd())
		set := map[string]bool{}
		for _, o := range ok.GetHeaders() {
			set[o.GetHeader().GetKey()] = true
		}
		for _, k := range ok.GetHeadersToRemove() {
			if !strings.HasPrefix(strings.ToLower(k), s.prefix) || set[k] {
				t.Errorf("removes %q", k)
			}
		}
		// No reserved header of the request survives unless overwritten.
		h := req.GetAttributes().GetRequest().GetHttp()
		if len(h.GetHeaders()) > 0 {
			for k := range h.GetHeaders() {
				if strings.HasPrefix(strings.ToLower(k), s.prefix) && !set[k] && !containsString(ok.GetHeadersToRemove(), k) {
					t.Errorf("forged %q passes upstream", k)
				}
			}
		}
		return
	}
	d := resp.GetDeniedResponse()
	if d == nil || resp.GetOkResponse() != nil {
		t.Fatalf("denial without DeniedHttpResponse: %v", resp)
	}
	if c := d.GetStatus().GetCode(); c < 300 || c > 599 {
		t.Errorf("denial with HTTP status %d", c)
	}
	checkHeaders(t, d.GetHeaders())
}

func checkHeaders(t *testing.T, opts []*corev3.HeaderValueOption) {
	t.Helper()
	for _, o := range opts {
		k, v := o.GetHeader().GetKey(), o.GetHeader().GetValue()
		if k == "" || k != strings.ToLower(k) || strings.ContainsAny(k, ": \r\n") || strings.ContainsAny(v, "\r\n\x00") {
			t.Errorf("header %q: %q", k, v)
		}
		if a := o.GetAppendAction(); a != overwrite && a != appendAdd {
			t.Errorf("header %q: action %v", k, a)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRequestInvariants checks the translated gate.Request of fuzz-like
// inputs: the client address is never 4-in-6 nor zoned, Header is never nil.
func TestRequestInvariants(t *testing.T) {
	s := NewServer(echoChecker{}, Options{})
	for _, addr := range []string{"::ffff:1.2.3.4", "fe80::1%25eth0", "fe80::1%eth0", "1.2.3.4", "", "::"} {
		req := newRequest("x", "/")
		req.Attributes.Source.Address = socketAddress(addr, 0)
		var r gate.Request
		s.request(req.Attributes, req.Attributes.Request.Http, &r)
		if r.ClientIP.Is4In6() || r.ClientIP.Zone() != "" || r.Header == nil {
			t.Errorf("%q: %+v", addr, r)
		}
	}
}
