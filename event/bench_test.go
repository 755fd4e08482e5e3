package event_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/vigil-sec/vigil/event"
)

// benchLines returns n realistic event lines of about 300 bytes, with most
// optional fields present.
func benchLines(n int, rawToken bool) [][]byte {
	r := rand.New(rand.NewPCG(7, 11))
	endpoints := []struct{ route, path string }{
		{"/v1/accounts/{id}", "/v1/accounts/%d"},
		{"/v1/orders", "/v1/orders"},
		{"/v1/orders/{id}", "/v1/orders/%d"},
		{"/v1/reports/{id}/export", "/v1/reports/%d/export"},
		{"/v1/me", "/v1/me"},
	}
	agents := []string{"okhttp/4.12.0", "python-requests/2.31.0", "Go-http-client/2.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"}
	methods := []string{"GET", "GET", "GET", "POST", "DELETE"}
	countries := []string{"DE", "US", "FR", "BR", "JP"}
	t0 := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	lines := make([][]byte, n)
	for i := range lines {
		ep := endpoints[r.IntN(len(endpoints))]
		path := ep.path
		if strings.Contains(path, "%d") {
			path = fmt.Sprintf(path, r.IntN(1e6))
		}
		tok := fmt.Sprintf(`"token_id":"tk_%016x"`, r.Uint64())
		if rawToken {
			tok = fmt.Sprintf(`"token":"sk_live_%016x%08x"`, r.Uint64(), r.Uint32())
		}
		lines[i] = fmt.Appendf(nil, `{"timestamp":"%s","request_id":"req-%08x",%s,`+
			`"source_ip":"%d.%d.%d.%d","method":"%s","endpoint":"%s","path":"%s","status_code":%d,`+
			`"scope_used":"orders:read","latency_ms":%.1f,"payload_bytes":%d,"user_agent":"%s",`+
			`"country":"%s","asn":%d}`,
			t0.Add(time.Duration(i)*time.Second+time.Duration(r.IntN(1000))*time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00"),
			r.Uint32(), tok,
			r.IntN(223)+1, r.IntN(256), r.IntN(256), r.IntN(256),
			methods[r.IntN(len(methods))], ep.route, path, []int{200, 200, 200, 201, 404, 401}[r.IntN(6)],
			r.Float64()*300, r.IntN(1<<16), agents[r.IntN(len(agents))],
			countries[r.IntN(len(countries))], r.IntN(65000)+1)
	}
	return lines
}

// jsonEvent is the event contract as a tagged struct for reflection-based
// decoders. Numbers are float64 so that 1200.0 is accepted where an integer
// is expected; NaN marks an absent number.
type jsonEvent struct {
	Timestamp    string  `json:"timestamp"`
	TokenID      string  `json:"token_id"`
	SourceIP     string  `json:"source_ip"`
	Endpoint     string  `json:"endpoint"`
	StatusCode   float64 `json:"status_code"`
	RequestID    string  `json:"request_id"`
	Method       string  `json:"method"`
	Path         string  `json:"path"`
	ScopeUsed    string  `json:"scope_used"`
	LatencyMS    float64 `json:"latency_ms"`
	PayloadBytes float64 `json:"payload_bytes"`
	RequestBytes float64 `json:"request_bytes"`
	UserAgent    string  `json:"user_agent"`
	ClientID     string  `json:"client_id"`
	Country      string  `json:"country"`
	ASN          float64 `json:"asn"`
	Lat          float64 `json:"lat"`
	Lon          float64 `json:"lon"`
}

var nan = math.NaN()

// decodeReflect decodes line with unmarshal into a jsonEvent and applies the
// checks the Decoder makes: the same work done the usual way.
func decodeReflect(unmarshal func([]byte, any) error, line []byte, ev *event.Event) error {
	je := jsonEvent{StatusCode: nan, LatencyMS: nan, PayloadBytes: nan, RequestBytes: nan, ASN: nan, Lat: nan, Lon: nan}
	if err := unmarshal(line, &je); err != nil {
		return err
	}
	*ev = event.Event{}
	t, err := time.Parse(time.RFC3339Nano, je.Timestamp)
	if err != nil {
		return err
	}
	ev.Time = t.UnixNano()
	if je.TokenID == "" || len(je.TokenID) > 512 {
		return errors.New("token_id")
	}
	ev.TokenID = je.TokenID
	a, err := netip.ParseAddr(je.SourceIP)
	if err != nil {
		return err
	}
	ev.SourceIP = a.Unmap().WithZone("")
	if je.Endpoint == "" {
		return errors.New("endpoint")
	}
	ev.Endpoint = je.Endpoint
	status, ok := integer(je.StatusCode, 100, 599)
	if !ok {
		return errors.New("status_code")
	}
	ev.Status = int(status)
	for _, s := range []struct {
		v   string
		dst *string
		bit event.Field
	}{
		{je.RequestID, &ev.RequestID, event.HasRequestID},
		{je.Method, &ev.Method, event.HasMethod},
		{je.Path, &ev.Path, event.HasPath},
		{je.ScopeUsed, &ev.Scope, event.HasScope},
		{je.UserAgent, &ev.UserAgent, event.HasUserAgent},
		{je.ClientID, &ev.ClientID, event.HasClientID},
	} {
		if s.v != "" {
			*s.dst, ev.Has = s.v, ev.Has|s.bit
		}
	}
	if je.Country != "" {
		c := strings.ToUpper(je.Country)
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			return errors.New("country")
		}
		ev.Country, ev.Has = c, ev.Has|event.HasCountry
	}
	if !math.IsNaN(je.LatencyMS) {
		if je.LatencyMS < 0 {
			return errors.New("latency_ms")
		}
		ev.LatencyMS, ev.Has = je.LatencyMS, ev.Has|event.HasLatency
	}
	for _, n := range []struct {
		v   float64
		dst *int64
		bit event.Field
	}{
		{je.PayloadBytes, &ev.PayloadBytes, event.HasPayloadBytes},
		{je.RequestBytes, &ev.RequestBytes, event.HasRequestBytes},
	} {
		if !math.IsNaN(n.v) {
			v, ok := integer(n.v, 0, math.MaxInt64)
			if !ok {
				return errors.New("byte count")
			}
			*n.dst, ev.Has = v, ev.Has|n.bit
		}
	}
	if !math.IsNaN(je.ASN) {
		v, ok := integer(je.ASN, 0, math.MaxUint32)
		if !ok {
			return errors.New("asn")
		}
		if v != 0 {
			ev.ASN, ev.Has = uint32(v), ev.Has|event.HasASN
		}
	}
	switch {
	case math.IsNaN(je.Lat) != math.IsNaN(je.Lon):
		return errors.New("lat xor lon")
	case !math.IsNaN(je.Lat):
		if je.Lat < -90 || je.Lat > 90 || je.Lon < -180 || je.Lon > 180 {
			return errors.New("lat/lon")
		}
		ev.Lat, ev.Lon, ev.Has = je.Lat, je.Lon, ev.Has|event.HasGeo
	}
	return nil
}

