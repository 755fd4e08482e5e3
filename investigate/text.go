package investigate

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vigil-sec/vigil/policy"
)

// Lengths of the text report: timeline entries shown at each end of a long
// timeline, values listed per origin, and the widths log values are cut to.
const (
	textTimelineEnds = 8
	textPlaces       = 4
	textEndpoints    = 12
	widthEndpoint    = 48
	widthDetail      = 160
	widthID          = 64
)

// WriteText writes r for a terminal: a summary, then every listed
// credential with its deviation, origins, activity, reasons and timeline
// (the first and last suspicious events of a long one, "… N more" between).
// Values from logs are cut to a readable width, and control characters in
// them (a terminal's escape sequences) are written as escapes.
func WriteText(w io.Writer, r Report) error {
	// Table cells are padded: the report is built whole, then written with
	// the padding at the ends of lines trimmed.
	var buf bytes.Buffer
	writeText(&buf, &r)
	bw := bufio.NewWriter(w)
	for line := range bytes.Lines(buf.Bytes()) {
		bw.Write(bytes.TrimRight(line, " \n"))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func writeText(bw *bytes.Buffer, r *Report) {
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }

	p("vigil investigate: which credentials were abused, since when\n")
	if r.Events == 0 {
		p("  no events\n")
		return
	}
	p("  events        %s from %s to %s UTC (%s)\n", fmtCount(r.Events), fmtTime(r.First), fmtTime(r.Last), fmtSpan(r.Last.Sub(r.First)))
	p("  decisions     %s\n", decisionsLine(&r.Decisions))
	p("  suspicious    %s at or above %s, of %s; %s in all\n", plural(r.SuspiciousEvents, "event"), r.MinLevel,
		plural(int64(r.Suspicious()), "credential"), plural(int64(r.CredentialsSeen), "credential"))
	if r.Dropped > 0 {
		p("  dropped       %s no longer tracked (bound on credentials), %s of them suspicious\n",
			plural(int64(r.Dropped), "credential"), fmtCount(int64(r.DroppedSuspicious)))
	}
	if t := r.Thresholds; t.Throttle > 0 {
		p("  thresholds    throttle %s, step_up_auth %s, block %s\n", fmtRisk(t.Throttle), fmtRisk(t.StepUp), fmtRisk(t.Block))
	}

	for i := range r.Credentials {
		p("\n")
		writeCredential(bw, i+1, &r.Credentials[i], r.MinLevel)
	}
	if r.Omitted > 0 {
		p("\n… %s more suspicious %s not shown\n", fmtCount(int64(r.Omitted)), pluralWord(int64(r.Omitted), "credential"))
	}

	o := &r.Others
	if o.Credentials == 0 {
		p("\nother credentials: none\n")
	} else {
		p("\nother credentials: %s, %s, none at or above %s\n", plural(int64(o.Credentials), "credential"), plural(o.Events, "event"), r.MinLevel)
	}
	if len(o.Riskiest) > 0 {
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  nearest misses\tpeak risk\tat\tevents\tclient\n")
		for _, b := range o.Riskiest {
			fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%s\t%s\n", clean(b.TokenID, widthID), fmtRisk(b.Peak.Risk), b.Peak.Level,
				fmtTime(b.Peak.Time), fmtCount(b.Events), orDash(clean(b.ClientID, widthID)))
		}
		tw.Flush()
	}
}

