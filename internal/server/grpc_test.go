package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigil-sec/vigil/internal/server"
)

// TestGRPCExtAuthz: Envoy's ext_authz over gRPC, with a client built on the
// Envoy protos, against vigil's real engine: the owner is allowed with
// x-vigil headers for the upstream; the same token from another address
// and client is throttled, stepped up and blocked with the HTTP answers
// Envoy passes to the client.
func TestGRPCExtAuthz(t *testing.T) {
	s, _ := newServer(t, "", server.Options{})
	ls := run(t, s)
	conn, err := grpc.NewClient(ls.GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	if h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	check := func(ip, ua, path string) *authv3.CheckResponse {
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: path, Host: "api.example.com",
				Headers: map[string]string{"authorization": "Bearer " + secret, "user-agent": ua, "x-vigil-risk": "0"},
			}},
		}}
		resp, err := client.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range 25 {
		r := check("198.51.100.7", "okhttp/4.12.0", "/v1/orders")
		if codes.Code(r.Status.Code) != codes.OK {
			t.Fatalf("owner request %d: %v", i, r)
		}
		if i == 24 {
			ok := r.GetOkResponse()
			var names []string
			for _, h := range ok.GetHeaders() {
				names = append(names, strings.ToLower(h.Header.Key)+"="+h.Header.Value)
			}
			joined := strings.Join(names, " ")
			if !strings.Contains(joined, "x-vigil-decision=allow") || !strings.Contains(joined, "x-vigil-token-id=tk_") ||
				!strings.Contains(strings.Join(ok.GetHeadersToRemove(), " "), "x-vigil-risk") && !strings.Contains(joined, "x-vigil-risk=0.00") {
				t.Errorf("allow headers: %s, remove %v", joined, ok.GetHeadersToRemove())
			}
		}
	}
	seen := map[int32]string{}
	for i := range 12 {
		r := check("203.0.113.66", "curl/8.5.0", fmt.Sprintf("/v1/admin/area-%c", 'a'+i))
		if d := r.GetDeniedResponse(); d != nil {
			if _, ok := seen[int32(d.Status.Code)]; !ok {
				var hs []string
				for _, h := range d.Headers {
					hs = append(hs, h.Header.Key+": "+h.Header.Value)
				}
				seen[int32(d.Status.Code)] = strings.Join(hs, "\n")
			}
		}
	}
	if h, ok := seen[429]; !ok || !strings.Contains(strings.ToLower(h), "retry-after") {
		t.Errorf("throttle: %v", seen)
	}
	if h, ok := seen[401]; !ok || !strings.Contains(h, "insufficient_user_authentication") {
		t.Errorf("step-up: %v", seen)
	}
	if _, ok := seen[403]; !ok {
		t.Errorf("block: %v", seen)
	}
}
