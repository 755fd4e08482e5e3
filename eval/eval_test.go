package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/simulate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// script decides by request_id, for metrics computed by hand.
type script map[string]policy.Level

func (script) Name() string                          { return "script" }
func (script) Describe() string                      { return "levels written by hand" }
func (s script) Decide(ev *event.Event) policy.Level { return s[ev.RequestID] }

// allowAll allows everything.
type allowAll struct{}

func (allowAll) Name() string                     { return "allow_all" }
func (allowAll) Describe() string                 { return "allows every request" }
func (allowAll) Decide(*event.Event) policy.Level { return policy.Allow }

// row is one hand-written event: its request, credential, label and the
// level the script gives it.
type row struct {
	id, token, role, scenario string
	level                     policy.Level
}

// files renders rows as an events file and a labels file.
func files(rows []row) (events, labels string, s script) {
	var ev, lb strings.Builder
	s = script{}
	for i, r := range rows {
		fmt.Fprintf(&ev, `{"timestamp":"2026-03-02T09:%02d:%02dZ","token_id":%q,"source_ip":"198.51.100.%d","endpoint":"/v1/me","status_code":200,"request_id":%q}`+"\n",
			i/60, i%60, r.token, i%250+1, r.id)
		fmt.Fprintf(&lb, `{"request_id":%q,"label":%q,"scenario":%q}`+"\n", r.id, r.role, r.scenario)
		s[r.id] = r.level
	}
	return ev.String(), lb.String(), s
}

const (
	A, T, S, B = policy.Allow, policy.Throttle, policy.StepUp, policy.Block
)

// handSet: two attacks of "exfil" (on a, caught at its third attacker
// request; on b, never caught and with no owner request after it), one
// of "probe" (on c, caught at once, the owner's one later request hit),
// and three benign credentials.
var handSet = []row{
	{"a1", "a", "owner", "browser", A},
	{"a2", "a", "attacker", "exfil", A},
	{"a3", "a", "attacker", "exfil", A},
	{"a4", "a", "owner", "browser", T},
	{"a5", "a", "attacker", "exfil", S},
	{"a6", "a", "attacker", "exfil", T},
	{"a7", "a", "owner", "browser", A},
	{"b1", "b", "owner", "mobile", A},
	{"b2", "b", "attacker", "exfil", A},
	{"b3", "b", "attacker", "exfil", A},
	{"c1", "c", "attacker", "probe", B},
	{"c2", "c", "owner", "mobile", B},
	{"d1", "d", "owner", "browser", A},
	{"d2", "d", "owner", "browser", S},
	{"e1", "e", "owner", "mobile", A},
	{"e2", "e", "owner", "mobile", A},
	{"e3", "e", "owner", "mobile", T},
	{"f1", "f", "owner", "mobile", A},
}