func integer(f float64, lo, hi int64) (int64, bool) {
	if math.IsNaN(f) || f != math.Trunc(f) || f < -9.2e18 || f > 9.2e18 {
		return 0, false
	}
	n := int64(f)
	return n, n >= lo && n <= hi
}

// TestBenchDecodersAgree checks that the three decoders of BenchmarkDecode
// make the same events of the benchmark's lines, so that they do the same
// work.
func TestBenchDecodersAgree(t *testing.T) {
	d := event.NewDecoder(nil)
	for _, l := range benchLines(200, false) {
		var want, got event.Event
		if err := d.Decode(l, &want); err != nil {
			t.Fatalf("Decode(%s): %v", l, err)
		}
		for name, unmarshal := range map[string]func([]byte, any) error{"encoding/json": json.Unmarshal, "go-json": gojson.Unmarshal} {
			if err := decodeReflect(unmarshal, l, &got); err != nil {
				t.Fatalf("%s(%s): %v", name, l, err)
			}
			if got != want {
				t.Fatalf("%s(%s)\n got %+v\nwant %+v", name, l, got, want)
			}
		}
	}
}

// BenchmarkDecode compares the hand-written Decoder with encoding/json and
// github.com/goccy/go-json decoding into a tagged struct followed by the same
// checks, on the same lines. Compare runs with benchstat:
//
//	go test ./event -run '^$' -bench BenchmarkDecode -count 5 | tee new.txt
func BenchmarkDecode(b *testing.B) {
	lines := benchLines(1024, false)
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	avg := size / int64(len(lines))

	b.Run("decoder=vigil", func(b *testing.B) {
		d := event.NewDecoder(nil)
		var ev event.Event
		b.SetBytes(avg)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := d.Decode(lines[i%len(lines)], &ev); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("decoder=vigil_raw_token", func(b *testing.B) {
		// Raw tokens are fingerprinted (HMAC-SHA256) and wiped, so each
		// line is copied first, as a reader would fill its buffer.
		raw := benchLines(1024, true)
		fp, _ := event.NewFingerprinter(testKey)
		d := event.NewDecoder(fp)
		buf := make([]byte, 0, 1024)
		var ev event.Event
		b.SetBytes(avg)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			buf = append(buf[:0], raw[i%len(raw)]...)
			if err := d.Decode(buf, &ev); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	for _, dec := range []struct {
		name      string
		unmarshal func([]byte, any) error
	}{
		{"encoding_json", json.Unmarshal},
		{"go_json", gojson.Unmarshal},
	} {
		b.Run("decoder="+dec.name, func(b *testing.B) {
			var ev event.Event
			b.SetBytes(avg)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := decodeReflect(dec.unmarshal, lines[i%len(lines)], &ev); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
