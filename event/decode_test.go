package event_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testKey is the fingerprint key of the tests.
var testKey = []byte("vigil-test-key-0123456789abcdef")

// idOf is the fingerprint of raw under testKey.
func idOf(raw string) string {
	fp, err := event.NewFingerprinter(testKey)
	if err != nil {
		panic(err)
	}
	return fp.ID(event.Secret(raw))
}

func newFP(tb testing.TB) *event.Fingerprinter {
	tb.Helper()
	fp, err := event.NewFingerprinter(testKey)
	if err != nil {
		tb.Fatal(err)
	}
	return fp
}

// required are the fields every event needs, in the order line writes them.
var required = [][2]string{
	{"timestamp", `"2026-03-14T09:26:53Z"`},
	{"token_id", `"tk_abc"`},
	{"source_ip", `"203.0.113.42"`},
	{"endpoint", `"/v1/accounts/{id}"`},
	{"status_code", `200`},
}

// line returns a JSON object of the required fields, changed by kv: pairs
// of a key and a raw JSON value. A key that is required replaces that
// field's value in place, or drops the field if the value is "-"; any other
// key is appended, in order, so a key may be given twice.
func line(kv ...string) string {
	if len(kv)%2 != 0 {
		panic("line: odd number of arguments")
	}
	fields := append([][2]string(nil), required...)
next:
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		for j := range fields[:len(required)] {
			if fields[j][0] == k && j < len(required) {
				fields[j][1] = v
				continue next
			}
		}
		fields = append(fields, [2]string{k, v})
	}
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for _, f := range fields {
		if f[1] == "-" {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		fmt.Fprintf(&b, "%q:%s", f[0], f[1])
	}
	b.WriteByte('}')
	return b.String()
}

// base is the event that line() decodes to.
func base() event.Event {
	return event.Event{
		Time:     time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC).UnixNano(),
		TokenID:  "tk_abc",
		SourceIP: netip.MustParseAddr("203.0.113.42"),
		Endpoint: "/v1/accounts/{id}",
		Status:   200,
	}
}

func with(f func(*event.Event)) event.Event {
	ev := base()
	f(&ev)
	return ev
}

const fullLine = `{"timestamp":"2026-03-14T09:26:53.589Z","request_id":"req-7f3a9c2e51",` +
	`"token_id":"tk_9f2c41d07ab3e6","source_ip":"203.0.113.42","method":"GET",` +
	`"endpoint":"/v1/accounts/{id}","path":"/v1/accounts/829311","status_code":200,` +
	`"scope_used":"accounts:read","latency_ms":42.7,"payload_bytes":1834,"request_bytes":17,` +
	`"user_agent":"okhttp/4.12.0","client_id":"mobile-android","country":"de","asn":3320,` +
	`"lat":52.52,"lon":13.405}`

