package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteJSON writes r as one indented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

// WriteText writes r as tables for a reader: one per decider, the issue's
// targets marked ✓/✗ next to the subject's numbers, then the comparison of
// the subject with each other decider, row by row.
func WriteText(w io.Writer, r *Report) error {
	var bw bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&bw, format, args...) }
	p("%s events, %s credentials (%s attacked, %s never attacked)\n",
		commas(r.Events), commas(r.Credentials), commas(r.Attacked), commas(r.Benign))
	for i := range r.Deciders {
		var checks []TargetCheck
		if i == 0 {
			checks = r.Targets
		}
		writeDecider(&bw, &r.Deciders[i], checks)
	}
	if len(r.Deciders) > 0 && len(r.Targets) > 0 {
		var missed []string
		for _, t := range r.Targets {
			if !t.Met {
				missed = append(missed, t.Row+" "+t.Metric+" "+t.Target)
			}
		}
		p("\nTargets (issue 3) on %s: %d of %d met", r.Deciders[0].Name, len(r.Targets)-len(missed), len(r.Targets))
		if len(missed) > 0 {
			p("; missed: %s", strings.Join(missed, "; "))
		}
		p(".\n")
	}
	if len(r.Comparisons) > 0 {
		writeComparisons(&bw, r.Comparisons)
	}
	// Columns are padded; lines are not.
	out := make([]byte, 0, bw.Len())
	for line := range bytes.Lines(bw.Bytes()) {
		out = append(out, bytes.TrimRight(bytes.TrimSuffix(line, []byte("\n")), " ")...)
		out = append(out, '\n')
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

func writeDecider(w io.Writer, d *DeciderReport, checks []TargetCheck) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	mark := func(row, metric string) string {
		t, ok := target(checks, row, metric)
		switch {
		case !ok:
			return "  "
		case t.Met:
			return " ✓"
		}
		return " ✗"
	}
	p("\n%s — %s\n", d.Name, d.Description)
	if len(d.Attacks) == 0 {
		p("  (no attacker events)\n")
	} else {
		p("  %-18s %9s %7s %17s %17s %9s %18s %8s %21s\n", "attack scenario", "attacker", "attacks",
			"recall≥throttle", "recall≥step_up", "detected", "median to throttle", "allowed", "owner collateral")
		for i := range d.Attacks {
			a := &d.Attacks[i]
			med := "—"
			if a.ToThrottle.Of > 0 {
				med = a.ToThrottle.Value.String()
				if a.ToThrottle.Never > 0 && a.ToThrottle.Value != Never {
					med += fmt.Sprintf(" (%d never)", a.ToThrottle.Never)
				}
			}
			p("  %-18s %9s %7d %15s%s %15s%s %9s %16s%s %8s %19s%s\n", a.Scenario, commas(a.AttackerEvents), a.Attacks,
				ratioPct(a.RecallThrottle), mark(a.Scenario, mRecallThrottle),
				ratioPct(a.RecallStepUp), mark(a.Scenario, mRecallStepUp),
				fmt.Sprintf("%d/%d", a.Detected.N, a.Detected.Of),
				med, mark(a.Scenario, mToThrottle),
				ratioPct(a.Allowed),
				collateral(a.Collateral), mark(a.Scenario, mCollateral))
		}
	}
	p("  %-18s %9s %7s %17s %17s %17s\n", "never attacked", "events", "creds", "ever≥step_up", "ever≥throttle", "events≥throttle")
	brow := func(name, row string, b *BenignRow) {
		p("  %-18s %9s %7d %15s%s %15s%s %15s%s\n", name, commas(b.Events), b.Credentials,
			ratioPct(b.EverStepUp), mark(row, mEverStepUp), ratioPct(b.EverThrottle), mark(row, mEverThrottle),
			ratioPct(b.EventsThrottle), mark(row, mEventsThrottle))
	}
	brow("all", "benign", &d.Benign)
	for i := range d.Archetypes {
		brow("  "+d.Archetypes[i].Archetype, "", &d.Archetypes[i])
	}
}

func writeComparisons(w io.Writer, cs []Comparison) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Other
	}
	p("\n%s compared with %s, row by row (better: at least as good on every metric of the row, strictly better on one)\n",
		cs[0].Subject, strings.Join(names, " and "))
	p("  %-18s", "row")
	for _, c := range cs {
		p(" %-44s", "vs "+c.Other)
	}
	p("\n")
	for i, r := range cs[0].Rows {
		p("  %-18s", r.Row)
		for _, c := range cs {
			rc := c.Rows[i]
			s := rc.Verdict
			switch {
			case rc.Verdict == "mixed":
				s += " (worse on " + shortNames(rc.Worse) + ")"
			case len(rc.Worse) > 0:
				s += " (" + shortNames(rc.Worse) + ")"
			}
			p(" %-44s", s)
		}
		p("\n")
	}
	for _, c := range cs {
		switch {
		case c.Better:
			p("  → %s is better than %s on every row.\n", c.Subject, c.Other)
		case c.NotWorse:
			p("  → %s is better than %s or equal on every row.\n", c.Subject, c.Other)
		default:
			p("  → %s is not better than %s on every row.\n", c.Subject, c.Other)
		}
	}
}

// collateral shows the share and what it is of: "1.20% of 2,179".
func collateral(r Ratio) string {
	if r.Of == 0 {
		return ratioPct(r)
	}
	return ratioPct(r) + " of " + commas(r.Of)
}

// shortNames abbreviates metric names for the comparison table.
func shortNames(ms []string) string {
	short := map[string]string{
		mRecallThrottle: "recall≥throttle", mRecallStepUp: "recall≥step_up", mDetected: "detected",
		mToThrottle: "median", mAllowed: "allowed", mCollateral: "collateral",
		mEverStepUp: "ever≥step_up", mEverThrottle: "ever≥throttle", mEventsThrottle: "events≥throttle",
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = short[m]
	}
	return strings.Join(out, ", ")
}

// ratioPct formats a share as a percentage with two decimals, "—" when
// there is nothing to measure.
func ratioPct(r Ratio) string {
	v, ok := r.Value()
	if !ok {
		return "—"
	}
	return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
}

// pct formats a target share: 0.95 → "95%", 0.005 → "0.5%".
func pct(x float64) string { return strconv.FormatFloat(x*100, 'f', -1, 64) + "%" }

// commas writes n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
