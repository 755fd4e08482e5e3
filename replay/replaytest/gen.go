// Package replaytest generates synthetic event streams for tests and
// benchmarks of replay: deterministic JSON lines of realistic size
// (about 350 bytes, most optional fields set) from a few networks per
// credential, with stolen credentials used from elsewhere, bursts of
// authorization failures, out-of-order timestamps and, on request, raw
// tokens, blank lines and unusable lines.
package replaytest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Options shape a stream. Zero values mean defaults.
type Options struct {
	Events      int    // events to write (default 10,000)
	Credentials int    // distinct credentials (default 300)
	Seed        uint64 // the same seed gives the same stream
	// Start is the first event's time (default 2026-11-01T00:00:00Z) and
	// Interval the time between events (default 1s, so that credentials
	// build a history of hours).
	Start    time.Time
	Interval time.Duration
	// One line in BadEvery is unusable, cycling through the kinds of bad
	// input (0: none). Bad lines come in addition to Events.
	BadEvery int
	// One line in BlankEvery is followed by a blank line (0: none).
	BlankEvery int
	// One event in RawTokenEvery carries its credential's raw `token`
	// instead of its token_id (0: none).
	RawTokenEvery int
}

// Stats count what Write wrote.
type Stats struct {
	Lines  int // all lines, blank ones included
	Events int // usable event lines
	Bad    int // unusable lines
	Blank  int
}

type cred struct {
	id, raw   string
	net       [3]byte // home /24
	asn       uint32
	country   string
	agent     string
	client    string
	endpoints []int
}

var (
	endpoints = []struct{ route, path, method, scope string }{
		{"/v1/accounts/{id}", "/v1/accounts/%d", "GET", "accounts:read"},
		{"/v1/orders", "/v1/orders", "GET", "orders:read"},
		{"/v1/orders/{id}", "/v1/orders/%d", "GET", "orders:read"},
		{"/v1/orders", "/v1/orders", "POST", "orders:write"},
		{"/v1/me", "/v1/me", "GET", "profile"},
		{"/v1/search", "/v1/search", "GET", "search"},
		{"/v1/reports/{id}", "/v1/reports/%d", "GET", "reports:read"},
		{"/v1/invoices/{id}/pdf", "/v1/invoices/%d/pdf", "GET", "billing:read"},
	}
	agents = []string{
		"okhttp/4.12.0",
		"python-requests/2.31.0",
		"Go-http-client/2.0",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Firefox/121.0",
		"acme-sdk-java/3.4.1 (Linux; amd64)",
	}
	countries = []string{"US", "DE", "FR", "GB", "JP", "BR", "IN", "CA"}
	badLines  = []string{
		`{"timestamp":"2026-11-01T00:00:00Z","token_id":"tk_bad","source_ip":"10.0.0.1","endpoint":"/v1/me","status_code":200`,    // truncated JSON
		`{"timestamp":"2026-11-01T00:00:00Z","token_id":"tk_bad","source_ip":"10.0.0.1","status_code":200}`,                       // no endpoint
		`{"timestamp":"2026-11-01T00:00:00Z","token_id":"tk_bad","source_ip":"10.0.0.1","endpoint":"/v1/me","status_code":"200"}`, // wrong type
		`{"timestamp":"yesterday","token_id":"tk_bad","source_ip":"10.0.0.1","endpoint":"/v1/me","status_code":200}`,              // bad time
		`{"timestamp":"2026-11-01T00:00:00Z","token_id":"tk_bad","source_ip":"10.0.0.1","endpoint":"/v1/me","status_code":200,"payload_bytes":-5}`,
		`not json at all`,
	}
)

