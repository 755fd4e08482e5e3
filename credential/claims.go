package credential

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/internal/jsonstr"
)

// The claims of a JWT are read by hand rather than with jwt.ParseInsecure:
// BenchmarkReadClaims measured 0.7 µs and 5 allocations (the claim
// strings) against jwx's 28 to 66 µs (a shared machine), 244 allocations
// and 17 kB per token. Bearer
// JWTs are the access tokens of most OAuth deployments, so this is the hot
// path there, and jwx alone would take a large share of the budget of
// 30,000 decisions/s on 2 cores. jwx still does all verification
// (signature, times, issuer, audience); the claims of a verified token are
// then read here too, so a token yields the same Claims whether or not it
// is verified. FuzzReadJWT holds this reader to encoding/json.

// maxJSONDepth bounds the nesting of a JWT's JSON, so skipping a value
// cannot recurse without end.
const maxJSONDepth = 32

// payload holds what readJWT found besides Claims.
type payload struct {
	notBefore time.Time // nbf, for the verification cache
}

// readJWT reads the claims of the JWT-shaped token tok into c, using
// scratch (returned, possibly grown, and wiped) to decode into. It reports
// false, leaving c zero, when tok is not a JWS whose header and payload are
// JSON objects; its signature is not looked at.
func readJWT(tok, scratch []byte, c *Claims, p *payload) (ok bool, _ []byte) {
	h, rest, _ := cutDot(tok)
	pl, _, _ := cutDot(rest)
	need := max(base64.RawURLEncoding.DecodedLen(len(h)), base64.RawURLEncoding.DecodedLen(len(pl)))
	if cap(scratch) < need {
		scratch = make([]byte, need)
	}
	scratch = scratch[:need]
	defer clear(scratch)

	n, err := base64.RawURLEncoding.Decode(scratch, h)
	if err != nil {
		return false, scratch
	}
	s := jsonScan{b: scratch[:n]}
	if !s.object(func([]byte, bool) bool { return s.skipValue() }) || !s.end() {
		return false, scratch
	}
	n, err = base64.RawURLEncoding.Decode(scratch, pl)
	if err != nil {
		return false, scratch
	}
	var scope, scp, clientID, azp string
	s = jsonScan{b: scratch[:n]}
	ok = s.object(func(key []byte, esc bool) bool {
		switch string(nameOf(key, esc)) {
		case "sub":
			return s.stringInto(&c.Subject)
		case "iss":
			return s.stringInto(&c.Issuer)
		case "jti":
			return s.stringInto(&c.JTI)
		case "client_id":
			return s.stringInto(&clientID)
		case "azp":
			return s.stringInto(&azp)
		case "scope":
			return s.stringInto(&scope)
		case "scp":
			return s.scopesInto(&scp)
		case "exp":
			return s.dateInto(&c.Expiry)
		case "nbf":
			return s.dateInto(&p.notBefore)
		case "cnf":
			// A later cnf replaces an earlier one, as with any claim.
			c.JKT, c.X5T = "", ""
			if s.peek() != '{' {
				return s.skipValue()
			}
			return s.object(func(key []byte, esc bool) bool {
				switch string(nameOf(key, esc)) {
				case "jkt":
					return s.stringInto(&c.JKT)
				case "x5t#S256":
					return s.stringInto(&c.X5T)
				}
				return s.skipValue()
			})
		}
		return s.skipValue()
	}) && s.end()
	if !ok {
		*c, *p = Claims{}, payload{}
		return false, scratch
	}
	c.JWT = true
	if c.ClientID = clientID; c.ClientID == "" {
		c.ClientID = azp
	}
	if c.Scope = scope; c.Scope == "" {
		c.Scope = scp
	}
	return true, scratch
}