var decodeTests = []struct {
	name string
	line string
	want event.Event
}{
	{"minimal", line(), base()},
	{"every field", fullLine, event.Event{
		Time:         time.Date(2026, 3, 14, 9, 26, 53, 589e6, time.UTC).UnixNano(),
		TokenID:      "tk_9f2c41d07ab3e6",
		SourceIP:     netip.MustParseAddr("203.0.113.42"),
		Endpoint:     "/v1/accounts/{id}",
		Status:       200,
		RequestID:    "req-7f3a9c2e51",
		Method:       "GET",
		Path:         "/v1/accounts/829311",
		Scope:        "accounts:read",
		UserAgent:    "okhttp/4.12.0",
		ClientID:     "mobile-android",
		Country:      "DE",
		LatencyMS:    42.7,
		PayloadBytes: 1834,
		RequestBytes: 17,
		ASN:          3320,
		Lat:          52.52,
		Lon:          13.405,
		Has: event.HasRequestID | event.HasMethod | event.HasPath | event.HasScope |
			event.HasLatency | event.HasPayloadBytes | event.HasRequestBytes | event.HasUserAgent |
			event.HasClientID | event.HasCountry | event.HasASN | event.HasGeo,
	}},
	{"empty optional strings are present", line("method", `""`, "user_agent", `""`),
		with(func(e *event.Event) { e.Has = event.HasMethod | event.HasUserAgent })},

	// Timestamps.
	{"timestamp with offset", line("timestamp", `"2026-03-14T11:26:53+02:00"`), base()},
	{"timestamp negative offset", line("timestamp", `"2026-03-14T04:56:53-04:30"`), base()},
	{"timestamp nanoseconds", line("timestamp", `"2026-03-14T09:26:53.000000001Z"`),
		with(func(e *event.Event) { e.Time++ })},
	{"timestamp beyond nanoseconds truncated", line("timestamp", `"2026-03-14T09:26:53.0000000019Z"`),
		with(func(e *event.Event) { e.Time++ })},
	{"timestamp lower-case t and z", line("timestamp", `"2026-03-14t09:26:53z"`), base()},
	{"timestamp space separator", line("timestamp", `"2026-03-14 09:26:53Z"`), base()},
	{"timestamp leap day", line("timestamp", `"2024-02-29T00:00:00Z"`),
		with(func(e *event.Event) { e.Time = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).UnixNano() })},
	{"timestamp before 1970", line("timestamp", `"1969-12-31T23:59:59.5Z"`),
		with(func(e *event.Event) { e.Time = -5e8 })},

	// Addresses.
	{"ipv6", line("source_ip", `"2001:db8::1"`),
		with(func(e *event.Event) { e.SourceIP = netip.MustParseAddr("2001:db8::1") })},
	{"ipv4-mapped ipv6 unmapped", line("source_ip", `"::ffff:192.0.2.7"`),
		with(func(e *event.Event) { e.SourceIP = netip.MustParseAddr("192.0.2.7") })},
	{"ipv6 zone dropped", line("source_ip", `"fe80::1%eth0"`),
		with(func(e *event.Event) { e.SourceIP = netip.MustParseAddr("fe80::1") })},
	{"mapped with zone", line("source_ip", `"::ffff:10.0.0.1%eth0"`),
		with(func(e *event.Event) { e.SourceIP = netip.MustParseAddr("10.0.0.1") })},

	// Geography.
	{"country upper-cased", line("country", `"fR"`),
		with(func(e *event.Event) { e.Country, e.Has = "FR", event.HasCountry })},
	{"empty country is unknown", line("country", `""`), base()},
	{"asn 0 is unknown", line("asn", `0`), base()},
	{"asn max", line("asn", `4294967295`),
		with(func(e *event.Event) { e.ASN, e.Has = math.MaxUint32, event.HasASN })},
	{"lat and lon at the edges", line("lat", `-90`, "lon", `180`),
		with(func(e *event.Event) { e.Lat, e.Lon, e.Has = -90, 180, event.HasGeo })},
	{"lat and lon null", line("lat", `null`, "lon", `null`), base()},

	// Numbers.
	{"status as float with zero fraction", line("status_code", `404.0`),
		with(func(e *event.Event) { e.Status = 404 })},
	{"status with exponent", line("status_code", `4.04e2`),
		with(func(e *event.Event) { e.Status = 404 })},
	{"byte counts as floats", line("payload_bytes", `1200.0`, "request_bytes", `1.2E3`),
		with(func(e *event.Event) {
			e.PayloadBytes, e.RequestBytes, e.Has = 1200, 1200, event.HasPayloadBytes|event.HasRequestBytes
		})},
	{"zero and negative zero", line("payload_bytes", `0`, "request_bytes", `-0`, "latency_ms", `-0.0`),
		with(func(e *event.Event) { e.Has = event.HasPayloadBytes | event.HasRequestBytes | event.HasLatency })},
	{"largest byte count", line("payload_bytes", `9223372036854775807`),
		with(func(e *event.Event) { e.PayloadBytes, e.Has = math.MaxInt64, event.HasPayloadBytes })},
	{"latency integer", line("latency_ms", `12`),
		with(func(e *event.Event) { e.LatencyMS, e.Has = 12, event.HasLatency })},
	{"latency tiny underflows to zero", line("latency_ms", `1e-400`),
		with(func(e *event.Event) { e.Has = event.HasLatency })},

	// Unknown fields.
	{"unknown scalars ignored", line("x", `1`, "y", `"s"`, "z", `true`, "w", `false`, "v", `null`, "u", `-1.5e-3`), base()},
	{"unknown nested values ignored",
		line("obj", `{"timestamp":"not a time","a":[1,{"b":null}],"c":{}}`, "arr", `[[],{},"x",[1,[2,[3]]]]`), base()},
	{"keys are case-sensitive", line("Status_Code", `"not a number"`, "METHOD", `1`), base()},
	{"unknown key with escapes", line(`k\u00e9y`, `1`), base()},

	// null means absent.
	{"null optional fields", line("method", `null`, "path", `null`, "asn", `null`, "country", `null`), base()},
	{"token null with token_id", line("token", `null`), base()},

	// Duplicate keys: the last one wins.
	{"duplicate status", line("status_code", `200`, "status_code", `404`),
		with(func(e *event.Event) { e.Status = 404 })},
	{"duplicate method", line("method", `"GET"`, "method", `"POST"`),
		with(func(e *event.Event) { e.Method, e.Has = "POST", event.HasMethod })},
	{"later null removes", line("method", `"GET"`, "method", `null`, "asn", `12`, "asn", `null`), base()},
	{"later empty country removes", line("country", `"DE"`, "country", `""`), base()},
	{"later asn 0 removes", line("asn", `64500`, "asn", `0`), base()},
	{"required given twice", line("endpoint", `"/a"`, "endpoint", `"/b"`),
		with(func(e *event.Event) { e.Endpoint = "/b" })},
	{"token_id removed before token", line("token_id", `"tk_x"`, "token_id", `null`, "token", `"s3cr3t"`),
		with(func(e *event.Event) { e.TokenID = idOf("s3cr3t") })},
	{"lat removed", line("lat", `10`, "lat", `null`), base()},

	// Strings.
	{"escapes", line("path", `"\"\\\/\b\f\n\r\t"`),
		with(func(e *event.Event) { e.Path, e.Has = "\"\\/\b\f\n\r\t", event.HasPath })},
	{"unicode escapes", line("user_agent", `"caf\u00e9 \u20AC \u0000"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = "café € \x00", event.HasUserAgent })},
	{"surrogate pair", line("user_agent", `"\ud83d\ude00"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = "😀", event.HasUserAgent })},
	{"lone high surrogate", line("user_agent", `"a\ud83db"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = "a\uFFFDb", event.HasUserAgent })},
	{"lone low surrogate", line("user_agent", `"\ude00"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = "\uFFFD", event.HasUserAgent })},
	{"high surrogate then non-surrogate escape", line("user_agent", `"\ud83d\u0041"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = "\uFFFDA", event.HasUserAgent })},
	{"two high surrogates then low", line("user_agent", `"\ud83d\ud83d\ude00"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = "\uFFFD😀", event.HasUserAgent })},
	{"raw utf-8", line("user_agent", `"Zürich 東京"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = "Zürich 東京", event.HasUserAgent })},
	// Invalid UTF-8 is kept byte for byte: the engine hashes it, and the
	// decision writer (decision.AppendString) replaces it on output.
	{"invalid utf-8 kept as is", line("user_agent", "\"a\xffb\xc3\""),
		with(func(e *event.Event) { e.UserAgent, e.Has = "a\xffb\xc3", event.HasUserAgent })},
	{"escaped key", `{"time\u0073tamp":"2026-03-14T09:26:53Z","token_id":"tk_abc","source_ip":"203.0.113.42","endpoint":"/v1/accounts/{id}","status_code":200}`,
		base()},
	{"escaped slash in endpoint", line("endpoint", `"\/v1\/accounts\/{id}"`), base()},
	{"token_id of 512 bytes", line("token_id", `"`+strings.Repeat("t", 512)+`"`),
		with(func(e *event.Event) { e.TokenID = strings.Repeat("t", 512) })},
	{"string of 8 KiB", line("user_agent", `"`+strings.Repeat("u", event.MaxStringLen)+`"`),
		with(func(e *event.Event) { e.UserAgent, e.Has = strings.Repeat("u", event.MaxStringLen), event.HasUserAgent })},

	// Layout.
	{"whitespace everywhere", " \t\r\n{ \"timestamp\" :\t\"2026-03-14T09:26:53Z\" ,\n\"token_id\"\r:\"tk_abc\", \"source_ip\": \"203.0.113.42\" , \"endpoint\" : \"/v1/accounts/{id}\", \"status_code\" : 200 \t}\r\n",
		base()},
	{"fields in any order", `{"status_code":200,"endpoint":"/v1/accounts/{id}","source_ip":"203.0.113.42","token_id":"tk_abc","timestamp":"2026-03-14T09:26:53Z"}`,
		base()},
}

func TestDecode(t *testing.T) {
	d := event.NewDecoder(newFP(t))
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			var ev event.Event
			if err := d.Decode([]byte(tt.line), &ev); err != nil {
				t.Fatalf("Decode(%s): %v", tt.line, err)
			}
			if ev != tt.want {
				t.Errorf("Decode(%s)\n got %+v\nwant %+v", tt.line, ev, tt.want)
			}
		})
	}
}

// Kinds of error in decodeErrorTests.
const syntaxErr = "<syntax>"

var decodeErrorTests = []struct {
	name  string
	line  string
	field string // FieldError.Field, or syntaxErr for a *SyntaxError
	msg   string // in the error text
}{
	// Not an object.
	{"empty line", ``, syntaxErr, "at byte 0: expected '{'"},
	{"blank line", "  \n", syntaxErr, "expected '{'"},
	{"array", `[]`, syntaxErr, "expected '{'"},
	{"string", `"x"`, syntaxErr, "expected '{'"},
	{"null", `null`, syntaxErr, "expected '{'"},
	{"byte order mark", "\ufeff" + line(), syntaxErr, "at byte 0: expected '{'"},

	// Missing required fields.
	{"empty object", `{}`, "timestamp", "missing required field"},
	{"missing timestamp", line("timestamp", "-"), "timestamp", "missing required field"},
	{"missing token", line("token_id", "-"), "token_id", "missing required field (give token_id or token)"},
	{"missing source_ip", line("source_ip", "-"), "source_ip", "missing required field"},
	{"missing endpoint", line("endpoint", "-"), "endpoint", "missing required field"},
	{"missing status_code", line("status_code", "-"), "status_code", "missing required field"},
	{"null timestamp", line("timestamp", "null"), "timestamp", "missing required field"},
	{"null token_id", line("token_id", "null"), "token_id", "missing required field"},
	{"token_id and token null", line("token_id", "null", "token", "null"), "token_id", "missing required field"},
	{"required removed by later null", line("endpoint", `null`), "endpoint", "missing required field"},
	{"status removed by later null", line("status_code", `200`, "status_code", `null`), "status_code", "missing required field"},
	{"key case matters", line("timestamp", "-", "Timestamp", `"2026-03-14T09:26:53Z"`), "timestamp", "missing required field"},

	// timestamp.
	{"timestamp number", line("timestamp", `1710408413`), "timestamp", "expected a string, got a number"},
	{"timestamp object", line("timestamp", `{}`), "timestamp", "expected a string, got an object"},
	{"timestamp words", line("timestamp", `"yesterday"`), "timestamp", `cannot parse "yesterday" as an RFC 3339 date-time`},
	{"timestamp no zone", line("timestamp", `"2026-03-14T09:26:53"`), "timestamp", "cannot parse"},
	{"timestamp leap second", line("timestamp", `"2016-12-31T23:59:60Z"`), "timestamp", "cannot parse"},
	{"timestamp feb 30", line("timestamp", `"2026-02-30T00:00:00Z"`), "timestamp", "cannot parse"},
	{"timestamp offset without colon", line("timestamp", `"2026-03-14T09:26:53+0200"`), "timestamp", "cannot parse"},
	{"timestamp long value truncated", line("timestamp", `"`+strings.Repeat("9", 100)+`"`), "timestamp", `"` + strings.Repeat("9", 64) + `"…`},
	{"timestamp year 3000", line("timestamp", `"3000-01-01T00:00:00Z"`), "timestamp", "cannot parse"},

	// token_id and token.
	{"token_id number", line("token_id", `12`), "token_id", "expected a string, got a number"},
	{"token_id empty", line("token_id", `""`), "token_id", "must be 1 to 512 bytes"},
	{"token_id too long", line("token_id", `"`+strings.Repeat("t", 513)+`"`), "token_id", "must be 1 to 512 bytes"},
	{"token_id then token", line("token", `"s3cr3t"`), "token", "give either token_id or token, not both"},
	{"token then token_id", line("token_id", "-", "token", `"s3cr3t"`, "token_id", `"tk_abc"`), "token", "give either token_id or token, not both"},
	{"token empty", line("token_id", "-", "token", `""`), "token", "must not be empty"},
	{"token number", line("token_id", "-", "token", `12345`), "token", "expected a string, got a number"},

	// source_ip.
	{"source_ip not an address", line("source_ip", `"300.1.2.3"`), "source_ip", `cannot parse "300.1.2.3" as an IP address`},
	{"source_ip empty", line("source_ip", `""`), "source_ip", `cannot parse "" as an IP address`},
	{"source_ip with port", line("source_ip", `"203.0.113.42:443"`), "source_ip", "as an IP address"},
	{"source_ip number", line("source_ip", `3405803818`), "source_ip", "expected a string, got a number"},

	// endpoint.
	{"endpoint empty", line("endpoint", `""`), "endpoint", "must not be empty"},
	{"endpoint array", line("endpoint", `["/a"]`), "endpoint", "expected a string, got an array"},

	// status_code.
	{"status 99", line("status_code", `99`), "status_code", "must be between 100 and 599, got 99"},
	{"status 600", line("status_code", `600`), "status_code", "must be between 100 and 599, got 600"},
	{"status negative", line("status_code", `-200`), "status_code", "must be between 100 and 599, got -200"},
	{"status string", line("status_code", `"200"`), "status_code", "expected a number, got a string"},
	{"status boolean", line("status_code", `true`), "status_code", "expected a number, got a boolean"},
	{"status fraction", line("status_code", `200.5`), "status_code", "expected an integer, got 200.5"},
	{"status huge", line("status_code", `99999999999999999999`), "status_code", "must be between 100 and 599, got 99999999999999999999"},
	{"status huge negative", line("status_code", `-99999999999999999999`), "status_code", "must be between 100 and 599, got -99999999999999999999"},
	{"payload huge negative", line("payload_bytes", `-99999999999999999999`), "payload_bytes", "must not be negative, got -99999999999999999999"},
	{"huge number cut in message", line("asn", strings.Repeat("9", 100)), "asn", "got " + strings.Repeat("9", 64) + "…"},
	{"status huge float", line("status_code", `1e400`), "status_code", "must be between 100 and 599, got 1e400"},
	{"status bad literal", line("status_code", `nul`), "status_code", "expected a number, got invalid JSON"},

	// Optional strings.
	{"request_id number", line("request_id", `1`), "request_id", "expected a string, got a number"},
	{"method boolean", line("method", `false`), "method", "expected a string, got a boolean"},
	{"path object", line("path", `{}`), "path", "expected a string, got an object"},
	{"scope_used array", line("scope_used", `[]`), "scope_used", "expected a string, got an array"},
	{"user_agent number", line("user_agent", `5`), "user_agent", "expected a string, got a number"},
	{"client_id boolean", line("client_id", `true`), "client_id", "expected a string, got a boolean"},
	{"string over 8 KiB", line("user_agent", `"`+strings.Repeat("u", event.MaxStringLen+1)+`"`), "user_agent", "longer than 8 KiB"},
	{"escaped string over 8 KiB", line("path", `"\n`+strings.Repeat("p", event.MaxStringLen)+`"`), "path", "longer than 8 KiB"},

	// country.
	{"country three letters", line("country", `"DEU"`), "country", `must be an ISO 3166-1 alpha-2 code such as "DE", got "DEU"`},
	{"country digit", line("country", `"D1"`), "country", `got "D1"`},
	{"country non-ascii", line("country", `"DÉ"`), "country", "alpha-2"},
	{"country number", line("country", `49`), "country", "expected a string, got a number"},

	// Numbers.
	{"latency negative", line("latency_ms", `-1`), "latency_ms", "must not be negative, got -1"},
	{"latency string", line("latency_ms", `"12ms"`), "latency_ms", "expected a number, got a string"},
	{"latency huge", line("latency_ms", `1e400`), "latency_ms", "out of range, got 1e400"},
	{"payload negative", line("payload_bytes", `-1`), "payload_bytes", "must not be negative, got -1"},
	{"payload fraction", line("payload_bytes", `12.5`), "payload_bytes", "expected an integer, got 12.5"},
	{"payload over int64", line("payload_bytes", `9223372036854775808`), "payload_bytes", "must be between 0 and 9223372036854775807, got 9223372036854775808"},
	{"payload float over int64", line("payload_bytes", `1e19`), "payload_bytes", "must be between 0 and 9223372036854775807, got 1e19"},
	{"request_bytes negative", line("request_bytes", `-4096`), "request_bytes", "must not be negative, got -4096"},
	{"request_bytes negative float", line("request_bytes", `-1.0`), "request_bytes", "must not be negative, got -1"},
	{"asn negative", line("asn", `-1`), "asn", "must not be negative, got -1"},
	{"asn over 32 bits", line("asn", `4294967296`), "asn", "must be between 0 and 4294967295, got 4294967296"},
	{"asn fraction", line("asn", `3320.5`), "asn", "expected an integer"},
	{"asn string", line("asn", `"AS3320"`), "asn", "expected a number, got a string"},

	// lat and lon.
	{"lat over 90", line("lat", `90.5`, "lon", `0`), "lat", "must be between -90 and 90, got 90.5"},
	{"lon under -180", line("lat", `0`, "lon", `-181`), "lon", "must be between -180 and 180, got -181"},
	{"lat without lon", line("lat", `10`), "lon", "lat is given without lon"},
	{"lon without lat", line("lon", `10`), "lat", "lon is given without lat"},
	{"lon removed", line("lat", `1`, "lon", `2`, "lon", `null`), "lon", "lat is given without lon"},
	{"lat string", line("lat", `"52.5"`, "lon", `13.4`), "lat", "expected a number, got a string"},

	// Syntax.
	{"trailing comma", `{"a":1,}`, syntaxErr, "expected a string"},
	{"missing colon", `{"a" 1}`, syntaxErr, "expected ':' after object key"},
	{"missing comma", `{"a":1 "b":2}`, syntaxErr, "expected ',' or '}' after object value"},
	{"unquoted key", `{a:1}`, syntaxErr, "at byte 1: expected a string"},
	{"single quotes", `{'a':1}`, syntaxErr, "expected a string"},
	{"unterminated object", `{"a":1`, syntaxErr, "expected ',' or '}'"},
	{"unterminated string", `{"a":"b`, syntaxErr, "unterminated string"},
	{"unterminated escaped string", `{"a":"b\n`, syntaxErr, "unterminated string"},
	{"backslash at end", `{"a":"b\`, syntaxErr, "unterminated string"},
	{"control character in string", "{\"a\":\"b\tc\"}", syntaxErr, "control character in string"},
	{"control character after escape", "{\"a\":\"\\nb\tc\"}", syntaxErr, "control character in string"},
	{"control character in known field", line("method", "\"G\x00T\""), syntaxErr, "control character in string"},
	{"invalid escape", `{"a":"\x41"}`, syntaxErr, "invalid escape in string"},
	{"short unicode escape", `{"a":"\u12"}`, syntaxErr, `malformed \u escape`},
	{"bad hex in unicode escape", `{"a":"\u12G4"}`, syntaxErr, `malformed \u escape`},
	{"bad low surrogate escape", `{"a":"\ud83d\uZZZZ"}`, syntaxErr, `malformed \u escape`},
	{"leading zero", `{"a":01}`, syntaxErr, "expected ',' or '}'"},
	{"bare minus", `{"a":-}`, syntaxErr, "malformed number"},
	{"fraction without digits", `{"a":1.}`, syntaxErr, "malformed number"},
	{"exponent without digits", `{"a":1e+}`, syntaxErr, "malformed number"},
	{"plus sign", `{"a":+1}`, syntaxErr, "invalid value"},
	{"known number malformed", line("status_code", `2.`), syntaxErr, "malformed number"},
	{"invalid literal", `{"a":tru}`, syntaxErr, "invalid literal"},
	{"NaN", `{"a":NaN}`, syntaxErr, "invalid value"},
	{"null prefix", line("method", `nullx`), syntaxErr, "expected ',' or '}' after object value"},
	{"bad nested array", `{"a":[1,]}`, syntaxErr, "invalid value"},
	{"bad nested object", `{"a":{"b":1,}}`, syntaxErr, "expected a string"},
	{"nested missing colon", `{"a":{"b"}}`, syntaxErr, "expected ':' after object key"},
	{"nested wrong closer", `{"a":[1}`, syntaxErr, "expected ',' or ']'"},
	{"value missing", `{"a":}`, syntaxErr, "invalid value"},
	{"trailing data", line() + ` x`, syntaxErr, "unexpected data after the object"},
	{"two objects", line() + line(), syntaxErr, "unexpected data after the object"},
	{"too deep", line("deep", strings.Repeat("[", 64)+strings.Repeat("]", 64)), syntaxErr, "nesting deeper than 64 levels"},
	{"too deep objects", line("deep", strings.Repeat(`{"a":`, 64)+"1"+strings.Repeat("}", 64)), syntaxErr, "nesting deeper than 64 levels"},
	{"line too long", line("pad", `"`+strings.Repeat(" ", event.MaxLineBytes)+`"`), syntaxErr, "line longer than 1 MiB"},
}

func TestDecodeErrors(t *testing.T) {
	d := event.NewDecoder(newFP(t))
	for _, tt := range decodeErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			var ev event.Event
			err := d.Decode([]byte(tt.line), &ev)
			checkErr(t, tt.line, err, tt.field, tt.msg)
		})
	}
}

func checkErr(t *testing.T, line string, err error, field, msg string) {
	t.Helper()
	short := line
	if len(short) > 200 {
		short = short[:200] + "…"
	}
	if err == nil {
		t.Fatalf("Decode(%s) succeeded, want an error", short)
	}
	if field == syntaxErr {
		var se *event.SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("Decode(%s) = %T %q, want *event.SyntaxError", short, err, err)
		}
		if se.Offset < 0 || se.Offset > len(line) {
			t.Errorf("SyntaxError.Offset = %d, outside the line of %d bytes", se.Offset, len(line))
		}
	} else {
		var fe *event.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("Decode(%s) = %T %q, want *event.FieldError", short, err, err)
		}
		if fe.Field != field {
			t.Errorf("FieldError.Field = %q, want %q (error %q)", fe.Field, field, err)
		}
		if !strings.HasPrefix(err.Error(), `field "`+field+`": `) {
			t.Errorf("error %q does not start by naming the field", err)
		}
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not contain %q", err, msg)
	}
}

// TestDecodeErrorMessages keeps every error message of decodeErrorTests in
// a golden file, so that a change of wording is reviewed as a whole. Run
// with -update to rewrite it.
func TestDecodeErrorMessages(t *testing.T) {
	d := event.NewDecoder(newFP(t))
	var b bytes.Buffer
	for _, tt := range decodeErrorTests {
		var ev event.Event
		err := d.Decode([]byte(tt.line), &ev)
		if err == nil {
			continue // TestDecodeErrors reports it
		}
		fmt.Fprintf(&b, "%s:\n\t%s\n", tt.name, err)
	}
	golden := filepath.Join("testdata", "decode_errors.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestDecodeErrorMessages -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("error messages differ from %s (run with -update if the change is intended):\n%s", golden, b.Bytes())
	}
}

func TestDecodeNoFingerprinter(t *testing.T) {
	d := event.NewDecoder(nil)
	var ev event.Event
	if err := d.Decode([]byte(line()), &ev); err != nil {
		t.Fatalf("token_id without a fingerprinter: %v", err)
	}
	b := []byte(line("token_id", "-", "token", `"s3cr3t-token"`))
	err := d.Decode(b, &ev)
	if !errors.Is(err, event.ErrNoFingerprinter) {
		t.Fatalf("raw token without a fingerprinter: %v, want ErrNoFingerprinter", err)
	}
	if bytes.Contains(b, []byte("s3cr3t")) {
		t.Errorf("the raw token was not wiped from the line: %q", b)
	}
}

// TestDecodeLimits probes the edges of the depth and line length limits.
func TestDecodeLimits(t *testing.T) {
	d := event.NewDecoder(newFP(t))
	var ev event.Event
	// The event object is one level: an unknown value may nest 63 more.
	for _, deep := range []string{
		strings.Repeat("[", 63) + strings.Repeat("]", 63),
		strings.Repeat("[", 63) + "1" + strings.Repeat("]", 63),
		strings.Repeat(`{"a":`, 62) + "{}" + strings.Repeat("}", 62),
	} {
		if err := d.Decode([]byte(line("deep", deep)), &ev); err != nil {
			t.Errorf("64 levels of nesting: %v", err)
		}
	}
	// A line of exactly MaxLineBytes is accepted, one more byte is not.
	l := line()
	pad := event.MaxLineBytes - len(l)
	ok := []byte(l[:len(l)-1] + strings.Repeat(" ", pad) + "}")
	if len(ok) != event.MaxLineBytes {
		t.Fatalf("test line is %d bytes, want %d", len(ok), event.MaxLineBytes)
	}
	if err := d.Decode(ok, &ev); err != nil {
		t.Errorf("line of MaxLineBytes: %v", err)
	}
	long := append(ok, '\n')
	var se *event.SyntaxError
	if err := d.Decode(long, &ev); !errors.As(err, &se) || se.Offset != event.MaxLineBytes {
		t.Errorf("line of MaxLineBytes+1: %v, want a SyntaxError at byte %d", err, event.MaxLineBytes)
	}
}

// TestDecodeArena checks that decoded strings are copies: they do not change
// when the input line is overwritten or when later lines are decoded, also
// across arena chunks and for strings unescaped in scratch space.
func TestDecodeArena(t *testing.T) {
	d := event.NewDecoder(newFP(t))
	type kept struct {
		ev   event.Event
		want event.Event
	}
	var all []kept
	for i := range 2000 { // about 300 KiB of strings: several arena chunks
		ua := fmt.Sprintf("agent-%d/%s", i, strings.Repeat("x", i%200))
		l := []byte(line(
			"token_id", fmt.Sprintf(`"tk_%d"`, i),
			"endpoint", fmt.Sprintf(`"/v1/e\/%d"`, i), // escaped: unescaped in scratch
			"user_agent", `"`+ua+`"`,
			"method", `"GET"`,
			"path", fmt.Sprintf(`"/p/%d"`, i),
			"request_id", fmt.Sprintf(`"r\u0041%d"`, i),
			"client_id", `"c"`,
			"scope_used", `"s:r"`,
			"country", `"us"`,
		))
		var ev event.Event
		if err := d.Decode(l, &ev); err != nil {
			t.Fatal(err)
		}
		for j := range l {
			l[j] = 'X' // the caller reuses its buffer
		}
		want := base()
		want.TokenID = fmt.Sprintf("tk_%d", i)
		want.Endpoint = fmt.Sprintf("/v1/e/%d", i)
		want.UserAgent = ua
		want.Method = "GET"
		want.Path = fmt.Sprintf("/p/%d", i)
		want.RequestID = fmt.Sprintf("rA%d", i)
		want.ClientID = "c"
		want.Scope = "s:r"
		want.Country = "US"
		want.Has = event.HasUserAgent | event.HasMethod | event.HasPath | event.HasRequestID |
			event.HasClientID | event.HasScope | event.HasCountry
		all = append(all, kept{ev, want})
	}
	for i, k := range all {
		if k.ev != k.want {
			t.Fatalf("event %d changed after later decodes:\n got %+v\nwant %+v", i, k.ev, k.want)
		}
	}
}

// TestDecodeAllocs checks the claim that decoding allocates nothing per
// event (arena chunks are amortized over many events).
func TestDecodeAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	d := event.NewDecoder(newFP(t))
	src := []byte(fullLine)
	tok := []byte(line("token_id", "-", "token", `"s3cr3t-token-value"`, "user_agent", `"a\tb"`))
	buf := make([]byte, len(tok))
	var ev event.Event
	allocs := testing.AllocsPerRun(1000, func() {
		if err := d.Decode(src, &ev); err != nil {
			t.Fatal(err)
		}
		copy(buf, tok) // the decoder wipes the token
		if err := d.Decode(buf, &ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("Decode allocates %v times per event pair, want 0", allocs)
	}
}

func TestEventMethods(t *testing.T) {
	ev := base()
	if got, want := ev.Timestamp(), time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Timestamp() = %v, want %v in UTC", got, want)
	}
	for status, want := range map[int]bool{200: false, 401: true, 403: true, 404: false, 500: false} {
		ev.Status = status
		if got := ev.IsAuthFailure(); got != want {
			t.Errorf("IsAuthFailure() with status %d = %v, want %v", status, got, want)
		}
	}
}
