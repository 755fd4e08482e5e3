package binding_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/binding/bindingtest"
)

// TestCertThumbprintKnownAnswer: the x5t#S256 of RFC 8705 §3.1 is the
// base64url SHA-256 of the DER, without padding.
func TestCertThumbprintKnownAnswer(t *testing.T) {
	// SHA-256("abc") is FIPS 180-2's first example.
	if got := binding.CertThumbprint([]byte("abc")); got != "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0" {
		t.Errorf("thumbprint of abc: %s", got)
	}
	c := bindingtest.NewCA(t).Client(t, "svc-billing")
	// What an operator computes with openssl: x509 -outform DER | dgst
	// -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='.
	want := func(der []byte) string {
		sum := sha256.Sum256(der)
		s := base64.StdEncoding.EncodeToString(sum[:])
		return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(s), "=")
	}
	block, _ := pem.Decode([]byte(c.PEM()))
	if got := binding.CertThumbprint(c.DER); got != want(block.Bytes) || len(got) != 43 {
		t.Errorf("thumbprint %s, want %s", got, want(block.Bytes))
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("no openssl: not cross-checked with it")
		return
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(in, []byte(c.PEM()), 0o600); err != nil {
		t.Fatal(err)
	}
	der, err := exec.Command(openssl, "x509", "-in", in, "-outform", "DER").Output()
	if err != nil {
		t.Fatalf("openssl x509: %v", err)
	}
	cmd := exec.Command(openssl, "dgst", "-sha256", "-binary")
	cmd.Stdin = bytes.NewReader(der)
	sum, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl dgst: %v", err)
	}
	if got, w := c.Thumbprint(), base64.RawURLEncoding.EncodeToString(sum); got != w {
		t.Errorf("thumbprint %s, openssl says %s", got, w)
	}
}

func TestCheckCertBound(t *testing.T) {
	ca := bindingtest.NewCA(t)
	c, other := ca.Client(t, "a"), ca.Client(t, "b")
	if err := binding.CheckCertBound(c.Thumbprint(), c.Thumbprint()); err != nil {
		t.Errorf("its own certificate: %v", err)
	}
	if err := binding.CheckCertBound("", ""); err != nil {
		t.Errorf("an unbound token: %v", err)
	}
	for _, tc := range []struct {
		name, presented string
		want            error
	}{
		{"another certificate", other.Thumbprint(), binding.ErrCertMismatch},
		{"no certificate", "", binding.ErrNoClientCert},
		{"a prefix", c.Thumbprint()[:20], binding.ErrCertMismatch},
	} {
		err := binding.CheckCertBound(c.Thumbprint(), tc.presented)
		var e *binding.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Code != "invalid_token" {
			t.Errorf("%s: %v, want %v with invalid_token", tc.name, err, tc.want)
		}
	}
}

func TestParseCertHeaders(t *testing.T) {
	ca := bindingtest.NewCA(t)
	c, proxy := ca.Client(t, "svc-billing"), ca.Client(t, "edge-proxy")
	want := c.Thumbprint()
	sum := sha256.Sum256(c.DER)
	hash := hex.EncodeToString(sum[:])
	// Form encoding: spaces as "+", the base64 "+" as %2B.
	formPEM := url.QueryEscape(c.PEM())
	cases := []struct {
		name   string
		format binding.CertFormat
		value  string
	}{
		{"xfcc cert and hash", binding.CertXFCC, c.XFCC()},
		{"xfcc hash only", binding.CertXFCC, "By=spiffe://cluster.local/ns/api/sa/vigil;Hash=" + hash + ";Subject=\"CN=svc-billing,O=Example\""},
		{"xfcc hash, upper-case hex and key", binding.CertXFCC, "HASH=" + strings.ToUpper(hash)},
		{"xfcc last element counts", binding.CertXFCC, proxy.XFCC() + "," + c.XFCC()},
		{"xfcc quoted value with escaped quote, comma and semicolon", binding.CertXFCC,
			proxy.XFCC() + `,Subject="CN=\"x\",O=a;b";Hash=` + hash + `;URI=spiffe://x`},
		{"escaped pem", binding.CertEscapedPEM, c.EscapedPEM()},
		{"form-escaped pem", binding.CertEscapedPEM, formPEM},
		{"plain pem", binding.CertEscapedPEM, c.PEM()},
		{"traefik", binding.CertTraefik, c.Traefik()},
		{"traefik chain, leaf first", binding.CertTraefik, c.Traefik() + "," + url.QueryEscape(base64.StdEncoding.EncodeToString(ca.Cert.Raw))},
		{"traefik unescaped (caddy)", binding.CertTraefik, base64.StdEncoding.EncodeToString(c.DER)},
		{"traefik without padding", binding.CertTraefik, base64.RawStdEncoding.EncodeToString(c.DER)},
	}
	for _, tc := range cases {
		got, err := tc.format.Thumbprint(tc.value)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %s", tc.name, got, err, want)
		}
	}

	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("private-key-bytes-never-shown")}))
	bad := []struct {
		name   string
		format binding.CertFormat
		value  string
	}{
		{"xfcc empty", binding.CertXFCC, ""},
		{"xfcc neither cert nor hash", binding.CertXFCC, c.XFCC() + `,By=spiffe://x;Subject="CN=a"`},
		{"xfcc unterminated quote", binding.CertXFCC, `Hash=` + hash + `;Subject="CN=a`},
		{"xfcc short hash", binding.CertXFCC, "Hash=abcd"},
		{"xfcc hash of another cert", binding.CertXFCC, `Hash=` + strings.Repeat("ab", 32) + `;Cert="` + c.EscapedPEM() + `"`},
		{"xfcc two hashes", binding.CertXFCC, "Hash=" + hash + ";Hash=" + hash},
		{"xfcc pair without =", binding.CertXFCC, "Hash=" + hash + ";junk"},
		{"xfcc cert not pem", binding.CertXFCC, `Cert="hello"`},
		{"pem of a private key", binding.CertEscapedPEM, url.PathEscape(keyPEM)},
		{"pem bad escape", binding.CertEscapedPEM, "%zz"},
		{"pem not der", binding.CertEscapedPEM, url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})))},
		{"pem huge", binding.CertEscapedPEM, strings.Repeat("A", binding.MaxCertHeader+1)},
		{"traefik not base64", binding.CertTraefik, "not*base64"},
		{"traefik empty", binding.CertTraefik, ""},
		{"traefik huge", binding.CertTraefik, strings.Repeat("A", binding.MaxCertHeader+1)},
	}
	for _, tc := range bad {
		got, err := tc.format.Thumbprint(tc.value)
		if err == nil || got != "" || !errors.Is(err, binding.ErrMalformedCert) {
			t.Errorf("%s: %q %v, want a malformed-certificate error", tc.name, got, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "private-key") || len(tc.value) > 8 && strings.Contains(msg, tc.value) {
			t.Errorf("%s: the error quotes the value: %s", tc.name, msg)
		}
	}
}

func TestParseCertFormat(t *testing.T) {
	for _, f := range []binding.CertFormat{binding.CertXFCC, binding.CertEscapedPEM, binding.CertTraefik} {
		if got, err := binding.ParseCertFormat(f.String()); err != nil || got != f {
			t.Errorf("%v: %v %v", f, got, err)
		}
	}
	if _, err := binding.ParseCertFormat("pem"); err == nil {
		t.Error("pem accepted")
	}
	if _, err := binding.CertFormat(9).Thumbprint("x"); err == nil {
		t.Error("an unknown format read a value")
	}
}
