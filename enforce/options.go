package enforce

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrOptions is wrapped by the error NewResponder returns for invalid
// Options.
var ErrOptions = errors.New("enforce: invalid options")

// Options configures a Responder. The zero value is valid: no realm, no
// acr_values, no max_age, no upstream headers, the default DPoP algorithms.
// Every value that goes into a header is checked by NewResponder, so that
// configuration can never inject a line break or break out of a quoted
// string.
type Options struct {
	// Realm is the realm parameter of WWW-Authenticate challenges (RFC 9110
	// §11.6.1, RFC 6750 §3); empty omits it. Printable ASCII only; quotes
	// and backslashes are escaped.
	Realm string
	// ACRValues is the acr_values parameter of the step-up challenge (RFC
	// 9470 §3): authentication context class references, space-separated,
	// in order of preference, e.g. "urn:example:mfa"; empty omits it.
	// Printable ASCII, single spaces between values.
	ACRValues string
	// MaxAge is the max_age parameter of the step-up challenge (RFC 9470
	// §3): how long ago the user may have last authenticated actively. A
	// whole number of seconds; 0 omits it.
	MaxAge time.Duration
	// UpstreamHeaders adds X-Vigil-Decision, X-Vigil-Risk,
	// X-Vigil-Token-Id (and X-Vigil-Shadow) to requests that go upstream.
	// Off in the zero value; vigil's configuration turns it on by default.
	UpstreamHeaders bool
	// DPoPAlgs lists the JWS algorithms accepted for DPoP proofs, sent as
	// the algs parameter of DPoP challenges (RFC 9449 §7.1). Empty means
	// DefaultDPoPAlgs. "none" and the symmetric HS* algorithms are refused:
	// a DPoP proof must be signed with an asymmetric key (RFC 9449 §4.2).
	DPoPAlgs []string
}

// DefaultDPoPAlgs returns the algorithms advertised in DPoP challenges when
// Options.DPoPAlgs is empty: ES256 (the algorithm DPoP clients implement
// first) and PS256, as in RFC 9449's own example; both are allowed by FAPI
// 2.0, RS256 (PKCS #1 v1.5) is not.
func DefaultDPoPAlgs() []string { return []string{"ES256", "PS256"} }

func (o Options) validate() error {
	var errs []error
	if err := checkPrintable(o.Realm); err != nil {
		errs = append(errs, fmt.Errorf("Realm: %w", err))
	}
	if err := checkPrintable(o.ACRValues); err != nil {
		errs = append(errs, fmt.Errorf("ACRValues: %w", err))
	} else if o.ACRValues != "" && (strings.HasPrefix(o.ACRValues, " ") || strings.HasSuffix(o.ACRValues, " ") || strings.Contains(o.ACRValues, "  ")) {
		errs = append(errs, fmt.Errorf("ACRValues %q: values must be separated by single spaces, without leading or trailing space", o.ACRValues))
	}
	switch {
	case o.MaxAge < 0:
		errs = append(errs, fmt.Errorf("MaxAge %v: must not be negative", o.MaxAge))
	case o.MaxAge%time.Second != 0:
		errs = append(errs, fmt.Errorf("MaxAge %v: must be a whole number of seconds", o.MaxAge))
	}
	seen := make(map[string]bool, len(o.DPoPAlgs))
	for i, alg := range o.DPoPAlgs {
		switch {
		case alg == "" || !isToken(alg):
			errs = append(errs, fmt.Errorf("DPoPAlgs[%d] %q: not a JWS algorithm name (letters, digits and -._ only)", i, alg))
		case strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS"):
			errs = append(errs, fmt.Errorf("DPoPAlgs[%d] %q: DPoP proofs need an asymmetric signature algorithm (RFC 9449 §4.2)", i, alg))
		case seen[alg]:
			errs = append(errs, fmt.Errorf("DPoPAlgs[%d] %q: listed twice", i, alg))
		}
		seen[alg] = true
	}
	return errors.Join(errs...)
}

// checkPrintable accepts printable ASCII (space to tilde): no control
// characters (CR, LF, NUL, tab, DEL) and nothing that some intermediary
// could read as a different byte sequence.
func checkPrintable(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("byte %d of %q is %#02x: only printable ASCII is allowed in a header value", i, s, c)
		}
	}
	return nil
}

// isToken reports whether s consists of letters, digits and -._ (a subset
// of RFC 9110's tchar that covers every JWS algorithm name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// isErrorCode reports whether s may be the error attribute of a challenge:
// RFC 6750 §3 allows %x20-21 / %x23-5B / %x5D-7E, which needs no escaping
// in a quoted string nor in JSON. vigil's codes are narrower still; a space
// is refused as well, so a code is always a single word.
func isErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// quote returns s as an RFC 9110 quoted-string; s is printable ASCII.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