func cutDot(b []byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == '.' {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// nameOf returns a member name for comparison with a claim name: raw
// itself when it holds no escapes (a switch on string(raw) does not copy
// it), else decoded.
func nameOf(raw []byte, esc bool) []byte {
	if !esc {
		return raw
	}
	return []byte(unescapeJSON(raw))
}

// jsonScan reads JSON (RFC 8259) from b. Every method reports false on a
// syntax error.
type jsonScan struct {
	b     []byte
	i     int
	depth int
}

func (s *jsonScan) peek() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// end reports whether only whitespace is left.
func (s *jsonScan) end() bool { return s.peek() == 0 && s.i == len(s.b) }

// object reads an object, calling member with each member's raw name (and
// whether it holds escapes) to read its value.
func (s *jsonScan) object(member func(name []byte, esc bool) bool) bool {
	if s.peek() != '{' || s.depth >= maxJSONDepth {
		return false
	}
	s.i++
	s.depth++
	if s.peek() == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		name, esc, ok := s.rawString()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !member(name, esc) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// array reads an array, calling elem to read each element.
func (s *jsonScan) array(elem func() bool) bool {
	if s.peek() != '[' || s.depth >= maxJSONDepth {
		return false
	}
	s.i++
	s.depth++
	if s.peek() == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// skipValue reads any value.
func (s *jsonScan) skipValue() bool {
	switch s.peek() {
	case '"':
		_, _, ok := s.rawString()
		return ok
	case '{':
		return s.object(func([]byte, bool) bool { return s.skipValue() })
	case '[':
		return s.array(s.skipValue)
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	_, ok := s.number()
	return ok
}

func (s *jsonScan) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// rawString reads a string and returns its content, still escaped, and
// whether it holds escapes.
func (s *jsonScan) rawString() (raw []byte, esc, ok bool) {
	s.i++ // the opening quote, seen by the caller
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, esc, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			esc = true
			if s.i+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || hex4(s.b[s.i+2:s.i+6]) < 0 {
					return nil, false, false
				}
				s.i += 6
			default:
				return nil, false, false
			}
		default:
			s.i++
		}
	}
	return nil, false, false
}

// stringInto reads a value into *dst when it is a string; any other value
// is skipped and leaves *dst empty, as a claim of the wrong type is no claim.
func (s *jsonScan) stringInto(dst *string) bool {
	if s.peek() != '"' {
		*dst = ""
		return s.skipValue()
	}
	raw, esc, ok := s.rawString()
	if !ok {
		return false
	}
	if esc {
		*dst = unescapeJSON(raw)
	} else {
		*dst = validUTF8(string(raw))
	}
	return true
}

// scopesInto reads an scp claim: a string, or an array whose strings are
// joined with spaces (other elements are left out).
func (s *jsonScan) scopesInto(dst *string) bool {
	if s.peek() != '[' {
		return s.stringInto(dst)
	}
	var b strings.Builder
	ok := s.array(func() bool {
		var e string
		if s.peek() != '"' {
			return s.skipValue()
		}
		if !s.stringInto(&e) {
			return false
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e)
		return true
	})
	*dst = b.String()
	return ok
}

// dateInto reads a NumericDate (seconds since the epoch, RFC 7519 §2) into
// *dst, truncated to the second as jwx does; a value of another type or out
// of range leaves *dst zero.
func (s *jsonScan) dateInto(dst *time.Time) bool {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		*dst = time.Time{}
		return s.skipValue()
	}
	raw, ok := s.number()
	if !ok {
		return false
	}
	*dst = time.Time{}
	if sec, ok := parseInt(raw); ok {
		*dst = time.Unix(sec, 0).UTC()
		return true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err == nil && f >= math.MinInt64 && f < math.MaxInt64 {
		*dst = time.Unix(int64(f), 0).UTC()
	}
	return true
}

// number reads a number and returns its text.
func (s *jsonScan) number() ([]byte, bool) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

func (s *jsonScan) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// parseInt parses an integer's text (as number returned it) without
// allocating; false for a fraction, an exponent or an overflow.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 { // 18 digits cannot overflow
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// unescapeJSON decodes the content of a string that rawString validated.
// Invalid UTF-8 and lone surrogates become U+FFFD, as in encoding/json.
func unescapeJSON(raw []byte) string {
	b, _, _, _ := jsonstr.Unescape(make([]byte, 0, len(raw)), raw)
	return validUTF8(string(b))
}

// validUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD, as encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for _, r := range s {
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// hex4 returns the value of four hex digits, or -1.
func hex4(b []byte) int {
	n := 0
	for _, c := range b[:4] {
		d := unhex(c)
		if d < 0 {
			return -1
		}
		n = n<<4 | d
	}
	return n
}
