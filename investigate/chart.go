package investigate

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/policy"
)

// chart is the geometry of one credential's risk chart, an inline SVG:
// its risk series over time, a dot per point colored by decision, the
// policy's thresholds as horizontal lines and the first deviation as a
// vertical one. Coordinates are strings with one decimal, so that the
// HTML is the same on every platform.
type chart struct {
	W, H       int
	Left, Top  string // the plot area's corners
	Right, Bot string
	Thresholds []chartLine
	Trend      string // polyline points; empty for fewer than two
	Dots       []chartDot
	Dev        chartMark
	Peak       chartLabel
	XLabels    []chartLabel
	YLabels    []chartLabel
}

type chartLine struct {
	Y, X2, LabelX, LabelY, Label string
	Level                        int
}

type chartDot struct {
	X, Y, R string
	Level   int
	Title   string
}

type chartMark struct {
	X, Y1, Y2, LabelX, LabelY, Label, Anchor string
}

type chartLabel struct {
	X, Y, Text, Anchor string
}

// Chart size and margins, in SVG units.
const (
	chartW, chartH                            = 760, 230
	marginL, marginR, marginTop, marginBottom = 40, 110, 28, 30
)

// newChart lays out c's series. It copes with any number of points from
// one: a single instant is centred, and the dots are larger when few.
func newChart(c *Credential, th policy.Ladder) chart {
	pts := slices.Clone(c.Series)
	dev := Point{Time: c.Deviation.Time, Risk: c.Deviation.Risk, Level: c.Deviation.Level, Events: 1}
	if !slices.ContainsFunc(pts, func(p Point) bool { return p.Time.Equal(dev.Time) && p.Risk == dev.Risk }) {
		pts = append(pts, dev)
	}
	slices.SortStableFunc(pts, func(a, b Point) int { return a.Time.Compare(b.Time) })

	ch := chart{W: chartW, H: chartH}
	x0, x1 := float64(marginL), float64(chartW-marginR)
	y0, y1 := float64(chartH-marginBottom), float64(marginTop) // risk 0 at the bottom
	ch.Left, ch.Right, ch.Top, ch.Bot = num(x0), num(x1), num(y1), num(y0)

	top := 1.0
	for _, p := range pts {
		top = max(top, p.Risk)
	}
	if th.Block > 0 {
		top = max(top, th.Block)
	}
	top *= 1.12
	y := func(risk float64) float64 { return y0 - (y0-y1)*max(0, risk)/top }

	t0, t1 := pts[0].Time, pts[len(pts)-1].Time
	span := t1.Sub(t0)
	var pad time.Duration
	if span == 0 {
		pad = time.Minute
	} else {
		pad = span / 25
	}
	lo, hi := t0.Add(-pad), t1.Add(pad)
	x := func(t time.Time) float64 {
		return x0 + (x1-x0)*float64(t.Sub(lo))/float64(hi.Sub(lo))
	}

	for l, v := range []float64{th.Throttle, th.StepUp, th.Block} {
		if v <= 0 {
			continue
		}
		ch.Thresholds = append(ch.Thresholds, chartLine{
			Y: num(y(v)), X2: num(x1), LabelX: num(x1 + 6), LabelY: num(y(v) + 4),
			Label: policy.Level(l+1).String() + " " + fmtRisk(v), Level: l + 1,
		})
	}
	ch.YLabels = append(ch.YLabels, chartLabel{X: num(x0 - 6), Y: num(y0 + 4), Text: "0", Anchor: "end"})
	if th.Throttle <= 0 {
		mid := math.Round(top / 2)
		ch.YLabels = append(ch.YLabels, chartLabel{X: num(x0 - 6), Y: num(y(mid) + 4), Text: fmtRisk(mid), Anchor: "end"})
	}
	ch.YLabels = append(ch.YLabels, chartLabel{X: num(x0 - 6), Y: num(y1 + 4), Text: "risk", Anchor: "end"})

	r := "4.5"
	switch {
	case len(pts) > 200:
		r = "2.2"
	case len(pts) > 60:
		r = "3"
	}
	xs := make([]float64, len(pts))
	for i, p := range pts {
		xs[i] = x(p.Time)
	}
	if len(xs) <= maxDodged {
		dodge(xs, x0, x1, 2*dotR[r]+1)
	}
	var trend []string
	for i, p := range pts {
		px, py := num(xs[i]), num(y(p.Risk))
		title := fmtTime(p.Time) + " UTC · risk " + fmtRisk(p.Risk) + " · " + p.Level.String()
		if p.Events > 1 {
			title += " · the riskiest of " + fmtCount(p.Events) + " events"
		}
		ch.Dots = append(ch.Dots, chartDot{X: px, Y: py, R: r, Level: int(p.Level), Title: title})
		trend = append(trend, px+","+py)
	}
	if len(trend) > 1 {
		ch.Trend = strings.Join(trend, " ")
	}

	dx := x(dev.Time)
	if i := slices.IndexFunc(pts, func(p Point) bool { return p.Time.Equal(dev.Time) && p.Risk == dev.Risk }); i >= 0 {
		dx = xs[i] // where its dot was moved to
	}
	ch.Dev = chartMark{X: num(dx), Y1: num(y1 - 6), Y2: num(y0), LabelY: num(y1 - 10),
		Label: "first deviation " + fmtTime(dev.Time)}
	if dx > (x0+x1)/2 {
		ch.Dev.LabelX, ch.Dev.Anchor = num(dx-4), "end"
	} else {
		ch.Dev.LabelX, ch.Dev.Anchor = num(dx+4), "start"
	}
	peak := slices.MaxFunc(pts, func(a, b Point) int { return cmp.Compare(a.Risk, b.Risk) })
	px := xs[slices.Index(pts, peak)]
	ch.Peak = chartLabel{X: num(px), Y: num(y(peak.Risk) - 9), Text: "peak " + fmtRisk(peak.Risk), Anchor: "middle"}
	switch {
	case px < x0+40:
		ch.Peak.Anchor = "start"
	case px > x1-40:
		ch.Peak.Anchor = "end"
	}

	ch.XLabels = append(ch.XLabels, chartLabel{X: num(x(t0)), Y: num(y0 + 18), Text: fmtTime(t0), Anchor: "start"})
	if span > 0 {
		ch.XLabels = append(ch.XLabels, chartLabel{X: num(x(t1)), Y: num(y0 + 18), Text: fmtTime(t1), Anchor: "end"})
	} else {
		ch.XLabels[0].Anchor = "middle"
	}
	return ch
}

// dotR are the dot radii, by their attribute.
var dotR = map[string]float64{"4.5": 4.5, "3": 3, "2.2": 2.2}

// maxDodged is the most dots spread apart by dodge: a few events minutes
// apart in a log of days would be drawn as one dot.
const maxDodged = 40

// dodge moves the sorted positions xs apart to at least gap, within
// [lo, hi], moving each as little as it can: the time axis bends a little
// so that every event of a small log shows (its tooltip has its time).
func dodge(xs []float64, lo, hi, gap float64) {
	if n := len(xs); n < 2 || float64(n-1)*gap > hi-lo {
		return
	}
	for i := 1; i < len(xs); i++ {
		xs[i] = max(xs[i], xs[i-1]+gap)
	}
	for i := len(xs) - 1; i >= 0; i-- {
		limit := hi
		if i < len(xs)-1 {
			limit = xs[i+1] - gap
		}
		xs[i] = min(xs[i], limit)
	}
}

// num writes a coordinate with one decimal.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
