package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/event"
)

// FuzzDecode checks that the decoder never panics and, for every line:
//   - if it accepts the line, encoding/json.Valid does too, the required
//     fields are set, and the event is what refDecode (encoding/json's
//     decoder plus the contract's rules) makes of it;
//   - if refDecode accepts the line, so does the decoder, unless the line
//     nests deeper than the decoder's limit;
//   - decoding the same line again gives the same event or the same error.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add([]byte(tt.line))
	}
	for _, tt := range decodeErrorTests {
		if len(tt.line) < 4096 {
			f.Add([]byte(tt.line))
		}
	}
	f.Add([]byte(line("token_id", "-", "token", `"s3cr3t\u002dTOKEN"`)))
	f.Add([]byte(line("token_id", "-", "token", `"s3cr3t"`, "token", `null`, "token_id", `"x"`)))
	fp := newFP(f)
	d := event.NewDecoder(fp)
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		var ev event.Event
		err := d.Decode(bytes.Clone(orig), &ev)

		var again event.Event
		err2 := d.Decode(bytes.Clone(orig), &again)
		if fmt.Sprint(err) != fmt.Sprint(err2) || again != ev {
			t.Fatalf("decoding %s twice differs:\n%v %s\n%v %s", short(orig), err, short(ev), err2, short(again))
		}

		if err == nil {
			if !json.Valid(orig) {
				t.Fatalf("Decode accepts %s, which is not valid JSON", short(orig))
			}
			checkRequired(t, orig, &ev)
		} else {
			var fe *event.FieldError
			var se *event.SyntaxError
			if !errors.As(err, &fe) && !errors.As(err, &se) && !errors.Is(err, event.ErrNoFingerprinter) {
				t.Fatalf("Decode(%s): error of type %T: %v", short(orig), err, err)
			}
		}

		// encoding/json replaces invalid UTF-8 with U+FFFD, which could
		// take a string over a length limit where Decode's is not: give
		// the reference a '~' for each invalid byte instead, which Decode
		// treats the same way in every place, and compare events only for
		// valid UTF-8.
		want, rerr := refDecode(fp, tildeInvalid(orig))
		switch {
		case err == nil && rerr != nil:
			t.Fatalf("Decode accepts %s, the reference rejects it: %v\nevent %s", short(orig), rerr, short(ev))
		case err != nil && rerr == nil:
			var se *event.SyntaxError
			if errors.As(err, &se) && strings.Contains(se.Reason, "nesting") {
				return
			}
			t.Fatalf("Decode rejects %s (%v), the reference accepts it:\n%s", short(orig), err, short(want))
		case err == nil && utf8.Valid(orig) && ev != want:
			t.Fatalf("Decode(%s)\n got %s\nwant %s (reference)", short(orig), short(ev), short(want))
		}
	})
}

