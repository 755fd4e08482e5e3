package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigil-sec/vigil/binding/bindingtest"
	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/server"
)

// boundToken is an access token as an authorization server issues it
// bound to a client certificate (cnf x5t#S256, RFC 8705 §3.1); vigil reads
// its claims, the API verifies its signature.
func boundToken(sub, x5t string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": sub, "client_id": "billing", "cnf": map[string]any{"x5t#S256": x5t}})
	return enc([]byte(`{"alg":"ES256","typ":"at+jwt"}`)) + "." + enc(claims) + "." + enc([]byte("signature-bytes-not-checked-here"))
}

const mtlsXFCC = "credentials: {mtls: {verify: true, cert_header: x-forwarded-client-cert, cert_header_format: xfcc}}\n"

// TestMTLSForwardAuth: with credentials.mtls.verify, a certificate-bound
// token passes Envoy's ext_authz HTTP mode with the certificate in
// x-forwarded-client-cert, and is refused 401 invalid_token with another
// certificate, none, or an XFCC from a peer that is not a trusted proxy.
func TestMTLSForwardAuth(t *testing.T) {
	ca := bindingtest.NewCA(t)
	c, thief := ca.Client(t, "svc-billing"), ca.Client(t, "svc-thief")
	token := boundToken("svc-billing", c.Thumbprint())
	s, logs := newServer(t, mtlsXFCC, server.Options{})
	t.Cleanup(func() { s.Checker.Close() })
	ask := func(peer, xfcc, tok string) (int, string) {
		req := httptest.NewRequest("GET", "/v1/ext-authz/v1/invoices?page=2", nil)
		req.RemoteAddr = peer
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		if xfcc != "" {
			req.Header.Set("X-Forwarded-Client-Cert", xfcc)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("WWW-Authenticate")
	}
	const envoy, outsider = "127.0.0.1:40000", "203.0.113.5:40000"
	if code, www := ask(envoy, c.XFCC(), token); code != 200 {
		t.Fatalf("the bound certificate: %d %s", code, www)
	}
	for _, tc := range []struct {
		name, peer, xfcc string
	}{
		{"another certificate", envoy, thief.XFCC()},
		{"no certificate", envoy, ""},
		{"the certificate, from a peer that is not a trusted proxy", outsider, c.XFCC()},
		{"the certificate in an earlier hop only", envoy, c.XFCC() + "," + thief.XFCC()},
		{"a malformed certificate header", envoy, "Hash=zz"},
	} {
		code, www := ask(tc.peer, tc.xfcc, token)
		if code != 401 || !strings.Contains(www, `error="invalid_token"`) {
			t.Errorf("%s: %d %q, want 401 invalid_token", tc.name, code, www)
		}
	}
	if code, _ := ask(envoy, "", secret); code != 200 {
		t.Errorf("an unbound token without a certificate: %d", code)
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), c.PEM()[30:90]) {
		t.Error("the logs hold the token or the certificate")
	}

	// Without verify, the binding is not checked.
	off, _ := newServer(t, "", server.Options{})
	t.Cleanup(func() { off.Checker.Close() })
	req := httptest.NewRequest("GET", "/v1/ext-authz/v1/invoices", nil)
	req.RemoteAddr = envoy
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	off.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("verify off: %d", rec.Code)
	}
}

