package inventory

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// CSVHeader is the header row of WriteCSV.
var CSVHeader = []string{"token_id", "client_id", "subject", "kind", "first_seen", "last_seen", "requests",
	"risk", "max_risk", "level", "allow", "throttle", "step_up_auth", "block", "scopes_granted", "scopes_used",
	"endpoints", "asns", "countries", "binding", "binding_failures"}

// WriteCSV writes entries as CSV (RFC 4180), one row each after
// CSVHeader. Lists are joined with spaces, as value:requests where
// counted. A cell that a spreadsheet would take for a formula (it starts
// with = + - @ or a tab) is prefixed with a quote: client_id and the
// like come from requests.
func WriteCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("inventory: csv: %w", err)
	}
	row := make([]string, len(CSVHeader))
	for i := range entries {
		e := &entries[i]
		row = append(row[:0], e.TokenID, e.ClientID, e.Subject, e.Kind, timeCell(e.FirstSeen), timeCell(e.LastSeen),
			strconv.FormatUint(e.Requests, 10), floatCell(e.Risk), floatCell(e.MaxRisk), e.Level.String(),
			strconv.FormatUint(e.Decisions.Allow, 10), strconv.FormatUint(e.Decisions.Throttle, 10),
			strconv.FormatUint(e.Decisions.StepUp, 10), strconv.FormatUint(e.Decisions.Block, 10),
			strings.Join(e.Granted, " "), countsCell(e.Used), countsCell(e.Endpoints), countsCell(e.ASNs),
			countsCell(e.Countries), e.Binding.Status(), strconv.FormatUint(e.Binding.Failures, 10))
		for j := range row {
			row[j] = safeCell(row[j])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("inventory: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("inventory: csv: %w", err)
	}
	return nil
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func floatCell(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func countsCell(cs []Count) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.Value)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(c.Requests, 10))
	}
	return b.String()
}

// safeCell defuses spreadsheet formulas (CSV injection).
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteTable writes entries as an aligned table for a terminal: one line
// per credential with its busiest values.
func WriteTable(w io.Writer, entries []Entry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN ID\tCLIENT\tREQUESTS\tLAST SEEN\tRISK\tLEVEL\tBINDING\tTOP ENDPOINT\tNETWORKS")
	for i := range entries {
		e := entries[i].Clone()
		e.Sort()
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f\t%s\t%s\t%s\t%s\n", e.TokenID, orDash(printable(e.ClientID)), e.Requests,
			ago(now, e.LastSeen), e.Risk, e.Level, orDash(e.Binding.Status()), orDash(top(e.Endpoints)), orDash(networks(&e)))
	}
	return tw.Flush()
}

// WriteEntry writes one entry in full for a terminal.
func WriteEntry(w io.Writer, e Entry, now time.Time) error {
	e.Sort()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	p("token id", e.TokenID)
	p("client id", orDash(printable(e.ClientID)))
	p("subject", orDash(printable(e.Subject)))
	p("kind", orDash(e.Kind))
	p("first seen", timeCell(e.FirstSeen))
	p("last seen", timeCell(e.LastSeen)+" ("+ago(now, e.LastSeen)+")")
	p("requests", strconv.FormatUint(e.Requests, 10))
	p("decisions", fmt.Sprintf("allow %d, throttle %d, step_up_auth %d, block %d",
		e.Decisions.Allow, e.Decisions.Throttle, e.Decisions.StepUp, e.Decisions.Block))
	p("risk", fmt.Sprintf("%.2f now (%s), highest %.2f at %s", e.Risk, e.Level, e.MaxRisk, timeCell(e.MaxRiskAt)))
	p("scopes granted", orDash(printable(strings.Join(e.Granted, " "))))
	p("scopes used", orDash(printable(countsCell(e.Used))))
	p("endpoints", orDash(printable(countsCell(e.Endpoints))))
	p("asns", orDash(countsCell(e.ASNs)))
	p("countries", orDash(printable(countsCell(e.Countries))))
	b := e.Binding
	bind := fmt.Sprintf("%s (unbound %d, dpop %d, mtls %d, failures %d", orDash(b.Status()), b.Unbound, b.DPoP, b.MTLS, b.Failures)
	if b.LastFailure != "" {
		bind += ", last " + printable(b.LastFailure) + " at " + timeCell(b.LastFailureAt)
	}
	p("binding", bind+")")
	for i, d := range e.History {
		k := ""
		if i == 0 {
			k = "history"
		}
		p(k, fmt.Sprintf("%s %s risk %.2f %s", timeCell(d.Time), d.Level, d.Risk, printable(d.Signal)))
	}
	return tw.Flush()
}

func top(cs []Count) string {
	if len(cs) == 0 {
		return ""
	}
	return printable(cs[0].Value)
}

func networks(e *Entry) string {
	var parts []string
	for i, c := range e.ASNs {
		if i == 2 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, "AS"+c.Value)
	}
	for i, c := range e.Countries {
		if i == 3 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, printable(c.Value))
	}
	return strings.Join(parts, " ")
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable replaces control characters (a client_id is whatever a
// request claimed) so a terminal shows them instead of obeying them.
func printable(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
