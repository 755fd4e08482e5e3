// Package bindingtest makes real X.509 certificates for tests of
// certificate-bound tokens: a self-signed CA and client certificates it
// signs, with the header encodings gateways pass them in.
package bindingtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/binding"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// Pool holds Cert, for a server's ClientCAs or a client's RootCAs.
	Pool *x509.CertPool
}

// Cert is a certificate the CA signed and its key.
type Cert struct {
	DER  []byte
	Cert *x509.Certificate
	// TLS is the certificate with its key, for a tls.Config.
	TLS tls.Certificate
}

func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// NewCA returns a fresh CA valid for an hour either side of now.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: "vigil test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, key: key, Pool: pool}
}

// Client returns a client certificate for cn signed by ca.
func (ca *CA) Client(t testing.TB, cn string) *Cert {
	t.Helper()
	return ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

// Server returns a server certificate for 127.0.0.1 and localhost.
func (ca *CA) Server(t testing.TB) *Cert {
	t.Helper()
	return ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
}

func (ca *CA) issue(t testing.TB, tmpl *x509.Certificate) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = nextSerial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{DER: der, Cert: cert, TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}
}

// Thumbprint is the certificate's x5t#S256.
func (c *Cert) Thumbprint() string { return binding.CertThumbprint(c.DER) }

// PEM is the certificate in PEM.
func (c *Cert) PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
}

// EscapedPEM is the PEM URL-escaped as nginx's $ssl_client_escaped_cert
// and Envoy's source.certificate carry it.
func (c *Cert) EscapedPEM() string { return url.PathEscape(c.PEM()) }

// XFCC is an x-forwarded-client-cert element for the certificate, as
// Envoy writes it with set_current_client_cert_details cert and hash.
func (c *Cert) XFCC() string {
	sum := c.Thumbprint()
	raw, _ := base64.RawURLEncoding.DecodeString(sum)
	return `Hash=` + hex.EncodeToString(raw) + `;Cert="` + c.EscapedPEM() + `";Subject="CN=` + c.Cert.Subject.CommonName + `"`
}

// Traefik is the certificate as Traefik's passTLSClientCert (pem: true)
// writes X-Forwarded-Tls-Client-Cert: base64 DER, URL-escaped.
func (c *Cert) Traefik() string {
	return url.QueryEscape(base64.StdEncoding.EncodeToString(c.DER))
}
