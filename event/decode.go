package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/vigil-sec/vigil/internal/jsonstr"
)

// Limits on what one event may carry.
const (
	MaxLineBytes  = 1 << 20 // a longer line is rejected whole
	MaxStringLen  = 8 << 10 // any one string field
	maxTokenIDLen = 512
	maxDepth      = 64 // nesting of objects and arrays, the event included
	arenaChunk    = 64 << 10
)

// FieldError reports a field that is missing, of the wrong type or out of
// range. It never contains the value of the `token` field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "field " + strconv.Quote(e.Field) + ": " + e.Reason }

// SyntaxError reports input that is not a JSON object.
type SyntaxError struct {
	Offset int // byte offset in the line
	Reason string
}

func (e *SyntaxError) Error() string {
	return "invalid JSON at byte " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// ErrNoFingerprinter is returned for an event with a raw `token` when the
// Decoder has no Fingerprinter.
var ErrNoFingerprinter = errors.New("event carries a raw token but no fingerprint key is configured")

// Decoder decodes events in vigil's JSON contract (docs/events.md).
//
// It is a small scanner written for this one flat object rather than a
// reflection-based decoder: replay and ingestion are bound by decoding, and
// this keeps a decode to a few hundred nanoseconds with no allocation per
// event while naming the field at fault in every error (see
// BenchmarkDecode for the comparison with encoding/json and go-json).
//
// Decoded strings are copied into append-only chunks owned by the Decoder,
// so an Event stays valid after the input line is reused.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	fp      *Fingerprinter
	arena   []byte
	scratch []byte
	b       []byte
	i       int
}

// NewDecoder returns a Decoder. fp fingerprints raw tokens; it may be nil if
// the input only carries token_id.
func NewDecoder(fp *Fingerprinter) *Decoder { return &Decoder{fp: fp} }