// TestMTLSForwardAuthNginx: nginx passes $ssl_client_escaped_cert in a
// header of the operator's choosing.
func TestMTLSForwardAuthNginx(t *testing.T) {
	c := bindingtest.NewCA(t).Client(t, "svc-billing")
	s, _ := newServer(t, "credentials: {mtls: {verify: true, cert_header: X-SSL-Client-Cert, cert_header_format: escaped_pem}}\n", server.Options{})
	t.Cleanup(func() { s.Checker.Close() })
	for _, tc := range []struct {
		cert string
		want int
	}{{c.EscapedPEM(), 200}, {"", 401}} {
		req := httptest.NewRequest("GET", server.PathForwardAuthNginx, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("Authorization", "Bearer "+boundToken("svc-billing", c.Thumbprint()))
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Original-Uri", "/v1/invoices")
		req.Header.Set("X-Real-Ip", "198.51.100.7")
		if tc.cert != "" {
			req.Header.Set("X-Ssl-Client-Cert", tc.cert)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("certificate %t: %d, want %d", tc.cert != "", rec.Code, tc.want)
		}
	}
}

// TestMTLSProxy: `vigil proxy` behind a real mutual-TLS handshake (the
// test server asks for a client certificate, as Go's TLS would in front
// of the proxy handler): the bound certificate reaches the upstream, any
// other certificate or none is refused 401 invalid_token.
func TestMTLSProxy(t *testing.T) {
	ca := bindingtest.NewCA(t)
	c, thief := ca.Client(t, "svc-billing"), ca.Client(t, "svc-thief")
	token := boundToken("svc-billing", c.Thumbprint())
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "invoice 17")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	s, _ := newServer(t, "credentials: {mtls: {verify: true}}\n", server.Options{Upstream: u})
	t.Cleanup(func() { s.Checker.Close() })
	front := httptest.NewUnstartedServer(s.Handler())
	front.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	front.StartTLS()
	defer front.Close()

	get := func(cert *bindingtest.Cert) (int, string) {
		tr := front.Client().Transport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS}
		}
		req, _ := http.NewRequest("GET", front.URL+"/v1/invoices/17", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	if code, www := get(c); code != 200 || hits.Load() != 1 {
		t.Fatalf("the bound certificate: %d %s, upstream hit %d times", code, www, hits.Load())
	}
	for name, cert := range map[string]*bindingtest.Cert{"another certificate": thief, "no certificate": nil} {
		if code, www := get(cert); code != 401 || !strings.Contains(www, `error="invalid_token"`) {
			t.Errorf("%s: %d %q", name, code, www)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("refused requests reached the upstream: %d hits", hits.Load())
	}
}

// TestMTLSGRPCExtAuthz: Envoy's gRPC ext_authz with include_peer_certificate
// sends the client certificate in attributes.source.certificate.
func TestMTLSGRPCExtAuthz(t *testing.T) {
	ca := bindingtest.NewCA(t)
	c, thief := ca.Client(t, "svc-billing"), ca.Client(t, "svc-thief")
	s, _ := newServer(t, "credentials: {mtls: {verify: true}}\n", server.Options{})
	ls := run(t, s)
	conn, err := grpc.NewClient(ls.GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func(cert string) *authv3.CheckResponse {
		resp, err := client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Certificate: cert, Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "198.51.100.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/v1/invoices", Host: "api.example.com", Scheme: "https",
				Headers: map[string]string{"authorization": "Bearer " + boundToken("svc-billing", c.Thumbprint())},
			}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := check(c.EscapedPEM()); codes.Code(r.Status.Code) != codes.OK {
		t.Fatalf("the bound certificate: %v", r)
	}
	for name, cert := range map[string]string{"another certificate": thief.EscapedPEM(), "none": ""} {
		r := check(cert)
		d := r.GetDeniedResponse()
		if codes.Code(r.Status.Code) != codes.Unauthenticated || d.GetStatus().GetCode() != 401 || r.Status.Message != "invalid_token" {
			t.Errorf("%s: %v", name, r)
		}
	}
}

// nonceEnv is the test environment with a DPoP nonce key.
var nonceEnv = env(map[string]string{"VIGIL_FINGERPRINT_KEY": "0123456789abcdef0123456789abcdef",
	"VIGIL_DPOP_NONCE_KEY": "nonce-key-shared-by-replicas-0123"})

const nonceConfig = "credentials: {dpop: {verify: true, nonce: {required: true, period: 1m}}}\n"

func newNonceServer(t *testing.T, o server.Options) *server.Server {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig+nonceConfig), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(context.Background(), cfg, nonceEnv, slog.New(slog.DiscardHandler), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Checker.Close() })
	return s
}

