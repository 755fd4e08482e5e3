package investigate_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/investigate"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/score"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./investigate -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./investigate -update rewrites it):\n%s", path, got)
	}
}

func render(t *testing.T, r investigate.Report) (text, html []byte) {
	t.Helper()
	var tb, hb bytes.Buffer
	if err := investigate.WriteText(&tb, r); err != nil {
		t.Fatal(err)
	}
	if err := investigate.WriteHTML(&hb, r); err != nil {
		t.Fatal(err)
	}
	checkHTML(t, hb.Bytes())
	checkText(t, tb.Bytes())
	return tb.Bytes(), hb.Bytes()
}

// externalRef finds what would make a page load something from elsewhere
// or run code.
var externalRef = regexp.MustCompile(`(?i)<script|<iframe|<object|<embed|<link|\ssrc\s*=|url\(|@import|https?://|href="[^#]|\son[a-z]+\s*=`)

// checkHTML: the page is well-formed XML (every tag closed, attributes
// quoted, no stray < or &), and self-contained.
func checkHTML(t *testing.T, page []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = true
	depth, svgs := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("HTML is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if tok.Name.Local == "svg" {
				svgs++
			}
			for _, a := range tok.Attr {
				if strings.Contains(a.Value, "NaN") || strings.Contains(a.Value, "Inf") {
					t.Errorf("<%s %s=%q>", tok.Name.Local, a.Name.Local, a.Value)
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Errorf("unbalanced tags: depth %d at the end", depth)
	}
	if m := externalRef.Find(page); m != nil {
		t.Errorf("the page refers to something outside it or runs code: %q", m)
	}
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
		t.Error("no doctype")
	}
}

// checkText: no control characters but newlines reach the terminal.
func checkText(t *testing.T, text []byte) {
	t.Helper()
	for i, c := range text {
		if c < 0x20 && c != '\n' || c == 0x7f {
			t.Fatalf("control byte %#x at %d in the text report", c, i)
		}
	}
}

func TestStoryGolden(t *testing.T) {
	r := investigateStory(t, investigate.Options{})
	text, html := render(t, r)
	golden(t, "story.txt.golden", text)
	golden(t, "story.html.golden", html)

	// What a log says is shown, never obeyed.
	if bytes.Contains(html, []byte("<script>alert")) || !bytes.Contains(html, []byte("/v1/&lt;script&gt;alert(1)&lt;/script&gt;")) {
		t.Error("the endpoint's markup is not escaped in the HTML")
	}
	if !bytes.Contains(text, []byte(`</script>\x1b[2J`)) {
		t.Error("the endpoint's escape sequence is not shown escaped in the text")
	}
	if n := bytes.Count(html, []byte("<svg ")); n != 1 {
		t.Errorf("%d charts, want 1", n)
	}
}

// TestTop: --top keeps the riskiest and counts the rest.
func TestTop(t *testing.T) {
	r := investigateStory(t, investigate.Options{}).Top(0)
	if len(r.Credentials) != 1 || r.Omitted != 0 {
		t.Fatalf("Top(0) listed %d, omitted %d", len(r.Credentials), r.Omitted)
	}
	r.Credentials = append(r.Credentials, r.Credentials[0], r.Credentials[0])
	r = r.Top(1)
	if len(r.Credentials) != 1 || r.Omitted != 2 || r.Suspicious() != 3 {
		t.Fatalf("Top(1) listed %d, omitted %d", len(r.Credentials), r.Omitted)
	}
	text, _ := render(t, r)
	if !bytes.Contains(text, []byte("… 2 more suspicious credentials not shown")) {
		t.Errorf("no line about the omitted credentials:\n%s", text)
	}
}

// verdict builds an engine verdict by hand, with reasons of the vigil
// model found by signal name and the measurements its Explain reads.
func verdict(t *testing.T, m *score.Model, level policy.Level, reasons ...any) engine.Verdict {
	t.Helper()
	var v engine.Verdict
	v.Level = level
	for i := 0; i < len(reasons); i += 3 {
		name, c, args := reasons[i].(string), reasons[i+1].(float64), reasons[i+2].(score.Args)
		idx := -1
		for j, s := range m.Signals {
			if s.Name() == name {
				idx = j
			}
		}
		if idx < 0 {
			t.Fatalf("no signal %s", name)
		}
		v.Reasons[v.N] = score.Reason{Signal: uint8(idx), Contribution: c, Args: args}
		v.Risk += c
		v.N++
	}
	return v
}

// TestSmallLogs: a stolen cloud key seen in three events (two by its
// owner, one by the thief two days later), and a log of one event. The
// charts must still make sense: a dot per event, a centred single one.
func TestSmallLogs(t *testing.T) {
	m, err := score.Vigil(score.VigilOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ladder := policy.Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 1, Hold: 5 * time.Minute}
	key := owner{token: "tk_AKIAEXAMPLEKEY", agent: "aws-cli/2.15.0"}
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	home, away := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	evs := []event.Event{
		ev(t0, key, home, 64500, "US", "sts:GetCallerIdentity", key.agent, 200, 310),
		ev(t0.Add(5*time.Minute), key, home, 64500, "US", "s3:ListBuckets", key.agent, 200, 2048),
		ev(t0.Add(42*time.Hour+14*time.Minute), key, away, 14061, "SG", "iam:CreateUser", "Boto3/1.34.0", 403, 0),
	}
	vs := []engine.Verdict{
		verdict(t, m, policy.Allow),
		verdict(t, m, policy.Allow),
		verdict(t, m, policy.StepUp,
			"new_network", 5.0, score.Args{1, 2, 0, 1},
			"user_agent", 1.5, score.Args{1},
			"scope_probe", 1.5, score.Args{403, 1, 1}),
	}

	for _, tc := range []struct {
		name string
		n    int
	}{{"three", 3}, {"one", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			c := investigate.NewCollector(investigate.Options{Model: m, Thresholds: ladder})
			evs, vs := evs[3-tc.n:], vs[3-tc.n:]
			for i := range evs {
				c.Observe(&evs[i], &vs[i])
			}
			r := c.Report()
			if len(r.Credentials) != 1 {
				t.Fatalf("%d suspicious credentials", len(r.Credentials))
			}
			cr := r.Credentials[0]
			if !cr.Deviation.Time.Equal(evs[len(evs)-1].Timestamp()) || cr.Deviation.Level != policy.StepUp {
				t.Errorf("deviation %+v", cr.Deviation)
			}
			if len(cr.Series) != tc.n {
				t.Errorf("%d points in the series, want %d", len(cr.Series), tc.n)
			}
			text, html := render(t, r)
			if n := bytes.Count(html, []byte("<circle ")); n != tc.n {
				t.Errorf("%d dots on the chart, want %d", n, tc.n)
			}
			if tc.n == 1 && bytes.Contains(html, []byte("<polyline")) {
				t.Error("a line through one point")
			}
			golden(t, "small-"+tc.name+".txt.golden", text)
			golden(t, "small-"+tc.name+".html.golden", html)
		})
	}
}

func TestEmptyReport(t *testing.T) {
	r := investigate.NewCollector(investigate.Options{}).Report()
	text, _ := render(t, r)
	if !bytes.Contains(text, []byte("no events")) {
		t.Errorf("empty report:\n%s", text)
	}
}
