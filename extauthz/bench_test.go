package extauthz

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/gate/gatetest"
)

// fixedChecker returns the same Result to every request: the adapter's cost
// alone.
type fixedChecker struct{ res *gate.Result }

// Check adapts decide to gate.Checker.
func (c fixedChecker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	out, err := c.decide(ctx, r)
	return gatetest.Fill(res, out, err)
}

func (c fixedChecker) decide(context.Context, *gate.Request) (*gate.Result, error) { return c.res, nil }
func (fixedChecker) Report(gate.Ticket, gate.Outcome)                              {}

var (
	benchAllow = &gate.Result{Response: gate.Response{
		Status: http.StatusOK,
		Upstream: http.Header{
			"X-Vigil-Decision": {"allow"},
			"X-Vigil-Risk":     {"0.75"},
			"X-Vigil-Token-Id": {"tk_47ea362748d103150f3ce2c99c79a105"},
		},
	}}
	benchDeny = &gate.Result{Response: gate.Response{
		Status: http.StatusTooManyRequests,
		Header: http.Header{
			"Retry-After":  {"12"},
			"Content-Type": {"application/problem+json"},
		},
		Body: []byte(`{"type":"about:blank","title":"Too Many Requests","status":429}`),
	}}
)

// envoyRequest is a CheckRequest shaped like Envoy's for an API call.
func envoyRequest() *authv3.CheckRequest {
	req := newRequest("6f1c0e2a-4b7d-4e0b-9a8e-2f3c1d5b7a90", "/v1/customers/48213/orders?page=3&limit=50")
	h := req.Attributes.Request.Http
	for k, v := range map[string]string{
		"accept":            "application/json",
		"accept-encoding":   "gzip, br",
		"authorization":     "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJjbGllbnQtNDIiLCJzY29wZSI6InJlYWQifQ.c2lnbmF0dXJl",
		"content-type":      "application/json",
		"user-agent":        "acme-sdk/4.2.1 (python 3.12)",
		"x-envoy-internal":  "true",
		"x-forwarded-for":   "203.0.113.9",
		"x-forwarded-proto": "https",
		":scheme":           "https",
	} {
		h.Headers[k] = v
	}
	return req
}

func BenchmarkCheck(b *testing.B) {
	headerMapReq := envoyRequest()
	hm := &corev3.HeaderMap{}
	for k, v := range headerMapReq.Attributes.Request.Http.Headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	headerMapReq.Attributes.Request.Http.Headers = nil
	headerMapReq.Attributes.Request.Http.HeaderMap = hm

	cases := []struct {
		name string
		res  *gate.Result
		req  *authv3.CheckRequest
		want codes.Code
	}{
		{"allow", benchAllow, envoyRequest(), codes.OK},
		{"deny", benchDeny, envoyRequest(), codes.PermissionDenied},
		{"allow/header_map", benchAllow, headerMapReq, codes.OK},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := NewServer(fixedChecker{c.res}, Options{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, _ := s.Check(ctx, c.req)
				if codes.Code(resp.Status.Code) != c.want {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}

// BenchmarkCheckGRPC measures a Check call over loopback gRPC, client and
// server in this process, with b.RunParallel's goroutines over conns
// connections.
func BenchmarkCheckGRPC(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run("conns="+strconv.Itoa(conns), func(b *testing.B) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			s := NewServer(fixedChecker{benchAllow}, Options{})
			g := grpc.NewServer()
			s.Register(g)
			go func() { _ = g.Serve(lis) }()
			defer g.Stop()
			clients := make([]authv3.AuthorizationClient, conns)
			for i := range clients {
				conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				clients[i] = authv3.NewAuthorizationClient(conn)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := clients[int(next.Add(1))%conns]
				req := envoyRequest()
				ctx := context.Background()
				for pb.Next() {
					resp, err := c.Check(ctx, req)
					if err != nil || resp.GetStatus().GetCode() != 0 {
						b.Error(resp, err)
						return
					}
				}
			})
		})
	}
}