// Decode parses one JSON object from line into ev, which it resets first.
// It wipes the bytes of a raw `token` in line after fingerprinting them, so
// line must be writable and may be changed.
//
// The event is what the object means with the last of duplicate keys
// winning: a later value replaces an earlier one, and a later null (or an
// empty country, or ASN 0) removes it. Every value is still checked as it
// is read, so an invalid earlier duplicate fails the line.
func (d *Decoder) Decode(line []byte, ev *Event) (err error) {
	*ev = Event{}
	if len(line) > MaxLineBytes {
		return &SyntaxError{Offset: MaxLineBytes, Reason: "line longer than 1 MiB"}
	}
	d.b, d.i = line, 0
	defer func() { d.b = nil }()

	var have uint32 // bit 1<<fieldID for required fields, token, lat and lon seen
	var tokenID string
	var fpBuf [64]byte
	var fingerprint []byte // of the last raw token, in fpBuf

	d.ws()
	if !d.consume('{') {
		return d.syntax("expected '{' at the start of an object")
	}
	d.ws()
	if d.consume('}') {
		goto done
	}
	for {
		d.ws()
		key, kerr := d.str()
		if kerr != nil {
			return kerr
		}
		// key may live in scratch; compare before the value overwrites it.
		field := fieldOf(key)
		d.ws()
		if !d.consume(':') {
			return d.syntax("expected ':' after object key")
		}
		d.ws()
		if d.peekNull() {
			// null means absent: it removes an earlier value of the key, and
			// a required field left null counts as missing.
			d.i += 4
			have &^= 1 << field
			ev.unset(field)
		} else {
			switch field {
			case fUnknown:
				if err := d.skip(1); err != nil {
					return err
				}
			case fTimestamp:
				s, err := d.strField("timestamp")
				if err != nil {
					return err
				}
				t, ok := ParseRFC3339(s)
				if !ok {
					return &FieldError{"timestamp", "cannot parse " + quoteTrunc(s) + " as an RFC 3339 date-time"}
				}
				ev.Time = t
			case fTokenID:
				s, err := d.strField("token_id")
				if err != nil {
					return err
				}
				if len(s) == 0 || len(s) > maxTokenIDLen {
					return &FieldError{"token_id", "must be 1 to 512 bytes"}
				}
				tokenID = d.keep(s)
			case fToken:
				fp, err := d.token(fpBuf[:0])
				if err != nil {
					return err
				}
				fingerprint = fp
			case fSourceIP:
				s, err := d.strField("source_ip")
				if err != nil {
					return err
				}
				a, perr := netip.ParseAddr(unsafe.String(unsafe.SliceData(s), len(s)))
				if perr != nil || len(s) == 0 {
					return &FieldError{"source_ip", "cannot parse " + quoteTrunc(s) + " as an IP address"}
				}
				ev.SourceIP = a.Unmap().WithZone("")
			case fEndpoint:
				s, err := d.strField("endpoint")
				if err != nil {
					return err
				}
				if len(s) == 0 {
					return &FieldError{"endpoint", "must not be empty"}
				}
				ev.Endpoint = d.keep(s)
			case fStatus:
				n, err := d.intField("status_code", 100, 599)
				if err != nil {
					return err
				}
				ev.Status = int(n)
			case fRequestID:
				if err := d.optStr("request_id", &ev.RequestID, HasRequestID, ev); err != nil {
					return err
				}
			case fMethod:
				if err := d.optStr("method", &ev.Method, HasMethod, ev); err != nil {
					return err
				}
			case fPath:
				if err := d.optStr("path", &ev.Path, HasPath, ev); err != nil {
					return err
				}
			case fScope:
				if err := d.optStr("scope_used", &ev.Scope, HasScope, ev); err != nil {
					return err
				}
			case fUserAgent:
				if err := d.optStr("user_agent", &ev.UserAgent, HasUserAgent, ev); err != nil {
					return err
				}
			case fClientID:
				if err := d.optStr("client_id", &ev.ClientID, HasClientID, ev); err != nil {
					return err
				}
			case fCountry:
				s, err := d.strField("country")
				if err != nil {
					return err
				}
				if len(s) == 0 { // an empty country is an unknown one
					ev.unset(fCountry)
					break
				}
				c, ok := countryCode(s)
				if !ok {
					return &FieldError{"country", "must be an ISO 3166-1 alpha-2 code such as \"DE\", got " + quoteTrunc(s)}
				}
				ev.Country = c
				ev.Has |= HasCountry
			case fLatency:
				f, err := d.floatField("latency_ms", 0, math.MaxFloat64)
				if err != nil {
					return err
				}
				ev.LatencyMS = f
				ev.Has |= HasLatency
			case fPayload:
				n, err := d.intField("payload_bytes", 0, math.MaxInt64)
				if err != nil {
					return err
				}
				ev.PayloadBytes = n
				ev.Has |= HasPayloadBytes
			case fRequestBytes:
				n, err := d.intField("request_bytes", 0, math.MaxInt64)
				if err != nil {
					return err
				}
				ev.RequestBytes = n
				ev.Has |= HasRequestBytes
			case fASN:
				n, err := d.intField("asn", 0, math.MaxUint32)
				if err != nil {
					return err
				}
				if n == 0 { // AS0 is reserved: treat as unknown
					ev.unset(fASN)
					break
				}
				ev.ASN = uint32(n)
				ev.Has |= HasASN
			case fLat:
				f, err := d.floatField("lat", -90, 90)
				if err != nil {
					return err
				}
				ev.Lat = f
			case fLon:
				f, err := d.floatField("lon", -180, 180)
				if err != nil {
					return err
				}
				ev.Lon = f
			}
			have |= 1 << field
		}
		d.ws()
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			break
		}
		return d.syntax("expected ',' or '}' after object value")
	}
done:
	d.ws()
	if d.i != len(d.b) {
		return d.syntax("unexpected data after the object")
	}
	switch {
	case have&(1<<fTimestamp) == 0:
		return &FieldError{"timestamp", "missing required field"}
	case have&(1<<fTokenID|1<<fToken) == 0:
		return &FieldError{"token_id", "missing required field (give token_id or token)"}
	case have&(1<<fTokenID|1<<fToken) == 1<<fTokenID|1<<fToken:
		return &FieldError{"token", "give either token_id or token, not both"}
	case have&(1<<fSourceIP) == 0:
		return &FieldError{"source_ip", "missing required field"}
	case have&(1<<fEndpoint) == 0:
		return &FieldError{"endpoint", "missing required field"}
	case have&(1<<fStatus) == 0:
		return &FieldError{"status_code", "missing required field"}
	}
	switch have & (1<<fLat | 1<<fLon) {
	case 1 << fLat:
		return &FieldError{"lon", "lat is given without lon"}
	case 1 << fLon:
		return &FieldError{"lat", "lon is given without lat"}
	case 1<<fLat | 1<<fLon:
		ev.Has |= HasGeo
	}
	if have&(1<<fToken) != 0 {
		tokenID = d.keep(fingerprint)
	}
	ev.TokenID = tokenID
	return nil
}