// tildeInvalid returns b with each byte that is not part of valid UTF-8
// replaced by '~'.
func tildeInvalid(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = append(out, '~')
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// short formats v for a failure message, cut to 500 bytes.
func short(v any) string {
	var s string
	if b, ok := v.([]byte); ok {
		s = strconv.Quote(string(b))
	} else {
		s = fmt.Sprintf("%+v", v)
	}
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

func checkRequired(t *testing.T, line []byte, ev *event.Event) {
	t.Helper()
	switch {
	case ev.TokenID == "":
		t.Fatalf("Decode(%s): no TokenID", short(line))
	case !ev.SourceIP.IsValid() || ev.SourceIP.Zone() != "" || ev.SourceIP.Is4In6():
		t.Fatalf("Decode(%s): SourceIP %v", short(line), ev.SourceIP)
	case ev.Endpoint == "":
		t.Fatalf("Decode(%s): no Endpoint", short(line))
	case ev.Status < 100 || ev.Status > 599:
		t.Fatalf("Decode(%s): Status %d", short(line), ev.Status)
	case ev.Has&event.HasCountry != 0 && (len(ev.Country) != 2 || strings.ToUpper(ev.Country) != ev.Country):
		t.Fatalf("Decode(%s): Country %q", short(line), ev.Country)
	case ev.Has&event.HasASN != 0 && ev.ASN == 0:
		t.Fatalf("Decode(%s): ASN 0 marked present", short(line))
	}
}

// refDecode is an independent reading of the event contract on top of
// encoding/json's decoder: each key's value is checked in order and the
// last one wins, null meaning absent.
func refDecode(fp *event.Fingerprinter, line []byte) (event.Event, error) {
	var ev event.Event
	if len(line) > event.MaxLineBytes {
		return ev, errors.New("line too long")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ev, fmt.Errorf("not an object: %v %v", tok, err)
	}
	last := map[string]any{} // key → parsed value; nil for null
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ev, err
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ev, err
		}
		if string(raw) == "null" {
			last[key] = nil
			continue
		}
		v, err := refValue(fp, key, raw)
		if err != nil {
			return ev, fmt.Errorf("%s: %w", key, err)
		}
		last[key] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return ev, fmt.Errorf("object not closed: %v %v", tok, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ev, fmt.Errorf("data after the object: %v", err)
	}

	str := func(k string) (string, bool) { s, ok := last[k].(string); return s, ok }
	num := func(k string) (float64, bool) { f, ok := last[k].(float64); return f, ok }
	integer := func(k string) (int64, bool) { n, ok := last[k].(int64); return n, ok }

	t, ok := integer("timestamp")
	if !ok {
		return ev, errors.New("no timestamp")
	}
	ev.Time = t
	id, haveID := str("token_id")
	fpID, haveToken := str("token")
	switch {
	case haveID && haveToken:
		return ev, errors.New("token and token_id")
	case haveID:
		ev.TokenID = id
	case haveToken:
		ev.TokenID = fpID
	default:
		return ev, errors.New("no token")
	}
	a, ok := last["source_ip"].(netip.Addr)
	if !ok {
		return ev, errors.New("no source_ip")
	}
	ev.SourceIP = a
	if ev.Endpoint, ok = str("endpoint"); !ok {
		return ev, errors.New("no endpoint")
	}
	st, ok := integer("status_code")
	if !ok {
		return ev, errors.New("no status_code")
	}
	ev.Status = int(st)

	for _, o := range []struct {
		key string
		dst *string
		bit event.Field
	}{
		{"request_id", &ev.RequestID, event.HasRequestID},
		{"method", &ev.Method, event.HasMethod},
		{"path", &ev.Path, event.HasPath},
		{"scope_used", &ev.Scope, event.HasScope},
		{"user_agent", &ev.UserAgent, event.HasUserAgent},
		{"client_id", &ev.ClientID, event.HasClientID},
	} {
		if s, ok := str(o.key); ok {
			*o.dst = s
			ev.Has |= o.bit
		}
	}
	if c, ok := str("country"); ok && c != "" {
		ev.Country, ev.Has = c, ev.Has|event.HasCountry
	}
	if f, ok := num("latency_ms"); ok {
		ev.LatencyMS, ev.Has = f, ev.Has|event.HasLatency
	}
	if n, ok := integer("payload_bytes"); ok {
		ev.PayloadBytes, ev.Has = n, ev.Has|event.HasPayloadBytes
	}
	if n, ok := integer("request_bytes"); ok {
		ev.RequestBytes, ev.Has = n, ev.Has|event.HasRequestBytes
	}
	if n, ok := integer("asn"); ok && n != 0 {
		ev.ASN, ev.Has = uint32(n), ev.Has|event.HasASN
	}
	lat, hasLat := num("lat")
	lon, hasLon := num("lon")
	if hasLat != hasLon {
		return ev, errors.New("lat xor lon")
	}
	if hasLat {
		ev.Lat, ev.Lon, ev.Has = lat, lon, ev.Has|event.HasGeo
	}
	return ev, nil
}

// refValue checks one non-null value of a known key; unknown keys are
// valid whatever their value.
func refValue(fp *event.Fingerprinter, key string, raw json.RawMessage) (any, error) {
	asString := func() (string, error) {
		if raw[0] != '"' {
			return "", errors.New("not a string")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		if len(s) > event.MaxStringLen {
			return "", errors.New("too long")
		}
		return s, nil
	}
	asNumber := func(lo, hi float64) (float64, error) {
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return 0, errors.New("not a number")
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || f < lo || f > hi {
			return 0, fmt.Errorf("%s out of range", raw)
		}
		return f, nil
	}
	asInt := func(lo, hi int64) (int64, error) {
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return 0, errors.New("not a number")
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil && !bytes.ContainsAny(raw, ".eE") {
			return 0, err // an integer outside int64
		}
		if err != nil {
			f, ferr := strconv.ParseFloat(string(raw), 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 9.2e18 {
				return 0, fmt.Errorf("%s is not an int64", raw)
			}
			n = int64(f)
		}
		if n < lo || n > hi {
			return 0, fmt.Errorf("%d out of range", n)
		}
		return n, nil
	}
	switch key {
	case "timestamp":
		s, err := asString()
		if err != nil {
			return nil, err
		}
		t, ok := event.ParseRFC3339([]byte(s)) // fuzzed on its own
		if !ok {
			return nil, errors.New("bad time")
		}
		return t, nil
	case "token_id":
		s, err := asString()
		if err == nil && (s == "" || len(s) > 512) {
			err = errors.New("bad length")
		}
		return s, err
	case "token":
		if raw[0] != '"' {
			return nil, errors.New("not a string")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if s == "" {
			return nil, errors.New("empty token")
		}
		return fp.ID(event.Secret(s)), nil
	case "source_ip":
		s, err := asString()
		if err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		return a.Unmap().WithZone(""), nil
	case "endpoint":
		s, err := asString()
		if err == nil && s == "" {
			err = errors.New("empty")
		}
		return s, err
	case "status_code":
		return asInt(100, 599)
	case "request_id", "method", "path", "scope_used", "user_agent", "client_id":
		return asString()
	case "country":
		s, err := asString()
		if err != nil || s == "" {
			return s, err
		}
		c := strings.ToUpper(s)
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || !strings.EqualFold(s, c) {
			return nil, errors.New("bad country")
		}
		return c, nil
	case "latency_ms":
		return asNumber(0, math.MaxFloat64)
	case "payload_bytes", "request_bytes":
		return asInt(0, math.MaxInt64)
	case "asn":
		return asInt(0, math.MaxUint32)
	case "lat":
		return asNumber(-90, 90)
	case "lon":
		return asNumber(-180, 180)
	}
	return nil, nil
}

// TestReference runs the decode tables through refDecode, so that the
// fuzzer's oracle is itself checked.
func TestReference(t *testing.T) {
	fp := newFP(t)
	for _, tt := range decodeTests {
		if !utf8.ValidString(tt.line) {
			continue
		}
		got, err := refDecode(fp, []byte(tt.line))
		if err != nil {
			t.Errorf("%s: reference rejects %s: %v", tt.name, tt.line, err)
		} else if got != tt.want {
			t.Errorf("%s: reference\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	for _, tt := range decodeErrorTests {
		if strings.Contains(tt.msg, "nesting") {
			continue
		}
		if _, err := refDecode(fp, []byte(tt.line)); err == nil {
			t.Errorf("%s: reference accepts %.200s", tt.name, tt.line)
		}
	}
}
