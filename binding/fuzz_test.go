package binding_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/binding/bindingtest"
)

// FuzzVerify: any DPoP header value is refused with an RFC 9449 error
// (or accepted as a valid proof), never a panic.
func FuzzVerify(f *testing.F) {
	s := newSigner(&testing.T{}, "ES256")
	f.Add(s.proof(&testing.T{}, claimsFor(token, "seed"), nil))
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA")
	f.Add("...")
	f.Add("")
	v, err := binding.NewVerifier(binding.DPoPOptions{Replay: &binding.MemoryReplay{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		_, err := v.Verify(proof, binding.Request{Method: "GET", URL: "https://api.example.com/v1/orders", AccessToken: []byte(token)})
		var e *binding.Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("not an RFC 9449 error: %v", err)
		}
	})
}

// checkThumbprint holds a certificate parser's answer to its contract: a
// 43-character base64url thumbprint, or a malformed-certificate error that
// does not quote the value.
func checkThumbprint(t *testing.T, v, tp string, err error) {
	t.Helper()
	if err != nil {
		if tp != "" || !errors.Is(err, binding.ErrMalformedCert) {
			t.Fatalf("%q, %v: want no thumbprint and ErrMalformedCert", tp, err)
		}
		if len(v) > 16 && strings.Contains(err.Error(), v) {
			t.Fatalf("the error quotes the value: %v", err)
		}
		return
	}
	if len(tp) != 43 || strings.ContainsAny(tp, "+/=") {
		t.Fatalf("thumbprint %q", tp)
	}
}

func certSeeds(f *testing.F) *bindingtest.Cert {
	f.Helper()
	return bindingtest.NewCA(f).Client(f, "fuzz")
}

// FuzzXFCC: any x-forwarded-client-cert value gives a thumbprint or a
// clear error, never a panic.
func FuzzXFCC(f *testing.F) {
	c := certSeeds(f)
	f.Add(c.XFCC())
	f.Add("By=spiffe://a;Hash=" + strings.Repeat("0f", 32) + ",Hash=" + strings.Repeat("a1", 32))
	f.Add(`Subject="a\"b,c;d";Hash=00`)
	f.Add(`Cert="-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A"`)
	f.Add(`"`)
	f.Add(`\`)
	f.Add(",,;;==")
	f.Fuzz(func(t *testing.T, v string) {
		tp, err := binding.ParseXFCC(v)
		checkThumbprint(t, v, tp, err)
	})
}

// FuzzEscapedPEM: any $ssl_client_escaped_cert or source.certificate value.
func FuzzEscapedPEM(f *testing.F) {
	c := certSeeds(f)
	f.Add(c.EscapedPEM())
	f.Add(url.QueryEscape(c.PEM()))
	f.Add(c.PEM())
	f.Add("-----BEGIN+CERTIFICATE-----%0A%zz")
	f.Add("%")
	f.Fuzz(func(t *testing.T, v string) {
		tp, err := binding.ParseEscapedPEM(v)
		checkThumbprint(t, v, tp, err)
	})
}

// FuzzTraefikCert: any X-Forwarded-Tls-Client-Cert value.
func FuzzTraefikCert(f *testing.F) {
	c := certSeeds(f)
	f.Add(c.Traefik())
	f.Add(c.Traefik() + "," + c.Traefik())
	f.Add("MA==")
	f.Add("%2")
	f.Add(",")
	f.Fuzz(func(t *testing.T, v string) {
		tp, err := binding.ParseTraefikCert(v)
		checkThumbprint(t, v, tp, err)
	})
}

// FuzzNonceValid: no string but the current and previous nonces is
// accepted.
func FuzzNonceValid(f *testing.F) {
	n, err := binding.NewHMACNonces(binding.NonceOptions{Key: []byte("fuzz-key-0123456789"), Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	cur := n.Current()
	f.Add(cur)
	f.Add(cur[:31] + "A")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if n.Valid(s) && s != cur {
			prev, _ := binding.NewHMACNonces(binding.NonceOptions{Key: []byte("fuzz-key-0123456789"), Now: func() time.Time { return now.Add(-binding.DefaultNoncePeriod) }})
			if s != prev.Current() {
				t.Fatalf("%q accepted", s)
			}
		}
	})
}
