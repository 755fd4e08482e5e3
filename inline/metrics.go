package inline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
)

// Metrics are the Checker's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	bad       *prometheus.CounterVec
	reports   *prometheus.CounterVec
	profiles  func() float64
	capacity  func() (evictions, rejected float64)
}

// NewMetrics registers the metrics with reg. No label ever holds a
// credential, a token id or an address: decisions are counted by level.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Name: "decisions_total",
			Help: "Inline decisions, by the level decided and the level enforced (they differ in shadow mode and when a throttled credential's request fits its rate limit).",
		}, []string{"decision", "enforced"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "vigil", Name: "decision_duration_seconds",
			Help:    "Time to decide one request, from extraction to the rendered response.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2},
		}),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Name: "bad_requests_total",
			Help: "Requests with something malformed, by cause.",
		}, []string{"reason"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Name: "reports_total",
			Help: "Upstream outcomes fed back, by whether the credential was known.",
		}, []string{"result"}),
	}
	profiles := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "vigil", Name: "active_profiles",
		Help: "Credentials with a profile in this process.",
	}, func() float64 {
		if m.profiles == nil {
			return 0
		}
		return m.profiles()
	})
	evictions := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "vigil", Name: "profile_evictions_total",
		Help: "Profiles dropped for a credential seen more often, with profile.max_credentials reached.",
	}, func() float64 {
		if m.capacity == nil {
			return 0
		}
		ev, _ := m.capacity()
		return ev
	})
	unkept := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "vigil", Name: "profile_admissions_refused_total",
		Help: "Requests judged on an empty, unkept profile because the cap was reached and the credential not admitted (a flood of made-up credentials shows here).",
	}, func() float64 {
		if m.capacity == nil {
			return 0
		}
		_, r := m.capacity()
		return r
	})
	for _, c := range []prometheus.Collector{m.decisions, m.latency, m.bad, m.reports, profiles, evictions, unkept} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Pre-create the label sets so dashboards see zeros, not gaps.
	for l := policy.Allow; l < policy.NumLevels; l++ {
		m.decisions.WithLabelValues(l.String(), l.String())
	}
	return m, nil
}

// BadRequest counts a malformed request by cause (a fixed word, never a
// value from the request).
func (m *Metrics) BadRequest(reason string) { m.badRequest(reason) }

func (m *Metrics) badRequest(reason string) {
	if m != nil {
		m.bad.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) decided(v *gate.Verdict, d time.Duration) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(v.Decided.String(), v.Level.String()).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *Metrics) reported(known bool) {
	if m == nil {
		return
	}
	r := "unknown_credential"
	if known {
		r = "applied"
	}
	m.reports.WithLabelValues(r).Inc()
}