// Write writes a stream to w.
func Write(w io.Writer, o Options) (Stats, error) {
	if o.Events == 0 {
		o.Events = 10_000
	}
	if o.Credentials == 0 {
		o.Credentials = 300
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	creds := newCreds(r, o.Credentials)
	var stolen []int
	for i := 7; i < len(creds); i += 23 {
		stolen = append(stolen, i)
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	var st Stats
	var line []byte
	t0 := o.Start.UnixNano()
	for i := 0; i < o.Events; i++ {
		if o.BadEvery > 0 && i > 0 && i%o.BadEvery == 0 {
			bw.WriteString(badLines[(i/o.BadEvery)%len(badLines)])
			bw.WriteByte('\n')
			st.Lines++
			st.Bad++
		}
		c := &creds[r.IntN(len(creds))]
		t := t0 + int64(i)*int64(o.Interval)
		if i%97 == 13 {
			t -= int64(r.IntN(600)) * int64(time.Second) // late arrival
		}
		ip := [4]byte{c.net[0], c.net[1], c.net[2], byte(1 + r.IntN(8))}
		asn, country, agent := c.asn, c.country, c.agent
		ep := &endpoints[c.endpoints[r.IntN(len(c.endpoints))]]
		status := 200
		payload := 300 + r.IntN(6000)
		// In the middle tenth of the stream, a fifth of the traffic is
		// stolen credentials used from elsewhere, downloading far more
		// than their owners do.
		if i*10/o.Events == 5 && len(stolen) > 0 && r.IntN(5) == 0 {
			c = &creds[stolen[r.IntN(len(stolen))]]
			ip = [4]byte{185, 220, byte(r.IntN(4)), byte(r.IntN(256))}
			asn, country, agent = 208294, "RU", "curl/8.4.0"
			ep = &endpoints[6]
			payload = 5_000_000 + r.IntN(20_000_000)
		}
		switch r.IntN(100) {
		case 0:
			status = 404
		case 1:
			status = 401
		case 2:
			status = 500
		}

		line = line[:0]
		line = append(line, `{"timestamp":"`...)
		line = time.Unix(0, t).UTC().AppendFormat(line, "2006-01-02T15:04:05.000Z07:00")
		if o.RawTokenEvery > 0 && i%o.RawTokenEvery == 0 {
			line = append(line, `","token":"`...)
			line = append(line, c.raw...)
		} else {
			line = append(line, `","token_id":"`...)
			line = append(line, c.id...)
		}
		line = append(line, `","source_ip":"`...)
		for k, b := range ip {
			if k > 0 {
				line = append(line, '.')
			}
			line = strconv.AppendUint(line, uint64(b), 10)
		}
		line = append(line, `","endpoint":"`...)
		line = append(line, ep.route...)
		line = append(line, `","status_code":`...)
		line = strconv.AppendInt(line, int64(status), 10)
		line = append(line, `,"request_id":"req-`...)
		line = strconv.AppendUint(line, r.Uint64()>>20, 36)
		line = append(line, `","method":"`...)
		line = append(line, ep.method...)
		line = append(line, `","path":"`...)
		if strings.Contains(ep.path, "%d") {
			line = fmt.Appendf(line, ep.path, 1000+r.IntN(900000))
		} else {
			line = append(line, ep.path...)
		}
		if i%4 == 0 {
			line = append(line, `","scope_used":"`...)
			line = append(line, ep.scope...)
		}
		line = append(line, `","latency_ms":`...)
		line = strconv.AppendFloat(line, float64(5+r.IntN(4000))/10, 'f', -1, 64)
		line = append(line, `,"payload_bytes":`...)
		line = strconv.AppendInt(line, int64(payload), 10)
		if ep.method == "POST" {
			line = append(line, `,"request_bytes":`...)
			line = strconv.AppendInt(line, int64(r.IntN(2000)), 10)
		}
		line = append(line, `,"user_agent":"`...)
		line = append(line, agent...)
		if c.client != "" {
			line = append(line, `","client_id":"`...)
			line = append(line, c.client...)
		}
		line = append(line, `","country":"`...)
		line = append(line, country...)
		line = append(line, `","asn":`...)
		line = strconv.AppendUint(line, uint64(asn), 10)
		line = append(line, "}\n"...)
		if _, err := bw.Write(line); err != nil {
			return st, err
		}
		st.Lines++
		st.Events++
		if o.BlankEvery > 0 && i%o.BlankEvery == o.BlankEvery-1 {
			bw.WriteString(" \t\n")
			st.Lines++
			st.Blank++
		}
	}
	return st, bw.Flush()
}

// Tokens returns the raw tokens of the credentials of a stream made with
// o, as Write puts them in events, so tests can look for them in output.
func Tokens(o Options) []string {
	if o.Credentials == 0 {
		o.Credentials = 300
	}
	creds := newCreds(rand.New(rand.NewPCG(o.Seed, 0x5eed)), o.Credentials)
	toks := make([]string, len(creds))
	for i := range creds {
		toks[i] = creds[i].raw
	}
	return toks
}

func newCreds(r *rand.Rand, n int) []cred {
	creds := make([]cred, n)
	for i := range creds {
		c := &creds[i]
		c.raw = fmt.Sprintf("sk_live_%016x%016x", r.Uint64(), r.Uint64())
		c.id = fmt.Sprintf("tk_%016x%08x", r.Uint64(), r.Uint32())
		c.net = [3]byte{byte(11 + r.IntN(180)), byte(r.IntN(256)), byte(r.IntN(256))}
		c.asn = 64512 + uint32(r.IntN(1000))
		c.country = countries[r.IntN(len(countries))]
		c.agent = agents[r.IntN(len(agents))]
		if client := r.IntN(80); client < 40 { // half the credentials belong to a known client
			c.client = "app-" + strconv.Itoa(client)
		}
		for range 2 + r.IntN(3) {
			c.endpoints = append(c.endpoints, r.IntN(len(endpoints)))
		}
	}
	return creds
}
