package ingest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/ingest"
)

// testKey is the fingerprint key of the tests.
const testKey = "ingest-test-fingerprint-key-0001"

func newFP(tb testing.TB) *event.Fingerprinter {
	tb.Helper()
	fp, err := event.NewFingerprinter([]byte(testKey))
	if err != nil {
		tb.Fatal(err)
	}
	return fp
}

func newDecoder(tb testing.TB, f ingest.Format) ingest.Decoder {
	tb.Helper()
	d, err := ingest.NewDecoder(f, newFP(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// sampleFile is each format's sample in testdata, and how many events it
// holds.
var sampleFiles = []struct {
	format ingest.Format
	file   string
	events int
}{
	{ingest.Vigil, "testdata/vigil.jsonl", 100},
	{ingest.NginxCombined, "testdata/nginx.log", 500},
	{ingest.NginxJSON, "testdata/nginx-json.log", 200},
	{ingest.Envoy, "testdata/envoy.log", 200},
	{ingest.APIGateway, "testdata/apigateway.log", 200},
	{ingest.CloudTrail, "testdata/cloudtrail.json", 120},
	{ingest.GitHub, "testdata/github.jsonl", 200},
}

// readLines returns the non-blank lines of a log as ingest reads them:
// through Open and Lines.
func readLines(tb testing.TB, path string, f ingest.Format) [][]byte {
	tb.Helper()
	in, err := ingest.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	return splitLines(tb, ingest.Lines(in, f))
}

func splitLines(tb testing.TB, r io.Reader) [][]byte {
	tb.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 2*event.MaxLineBytes)
	var lines [][]byte
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return lines
}

// checkEvent fails unless ev is an event vigil's own contract accepts: it
// writes ev in vigil's JSON and decodes it with event.Decoder, which must
// give ev back.
func checkEvent(t testing.TB, ev *event.Event) {
	t.Helper()
	line := vigilJSON(ev)
	var back event.Event
	if err := event.NewDecoder(nil).Decode(bytes.Clone(line), &back); err != nil {
		t.Fatalf("the event breaks vigil's contract: %v\n%s", err, line)
	}
	if back != *ev {
		t.Fatalf("the event does not survive vigil's decoder:\n got %+v\nwant %+v", back, *ev)
	}
}

// vigilJSON writes ev in vigil's event contract. Strings are written byte
// for byte (vigil's decoder passes invalid UTF-8 through).
func vigilJSON(ev *event.Event) []byte {
	b := []byte("{")
	str := func(k, v string) {
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":"`...)
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = fmt.Appendf(b, `\u%04x`, c)
			default:
				b = append(b, c)
			}
		}
		b = append(b, `",`...)
	}
	num := func(k string, v string) { b = append(b, `"`+k+`":`+v+`,`...) }
	str("timestamp", ev.Timestamp().Format("2006-01-02T15:04:05.999999999Z07:00"))
	str("token_id", ev.TokenID)
	if ev.SourceIP.IsValid() {
		str("source_ip", ev.SourceIP.String())
	}
	str("endpoint", ev.Endpoint)
	num("status_code", strconv.Itoa(ev.Status))
	opt := []struct {
		bit  event.Field
		k, v string
	}{
		{event.HasRequestID, "request_id", ev.RequestID},
		{event.HasMethod, "method", ev.Method},
		{event.HasPath, "path", ev.Path},
		{event.HasScope, "scope_used", ev.Scope},
		{event.HasUserAgent, "user_agent", ev.UserAgent},
		{event.HasClientID, "client_id", ev.ClientID},
		{event.HasCountry, "country", ev.Country},
	}
	for _, o := range opt {
		if ev.Has&o.bit != 0 {
			str(o.k, o.v)
		}
	}
	if ev.Has&event.HasLatency != 0 {
		num("latency_ms", strconv.FormatFloat(ev.LatencyMS, 'g', -1, 64))
	}
	if ev.Has&event.HasPayloadBytes != 0 {
		num("payload_bytes", strconv.FormatInt(ev.PayloadBytes, 10))
	}
	if ev.Has&event.HasRequestBytes != 0 {
		num("request_bytes", strconv.FormatInt(ev.RequestBytes, 10))
	}
	if ev.Has&event.HasASN != 0 {
		num("asn", strconv.FormatUint(uint64(ev.ASN), 10))
	}
	if ev.Has&event.HasGeo != 0 {
		num("lat", strconv.FormatFloat(ev.Lat, 'g', -1, 64))
		num("lon", strconv.FormatFloat(ev.Lon, 'g', -1, 64))
	}
	b[len(b)-1] = '}'
	return b
}
