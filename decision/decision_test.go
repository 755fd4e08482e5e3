package decision_test

import (
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "tab\tnew\nline\rcr", "\x00\x01\x1f", "é ü 漢字 🙂", "\u2028\u2029", "<&>", "bad\xffutf8\xc3", "\xed\xa0\x80"} {
		got := decision.AppendString(nil, s)
		if !json.Valid(got) {
			t.Fatalf("AppendString(%q) = %s: not valid JSON", s, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		// encoding/json replaces each invalid byte; so does AppendString.
		wantJSON, _ := json.Marshal(s)
		var viaStd string
		_ = json.Unmarshal(wantJSON, &viaStd)
		if back != viaStd {
			t.Errorf("AppendString(%q) decodes to %q, encoding/json gives %q (valid form %q)", s, back, viaStd, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "漢"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := decision.AppendString([]byte("prefix:"), s)
		if !strings.HasPrefix(string(got), "prefix:") {
			t.Fatal("prefix lost")
		}
		lit := got[len("prefix:"):]
		if !json.Valid(lit) || !utf8.Valid(lit) {
			t.Fatalf("AppendString(%q) = %q: not valid JSON", s, lit)
		}
		var back string
		if err := json.Unmarshal(lit, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip of %q gave %q", s, back)
		}
	})
}

// TestEncoderContract writes a decision and reads it back as the contract
// type: every field present, reasons explained, numbers rounded.
func TestEncoderContract(t *testing.T) {
	tr, err := profile.NewTracker(profile.Params{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := score.Vigil(score.VigilOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Tracker: tr, Model: m, Ladder: policy.Ladder{Throttle: 4, StepUp: 7, Block: 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	var v engine.Verdict
	mk := func(at time.Duration, ip string, asn uint32, country string, status int) *event.Event {
		return &event.Event{Time: t0.Add(at).UnixNano(), TokenID: "tk_\"odd\"", SourceIP: netip.MustParseAddr(ip),
			Endpoint: "/v1/x", Status: status, ASN: asn, Country: country, Has: event.HasASN | event.HasCountry}
	}
	for i := range 40 {
		e.Process(mk(time.Duration(i)*3*time.Minute, "198.51.100.7", 3320, "DE", 200), &v)
	}
	ev := mk(3*time.Hour, "203.0.113.9", 14061, "SG", 403)
	e.Process(ev, &v)
	enc := decision.NewEncoder(e.Model())
	line := enc.Append(nil, "req-\n1", ev, &v)
	var d decision.Decision
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if d.RequestID != "req-\n1" || d.TokenID != "tk_\"odd\"" || !d.Timestamp.Equal(t0.Add(3*time.Hour)) || d.Timestamp.Location() != time.UTC {
		t.Errorf("header: %+v", d)
	}
	if d.Risk != float64(int64(v.Risk*100+0.5))/100 || d.Decision != v.Level || len(d.Reasons) != v.N || v.N == 0 {
		t.Errorf("risk %v decision %v reasons %d; verdict %v %v %d", d.Risk, d.Decision, len(d.Reasons), v.Risk, v.Level, v.N)
	}
	sum := 0.0
	for _, r := range d.Reasons {
		if r.Signal == "" || r.Detail == "" || r.Contribution <= 0 {
			t.Errorf("reason %+v", r)
		}
		sum += r.Contribution
	}
	// Each number is rounded to two decimals on its own.
	if diff := math.Abs(sum - d.Risk); diff > 0.005*float64(len(d.Reasons)+1) {
		t.Errorf("contributions sum to %v, risk %v", sum, d.Risk)
	}
	if !strings.Contains(string(line), `"detail":"country SG never seen for this credential`) {
		t.Errorf("reason detail missing: %s", line)
	}
	if testing.AllocsPerRun(100, func() { line = enc.Append(line[:0], "r", ev, &v) }) != 0 {
		t.Error("Append allocates")
	}
}