// unset removes field's value from e, as if it had not been given.
func (e *Event) unset(f fieldID) {
	switch f {
	case fTimestamp:
		e.Time = 0
	case fSourceIP:
		e.SourceIP = netip.Addr{}
	case fEndpoint:
		e.Endpoint = ""
	case fStatus:
		e.Status = 0
	case fRequestID:
		e.RequestID, e.Has = "", e.Has&^HasRequestID
	case fMethod:
		e.Method, e.Has = "", e.Has&^HasMethod
	case fPath:
		e.Path, e.Has = "", e.Has&^HasPath
	case fScope:
		e.Scope, e.Has = "", e.Has&^HasScope
	case fUserAgent:
		e.UserAgent, e.Has = "", e.Has&^HasUserAgent
	case fClientID:
		e.ClientID, e.Has = "", e.Has&^HasClientID
	case fCountry:
		e.Country, e.Has = "", e.Has&^HasCountry
	case fLatency:
		e.LatencyMS, e.Has = 0, e.Has&^HasLatency
	case fPayload:
		e.PayloadBytes, e.Has = 0, e.Has&^HasPayloadBytes
	case fRequestBytes:
		e.RequestBytes, e.Has = 0, e.Has&^HasRequestBytes
	case fASN:
		e.ASN, e.Has = 0, e.Has&^HasASN
	case fLat:
		e.Lat = 0
	case fLon:
		e.Lon = 0
	}
}

// token fingerprints the raw credential at the cursor, appending its id to
// dst, and wipes the credential wherever it lay: in the line (escaped or
// not, also when it is malformed) and in scratch.
func (d *Decoder) token(dst []byte) ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, &FieldError{"token", "expected a string, got " + d.kind()}
	}
	start := d.i + 1
	s, err := d.str()
	if err != nil {
		// Wipe what may be the credential: up to the next quote, or the
		// whole rest of the line when there is none.
		end := d.i
		for end < len(d.b) && d.b[end] != '"' {
			end++
		}
		clear(d.b[start:end])
		clear(d.scratch[:cap(d.scratch)])
		var se *SyntaxError
		if errors.As(err, &se) {
			// Do not describe the content of a secret beyond its position.
			return nil, &FieldError{"token", "malformed string"}
		}
		return nil, err
	}
	// s is a range of the line or of scratch; the line range between the
	// quotes holds the credential as written, escapes included.
	defer clear(d.b[start : d.i-1])
	defer clear(s)
	if len(s) == 0 {
		return nil, &FieldError{"token", "must not be empty"}
	}
	if d.fp == nil {
		return nil, ErrNoFingerprinter
	}
	return d.fp.AppendID(dst, s), nil
}

func (d *Decoder) optStr(name string, dst *string, bit Field, ev *Event) error {
	s, err := d.strField(name)
	if err != nil {
		return err
	}
	*dst = d.keep(s)
	ev.Has |= bit
	return nil
}

// strField reads a string value; the result is valid until the next read.
func (d *Decoder) strField(name string) ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, &FieldError{name, "expected a string, got " + d.kind()}
	}
	s, err := d.str()
	if err != nil {
		return nil, err
	}
	if len(s) > MaxStringLen {
		return nil, &FieldError{name, "longer than 8 KiB"}
	}
	return s, nil
}

func (d *Decoder) number(name string) (b []byte, integer bool, err error) {
	if d.i >= len(d.b) {
		return nil, false, d.syntax("unexpected end of input")
	}
	c := d.b[d.i]
	if c != '-' && (c < '0' || c > '9') {
		return nil, false, &FieldError{name, "expected a number, got " + d.kind()}
	}
	start := d.i
	integer, ok := d.scanNumber()
	if !ok {
		return nil, false, d.syntax("malformed number")
	}
	return d.b[start:d.i], integer, nil
}

