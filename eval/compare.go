package eval

import "fmt"

// Targets of issue 3 for the default simulation, checked on the subject
// (the first decider).
const (
	TargetRecallThrottle = 0.95  // per attack scenario, at least
	TargetRecallStepUp   = 0.85  // per attack scenario, at least
	TargetToThrottle     = 5     // median attacker events before ≥ throttle, at most
	TargetCollateral     = 0.05  // per attack scenario, at most
	TargetBenignStepUp   = 0.005 // benign credentials ever ≥ step_up_auth, at most
	TargetBenignThrottle = 0.002 // benign events ≥ throttle, at most
)

// TargetCheck is one target on one row of the subject.
type TargetCheck struct {
	Row    string `json:"row"`
	Metric string `json:"metric"`
	Target string `json:"target"`
	// Met is false when the value misses the target. A metric without a
	// value (no event to measure) meets its target vacuously.
	Met bool `json:"met"`
}

// Metric names, as in the JSON report and the comparison.
const (
	mRecallThrottle = "recall_throttle"
	mRecallStepUp   = "recall_step_up_auth"
	mDetected       = "detected"
	mToThrottle     = "median_events_to_throttle"
	mAllowed        = "allowed"
	mCollateral     = "collateral"
	mEverStepUp     = "ever_step_up_auth"
	mEverThrottle   = "ever_throttle"
	mEventsThrottle = "events_throttle"
)

func checkTargets(d *DeciderReport) []TargetCheck {
	var out []TargetCheck
	ratio := func(row, metric string, r Ratio, atLeast bool, t float64) {
		v, ok := r.Value()
		met := !ok || (atLeast && v >= t) || (!atLeast && v <= t)
		op := "≤"
		if atLeast {
			op = "≥"
		}
		out = append(out, TargetCheck{Row: row, Metric: metric, Target: fmt.Sprintf("%s %s", op, pct(t)), Met: met})
	}
	for i := range d.Attacks {
		a := &d.Attacks[i]
		if a.Scenario == AllAttacks {
			continue
		}
		ratio(a.Scenario, mRecallThrottle, a.RecallThrottle, true, TargetRecallThrottle)
		ratio(a.Scenario, mRecallStepUp, a.RecallStepUp, true, TargetRecallStepUp)
		out = append(out, TargetCheck{Row: a.Scenario, Metric: mToThrottle, Target: fmt.Sprintf("≤ %d", TargetToThrottle),
			Met: a.ToThrottle.Of == 0 || a.ToThrottle.Value <= TargetToThrottle})
		ratio(a.Scenario, mCollateral, a.Collateral, false, TargetCollateral)
	}
	ratio("benign", mEverStepUp, d.Benign.EverStepUp, false, TargetBenignStepUp)
	ratio("benign", mEventsThrottle, d.Benign.EventsThrottle, false, TargetBenignThrottle)
	return out
}

// target returns the check of row and metric, if there is one.
func target(checks []TargetCheck, row, metric string) (TargetCheck, bool) {
	for _, c := range checks {
		if c.Row == row && c.Metric == metric {
			return c, true
		}
	}
	return TargetCheck{}, false
}

// Comparison is the subject against one other decider, row by row.
type Comparison struct {
	Subject string          `json:"subject"`
	Other   string          `json:"other"`
	Rows    []RowComparison `json:"rows"`
	// Better is true when the subject is better on every row; NotWorse
	// when it is better or equal on every row.
	Better   bool `json:"better_on_every_row"`
	NotWorse bool `json:"not_worse_on_any_row"`
}

// RowComparison compares one row. The subject is better on the row when
// it is at least as good on every metric and strictly better on one; worse
// when it is worse on one and better on none; mixed when both; equal when
// no metric differs.
type RowComparison struct {
	Row     string   `json:"row"`
	Verdict string   `json:"verdict"` // better, equal, worse, mixed
	Better  []string `json:"better_metrics"`
	Worse   []string `json:"worse_metrics"`
}

// metric is one comparable number of a row; higher says whether higher
// is better. ok is false when there is no value.
type metric struct {
	name   string
	v      float64
	ok     bool
	higher bool
}

func ratioMetric(name string, r Ratio, higher bool) metric {
	v, ok := r.Value()
	return metric{name, v, ok, higher}
}

func attackMetrics(a *AttackRow) []metric {
	tt := metric{name: mToThrottle, ok: a.ToThrottle.Of > 0, v: float64(a.ToThrottle.Value)}
	return []metric{
		ratioMetric(mRecallThrottle, a.RecallThrottle, true),
		ratioMetric(mRecallStepUp, a.RecallStepUp, true),
		ratioMetric(mDetected, a.Detected, true),
		tt,
		ratioMetric(mAllowed, a.Allowed, false),
		ratioMetric(mCollateral, a.Collateral, false),
	}
}

func benignMetrics(b *BenignRow) []metric {
	return []metric{
		ratioMetric(mEverStepUp, b.EverStepUp, false),
		ratioMetric(mEverThrottle, b.EverThrottle, false),
		ratioMetric(mEventsThrottle, b.EventsThrottle, false),
	}
}

// rows lists a report's rows with their metrics, in report order.
func rows(d *DeciderReport) (names []string, ms [][]metric) {
	for i := range d.Attacks {
		names = append(names, d.Attacks[i].Scenario)
		ms = append(ms, attackMetrics(&d.Attacks[i]))
	}
	names = append(names, "benign")
	ms = append(ms, benignMetrics(&d.Benign))
	for i := range d.Archetypes {
		names = append(names, "benign "+d.Archetypes[i].Archetype)
		ms = append(ms, benignMetrics(&d.Archetypes[i]))
	}
	return names, ms
}

func compare(s, o *DeciderReport) Comparison {
	c := Comparison{Subject: s.Name, Other: o.Name, Better: true, NotWorse: true}
	names, sm := rows(s)
	onames, om := rows(o)
	other := make(map[string][]metric, len(onames))
	for i, n := range onames {
		other[n] = om[i]
	}
	for i, n := range names {
		rc := RowComparison{Row: n, Better: []string{}, Worse: []string{}}
		for j, m := range sm[i] {
			x := other[n][j] // both deciders see the same rows
			if !m.ok || !x.ok || m.v == x.v {
				continue
			}
			if (m.v > x.v) == m.higher {
				rc.Better = append(rc.Better, m.name)
			} else {
				rc.Worse = append(rc.Worse, m.name)
			}
		}
		switch {
		case len(rc.Worse) == 0 && len(rc.Better) > 0:
			rc.Verdict = "better"
		case len(rc.Worse) == 0:
			rc.Verdict = "equal"
		case len(rc.Better) == 0:
			rc.Verdict = "worse"
		default:
			rc.Verdict = "mixed"
		}
		c.Better = c.Better && rc.Verdict == "better"
		c.NotWorse = c.NotWorse && len(rc.Worse) == 0
		c.Rows = append(c.Rows, rc)
	}
	return c
}
