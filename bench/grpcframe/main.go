// Command grpcframe writes one Envoy ext_authz CheckRequest as a gRPC
// length-prefixed message, for load generators that speak HTTP/2 but not
// gRPC (h2load: bench/inline.sh). The request carries a bearer token, a
// user agent and a client address like the ones Envoy sends.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
)

func main() {
	out := flag.String("o", "checkrequest.bin", "write the framed message to `FILE`")
	token := flag.String("token", "bench-token-000001-7f3a9c", "the bearer token")
	flag.Parse()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "198.51.100.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "bench", Method: "GET", Path: "/v1/orders/17", Host: "api.example.com", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				":authority": "api.example.com", ":method": "GET", ":path": "/v1/orders/17",
				"authorization": "Bearer " + *token, "user-agent": "bench-client/1.0", "accept": "application/json",
				"x-request-id": "0b9f1c2e-5d1a-4c1e-9a43-3f1c2d7e8a90", "x-forwarded-proto": "https",
			},
		}},
	}}
	b, err := proto.Marshal(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	frame := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(b)))
	copy(frame[5:], b)
	if err := os.WriteFile(*out, frame, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