// TestDPoPNonceForwardAuth: with credentials.dpop.nonce.required, a first
// proof without a nonce is answered 401 use_dpop_nonce with the nonce in
// DPoP-Nonce (RFC 9449 §8, §9); the retry with it passes, on another
// replica with the same key as well.
func TestDPoPNonceForwardAuth(t *testing.T) {
	a, b := newNonceServer(t, server.Options{}), newNonceServer(t, server.Options{})
	c := newDPoPClient(t)
	htu := "https://api.example.com/v1/messages"
	ask := func(s *server.Server, proof string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", server.PathForwardAuth, nil)
		req.RemoteAddr = "127.0.0.1:5555"
		req.Header.Set("Authorization", "DPoP "+c.token)
		req.Header.Set("DPoP", proof)
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "api.example.com")
		req.Header.Set("X-Forwarded-Uri", "/v1/messages")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	rec := ask(a, c.proof(t, "GET", htu, "n1", time.Now()))
	nonce := rec.Header().Get("DPoP-Nonce")
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `DPoP error="use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("without a nonce: %d %q", rec.Code, rec.Header())
	}
	if rec := ask(a, c.proofWithNonce(t, "GET", htu, "n2", time.Now(), nonce)); rec.Code != 200 {
		t.Fatalf("the retry with the nonce: %d %q", rec.Code, rec.Header())
	}
	if rec := ask(b, c.proofWithNonce(t, "GET", htu, "n3", time.Now(), nonce)); rec.Code != 200 {
		t.Fatalf("another replica, the same nonce: %d %q", rec.Code, rec.Header())
	}
	rec = ask(a, c.proofWithNonce(t, "GET", htu, "n4", time.Now(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	if rec.Code != 401 || rec.Header().Get("DPoP-Nonce") != nonce {
		t.Errorf("a forged nonce: %d %q", rec.Code, rec.Header())
	}
	// Another proof failure tells the nonce too, saving a round trip.
	rec = ask(a, c.proofWithNonce(t, "GET", "https://api.example.com/v1/admin", "n5", time.Now(), nonce))
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_dpop_proof") || rec.Header().Get("DPoP-Nonce") != nonce {
		t.Errorf("a proof for another URL: %d %q", rec.Code, rec.Header())
	}
}

// TestDPoPNonceProxy: the same through `vigil proxy`.
func TestDPoPNonceProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	s := newNonceServer(t, server.Options{Upstream: u})
	ls := run(t, s)
	c := newDPoPClient(t)
	base := "http://" + ls.HTTP.String()
	get := func(proof string) *http.Response {
		req, _ := http.NewRequest("GET", base+"/v1/messages", nil)
		req.Header.Set("Authorization", "DPoP "+c.token)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	htu := base + "/v1/messages"
	resp := get(c.proof(t, "GET", htu, "p1", time.Now()))
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != 401 || nonce == "" || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "use_dpop_nonce") {
		t.Fatalf("without a nonce: %d %q", resp.StatusCode, resp.Header)
	}
	if resp := get(c.proofWithNonce(t, "GET", htu, "p2", time.Now(), nonce)); resp.StatusCode != 200 {
		t.Fatalf("with the nonce: %d %q", resp.StatusCode, resp.Header)
	}
}

// TestDPoPNonceNeedsAKey: required nonces without their key stop the
// start, naming the variable and never a key.
func TestDPoPNonceNeedsAKey(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig+nonceConfig), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]func(string) (string, bool){
		"missing": testEnv,
		"short": env(map[string]string{"VIGIL_FINGERPRINT_KEY": "0123456789abcdef0123456789abcdef",
			"VIGIL_DPOP_NONCE_KEY": "short-nonce-k"}),
	} {
		_, err := server.New(context.Background(), cfg, e, slog.New(slog.DiscardHandler), server.Options{})
		if err == nil || !strings.Contains(err.Error(), "VIGIL_DPOP_NONCE_KEY") || strings.Contains(err.Error(), "short-nonce-k") {
			t.Errorf("%s key: %v", name, err)
		}
	}
}
