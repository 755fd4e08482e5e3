package binding

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Certificate-bound access tokens (RFC 8705 §3): a token whose cnf claim
// holds x5t#S256 may only be presented over a TLS connection authenticated
// with the client certificate of that thumbprint. vigil sits behind the TLS
// terminator, so the certificate reaches it from the connection (the proxy
// and the middleware), from Envoy's CheckRequest attributes, or in a header
// a trusted gateway writes; the parsers below read those headers. Each
// returns the certificate's thumbprint, never the certificate.

// ErrInvalidToken is the RFC 6750 error code of a certificate-bound token
// presented without its certificate (RFC 8705 §3).
const ErrInvalidToken = "invalid_token"

// Failures of CheckCertBound, for errors.Is. Both have Code ErrInvalidToken.
var (
	ErrNoClientCert = &Error{Code: ErrInvalidToken, Reason: "the access token is bound to a client certificate and none was presented"}
	ErrCertMismatch = &Error{Code: ErrInvalidToken, Reason: "the client certificate is not the one the access token is bound to"}
)

// ErrMalformedCert is wrapped by the parsers' errors: the value is not a
// certificate in the expected format. The errors never quote the value.
var ErrMalformedCert = errors.New("binding: malformed client certificate")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedCert, fmt.Sprintf(format, a...))
}

// MaxCertHeader bounds the header values the parsers read: a URL-escaped
// PEM certificate is a few kilobytes; an XFCC value carries one element
// per hop, and its Chain one certificate per intermediate.
const MaxCertHeader = 64 << 10

// CertThumbprint returns the x5t#S256 of a certificate: the SHA-256 of its
// DER encoding, base64url without padding (RFC 8705 §3.1).
func CertThumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckCertBound checks that a token bound to the certificate thumbprint
// x5t (its cnf x5t#S256) came with that certificate: presented is the
// thumbprint of the client certificate, "" when there was none. It returns
// nil when x5t is empty (the token is not bound), else ErrNoClientCert or
// ErrCertMismatch. The comparison takes the same time wherever the
// thumbprints differ.
func CheckCertBound(x5t, presented string) error {
	switch {
	case x5t == "":
		return nil
	case presented == "":
		return ErrNoClientCert
	case subtle.ConstantTimeCompare([]byte(x5t), []byte(presented)) != 1:
		return ErrCertMismatch
	}
	return nil
}

// CertFormat is how a gateway writes the client certificate into a header.
type CertFormat uint8

const (
	// CertXFCC is Envoy's x-forwarded-client-cert (forward_client_cert_details
	// with set_current_client_cert_details cert or hash): ParseXFCC.
	CertXFCC CertFormat = iota
	// CertEscapedPEM is a URL-escaped PEM certificate: nginx's
	// $ssl_client_escaped_cert, Envoy's attributes.source.certificate:
	// ParseEscapedPEM.
	CertEscapedPEM
	// CertTraefik is base64 DER without PEM armor, possibly URL-escaped:
	// Traefik's passTLSClientCert (pem: true), Caddy's
	// {http.request.tls.client.certificate_der_base64}: ParseTraefikCert.
	CertTraefik
	numCertFormats
)

var certFormatNames = [numCertFormats]string{"xfcc", "escaped_pem", "traefik"}

// String returns the format's configuration name.
func (f CertFormat) String() string {
	if f < numCertFormats {
		return certFormatNames[f]
	}
	return fmt.Sprintf("certformat(%d)", uint8(f))
}

// ParseCertFormat parses a format's configuration name: xfcc, escaped_pem
// or traefik.
func ParseCertFormat(s string) (CertFormat, error) {
	for f, name := range certFormatNames {
		if s == name {
			return CertFormat(f), nil
		}
	}
	return CertXFCC, fmt.Errorf("binding: unknown certificate header format %q (want xfcc, escaped_pem or traefik)", s)
}

// Thumbprint reads a header value in format f and returns the leaf
// certificate's thumbprint.
func (f CertFormat) Thumbprint(v string) (string, error) {
	switch f {
	case CertXFCC:
		return ParseXFCC(v)
	case CertEscapedPEM:
		return ParseEscapedPEM(v)
	case CertTraefik:
		return ParseTraefikCert(v)
	}
	return "", fmt.Errorf("binding: unknown certificate header format %d", uint8(f))
}

// unescapeHeader checks a certificate header's size and undoes its
// percent-encoding: PathUnescape, not QueryUnescape, since a "+" left
// unescaped is a base64 character.
func unescapeHeader(v string) (string, error) {
	if v == "" {
		return "", malformed("empty")
	}
	if len(v) > MaxCertHeader {
		return "", malformed("%d bytes, at most %d", len(v), MaxCertHeader)
	}
	s, err := url.PathUnescape(v)
	if err != nil {
		return "", malformed("bad percent-encoding")
	}
	return s, nil
}