func (d *Decoder) intField(name string, lo, hi int64) (int64, error) {
	b, integer, err := d.number(name)
	if err != nil {
		return 0, err
	}
	neg := b[0] == '-'
	var n int64
	if integer {
		digits := b
		if neg {
			digits = b[1:]
		}
		for _, c := range digits {
			if n > (math.MaxInt64-int64(c-'0'))/10 {
				return 0, rangeError(name, lo, hi, neg, numTrunc(b))
			}
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
	} else {
		f, perr := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
		if perr == nil && f != math.Trunc(f) {
			return 0, &FieldError{name, "expected an integer, got " + numTrunc(b)}
		}
		if perr != nil || f < -9.2e18 || f > 9.2e18 {
			return 0, rangeError(name, lo, hi, neg, numTrunc(b))
		}
		n = int64(f)
	}
	if n < lo || n > hi {
		return 0, rangeError(name, lo, hi, n < 0, strconv.FormatInt(n, 10))
	}
	return n, nil
}

func (d *Decoder) floatField(name string, lo, hi float64) (float64, error) {
	b, _, err := d.number(name)
	if err != nil {
		return 0, err
	}
	f, perr := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	if perr != nil || math.IsInf(f, 0) {
		return 0, &FieldError{name, "out of range, got " + numTrunc(b)}
	}
	if f < lo || f > hi {
		if lo == 0 && f < 0 {
			return 0, &FieldError{name, "must not be negative, got " + strconv.FormatFloat(f, 'g', -1, 64)}
		}
		return 0, &FieldError{name, fmt.Sprintf("must be between %g and %g, got %g", lo, hi, f)}
	}
	return f, nil
}

// rangeError reports an integer outside [lo, hi]; got is how to show it.
func rangeError[T int64 | float64](name string, lo, hi T, negative bool, got string) error {
	if lo == 0 && negative {
		return &FieldError{name, "must not be negative, got " + got}
	}
	return &FieldError{name, fmt.Sprintf("must be between %v and %v, got %s", lo, hi, got)}
}

// keep copies b into the arena and returns it as a string. Arena chunks are
// append-only, so returned strings are never overwritten.
func (d *Decoder) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(d.arena)+len(b) > cap(d.arena) {
		d.arena = make([]byte, 0, max(arenaChunk, len(b)))
	}
	off := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[off], len(b))
}

func (d *Decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *Decoder) consume(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *Decoder) peekNull() bool {
	return len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null"
}

func (d *Decoder) syntax(reason string) error { return &SyntaxError{Offset: d.i, Reason: reason} }

func (d *Decoder) kind() string {
	if d.i >= len(d.b) {
		return "end of input"
	}
	switch c := d.b[d.i]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return "invalid JSON"
}

// str reads a JSON string at the cursor. Without escapes it returns a range
// of the line; with escapes, the unescaped bytes in scratch.
func (d *Decoder) str() ([]byte, error) {
	if !d.consume('"') {
		return nil, d.syntax("expected a string")
	}
	start := d.i
	d.i += plainRun(d.b[d.i:])
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s, nil
		case c == '\\':
			return d.strEscaped(start)
		case c < 0x20:
			return nil, d.syntax("control character in string")
		}
		d.i++
	}
	return nil, d.syntax("unterminated string")
}

// plainRun returns the length of the prefix of b that holds no '"', no
// '\\' and no control character: the part of a string that needs no care.
// It tests eight bytes at a time (SWAR), since strings are most of an
// event's bytes.
func plainRun(b []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	n := 0
	for len(b)-n >= 8 {
		x := binary.LittleEndian.Uint64(b[n:])
		q := x ^ ('"' * ones)
		e := x ^ ('\\' * ones)
		// A byte of the mask is set where x's byte is '"', '\\' or < 0x20;
		// borrows can only mark bytes above the first hit.
		m := ((q - ones) &^ q) | ((e - ones) &^ e) | ((x - 0x20*ones) &^ x)
		if m &= highs; m != 0 {
			return n + bits.TrailingZeros64(m)/8
		}
		n += 8
	}
	return n
}

