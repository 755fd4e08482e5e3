package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/score"
	"github.com/vigil-sec/vigil/simulate"
)

const demoUsage = `Usage: vigil demo [flags]

Simulates three days of API traffic on a handful of credentials, some of
them stolen and replayed while their owners keep working, runs it through
vigil with the default configuration and shows what vigil decided and why,
next to the seed profile (the article's fixed rules) on the same traffic.

Flags:
`

// demoKey is the fingerprint key the demo builds its engines with, so that
// a demo never depends on the environment and never warns of a random key.
// It protects nothing: the simulated events carry token ids, not secrets.
const demoKey = "vigil-demo-key-not-a-secret"

// demoOptions is the traffic the demo simulates.
func demoOptions(seed uint64) simulate.Options {
	return simulate.Options{
		Seed:        seed,
		Duration:    72 * time.Hour,
		Credentials: map[string]int{"browser": 2, "mobile": 2, "etl": 1, "poller": 1},
		Attacks:     []string{"cloud_exfil", "proxy_replay", "scope_probe"},
	}
}

func runDemo(io IO, args []string) int {
	fs := flag.NewFlagSet("vigil demo", flag.ContinueOnError)
	fs.SetOutput(io.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	seed := fs.Uint64("seed", 1, "seed of the simulation; the same seed gives the same traffic and report")
	asJSON := fs.Bool("json", false, "print vigil's decisions as JSON lines (docs/decisions.md) instead of the report")
	eventsPath := fs.String("events", "", "also write the simulated events to `FILE` as JSON lines, for 'vigil replay'")
	labelsPath := fs.String("labels", "", "also write each event's label (owner or attacker) to `FILE` as JSON lines")
	proxy := fs.Bool("proxy", false, "instead: run vigil proxy in front of a demo API and send it live traffic with a stolen token (about 10 s)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(io.Stderr, "vigil demo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}

	if *proxy {
		return runLiveDemo(io)
	}
	d, err := runDemoSimulation(*seed)
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	for _, f := range []struct {
		path  string
		write itemWriter
	}{{*eventsPath, simulate.WriteEvents}, {*labelsPath, simulate.WriteLabels}} {
		if f.path == "" {
			continue
		}
		if err := writeFile(f.path, d.traffic.Items, f.write); err != nil {
			fmt.Fprintf(io.Stderr, "vigil demo: %v\n", err)
			return exitError
		}
	}

	out := bufio.NewWriterSize(io.Stdout, 64<<10)
	if *asJSON {
		d.writeDecisions(out)
	} else {
		d.writeReport(out, *eventsPath, *labelsPath)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(io.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	return exitOK
}

// itemWriter writes simulated items to a stream (simulate.WriteEvents,
// simulate.WriteLabels).
type itemWriter func(io.Writer, []simulate.Item) error

func writeFile(path string, items []simulate.Item, write itemWriter) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f, items); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// demo is one simulation judged by both scoring profiles.
type demo struct {
	seed    uint64
	traffic *simulate.Traffic
	events  []event.Event
	vigil   judged
	seedP   judged
	nets    map[netKey]string
}

// judged is the verdicts of one scoring profile, one per event.
type judged struct {
	model    *score.Model
	ladder   policy.Ladder
	verdicts []engine.Verdict
}

type netKey struct {
	asn     uint32
	country string
}

func runDemoSimulation(seed uint64) (*demo, error) {
	tr, err := simulate.Generate(demoOptions(seed))
	if err != nil {
		return nil, err
	}
	d := &demo{seed: seed, traffic: tr, events: make([]event.Event, len(tr.Items)), nets: make(map[netKey]string)}
	for i := range tr.Items {
		d.events[i] = tr.Items[i].Event
	}
	for _, n := range simulate.Networks() {
		d.nets[netKey{n.ASN, n.Country}] = n.Name
	}
	seedCfg, err := config.Parse([]byte("scoring:\n  profile: seed\n"), "demo seed configuration")
	if err != nil {
		return nil, err
	}
	for _, x := range []struct {
		cfg *config.Config
		dst *judged
	}{{config.Default(), &d.vigil}, {seedCfg, &d.seedP}} {
		if err := judge(x.cfg, d.events, x.dst); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func judge(cfg *config.Config, evs []event.Event, dst *judged) error {
	env := func(name string) (string, bool) {
		if name == cfg.Fingerprint.KeyEnv {
			return demoKey, true
		}
		return "", false
	}
	parts, err := app.Build(cfg, env)
	if err != nil {
		return fmt.Errorf("%s profile: %w", cfg.Scoring.Profile, err)
	}
	eng, err := parts.NewEngine()
	if err != nil {
		return fmt.Errorf("%s profile: %w", cfg.Scoring.Profile, err)
	}
	defer eng.Close()
	dst.model, dst.ladder = parts.Model, parts.Ladder
	dst.verdicts = make([]engine.Verdict, len(evs))
	// The engine fills evs[i].Keys on first sight; the keys do not depend
	// on the profile, so both engines can share the events.
	eng.ProcessBatch(evs, dst.verdicts)
	return nil
}

// writeDecisions writes vigil's decisions as JSON lines. w is buffered and
// keeps the first write error for its Flush.
func (d *demo) writeDecisions(w *bufio.Writer) {
	enc := decision.NewEncoder(d.vigil.model)
	var buf []byte
	for i := range d.events {
		buf = enc.Append(buf[:0], d.events[i].RequestID, &d.events[i], &d.vigil.verdicts[i])
		buf = append(buf, '\n')
		_, _ = w.Write(buf)
	}
}

// counts is decisions per level.
type counts [policy.NumLevels]int

func (c *counts) total() int {
	n := 0
	for _, x := range c {
		n += x
	}
	return n
}

// notAllowed is the requests not allowed.
func (c *counts) notAllowed() int { return c.total() - c[policy.Allow] }

func (d *demo) writeReport(w io.Writer, eventsPath, labelsPath string) {
	tr := d.traffic
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	p("vigil demo, seed %d: %s simulated API requests from %d credentials over %s\n\n",
		d.seed, commas(len(tr.Items)), len(tr.Credentials), span(tr.Start, tr.End))

	// The scenario.
	if len(tr.Attacks) == 0 {
		p("(no attack in this simulation)\n")
		return
	}
	victims := make([]string, len(tr.Attacks))
	for i, a := range tr.Attacks {
		victims[i] = a.Victim.Name
	}
	p("%s\n\n", wrap(fmt.Sprintf("The scenario. %d credentials of a CRM's API (OAuth tokens of a web app, a phone app, "+
		"a warehouse ETL job and a chat integration) are used by their owners as usual from %s. "+
		"From %s on, %d of them (%s) are stolen and replayed by attackers, while the owners keep working "+
		"with the same tokens: the tokens stay valid throughout, so authentication sees nothing wrong. "+
		"vigil sees only the events (docs/events.md): no labels, no threat feed, no list of bad addresses; "+
		"it judges each request against the credential's own history and answers allow, throttle, "+
		"step_up_auth or block, with reasons.",
		len(tr.Credentials), span(tr.Start, tr.End), tr.Attacks[0].Start.Format("Mon 2 Jan"), len(tr.Attacks),
		strings.Join(victims, ", ")), 0, 100, ""))
	p("Credentials:\n")
	for _, c := range tr.Credentials {
		p("  %-10s %s\n", c.Name, wrap(c.Summary, 13, 100, strings.Repeat(" ", 13)))
	}
	p("Attacks, on stolen credentials:\n")
	for _, a := range tr.Attacks {
		lead := fmt.Sprintf("  %-10s %s from %s: ", a.Victim.Name, a.Attack, a.Start.Format("Mon 15:04 MST"))
		p("%s%s\n", lead, wrap(a.Summary, len(lead), 100, strings.Repeat(" ", 13)))
	}

	for i := range tr.Attacks {
		d.writeTimeline(w, i)
	}

	p("\nDecisions per credential, vigil profile (default configuration: throttle ≥ %g, step_up_auth ≥ %g, block ≥ %g,\n"+
		"hysteresis margin %g, hold %v)\n",
		d.vigil.ladder.Throttle, d.vigil.ladder.StepUp, d.vigil.ladder.Block, d.vigil.ladder.Margin, d.vigil.ladder.Hold)
	vt := d.table(w, &d.vigil)
	p("\nThe same traffic, seed profile (the article's five fixed rules: throttle ≥ %g, step_up_auth ≥ %g, block ≥ %g,\n"+
		"no hysteresis)\n",
		d.seedP.ladder.Throttle, d.seedP.ladder.StepUp, d.seedP.ladder.Block)
	st := d.table(w, &d.seedP)

	p("\nIn short:\n")
	for _, x := range []struct {
		name string
		j    *judged
		t    [2]counts
	}{{"vigil", &d.vigil, vt}, {"seed ", &d.seedP, st}} {
		own, att := x.t[simulate.Owner], x.t[simulate.Attacker]
		during, other := d.ownerSplit(x.j)
		p("  %s  attacker requests: %5.1f%% not allowed, %5.1f%% blocked\n",
			x.name, pct(att.notAllowed(), att.total()), pct(att[policy.Block], att.total()))
		p("         owner requests:    %5.1f%% not allowed, %5.1f%% blocked (%s on stolen credentials while attacked, %s elsewhere)\n",
			pct(own.notAllowed(), own.total()), pct(own[policy.Block], own.total()), commas(during), commas(other))
	}
	p("\n%s\n", wrap("vigil judges the credential, not the request's context: while a stolen token is "+
		"contained, its owner's requests are held at the same level until the hysteresis hold runs out.", 0, 100, ""))

	p("\nNext:\n")
	if eventsPath == "" {
		eventsPath, labelsPath = "events.jsonl", "labels.jsonl"
		p("  vigil demo --seed %d --events %s --labels %s   write this traffic as JSON lines\n", d.seed, eventsPath, labelsPath)
	} else {
		p("  wrote the events to %s", eventsPath)
		if labelsPath != "" {
			p(" and their labels to %s", labelsPath)
		}
		p("\n")
	}
	p("  vigil replay %s   decide it again, one decision per line\n", eventsPath)
	p("  vigil demo --json   print vigil's decisions as JSON lines (docs/decisions.md)\n")
}

// writeTimeline shows the victim's requests around the start of attack i:
// the owner's last request before it, the attacker's first requests, and
// every change of decision after, with the reasons.
func (d *demo) writeTimeline(w io.Writer, i int) {
	a := d.traffic.Attacks[i]
	items, vs, model := d.traffic.Items, d.vigil.verdicts, d.vigil.model
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\nAttack %d: %s on %s (%s), as vigil sees it\n", i+1, a.Attack, a.Victim.Name, a.Victim.Archetype)

	mine := func(j int) bool { return items[j].Event.TokenID == a.Victim.TokenID }
	isAttacker := func(j int) bool {
		return items[j].Label.Role == simulate.Attacker && items[j].Label.Scenario == a.Attack
	}
	first := -1
	for j := range items {
		if mine(j) && isAttacker(j) {
			first = j
			break
		}
	}
	if first < 0 {
		p("  (the attack made no requests within the simulated time)\n")
		return
	}
	var rows []int
	for j := first - 1; j >= 0; j-- {
		if mine(j) {
			rows = append(rows, j)
			break
		}
	}
	const maxRows = 8
	var (
		n, nAttack       int
		firstUp, firstBl = -1, -1
		attackCounts     counts
		ownerCounts      counts
		ownerShown       bool
		prev             = policy.Allow
	)
	if len(rows) > 0 {
		prev = vs[rows[0]].Level
	}
	for j := first; j < len(items); j++ {
		if !mine(j) {
			continue
		}
		lvl := vs[j].Level
		att := isAttacker(j)
		if att {
			nAttack++
			attackCounts[lvl]++
			if lvl > policy.Allow && firstUp < 0 {
				firstUp = j
			}
			if lvl == policy.Block && firstBl < 0 {
				firstBl = j
			}
		} else {
			ownerCounts[lvl]++
		}
		show := (att && nAttack <= 3) || lvl != prev || (!att && !ownerShown)
		if show && n < maxRows {
			rows = append(rows, j)
			n++
			if !att {
				ownerShown = true
			}
		}
		prev = lvl
	}

	p("  %s %s %s %s %s %s\n", pad("time (UTC)", 12), pad("who", 8), pad("source", 28), pad("request", 36), pad("decision", 12), "risk")
	for _, j := range rows {
		ev, v := &items[j].Event, &vs[j]
		req := fmt.Sprintf("%s %s %d %s", ev.Method, ev.Endpoint, ev.Status, sizeOf(float64(ev.PayloadBytes)))
		p("  %s %s %s %s %s %5.2f\n", time.Unix(0, ev.Time).UTC().Format("Mon 15:04:05"),
			pad(items[j].Label.Role.String(), 8), pad(d.netName(ev), 28), pad(req, 36), pad(v.Level.String(), 12), v.Risk)
		var buf []byte
		for k := 0; k < v.N; k++ {
			r := &v.Reasons[k]
			buf = model.AppendDetail(buf[:0], ev, r)
			lead := fmt.Sprintf("      %s %+6.2f  ", pad(model.SignalName(r), 14), r.Contribution)
			p("%s%s\n", lead, wrap(string(buf), len(lead), 108, strings.Repeat(" ", len(lead))))
		}
	}
	switch {
	case firstUp < 0:
		p("  → vigil never escalated: all %s attacker requests were allowed.\n", commas(nAttack))
	default:
		p("  → first escalation at attacker request %d (%s after the attack began): %s",
			attackerOrdinal(items, first, firstUp, mine, isAttacker), since(items, first, firstUp), vs[firstUp].Level)
		if firstBl >= 0 {
			p("; first block at request %d (%s)", attackerOrdinal(items, first, firstBl, mine, isAttacker), since(items, first, firstBl))
		}
		p(".\n")
	}
	p("  → attacker, %s requests: %s\n", commas(nAttack), levelsLine(&attackCounts))
	p("  → owner on the same credential since then, %s requests: %s\n", commas(ownerCounts.total()), levelsLine(&ownerCounts))
}

func attackerOrdinal(items []simulate.Item, from, to int, mine, isAttacker func(int) bool) int {
	n := 0
	for j := from; j <= to; j++ {
		if mine(j) && isAttacker(j) {
			n++
		}
	}
	return n
}

func since(items []simulate.Item, from, to int) string {
	d := time.Duration(items[to].Event.Time - items[from].Event.Time).Round(time.Second)
	return d.String()
}

func levelsLine(c *counts) string {
	var parts []string
	for l := policy.Allow; l < policy.NumLevels; l++ {
		parts = append(parts, fmt.Sprintf("%s %s", l, commas(c[l])))
	}
	return strings.Join(parts, ", ")
}

// table prints decisions per level for each credential and label, and
// returns the totals per label.
func (d *demo) table(w io.Writer, j *judged) [2]counts {
	type key struct {
		token string
		role  simulate.Role
	}
	per := make(map[key]*counts)
	var tot [2]counts
	for i := range d.traffic.Items {
		it := &d.traffic.Items[i]
		k := key{it.Event.TokenID, it.Label.Role}
		if per[k] == nil {
			per[k] = new(counts)
		}
		lvl := j.verdicts[i].Level
		per[k][lvl]++
		tot[it.Label.Role][lvl]++
	}
	row := func(name string, role simulate.Role, c *counts) {
		fmt.Fprintf(w, "  %-10s %-9s %8s %8s %9s %13s %8s %12.1f%%\n", name, role, commas(c.total()),
			commas(c[policy.Allow]), commas(c[policy.Throttle]), commas(c[policy.StepUp]), commas(c[policy.Block]),
			pct(c.notAllowed(), c.total()))
	}
	fmt.Fprintf(w, "  %-10s %-9s %8s %8s %9s %13s %8s %13s\n", "credential", "label", "requests", "allow", "throttle", "step_up_auth", "block", "not allowed")
	for _, c := range d.traffic.Credentials {
		for _, role := range []simulate.Role{simulate.Owner, simulate.Attacker} {
			if x := per[key{c.TokenID, role}]; x != nil {
				row(c.Name, role, x)
			}
		}
	}
	row("all", simulate.Owner, &tot[simulate.Owner])
	row("all", simulate.Attacker, &tot[simulate.Attacker])
	return tot
}

// ownerSplit counts the owners' requests that were not allowed, on a
// credential after its attack began and elsewhere.
func (d *demo) ownerSplit(j *judged) (during, other int) {
	attackedAt := make(map[string]int64)
	for _, a := range d.traffic.Attacks {
		attackedAt[a.Victim.TokenID] = a.Start.UnixNano()
	}
	for i := range d.traffic.Items {
		it := &d.traffic.Items[i]
		if it.Label.Role != simulate.Owner || j.verdicts[i].Level == policy.Allow {
			continue
		}
		if at, ok := attackedAt[it.Event.TokenID]; ok && it.Event.Time >= at {
			during++
		} else {
			other++
		}
	}
	return during, other
}

func (d *demo) netName(ev *event.Event) string {
	name := d.nets[netKey{ev.ASN, ev.Country}]
	if name == "" {
		name = "unknown network"
	}
	return fmt.Sprintf("AS%d %s %s", ev.ASN, ev.Country, name)
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func span(start, end time.Time) string {
	return fmt.Sprintf("%s to %s UTC", start.Format("Mon 2 Jan 2006 15:04"), end.Format("Mon 2 Jan 15:04"))
}

// commas formats n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func sizeOf(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", n/1e3)
	}
	return fmt.Sprintf("%.0f B", n)
}

// pad left-justifies s in n columns, cutting it with an ellipsis if it is
// longer. Columns are counted in runes.
func pad(s string, n int) string {
	c := utf8.RuneCountInString(s)
	if c <= n {
		return s + strings.Repeat(" ", n-c)
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// wrap breaks s into lines of at most width columns, the first of which
// starts at column first, indenting every later line with indent.
func wrap(s string, first, width int, indent string) string {
	var b strings.Builder
	col := first
	for i, word := range strings.Fields(s) {
		n := utf8.RuneCountInString(word)
		switch {
		case i == 0:
		case col+1+n > width:
			b.WriteString("\n")
			b.WriteString(indent)
			col = len(indent)
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += n
	}
	return b.String()
}