// ParseEscapedPEM reads a URL-escaped PEM certificate, as nginx's
// $ssl_client_escaped_cert and Envoy's attributes.source.certificate carry
// it, and returns its thumbprint. The first PEM block must be a
// CERTIFICATE; what follows it is ignored. Spaces escaped as "+" in the
// armor lines (form encoding) are read as spaces; in the base64 body "+"
// is a base64 character.
func ParseEscapedPEM(v string) (string, error) {
	s, err := unescapeHeader(v)
	if err != nil {
		return "", err
	}
	if strings.Contains(s, "-----BEGIN+") {
		s = strings.NewReplacer("-----BEGIN+CERTIFICATE-----", "-----BEGIN CERTIFICATE-----",
			"-----END+CERTIFICATE-----", "-----END CERTIFICATE-----").Replace(s)
	}
	block, _ := pem.Decode([]byte(s))
	switch {
	case block == nil:
		return "", malformed("no PEM block")
	case block.Type != "CERTIFICATE":
		// The type is a fixed word of the PEM armor, not content; still,
		// only say what was expected.
		return "", malformed("the PEM block is not a CERTIFICATE")
	}
	return derThumbprint(block.Bytes)
}

// ParseTraefikCert reads Traefik's X-Forwarded-Tls-Client-Cert (the
// passTLSClientCert middleware with pem: true): base64 DER without PEM
// armor, URL-escaped by some versions, several certificates separated by
// commas, the leaf first. It returns the leaf's thumbprint.
func ParseTraefikCert(v string) (string, error) {
	s, err := unescapeHeader(v)
	if err != nil {
		return "", err
	}
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if der, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return "", malformed("not base64 DER")
		}
	}
	return derThumbprint(der)
}

// ParseXFCC reads Envoy's x-forwarded-client-cert and returns the
// thumbprint of the certificate in its last element, the one the proxy in
// front of vigil added (RFC-less format, Envoy's documentation: elements
// separated by commas, key=value pairs by semicolons, values that hold
// ",;=" double-quoted with \" for a quote). The element's Cert (the
// URL-escaped PEM) is preferred; else its Hash (hex SHA-256 of the DER).
// When it has both, they must agree.
func ParseXFCC(header string) (string, error) {
	if header == "" {
		return "", malformed("empty")
	}
	if len(header) > MaxCertHeader {
		return "", malformed("%d bytes, at most %d", len(header), MaxCertHeader)
	}
	elems, err := splitQuoted(header, ',')
	if err != nil {
		return "", err
	}
	elem := elems[len(elems)-1]
	pairs, err := splitQuoted(elem, ';')
	if err != nil {
		return "", err
	}
	var cert, hash string
	var haveCert, haveHash bool
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			if strings.TrimSpace(p) == "" {
				continue
			}
			return "", malformed("an XFCC pair without '='")
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "cert":
			if haveCert {
				return "", malformed("Cert twice in one XFCC element")
			}
			cert, haveCert = unquote(strings.TrimSpace(v)), true
		case "hash":
			if haveHash {
				return "", malformed("Hash twice in one XFCC element")
			}
			hash, haveHash = unquote(strings.TrimSpace(v)), true
		}
	}
	var fromHash string
	if haveHash {
		b, err := hex.DecodeString(hash)
		if err != nil || len(b) != sha256.Size {
			return "", malformed("the XFCC Hash is not a hex SHA-256")
		}
		fromHash = base64.RawURLEncoding.EncodeToString(b)
	}
	if !haveCert {
		if !haveHash {
			return "", malformed("the last XFCC element has neither Cert nor Hash")
		}
		return fromHash, nil
	}
	tp, err := ParseEscapedPEM(cert)
	if err != nil {
		return "", fmt.Errorf("XFCC Cert: %w", err)
	}
	if haveHash && subtle.ConstantTimeCompare([]byte(tp), []byte(fromHash)) != 1 {
		return "", malformed("the XFCC Hash is not the hash of its Cert")
	}
	return tp, nil
}

// splitQuoted splits s at the separator sep outside double quotes; inside
// them a backslash escapes the next byte.
func splitQuoted(s string, sep byte) ([]string, error) {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, malformed("an unterminated quoted XFCC value")
	}
	return append(out, s[start:]), nil
}

// unquote removes the double quotes around an XFCC value and its
// backslash escapes; an unquoted value is returned as it is.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// derThumbprint returns the thumbprint of der after a sanity check: a
// certificate is a DER SEQUENCE.
func derThumbprint(der []byte) (string, error) {
	if len(der) < 2 || der[0] != 0x30 {
		return "", malformed("not a DER certificate")
	}
	return CertThumbprint(der), nil
}
