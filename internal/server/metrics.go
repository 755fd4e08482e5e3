package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-sec/vigil/forwardauth"
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
