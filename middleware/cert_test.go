package middleware_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/binding/bindingtest"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/middleware"
)

// certRecorder keeps the client certificates the Checker was told of.
type certRecorder struct {
	fixed
	mu   sync.Mutex
	seen []string
}

func (r *certRecorder) Check(ctx context.Context, req *gate.Request, res *gate.Result) error {
	r.mu.Lock()
	r.seen = append(r.seen, req.ClientCert)
	r.mu.Unlock()
	return r.fixed.Check(ctx, req, res)
}

// TestMiddlewareClientCert: the certificate of the TLS connection is the
// client's, over a real mutual-TLS handshake; without one, a trusted
// proxy's certificate header is read, anyone else's ignored.
func TestMiddlewareClientCert(t *testing.T) {
	ca := bindingtest.NewCA(t)
	c, other := ca.Client(t, "svc-billing"), ca.Client(t, "svc-other")
	rec := &certRecorder{fixed: fixed{res: gate.Result{Response: gate.Response{Status: 200}}}}
	h := middleware.New(rec, middleware.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		CertHeader: "X-Forwarded-Tls-Client-Cert", CertFormat: binding.CertTraefik})(http.NotFoundHandler())

	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	for _, cert := range []*bindingtest.Cert{c, nil} {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS}
		}
		req, _ := http.NewRequest("GET", srv.URL+"/v1/orders", nil)
		// A header from a peer that is not a trusted proxy: ignored.
		req.Header.Set("X-Forwarded-Tls-Client-Cert", other.Traefik())
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
	for _, peer := range []string{"10.1.2.3:4000", "203.0.113.9:4000"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-Tls-Client-Cert", other.Traefik())
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// The connection's certificate wins over a trusted proxy's header.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:4000"
	r.Header.Set("X-Forwarded-Tls-Client-Cert", other.Traefik())
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Cert}}
	h.ServeHTTP(httptest.NewRecorder(), r)

	want := []string{c.Thumbprint(), "", other.Thumbprint(), "", c.Thumbprint()}
	if len(rec.seen) != len(want) {
		t.Fatalf("seen %q, want %q", rec.seen, want)
	}
	for i := range want {
		if rec.seen[i] != want[i] {
			t.Errorf("request %d: ClientCert %q, want %q", i, rec.seen[i], want[i])
		}
	}
}
