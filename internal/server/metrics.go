package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-sec/vigil/forwardauth"
	"github.com/vigil-sec/vigil/internal/app"
)

// forwardAuthCollector exports the forward-auth handlers' counters, one
// label value per mounted dialect.
type forwardAuthCollector struct {
	handlers map[string]*forwardauth.Handler // by dialect
	descs    []*prometheus.Desc
	values   []func(forwardauth.Stats) uint64
}

func newForwardAuthCollector(handlers map[string]*forwardauth.Handler) *forwardAuthCollector {
	c := &forwardAuthCollector{handlers: handlers}
	add := func(name, help string, v func(forwardauth.Stats) uint64) {
		c.descs = append(c.descs, prometheus.NewDesc("vigil_forward_auth_"+name+"_total", help, []string{"gateway"}, nil))
		c.values = append(c.values, v)
	}
	add("requests", "Forward-auth requests served.", func(s forwardauth.Stats) uint64 { return s.Requests })
	add("bad_requests", "Forward-auth requests answered 4xx without a decision: no usable original method or URI.", func(s forwardauth.Stats) uint64 { return s.BadRequests })
	add("forwarding_ignored", "Requests from untrusted peers that carried forwarding headers, which were ignored.", func(s forwardauth.Stats) uint64 { return s.ForwardingIgnored })
	add("forwarding_malformed", "Requests from trusted proxies with a malformed client address.", func(s forwardauth.Stats) uint64 { return s.ForwardingMalformed })
	add("check_errors", "Requests vigil could not decide (answered 503, or allowed with fail_open).", func(s forwardauth.Stats) uint64 { return s.CheckErrors })
	return c
}

// Describe implements prometheus.Collector.
func (c *forwardAuthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *forwardAuthCollector) Collect(ch chan<- prometheus.Metric) {
	for name, h := range c.handlers {
		s := h.Stats()
		for i, d := range c.descs {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(c.values[i](s)), name)
		}
	}
}

// lifecycleCollector exports the inventory's and the response executor's
// counters at scrape time.
type lifecycleCollector struct {
	lc    *app.Lifecycle
	descs map[string]*prometheus.Desc
}

func newLifecycleCollector(lc *app.Lifecycle) *lifecycleCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc("vigil_"+name, help, nil, nil) }
	return &lifecycleCollector{lc: lc, descs: map[string]*prometheus.Desc{
		"entries":      d("inventory_credentials", "Credentials in the inventory (with Redis: those this replica has not merged yet)."),
		"evicted":      d("inventory_evicted_total", "Inventory entries dropped to keep lifecycle.inventory.max_entries."),
		"flush_errors": d("inventory_merge_errors_total", "Failed merges of this replica's inventory into the shared store (kept for the next)."),
		"submitted":    d("actions_submitted_total", "Response actions submitted (duplicates of one in progress or done are not)."),
		"duplicates":   d("actions_duplicate_total", "Response actions not run again: the same action was in progress or had succeeded."),
		"succeeded":    d("action_steps_succeeded_total", "Response steps (denylist, revoke, webhook) that succeeded."),
		"failed":       d("action_steps_failed_total", "Response steps given up after their last attempt or a permanent error (GET /v1/actions lists them)."),
		"retries":      d("action_retries_total", "Response step attempts that failed and were scheduled again."),
		"queue_full":   d("actions_queue_full_total", "Response actions refused because the queue was full (recorded as failed)."),
		"audit_errors": d("audit_log_errors_total", "Failed writes to the audit log."),
		"pending":      d("actions_pending", "Response actions in progress."),
	}}
}

// Describe implements prometheus.Collector.
func (c *lifecycleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *lifecycleCollector) Collect(ch chan<- prometheus.Metric) {
	put := func(name string, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], t, v)
	}
	if inv := c.lc.Inventory; inv != nil {
		s := inv.Stats()
		put("entries", prometheus.GaugeValue, float64(s.Entries))
		put("evicted", prometheus.CounterValue, float64(s.Evicted))
		put("flush_errors", prometheus.CounterValue, float64(s.FlushErrors))
	}
	if ex := c.lc.Actions; ex != nil {
		s := ex.Stats()
		put("submitted", prometheus.CounterValue, float64(s.Submitted))
		put("duplicates", prometheus.CounterValue, float64(s.Duplicates))
		put("succeeded", prometheus.CounterValue, float64(s.Succeeded))
		put("failed", prometheus.CounterValue, float64(s.Failed))
		put("retries", prometheus.CounterValue, float64(s.Retries))
		put("queue_full", prometheus.CounterValue, float64(s.QueueFull))
		put("audit_errors", prometheus.CounterValue, float64(s.AuditErrors))
		put("pending", prometheus.GaugeValue, float64(s.Pending))
	}
}
