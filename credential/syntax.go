package credential

import "strings"

// Character classes, one table each so that the per-byte checks of the hot
// path are a load and a test. Read-only after initialization.
var (
	// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	token68Chars = makeSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/")
	// tchar of RFC 9110, for header names.
	tcharChars = makeSet("!#$%&'*+-.^_`|~ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
)

func makeSet(s string) (t [256]bool) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// splitScheme splits a trimmed Authorization value into its scheme and the
// rest, with the spaces between them removed.
func splitScheme(v string) (scheme, rest string) {
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		return v, ""
	}
	return v[:i], trimOWS(v[i:])
}

// asciiEqualFold reports whether s equals the ASCII word t, ignoring case.
func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lowerASCII(t[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isToken68 reports whether s is a token68 (RFC 7235 §2.1, the b64token of
// RFC 6750 §2.1): at least one character of the class, then only "=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Chars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// checkOtherCredentials checks what follows an authentication scheme vigil
// does not read (trimmed, not empty), and returns "" or the reason it is
// malformed. RFC 9110 §11.4 makes it a token68 or a comma-separated list of
// auth-params, name=value; it is read leniently, because real schemes stray
// from the grammar (AWS SigV4 sends Credential=AKID/date/region/service/...,
// a value that is neither a token nor a quoted string): no control
// characters, quoted strings closed, and each list element name=value, but
// for the first, which may also be one opaque word.
//
// A later element that is a scheme and a credential ("Token abc, Bearer
// xyz") is how Envoy joins two Authorization headers; it is refused as a
// credential presented twice, since the upstream may read the second.
func checkOtherCredentials(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return reasonAuthSyntax
		}
	}
	first, seen := true, false
	for s != "" {
		elem, rest, ok := cutListElement(s)
		if !ok {
			return reasonAuthSyntax
		}
		s = rest
		if elem = trimOWS(elem); elem != "" {
			seen = true
			n := 0
			for n < len(elem) && tcharChars[elem[n]] {
				n++
			}
			after := elem[n:]
			value := trimOWS(after)
			switch {
			case n > 0 && value != "" && value[0] == '=': // name=value (or a token68 with padding)
			case first && strings.IndexAny(elem, " \t") < 0: // one opaque word
			case !first && n > 0 && value != "" && len(value) < len(after): // "scheme credentials"
				return reasonDuplicate
			default:
				return reasonAuthSyntax
			}
		}
		first = false
	}
	if !seen {
		return reasonAuthSyntax
	}
	return ""
}

// cutListElement cuts s at its first comma outside a quoted string. It
// reports false for a quoted string that is not closed.
func cutListElement(s string) (elem, rest string, ok bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // quoted-pair
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", !quoted
}

// isToken reports whether s is a non-empty RFC 9110 token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tcharChars[s[i]] {
			return false
		}
	}
	return true
}

// isAPIKey reports whether s is only visible ASCII without a comma: API keys
// have no fixed syntax, but no real one holds a space, a control or a
// non-ASCII byte, and a comma is how Envoy joins a header sent twice.
func isAPIKey(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// jwtShaped reports whether a token68 is shaped like a JWS in compact form
// whose header is a JSON object: base64url segments, the first starting
// with "eyJ" (`{"`), separated by exactly two dots, the first two not
// empty. A JWE (five segments) is not read: vigil holds no decryption key.
func jwtShaped(s string) bool {
	if len(s) < 7 || s[0] != 'e' || s[1] != 'y' || s[2] != 'J' {
		return false
	}
	dots, last := 0, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			if i == last+1 && dots < 2 { // empty header or payload
				return false
			}
			dots++
			last = i
		case '+', '/', '~', '=':
			return false
		}
	}
	return dots == 2
}

// queryOf returns the query of a request target: after the first "?" that
// comes before any "#", up to the "#".
func queryOf(uri string) string {
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	i := strings.IndexByte(uri, '?')
	if i < 0 {
		return ""
	}
	return uri[i+1:]
}

// findParam returns the raw (still encoded) value of the first parameter
// of query q whose decoded name is name, and how many such parameters q
// holds. A parameter without "=" has an empty value.
func findParam(q, name string) (raw string, count int) {
	for q != "" {
		var pair string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, ""
		}
		k, v := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if !unescapedEquals(k, name) {
			continue
		}
		if count == 0 {
			raw = v
		}
		count++
	}
	return raw, count
}

// unescapedEquals reports whether the query component s, decoded as
// application/x-www-form-urlencoded, equals name. It allocates nothing.
func unescapedEquals(s, name string) bool {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s == name
	}
	j := 0
	for i := 0; i < len(s); {
		c, next, ok := formByte(s, i)
		if !ok || j >= len(name) || name[j] != c {
			return false
		}
		i, j = next, j+1
	}
	return j == len(name)
}

// appendUnescaped appends the query component s, decoded as
// application/x-www-form-urlencoded ("+" is a space), to dst. It reports
// false for a "%" not followed by two hex digits.
func appendUnescaped(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		c, next, ok := formByte(s, i)
		if !ok {
			return dst, false
		}
		dst, i = append(dst, c), next
	}
	return dst, true
}

// formByte decodes the byte of the form-encoded s at i ("+" is a space,
// "%XX" a byte) and returns it with the index after it; ok is false for a
// "%" not followed by two hex digits.
func formByte(s string, i int) (c byte, next int, ok bool) {
	switch c = s[i]; c {
	case '+':
		return ' ', i + 1, true
	case '%':
		if i+2 >= len(s) {
			return 0, i, false
		}
		h, l := unhex(s[i+1]), unhex(s[i+2])
		if h < 0 || l < 0 {
			return 0, i, false
		}
		return byte(h<<4 | l), i + 3, true
	}
	return c, i + 1, true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
