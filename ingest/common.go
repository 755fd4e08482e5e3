package ingest

import (
	"math"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/vigil-sec/vigil/event"
)

const (
	maxTokenIDLen = 512 // as in vigil's contract (docs/events.md)
	arenaChunk    = 64 << 10
)

// base is what every decoder of a foreign format shares: the arena its
// events' strings live in, a scratch buffer, and the fingerprinter for
// credential ids that turn out to be raw secrets.
type base struct {
	fp    *event.Fingerprinter
	arena []byte
	buf   []byte
}

// keep copies the concatenation of prefix and b into the arena. The arena
// is append-only chunks: a string handed out is never overwritten, and a
// chunk lives as long as any event points into it.
func (d *base) keep(prefix string, b []byte) string {
	n := len(prefix) + len(b)
	if n == 0 {
		return ""
	}
	if cap(d.arena)-len(d.arena) < n {
		d.arena = make([]byte, 0, max(arenaChunk, n))
	}
	off := len(d.arena)
	d.arena = append(d.arena, prefix...)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[off], n)
}

// str checks an optional string field's length and keeps it.
func (d *base) str(field string, v val, dst *string, has event.Field, ev *event.Event) error {
	if !v.set() {
		return nil
	}
	if v.k != kString {
		return &event.FieldError{Field: field, Reason: "expected a string"}
	}
	if len(v.b) > event.MaxStringLen {
		return &event.FieldError{Field: field, Reason: "longer than 8 KiB"}
	}
	*dst = d.keep("", v.b)
	ev.Has |= has
	return nil
}

// tokenID sets ev.TokenID to prefix+v, the id of the credential that v
// names. A value that looks like a raw credential (looksRaw) is not an id
// but a secret logged by mistake: it is fingerprinted like vigil's own
// `token` field and wiped from the line, and never kept.
func (d *base) tokenID(field, prefix string, v val, ev *event.Event) error {
	id := v.b
	if v.k != kString && v.k != kNumber {
		return &event.FieldError{Field: field, Reason: "expected a string or a number"}
	}
	if looksRaw(id) {
		defer clear(v.raw)
		defer clear(v.b)
		if d.fp == nil {
			return &event.FieldError{Field: field, Reason: "holds what looks like a raw credential, and no fingerprint key is configured"}
		}
		var buf [64]byte
		ev.TokenID = d.keep("", d.fp.AppendID(buf[:0], credential(id)))
		return nil
	}
	if len(prefix)+len(id) > maxTokenIDLen {
		return &event.FieldError{Field: field, Reason: "longer than 512 bytes"}
	}
	ev.TokenID = d.keep(prefix, id)
	return nil
}

// anonymous keys a request without a credential on its client, as vigil's
// inline checker does: "ip:" and the IPv4 address, or the IPv6 /64 (one
// host holds a whole /64).
func (d *base) anonymous(ev *event.Event) {
	var buf [64]byte
	ev.TokenID = d.keep("", event.AppendAnonymousKey(buf[:0], ev.SourceIP))
}

// endpoint sets the event's endpoint to the route template of a raw path.
func (d *base) endpoint(field string, path []byte, ev *event.Event) error {
	if len(path) > event.MaxStringLen {
		return &event.FieldError{Field: field, Reason: "longer than 8 KiB"}
	}
	d.buf = appendRoute(d.buf[:0], path)
	ev.Endpoint = d.keep("", d.buf)
	return nil
}

// template sets the event's endpoint to a route template as the log gives
// it (API Gateway's resourcePath, GitHub's route).
func (d *base) template(field string, v val, ev *event.Event) error {
	if v.k != kString {
		return &event.FieldError{Field: field, Reason: "expected a string"}
	}
	if len(v.b) > event.MaxStringLen {
		return &event.FieldError{Field: field, Reason: "longer than 8 KiB"}
	}
	ev.Endpoint = d.keep("", v.b)
	return nil
}

// method sets the event's method, without arena space for the usual ones.
func (d *base) method(field string, v val, ev *event.Event) error {
	if !v.set() {
		return nil
	}
	if v.k != kString {
		return &event.FieldError{Field: field, Reason: "expected a string"}
	}
	ev.Method = d.methodString(v.b)
	if len(ev.Method) > event.MaxStringLen {
		return &event.FieldError{Field: field, Reason: "longer than 8 KiB"}
	}
	ev.Has |= event.HasMethod
	return nil
}

func (d *base) methodString(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	}
	return d.keep("", b)
}

// addr parses a client address: an IP, or an IP with a port (Envoy's
// %DOWNSTREAM_REMOTE_ADDRESS%).
func addr(field string, v val, ev *event.Event) error {
	if !v.set() {
		return &event.FieldError{Field: field, Reason: "missing required field"}
	}
	if v.k != kString {
		return &event.FieldError{Field: field, Reason: "expected a string"}
	}
	a, ok := parseAddr(v.b)
	if !ok {
		return &event.FieldError{Field: field, Reason: "not an IP address"}
	}
	ev.SourceIP = a
	return nil
}

