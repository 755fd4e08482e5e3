package inline

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/store"
)

// Metrics are the Checker's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	decisions  *prometheus.CounterVec
	latency    prometheus.Histogram
	bad        *prometheus.CounterVec
	reports    *prometheus.CounterVec
	denylisted prometheus.Counter
	fallback   prometheus.Counter
	zones      *prometheus.CounterVec
	responses  *prometheus.CounterVec
	// stats reads the store's counters at scrape time; set by New.
	stats atomic.Pointer[func() store.Stats]
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
			Help: "Upstream outcomes fed back, by whether the state store took them (applied: given to the store, which skips unknown credentials; failed: the store returned an error).",
		}, []string{"result"}),
	}
	m.denylisted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "vigil", Name: "denylisted_total",
		Help: "Requests blocked because their credential is on the denylist.",
	})
	m.fallback = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "vigil", Name: "store_fallback_decisions_total",
		Help: "Requests decided without the shared state store, which could not be reached: judged on this replica's local profiles (fail open) or blocked (fail closed).",
	})
	m.zones = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "zone_violations_total",
		Help: "Requests from outside their network zone, by the configured rule (lifecycle.zones) they broke.",
	}, []string{"rule"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "responses_submitted_total",
		Help: "Automated responses (lifecycle.response) submitted, by the trigger rule and whether the executor took them (its audit log has the outcome).",
	}, []string{"rule", "result"})
	for _, c := range []prometheus.Collector{m.decisions, m.latency, m.bad, m.reports, m.denylisted, m.fallback, m.zones, m.responses, newStoreCollector(m)} {
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

func (m *Metrics) zoneViolation(rule string) {
	if m != nil {
		m.zones.WithLabelValues(rule).Inc()
	}
}

// ResponseSubmitted counts an automated response by trigger rule; err is
// Submit's.
func (m *Metrics) ResponseSubmitted(rule string, err error) {
	if m == nil {
		return
	}
	result := "queued"
	if err != nil {
		result = "refused"
	}
	m.responses.WithLabelValues(rule, result).Inc()
}

func (m *Metrics) decided(v *gate.Verdict, d time.Duration) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(v.Decided.String(), v.Level.String()).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *Metrics) reported(applied bool) {
	if m == nil {
		return
	}
	r := "failed"
	if applied {
		r = "applied"
	}
	m.reports.WithLabelValues(r).Inc()
}

// stored counts what the state store said about a decision beyond its
// level.
func (m *Metrics) stored(v *store.Verdict) {
	if m == nil {
		return
	}
	if v.Denial != nil {
		m.denylisted.Inc()
	}
	if v.Fallback {
		m.fallback.Inc()
	}
}

// watch makes the metrics read the store's counters from stats.
func (m *Metrics) watch(stats func() store.Stats) {
	if m != nil {
		m.stats.Store(&stats)
	}
}

// storeCollector exports the state store's counters, read once per scrape.
type storeCollector struct {
	m                                       *Metrics
	profiles, evictions, refused            *prometheus.Desc
	fallbacks, errors, conflicts, available *prometheus.Desc
}

func newStoreCollector(m *Metrics) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc("vigil_"+name, help, nil, nil) }
	return &storeCollector{m: m,
		profiles:  d("active_profiles", "Credentials with a profile in this process (with a shared store: the local fallback profiles; the shared ones are in Redis)."),
		evictions: d("profile_evictions_total", "Profiles dropped for a credential seen more often, with profile.max_credentials reached."),
		refused:   d("profile_admissions_refused_total", "Requests judged on an empty, unkept profile because the cap was reached and the credential not admitted (a flood of made-up credentials shows here)."),
		fallbacks: d("store_fallbacks_total", "Batches of requests the shared state store judged without Redis, which could not be reached in time (on local profiles, or blocked with state.redis.fail closed)."),
		errors:    d("store_errors_total", "Errors talking to the shared state store (timeouts, refused connections, failed writes)."),
		conflicts: d("store_conflicts_total", "Credential records another replica wrote between this replica's read and write; each was judged again on the newer copy."),
		available: d("store_available", "1 while the state store is reachable, 0 while it is considered down."),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.profiles, c.evictions, c.refused, c.fallbacks, c.errors, c.conflicts, c.available} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	var s store.Stats
	if f := c.m.stats.Load(); f != nil {
		s = (*f)()
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(c.profiles, prometheus.GaugeValue, float64(s.Credentials))
	counter(c.evictions, s.Evictions)
	counter(c.refused, s.Rejected)
	counter(c.fallbacks, s.Fallbacks)
	counter(c.errors, s.Errors)
	counter(c.conflicts, s.Conflicts)
	available := 0.0
	if s.Available {
		available = 1
	}
	ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, available)
}