func read(t *testing.T, rows []row) *Report {
	t.Helper()
	ev, lb, s := files(rows)
	r, err := ReadFiles(Files{Events: strings.NewReader(ev), Labels: strings.NewReader(lb)}, Options{Deciders: []Decider{s}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMetricsByHand(t *testing.T) {
	r := read(t, handSet)
	if r.Events != 18 || r.Credentials != 6 || r.Attacked != 3 || r.Benign != 3 {
		t.Errorf("events %d credentials %d attacked %d benign %d, want 18 6 3 3", r.Events, r.Credentials, r.Attacked, r.Benign)
	}
	d := r.Deciders[0]
	type attackWant struct {
		scenario                                        string
		events, attacks                                 int
		recallT, recallS, detected, allowed, collateral Ratio
		median                                          Median
	}
	want := []attackWant{
		{"exfil", 6, 2, Ratio{2, 6}, Ratio{1, 6}, Ratio{1, 2}, Ratio{4, 6}, Ratio{1, 2}, Median{Value: Never, Of: 2, Never: 1}},
		{"probe", 1, 1, Ratio{1, 1}, Ratio{1, 1}, Ratio{1, 1}, Ratio{0, 1}, Ratio{1, 1}, Median{Value: 0, Of: 1}},
		{AllAttacks, 7, 3, Ratio{3, 7}, Ratio{2, 7}, Ratio{2, 3}, Ratio{4, 7}, Ratio{2, 3}, Median{Value: 2, Of: 3, Never: 1}},
	}
	if len(d.Attacks) != len(want) {
		t.Fatalf("%d attack rows, want %d", len(d.Attacks), len(want))
	}
	for i, w := range want {
		a := d.Attacks[i]
		got := attackWant{a.Scenario, a.AttackerEvents, a.Attacks, a.RecallThrottle, a.RecallStepUp, a.Detected, a.Allowed, a.Collateral, a.ToThrottle}
		if got != w {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	// The exfil attacks one by one.
	per := d.Attacks[0].PerAttack
	if len(per) != 2 || per[0] != (AttackDetail{"a", "exfil", 4, 2, 2, 1}) || per[1] != (AttackDetail{"b", "exfil", 2, Never, 0, 0}) {
		t.Errorf("exfil per attack: %+v", per)
	}

	benign := []BenignRow{
		{"", 3, 6, Ratio{1, 3}, Ratio{2, 3}, Ratio{2, 6}},
		{"browser", 1, 2, Ratio{1, 1}, Ratio{1, 1}, Ratio{1, 2}},
		{"mobile", 2, 4, Ratio{0, 2}, Ratio{1, 2}, Ratio{1, 4}},
	}
	got := append([]BenignRow{d.Benign}, d.Archetypes...)
	if fmt.Sprint(got) != fmt.Sprint(benign) {
		t.Errorf("benign rows:\n got %+v\nwant %+v", got, benign)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []Count
		want Median
	}{
		{nil, Median{}},
		{[]Count{4}, Median{Value: 4, Of: 1}},
		{[]Count{Never}, Median{Value: Never, Of: 1, Never: 1}},
		{[]Count{3, 1}, Median{Value: 3, Of: 2}}, // the larger middle value
		{[]Count{5, Never, 0}, Median{Value: 5, Of: 3, Never: 1}},
		{[]Count{Never, 2, Never, 9}, Median{Value: Never, Of: 4, Never: 2}},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestNoBenignCredentials(t *testing.T) {
	r := read(t, []row{
		{"x1", "x", "owner", "browser", A},
		{"x2", "x", "attacker", "exfil", T},
	})
	d := r.Deciders[0]
	if r.Benign != 0 || d.Benign.Credentials != 0 || len(d.Archetypes) != 0 {
		t.Fatalf("benign: %+v, %d archetypes", d.Benign, len(d.Archetypes))
	}
	if _, ok := d.Benign.EverStepUp.Value(); ok {
		t.Error("ever_step_up_auth has a value without benign credentials")
	}
	// Targets without a value are met vacuously, and shown as "—".
	for _, c := range r.Targets {
		if c.Row == "benign" && !c.Met {
			t.Errorf("target %+v not met without benign credentials", c)
		}
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  all +0 +0 +— ✓ +— +— ✓$`).MatchString(buf.String()) {
		t.Errorf("text report:\n%s", buf.String())
	}
	var js struct {
		Deciders []struct {
			Benign struct {
				EverStepUp map[string]any `json:"ever_step_up_auth"`
			} `json:"benign"`
		} `json:"deciders"`
	}
	if err := json.Unmarshal([]byte(jsonOf(t, r)), &js); err != nil {
		t.Fatal(err)
	}
	if v, ok := js.Deciders[0].Benign.EverStepUp["value"]; !ok || v != nil {
		t.Errorf("JSON ever_step_up_auth: %v, want a null value", js.Deciders[0].Benign.EverStepUp)
	}
}

func TestNoAttack(t *testing.T) {
	r := read(t, []row{{"x1", "x", "owner", "browser", A}})
	if len(r.Deciders[0].Attacks) != 0 {
		t.Errorf("attack rows without attacker events: %+v", r.Deciders[0].Attacks)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "(no attacker events)") {
		t.Errorf("text report:\n%s", buf.String())
	}
}

func TestLabelTokenID(t *testing.T) {
	// Two token ids in the events, one credential in the labels (say, a
	// token and its refreshed successor): the labels' token_id wins.
	ev := `{"timestamp":"2026-03-02T09:00:00Z","token_id":"t1","source_ip":"198.51.100.1","endpoint":"/v1/me","status_code":200,"request_id":"r1"}
{"timestamp":"2026-03-02T09:00:01Z","token_id":"t2","source_ip":"198.51.100.1","endpoint":"/v1/me","status_code":200}
`
	lb := `{"request_id":"r1","label":"owner","scenario":"browser","token_id":"cred"}
{"request_id":"line-2","label":"attacker","scenario":"exfil","token_id":"cred"}
`
	r, err := ReadFiles(Files{Events: strings.NewReader(ev), Labels: strings.NewReader(lb)}, Options{Deciders: []Decider{allowAll{}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Credentials != 1 || r.Attacked != 1 || r.Deciders[0].Attacks[0].PerAttack[0].TokenID != "cred" {
		t.Errorf("credentials %d attacked %d per attack %+v", r.Credentials, r.Attacked, r.Deciders[0].Attacks[0].PerAttack)
	}
}

func TestInputErrors(t *testing.T) {
	const (
		ev1 = `{"timestamp":"2026-03-02T09:00:00Z","token_id":"t","source_ip":"198.51.100.1","endpoint":"/v1/me","status_code":200,"request_id":"r1"}` + "\n"
		ev2 = `{"timestamp":"2026-03-02T09:00:01Z","token_id":"t","source_ip":"198.51.100.1","endpoint":"/v1/me","status_code":200,"request_id":"r2"}` + "\n"
		lb1 = `{"request_id":"r1","label":"owner","scenario":"browser"}` + "\n"
		lb2 = `{"request_id":"r2","label":"attacker","scenario":"exfil"}` + "\n"
	)
	for _, tc := range []struct {
		name, events, labels string
		want                 string
		is                   error
	}{
		{"unknown request_id in labels", ev1, lb1 + "\n" + lb2, `labels line 3: request_id "r2": request_id matches no event`, ErrUnknownRequest},
		{"event without label", ev1 + ev2, lb1, `events line 2: request_id "r2": no label for this request_id`, ErrNoLabel},
		{"duplicate label", ev1, lb1 + lb1, `labels line 2: request_id "r1": duplicate request_id (first on line 1)`, ErrDuplicate},
		{"duplicate event", ev1 + ev1, lb1, `events line 2: request_id "r1": duplicate request_id (labeled on labels line 1)`, ErrDuplicate},
		{"bad label", ev1, `{"request_id":"r1","label":"user"}` + "\n", `labels line 1: field "label": "user", want "owner" or "attacker"`, nil},
		{"label without request_id", ev1, `{"label":"owner"}` + "\n", `labels line 1: field "request_id": missing`, nil},
		{"label not JSON", ev1, "{\n", `labels line 1: unexpected end of JSON input`, nil},
		{"bad event", ev1 + `{"timestamp":"2026-03-02T09:00:01Z","token_id":"t","source_ip":"198.51.100.1","endpoint":"/v1/me","status_code":"200"}` + "\n", lb1,
			`events line 2: field "status_code": expected a number, got a string`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFiles(Files{Events: strings.NewReader(tc.events), Labels: strings.NewReader(tc.labels)}, Options{Deciders: []Decider{allowAll{}}})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v\nwant  %s", err, tc.want)
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Errorf("%T is not a *LineError", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error is not %v", tc.is)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no decider: no error")
	}
	if _, err := New(Options{Deciders: []Decider{allowAll{}, allowAll{}}}); err == nil {
		t.Error("two deciders with one name: no error")
	}
	for _, o := range []IPLimiterOptions{{Limit: -1}, {Window: -time.Second}} {
		if _, err := NewIPLimiter(o); err == nil {
			t.Errorf("NewIPLimiter(%+v): no error", o)
		}
	}
}

func TestIPLimiter(t *testing.T) {
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ip1, ip2 := "198.51.100.1", "2001:db8::1"
	type req struct {
		at   time.Duration // after base
		ip   string
		want policy.Level
	}
	for _, tc := range []struct {
		name string
		opts IPLimiterOptions
		reqs []req
	}{
		{"limit per window", IPLimiterOptions{Limit: 2, Window: time.Minute}, []req{
			{0, ip1, A}, {10 * time.Second, ip1, A}, {20 * time.Second, ip1, T}, {59 * time.Second, ip1, T},
			{60 * time.Second, ip1, A}, // a new window at the minute, not 60s after the first request
			{61 * time.Second, ip1, A}, {62 * time.Second, ip1, T},
		}},
		{"addresses are independent", IPLimiterOptions{Limit: 1, Window: time.Minute}, []req{
			{0, ip1, A}, {1 * time.Second, ip2, A}, {2 * time.Second, ip1, T}, {3 * time.Second, ip2, T},
		}},
		{"fixed windows, not sliding", IPLimiterOptions{Limit: 2, Window: time.Minute}, []req{
			{58 * time.Second, ip1, A}, {59 * time.Second, ip1, A}, {61 * time.Second, ip1, A}, {62 * time.Second, ip1, A},
			{63 * time.Second, ip1, T},
		}},
		{"late event counts in the current window", IPLimiterOptions{Limit: 2, Window: time.Minute}, []req{
			{70 * time.Second, ip1, A}, {10 * time.Second, ip1, A}, {80 * time.Second, ip1, T},
		}},
		{"defaults: 60 a minute", IPLimiterOptions{}, func() []req {
			var rs []req
			for i := range 61 {
				rs = append(rs, req{time.Duration(i) * 500 * time.Millisecond, ip1, A})
			}
			rs[60].want = T
			return append(rs, req{time.Minute, ip1, A})
		}()},
		{"before 1970", IPLimiterOptions{Limit: 1, Window: time.Minute}, []req{
			{-base.Sub(time.Unix(0, 0)) - 30*time.Second, ip1, A},
			{-base.Sub(time.Unix(0, 0)) - 1*time.Second, ip1, T},
			{-base.Sub(time.Unix(0, 0)), ip1, A},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewIPLimiter(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range tc.reqs {
				ev := event.Event{Time: base.Add(r.at).UnixNano(), SourceIP: mustAddr(t, r.ip)}
				if got := l.Decide(&ev); got != r.want {
					t.Errorf("request %d (%v, %s): %s, want %s", i+1, r.at, r.ip, got, r.want)
				}
			}
		})
	}
}

// smallTraffic is the simulation the golden files pin: two and a half
// days (simulate attacks only credentials active a day before the attacks
// may start, at two thirds of the time), six credentials, the first three
// attacks.
func smallTraffic(t testing.TB, seed uint64) []simulate.Item {
	t.Helper()
	tr, err := simulate.Generate(simulate.Options{
		Seed:        seed,
		Duration:    60 * time.Hour,
		Credentials: map[string]int{"browser": 2, "mobile": 2, "etl": 1, "poller": 1},
		Attacks:     []string{"cloud_exfil", "proxy_replay", "scope_probe"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Items
}

// fixedEnv gives the engines a fixed fingerprint key.
func fixedEnv(string) (string, bool) { return "eval-test-key-not-a-secret", true }

// standard returns the three deciders of `vigil eval`, fresh.
func standard(t testing.TB) Options {
	t.Helper()
	v, _, err := NewEngineDecider("vigil", config.Default(), fixedEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := NewEngineDecider("seed", SeedConfig(config.Default()), fixedEnv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewIPLimiter(IPLimiterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(); s.Close() })
	return Options{Deciders: []Decider{v, s, l}}
}

// TestGolden pins the evaluation of a small simulation: a change in
// scoring, policy or simulation that moves any number fails here. After a
// deliberate change, run `go test ./eval -run Golden -update` and review
// the diff of testdata/.
func TestGolden(t *testing.T) {
	t.Parallel()
	items := smallTraffic(t, 7)
	r, err := Traffic(items, standard(t))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "small_seed7.txt", text.Bytes())
	golden(t, "small_seed7.json", []byte(jsonOf(t, r)))
}

// TestFilesMatchTraffic: the same traffic, written as files and read back,
// gives the same report as in-process, and a second in-process run
// repeats it (determinism).
func TestFilesMatchTraffic(t *testing.T) {
	t.Parallel()
	items := smallTraffic(t, 3)
	r, err := Traffic(items, standard(t))
	if err != nil {
		t.Fatal(err)
	}
	want := jsonOf(t, r)
	var ev, lb bytes.Buffer
	if err := simulate.WriteEvents(&ev, items); err != nil {
		t.Fatal(err)
	}
	if err := simulate.WriteLabels(&lb, items); err != nil {
		t.Fatal(err)
	}
	fr, err := ReadFiles(Files{Events: bytes.NewReader(ev.Bytes()), Labels: bytes.NewReader(lb.Bytes())}, standard(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(t, fr); got != want {
		t.Fatalf("report from files differs from the in-process one:\n%s\nwant\n%s", got, want)
	}
	again, err := Traffic(items, standard(t))
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, again) != want {
		t.Error("two in-process evaluations differ")
	}
}

// TestOtherSeeds keeps evaluations on other seeds running: they must
// complete and agree with themselves; their numbers are not pinned.
func TestOtherSeeds(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2} {
		r, err := Traffic(smallTraffic(t, seed), standard(t))
		if err != nil {
			t.Fatal(err)
		}
		if r.Attacked != 3 || len(r.Deciders) != 3 || len(r.Comparisons) != 2 {
			t.Errorf("seed %d: attacked %d, %d deciders, %d comparisons", seed, r.Attacked, len(r.Deciders), len(r.Comparisons))
		}
		// The IP limiter never answers above throttle.
		for _, a := range r.Deciders[2].Attacks {
			if a.RecallStepUp.N != 0 {
				t.Errorf("seed %d: ip_limiter stepped up on %s", seed, a.Scenario)
			}
		}
	}
}

// TestMixes keeps evaluations on simulate's other archetype mixes
// running, shortened to three days; their numbers are not pinned. With
// -short only the small mix runs (the others take seconds each with
// -race).
func TestMixes(t *testing.T) {
	t.Parallel()
	for _, m := range simulate.Mixes() {
		if m[0] == "default" {
			continue // the CLI test runs it
		}
		t.Run(m[0], func(t *testing.T) {
			if testing.Short() && m[0] != "small" {
				t.Skip("-short")
			}
			t.Parallel()
			o, err := simulate.Mix(m[0], 5, 72*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := simulate.Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Traffic(tr.Items, standard(t))
			if err != nil {
				t.Fatal(err)
			}
			if r.Events != len(tr.Items) || r.Credentials == 0 {
				t.Errorf("%d events, %d credentials, from %d items", r.Events, r.Credentials, len(tr.Items))
			}
		})
	}
}

func BenchmarkTraffic(b *testing.B) {
	items := smallTraffic(b, 1)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		opts := standard(b)
		b.StartTimer()
		if _, err := Traffic(items, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(items))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func jsonOf(t testing.TB, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

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
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the evaluation (run with -update after a deliberate change):\n%s", path, got)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