func parseAddr(b []byte) (netip.Addr, bool) {
	s := unsafe.String(unsafe.SliceData(b), len(b))
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// status sets the event's status from a number or a string of digits.
func status(field string, v val, ev *event.Event) error {
	if !v.set() {
		return &event.FieldError{Field: field, Reason: "missing required field"}
	}
	n, err := integer(field, v)
	if err != nil {
		return err
	}
	if n < 100 || n > 599 {
		return &event.FieldError{Field: field, Reason: "must be between 100 and 599"}
	}
	ev.Status = int(n)
	return nil
}

// size sets an optional byte count.
func size(field string, v val, dst *int64, has event.Field, ev *event.Event) error {
	if !v.set() {
		return nil
	}
	n, err := integer(field, v)
	if err != nil {
		return err
	}
	if n < 0 {
		return &event.FieldError{Field: field, Reason: "must not be negative"}
	}
	*dst = n
	ev.Has |= has
	return nil
}

// latency sets the event's latency from a duration in units of scale
// milliseconds (1 for milliseconds, 1000 for nginx's seconds).
func latency(field string, v val, scale float64, ev *event.Event) error {
	if !v.set() {
		return nil
	}
	f, err := float(field, v)
	if err != nil {
		return err
	}
	if f < 0 {
		return &event.FieldError{Field: field, Reason: "must not be negative"}
	}
	ev.LatencyMS = f * scale
	ev.Has |= event.HasLatency
	return nil
}

// integer reads a JSON number, or a string of decimal digits as logs that
// quote every variable write them, as an integer.
func integer(field string, v val) (int64, error) {
	if v.k != kNumber && v.k != kString {
		return 0, &event.FieldError{Field: field, Reason: "expected a number"}
	}
	var n int64
	digits := len(v.b) > 0 && len(v.b) <= 18
	for _, c := range v.b {
		if c < '0' || c > '9' {
			digits = false
			break
		}
		n = n*10 + int64(c-'0')
	}
	if digits {
		return n, nil
	}
	f, err := float(field, v)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 9e18 {
		return 0, &event.FieldError{Field: field, Reason: "expected an integer"}
	}
	return int64(f), nil
}

func float(field string, v val) (float64, error) {
	if v.k != kNumber && v.k != kString {
		return 0, &event.FieldError{Field: field, Reason: "expected a number"}
	}
	if v.k == kString && !numeric(v.b) {
		return 0, &event.FieldError{Field: field, Reason: "expected a number"}
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v.b), len(v.b)), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, &event.FieldError{Field: field, Reason: "expected a finite number"}
	}
	return f, nil
}

// numeric reports whether a string is a plain decimal number: digits with
// an optional sign, fraction and exponent (ParseFloat alone would also take
// "Inf", hex and underscores).
func numeric(b []byte) bool {
	s := scanner{b: b}
	return len(b) > 0 && s.number() && s.i == len(b)
}

// country sets the event's country from an ISO 3166-1 alpha-2 code; any
// other value is taken as unknown.
func (d *base) country(v val, ev *event.Event) {
	if v.k != kString || len(v.b) != 2 {
		return
	}
	a, b := v.b[0]&^0x20, v.b[1]&^0x20
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return
	}
	ev.Country = d.keep("", []byte{a, b})
	ev.Has |= event.HasCountry
}

// looksRaw reports whether a credential id is a raw secret logged by
// mistake: an Authorization header value, a JWT, or a key with the prefix
// of a well-known secret format.
func looksRaw(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	if scheme(b) > 0 {
		return true
	}
	if string(b[:3]) == "eyJ" && count(b, '.') == 2 {
		return true
	}
	for _, p := range [...]string{"sk_live_", "sk_test_", "rk_live_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "AIza"} {
		if len(b) > len(p) && string(b[:len(p)]) == p {
			return true
		}
	}
	return false
}

// authSchemes are the Authorization schemes a logged header value may start with.
var authSchemes = [...]string{"bearer ", "basic ", "token ", "digest "}

// scheme returns the length of the Authorization scheme that b starts
// with ("Bearer "), or 0.
func scheme(b []byte) int {
	for _, s := range authSchemes {
		if len(b) > len(s) && equalFold(b[:len(s)], s) {
			return len(s)
		}
	}
	return 0
}

// credential returns the credential of a raw secret: an Authorization
// header value without its scheme, so that the fingerprint is the one
// vigil gives the same credential inline and in its own `token` field.
func credential(b []byte) []byte {
	b = b[scheme(b):]
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// equalFold compares ASCII b with lower-case s, ignoring case.
func equalFold(b []byte, s string) bool {
	for i := range len(s) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func count(b []byte, c byte) int {
	n := 0
	for _, x := range b {
		if x == c {
			n++
		}
	}
	return n
}

// missing is the error for a required field that is absent.
func missing(field string) error {
	return &event.FieldError{Field: field, Reason: "missing required field"}
}