func writeCredential(w io.Writer, n int, c *Credential, minLevel policy.Level) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("%d. %s", n, clean(c.TokenID, widthID))
	if c.ClientID != "" {
		p(" (client %s)", clean(c.ClientID, widthID))
	}
	p("\n")
	if c.HistoryIncomplete {
		p("   note: tracked again after being dropped; its history before that is forgotten\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "   peak risk\t%s %s at %s UTC\n", fmtRisk(c.Peak.Risk), c.Peak.Level, fmtTime(c.Peak.Time))
	fmt.Fprintf(tw, "   seen\t%s → %s UTC: %s, %s\n", fmtTime(c.FirstSeen), fmtTime(c.LastSeen), plural(c.Events, "event"),
		fmtCount(c.Suspicious)+" suspicious")
	d := &c.Deviation
	fmt.Fprintf(tw, "   first deviation\t%s UTC, after %s\n", fmtTime(d.Time), plural(d.EventsBefore, "event"))
	fmt.Fprintf(tw, "   \trisk %s %s: %s\n", fmtRisk(d.Risk), d.Level, entryLine(&d.Entry))
	tw.Flush()
	// The reasons, under the deviation's description.
	sw, cw := 0, 0
	for _, x := range d.Reasons {
		sw, cw = max(sw, len(x.Signal)), max(cw, len(fmtRisk(x.Contribution)))
	}
	for _, x := range d.Reasons {
		p("%20s%-*s  %*s  %s\n", "", sw, x.Signal, cw, fmtRisk(x.Contribution), clean(x.Detail, widthDetail))
	}

	p("\n   from where\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "     \tsuspicious events\tbefore the deviation\n")
	for _, o := range c.Origins {
		fmt.Fprintf(tw, "     %s\t%s\t%s\n", o.Kind, placesText(o.During, o.DuringOther, true), placesText(o.Before, o.BeforeOther, false))
	}
	tw.Flush()

	a := &c.Activity
	p("\n   what it did since the deviation: %s (%s suspicious), %s out (%s in suspicious events)\n",
		plural(a.Events, "event"), fmtCount(a.Suspicious), fmtBytes(a.Bytes), fmtBytes(a.SuspiciousBytes))
	p("     errors: %s 4xx, %s 5xx, %s 401/403\n", fmtCount(a.Status4xx), fmtCount(a.Status5xx), fmtCount(a.AuthFailures))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "     endpoint\t\tevents\tsuspicious\tbytes out\terrors\n")
	for i, u := range a.Endpoints {
		if i == textEndpoints {
			fmt.Fprintf(tw, "     … %s more %s\n", fmtCount(int64(len(a.Endpoints)-i)), pluralWord(int64(len(a.Endpoints)-i), "endpoint"))
			break
		}
		fmt.Fprintf(tw, "     %s\t%s\t%s\t%s\t%s\t%s\n", clean(u.Endpoint, widthEndpoint), newMark(u.New),
			fmtCount(u.Events), fmtCount(u.Suspicious), fmtBytes(u.Bytes), fmtCount(u.Errors))
	}
	if a.OtherEndpoints > 0 {
		fmt.Fprintf(tw, "     (other endpoints)\t\t%s\n", fmtCount(a.OtherEndpoints))
	}
	tw.Flush()

	p("\n   reasons\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "     signal\tevents\tmax\texample\n")
	for _, x := range c.Reasons {
		fmt.Fprintf(tw, "     %s\t%s\t%s\t%s\n", x.Signal, fmtCount(x.Events), fmtRisk(x.Max), clean(x.Example, widthDetail))
	}
	tw.Flush()

	p("\n   timeline: %s at or above %s\n", plural(c.Suspicious, "suspicious event"), minLevel)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "     time (UTC)\taddress\tendpoint\tstatus\tbytes\trisk\tdecision\treason\n")
	shown, gapAt, gap := textTimeline(c)
	for i, e := range shown {
		if i == gapAt && gap > 0 {
			fmt.Fprintf(tw, "     … %s more\t\t\t\t\t\t\t\n", fmtCount(gap))
		}
		fmt.Fprintf(tw, "     %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", fmtTime(e.Time), e.IP, clean(e.Endpoint, widthEndpoint),
			e.Status, fmtBytes(e.Bytes), fmtRisk(e.Risk), e.Level, orDash(e.Reason.Signal))
	}
	if gapAt == len(shown) && gap > 0 {
		fmt.Fprintf(tw, "     … %s more\t\t\t\t\t\t\t\n", fmtCount(gap))
	}
	tw.Flush()
}

// textTimeline picks the entries the text shows: all of a short timeline,
// else the first and the last textTimelineEnds. gap events are left out
// before shown[gapAt].
func textTimeline(c *Credential) (shown []Entry, gapAt int, gap int64) {
	tl := c.Timeline
	if len(tl) <= 2*textTimelineEnds {
		return tl, c.TimelineGap, c.TimelineOmitted
	}
	shown = append(append(shown, tl[:textTimelineEnds]...), tl[len(tl)-textTimelineEnds:]...)
	return shown, textTimelineEnds, c.Suspicious - int64(len(shown))
}

// entryLine describes an event in one line: where from, what, the answer.
func entryLine(e *Entry) string {
	var b strings.Builder
	b.WriteString(e.IP.String())
	if e.ASN != 0 {
		b.WriteString(" AS" + itoa(int64(e.ASN)))
	}
	if e.Country != "" {
		b.WriteString(" " + e.Country)
	}
	b.WriteString(", " + clean(e.Endpoint, widthEndpoint) + " " + itoa(int64(e.Status)) + ", " + fmtBytes(e.Bytes))
	return b.String()
}

// placesText lists the first textPlaces places: "SG 34 new, US 6, +2 more".
func placesText(ps []Place, other int64, during bool) string {
	if len(ps) == 0 && other == 0 {
		return "-"
	}
	var parts []string
	for i, pl := range ps {
		if i == textPlaces {
			parts = append(parts, "+"+itoa(int64(len(ps)-i))+" more")
			break
		}
		s := clean(pl.Value, widthID) + " " + fmtCount(pl.Events)
		if during && pl.New {
			s += " NEW"
		}
		if during && !pl.Since.IsZero() {
			s += " (since " + fmtTime(pl.Since) + ")"
		}
		parts = append(parts, s)
	}
	if other > 0 {
		parts = append(parts, fmtCount(other)+" events elsewhere")
	}
	return strings.Join(parts, ", ")
}

func newMark(fresh bool) string {
	if fresh {
		return "NEW"
	}
	return ""
}

func decisionsLine(d *[policy.NumLevels]int64) string {
	parts := make([]string, 0, len(d))
	for l, n := range d {
		parts = append(parts, policy.Level(l).String()+" "+fmtCount(n))
	}
	return strings.Join(parts, " · ")
}

func plural(n int64, noun string) string { return fmtCount(n) + " " + pluralWord(n, noun) }

func pluralWord(n int64, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
