package forwardauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/binding/bindingtest"
	"github.com/vigil-sec/vigil/forwardauth"
	"github.com/vigil-sec/vigil/policy"
)

// TestClientCert: the client certificate header is read in the configured
// format from trusted gateways only; from anyone else it is ignored and
// counted, and a malformed one is counted and passed on as no certificate.
func TestClientCert(t *testing.T) {
	ca := bindingtest.NewCA(t)
	c := ca.Client(t, "svc-billing")
	envoy := forwardauth.Options{Gateway: forwardauth.Envoy, PathPrefix: "/authz", CertHeader: "x-forwarded-client-cert", CertFormat: binding.CertXFCC}
	nginx := forwardauth.Options{Gateway: forwardauth.Nginx, CertHeader: "X-SSL-Client-Cert", CertFormat: binding.CertEscapedPEM}
	traefik := forwardauth.Options{CertHeader: "X-Forwarded-Tls-Client-Cert", CertFormat: binding.CertTraefik}
	original := map[forwardauth.Gateway]map[string]string{
		forwardauth.Envoy:     {},
		forwardauth.Nginx:     {"X-Original-Method": "GET", "X-Original-Uri": "/v1/orders"},
		forwardauth.Forwarded: {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/v1/orders"},
	}
	for _, tc := range []struct {
		name     string
		o        forwardauth.Options
		remote   string
		header   string
		values   []string
		want     string
		ignored  uint64
		bad      uint64
		noHeader bool
	}{
		{name: "envoy xfcc", o: envoy, remote: gateway, header: "X-Forwarded-Client-Cert", values: []string{c.XFCC()}, want: c.Thumbprint()},
		{name: "envoy xfcc over two lines: the last element", o: envoy, remote: gateway, header: "X-Forwarded-Client-Cert",
			values: []string{ca.Client(t, "other").XFCC(), c.XFCC()}, want: c.Thumbprint()},
		{name: "nginx escaped pem", o: nginx, remote: gateway, header: "X-Ssl-Client-Cert", values: []string{c.EscapedPEM()}, want: c.Thumbprint()},
		{name: "traefik", o: traefik, remote: gateway, header: "X-Forwarded-Tls-Client-Cert", values: []string{c.Traefik()}, want: c.Thumbprint()},
		{name: "untrusted peer", o: traefik, remote: outside, header: "X-Forwarded-Tls-Client-Cert", values: []string{c.Traefik()}, ignored: 1},
		{name: "malformed", o: nginx, remote: gateway, header: "X-Ssl-Client-Cert", values: []string{"not-a-certificate"}, bad: 1},
		{name: "two lines of pem", o: nginx, remote: gateway, header: "X-Ssl-Client-Cert", values: []string{c.EscapedPEM(), c.EscapedPEM()}, bad: 1},
		{name: "not configured", o: forwardauth.Options{}, remote: gateway, header: "X-Forwarded-Tls-Client-Cert", values: []string{c.Traefik()}},
		{name: "none sent", o: traefik, remote: gateway, noHeader: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chk := &fixedChecker{res: allowResult()}
			h, err := forwardauth.New(chk, tc.o, nil)
			if err != nil {
				t.Fatal(err)
			}
			target := "/auth"
			if tc.o.Gateway == forwardauth.Envoy {
				target = "/authz/v1/orders"
			}
			r := httptest.NewRequest("GET", target, nil)
			r.RemoteAddr = tc.remote
			for k, v := range original[tc.o.Gateway] {
				r.Header.Set(k, v)
			}
			if !tc.noHeader {
				r.Header[tc.header] = tc.values
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 || chk.got == nil {
				t.Fatalf("status %d", w.Code)
			}
			if chk.got.ClientCert != tc.want {
				t.Errorf("ClientCert %q, want %q", chk.got.ClientCert, tc.want)
			}
			st := h.Stats()
			if st.ForwardingIgnored != tc.ignored || st.CertMalformed != tc.bad {
				t.Errorf("stats %+v, want %d ignored and %d malformed", st, tc.ignored, tc.bad)
			}
		})
	}
	_, err := forwardauth.New(&fixedChecker{}, forwardauth.Options{CertHeader: "X Cert"}, nil)
	if err == nil || !strings.Contains(err.Error(), "not a header name") {
		t.Errorf("a header name with a space: %v", err)
	}
	_, err = forwardauth.New(&fixedChecker{}, forwardauth.Options{CertHeader: "X-Cert", CertFormat: 7}, nil)
	if err == nil {
		t.Error("an unknown certificate format accepted")
	}
}

// TestDPoPNonceHeader: a DPoP denial's DPoP-Nonce (RFC 9449 §8) reaches
// the gateway with the 401 in every dialect.
func TestDPoPNonceHeader(t *testing.T) {
	const nonce = "AAAAAAAcnVI6ZsXg2V1yZx0nKkTHGmr3"
	for _, o := range []forwardauth.Options{{}, {Gateway: forwardauth.Nginx}, {Gateway: forwardauth.Envoy}} {
		res := denyResult(http.StatusUnauthorized, policy.StepUp, http.Header{
			"Www-Authenticate": {`DPoP error="use_dpop_nonce"`}, "Dpop-Nonce": {nonce}})
		h, err := forwardauth.New(&fixedChecker{res: res}, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/auth", nil)
		r.RemoteAddr = gateway
		r.Header.Set("X-Forwarded-Method", "GET")
		r.Header.Set("X-Forwarded-Uri", "/v1/orders")
		r.Header.Set("X-Original-Method", "GET")
		r.Header.Set("X-Original-Uri", "/v1/orders")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 401 || w.Header().Get("DPoP-Nonce") != nonce || !strings.Contains(w.Header().Get("WWW-Authenticate"), "use_dpop_nonce") {
			t.Errorf("%v: %d %q", o.Gateway, w.Code, w.Header())
		}
	}
}