func (d *Decoder) strEscaped(start int) ([]byte, error) {
	out, err := d.unescape(append(d.scratch[:0], d.b[start:d.i]...))
	// Keep the buffer also on error, so that token can wipe what it holds.
	d.scratch = out
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unescape appends the rest of the string at the cursor to out, unescaped,
// and returns out, also on error.
func (d *Decoder) unescape(out []byte) ([]byte, error) {
	out, n, closed, problem := jsonstr.Unescape(out, d.b[d.i:])
	d.i += n
	switch {
	case problem != "":
		return out, d.syntax(problem)
	case !closed:
		return out, d.syntax("unterminated string")
	}
	return out, nil
}

// scanNumber advances over a JSON number and reports whether it had neither
// fraction nor exponent.
func (d *Decoder) scanNumber() (integer, ok bool) {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false, false
		}
	}
	d.i = i
	return integer, true
}

// skip advances over any JSON value, checking its syntax.
// depth is the number of objects and arrays around the value, the event
// object included.
func (d *Decoder) skip(depth int) error {
	if d.i >= len(d.b) {
		return d.syntax("unexpected end of input")
	}
	switch c := d.b[d.i]; {
	case c == '"':
		_, err := d.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		if _, ok := d.scanNumber(); !ok {
			return d.syntax("malformed number")
		}
		return nil
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return d.syntax("nesting deeper than 64 levels")
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		d.i++
		d.ws()
		if d.consume(closer) {
			return nil
		}
		for {
			d.ws()
			if c == '{' {
				if _, err := d.str(); err != nil {
					return err
				}
				d.ws()
				if !d.consume(':') {
					return d.syntax("expected ':' after object key")
				}
				d.ws()
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.consume(',') {
				continue
			}
			if d.consume(closer) {
				return nil
			}
			return d.syntax("expected ',' or '" + string(closer) + "'")
		}
	}
	return d.syntax("invalid value")
}

func (d *Decoder) literal(lit string) error {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return nil
	}
	return d.syntax("invalid literal")
}

type fieldID uint8

const (
	fUnknown fieldID = iota
	fTimestamp
	fTokenID
	fToken
	fSourceIP
	fEndpoint
	fStatus
	fRequestID
	fMethod
	fPath
	fScope
	fLatency
	fPayload
	fRequestBytes
	fUserAgent
	fClientID
	fCountry
	fASN
	fLat
	fLon
)

func fieldOf(key []byte) fieldID {
	switch string(key) { // no allocation: the compiler compares in place
	case "timestamp":
		return fTimestamp
	case "token_id":
		return fTokenID
	case "token":
		return fToken
	case "source_ip":
		return fSourceIP
	case "endpoint":
		return fEndpoint
	case "status_code":
		return fStatus
	case "request_id":
		return fRequestID
	case "method":
		return fMethod
	case "path":
		return fPath
	case "scope_used":
		return fScope
	case "latency_ms":
		return fLatency
	case "payload_bytes":
		return fPayload
	case "request_bytes":
		return fRequestBytes
	case "user_agent":
		return fUserAgent
	case "client_id":
		return fClientID
	case "country":
		return fCountry
	case "asn":
		return fASN
	case "lat":
		return fLat
	case "lon":
		return fLon
	}
	return fUnknown
}

// countryCode upper-cases a two-letter code, returning a constant string so
// the result needs no allocation.
func countryCode(s []byte) (string, bool) {
	if len(s) != 2 {
		return "", false
	}
	a, b := s[0]&^0x20, s[1]&^0x20
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return "", false
	}
	i := (int(a-'A')*26 + int(b-'A')) * 2
	return alpha2[i : i+2], true
}

var alpha2 = func() string {
	b := make([]byte, 0, 26*26*2)
	for a := byte('A'); a <= 'Z'; a++ {
		for c := byte('A'); c <= 'Z'; c++ {
			b = append(b, a, c)
		}
	}
	return string(b)
}()

// numTrunc returns the JSON number b for an error message, cut to 64 bytes.
func numTrunc(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// quoteTrunc quotes b for an error message, cut to 64 bytes.
func quoteTrunc(b []byte) string {
	if len(b) > 64 {
		return strconv.Quote(string(b[:64])) + "…"
	}
	return strconv.Quote(string(b))
}
