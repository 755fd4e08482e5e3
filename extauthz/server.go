package extauthz

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigil-sec/vigil/gate"
)

// Interface guards.
var (
	_ authv3.AuthorizationServer = (*Server)(nil)
	_ prometheus.Collector       = (*Server)(nil)
)

// ServiceName is the gRPC service the Server implements; the health service
// reports it (and the empty name, for the whole server) as serving.
const ServiceName = "envoy.service.auth.v3.Authorization"

// Defaults of Options.
const (
	DefaultRouteKey       = "vigil_route"
	DefaultReservedPrefix = "x-vigil-" // gate.ReservedPrefix as Envoy sends names, in lower case
)

// Options configures a Server. The zero value means defaults.
type Options struct {
	// FailOpen allows a request when the Checker cannot decide (it returned
	// an error or an unusable result). The default, false, denies it with
	// HTTP 503. Either way the event is counted and logged.
	FailOpen bool
	// RouteKey names the attributes.context_extensions entry that carries the
	// route template (set per route in Envoy's ext_authz check_settings).
	// Default DefaultRouteKey.
	RouteKey string
	// ReservedPrefix is the prefix of the headers only vigil may send
	// upstream; client-sent headers with it are overwritten or removed.
	// Default DefaultReservedPrefix. Matched case-insensitively.
	ReservedPrefix string
	// Logger receives warnings about Checker failures and malformed
	// requests, at most one of each kind per second. Nil discards them.
	// Request contents (headers, credentials) are never logged.
	Logger *slog.Logger
}

// Stats are the Server's counters since it was created.
type Stats struct {
	// Checks is the number of CheckRequests answered.
	Checks uint64
	// Allowed is the number answered OK, fail-open allows included.
	Allowed uint64
	// Denied is the number denied, 400s for malformed requests and
	// fail-closed 503s included.
	Denied uint64
	// CheckerErrors counts the requests the Checker could not decide.
	CheckerErrors uint64
	// Malformed counts CheckRequests without attributes.request.http.
	Malformed uint64
	// InvalidHeaders counts header values from the Checker that were not
	// sent because their name or value is not valid in HTTP.
	InvalidHeaders uint64
	// BadCertificates counts requests whose attributes.source.certificate
	// is not a URL-escaped PEM certificate; they were judged without one.
	BadCertificates uint64
}

// Server answers Envoy's ext_authz Check calls with a gate.Checker. It is
// safe for concurrent use; gRPC calls Check from many goroutines.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	checker  gate.Checker
	failOpen bool
	routeKey string
	prefix   string
	log      *slog.Logger
	health   *health.Server
	names    nameCache

	checks, allowed, denied       atomic.Uint64
	checkerErrors, malformed      atomic.Uint64
	invalidHeaders, badCerts      atomic.Uint64
	errLog, badLog, invalidHdrLog logLimiter
	certLog                       logLimiter

	descDecisions, descErrors, descMalformed, descInvalid *prometheus.Desc
}

// NewServer returns a Server asking c, which must not be nil.
func NewServer(c gate.Checker, o Options) *Server {
	if c == nil {
		panic("extauthz: NewServer with a nil Checker")
	}
	if o.RouteKey == "" {
		o.RouteKey = DefaultRouteKey
	}
	if o.ReservedPrefix == "" {
		o.ReservedPrefix = DefaultReservedPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		checker:  c,
		failOpen: o.FailOpen,
		routeKey: o.RouteKey,
		prefix:   strings.ToLower(o.ReservedPrefix),
		log:      o.Logger,
		health:   health.NewServer(),
		descDecisions: prometheus.NewDesc("vigil_extauthz_decisions_total",
			"ext_authz CheckRequests answered, by result (allowed, denied).", []string{"result"}, nil),
		descErrors: prometheus.NewDesc("vigil_extauthz_checker_errors_total",
			"ext_authz requests the Checker could not decide (answered per fail_open).", nil, nil),
		descMalformed: prometheus.NewDesc("vigil_extauthz_malformed_requests_total",
			"ext_authz CheckRequests without attributes.request.http (denied with 400).", nil, nil),
		descInvalid: prometheus.NewDesc("vigil_extauthz_invalid_headers_total",
			"Header values from the Checker not sent to Envoy because they are not valid HTTP.", nil, nil),
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// Register registers the Authorization service and a gRPC health service
// (grpc.health.v1.Health, for Envoy's gRPC health checks) on g. g must not
// have a health service of its own.
func (s *Server) Register(g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
}

// Drain makes the health service report NOT_SERVING, so that Envoy stops
// sending new checks; call it some health-check intervals before
// grpc.Server.GracefulStop. Check keeps answering meanwhile.
func (s *Server) Drain() { s.health.Shutdown() }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Checks:          s.checks.Load(),
		Allowed:         s.allowed.Load(),
		Denied:          s.denied.Load(),
		CheckerErrors:   s.checkerErrors.Load(),
		Malformed:       s.malformed.Load(),
		InvalidHeaders:  s.invalidHeaders.Load(),
		BadCertificates: s.badCerts.Load(),
	}
}

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.descDecisions
	ch <- s.descErrors
	ch <- s.descMalformed
	ch <- s.descInvalid
}

// Collect implements prometheus.Collector.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	ch <- prometheus.MustNewConstMetric(s.descDecisions, prometheus.CounterValue, float64(st.Allowed), "allowed")
	ch <- prometheus.MustNewConstMetric(s.descDecisions, prometheus.CounterValue, float64(st.Denied), "denied")
	ch <- prometheus.MustNewConstMetric(s.descErrors, prometheus.CounterValue, float64(st.CheckerErrors))
	ch <- prometheus.MustNewConstMetric(s.descMalformed, prometheus.CounterValue, float64(st.Malformed))
	ch <- prometheus.MustNewConstMetric(s.descInvalid, prometheus.CounterValue, float64(st.InvalidHeaders))
}

// invalidHeader counts and logs a header from the Checker that is not valid
// HTTP; only its name is logged.
func (s *Server) invalidHeader(name string) {
	s.invalidHeaders.Add(1)
	if ok, n := s.invalidHdrLog.allow(); ok {
		s.log.Warn("extauthz: checker set a header that is not valid HTTP; not sent",
			"name", validUTF8(name, "\uFFFD"), "suppressed", n)
	}
}

// errBadStatus describes a Checker answer that decides nothing.
var errBadStatus = errors.New("checker returned a response status that is neither 2xx nor 3xx-5xx")

// Check implements authv3.AuthorizationServer. It never returns an error.
func (s *Server) Check(ctx context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	s.checks.Add(1)
	attrs := in.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		s.malformed.Add(1)
		s.denied.Add(1)
		if ok, n := s.badLog.allow(); ok {
			s.log.Warn("extauthz: CheckRequest without attributes.request.http, denied with 400 (is this Envoy's network ext_authz filter?)",
				"suppressed", n)
		}
		return malformedResponse(), nil
	}
	r := new(gate.Request)
	hdr := s.request(attrs, h, r)

	res := new(gate.Result)
	err := s.checker.Check(ctx, r, res)
	if err == nil {
		switch {
		case res.Response.Allowed():
			s.allowed.Add(1)
			return s.allow(&res.Response, hdr), nil
		case res.Response.Status >= 300 && res.Response.Status < 600:
			s.denied.Add(1)
			return s.deny(res), nil
		default:
			err = errBadStatus
		}
	}
	return s.undecided(ctx, err, hdr), nil
}

// undecided answers a request the Checker could not decide.
func (s *Server) undecided(ctx context.Context, err error, hdr gate.MapHeaders) *authv3.CheckResponse {
	s.checkerErrors.Add(1)
	if ok, n := s.errLog.allow(); ok {
		s.log.Warn("extauthz: checker could not decide",
			"err", err, "fail_open", s.failOpen, "context_err", ctx.Err(), "suppressed", n)
	}
	if s.failOpen {
		s.allowed.Add(1)
		return s.allow(&gate.Response{Status: http.StatusOK}, hdr)
	}
	s.denied.Add(1)
	return unavailableResponse()
}

// logLimiter lets one log line through per second and counts the others.
type logLimiter struct {
	next       atomic.Int64 // unix nanoseconds before which lines are suppressed
	suppressed atomic.Uint64
}

// allow reports whether a line may be logged now, and how many were
// suppressed since the last one.
func (l *logLimiter) allow() (bool, uint64) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(time.Second)) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// nameCache maps header names to their lower-case form without allocating
// for names seen before. It is copy-on-write and bounded.
type nameCache struct {
	m  atomic.Pointer[map[string]string]
	mu sync.Mutex
}

const maxCachedNames = 256

// lower returns name in lower case.
func (c *nameCache) lower(name string) string {
	if isLower(name) {
		return name
	}
	if m := c.m.Load(); m != nil {
		if l, ok := (*m)[name]; ok {
			return l
		}
	}
	l := strings.ToLower(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]string
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if len(old) < maxCachedNames {
		m := make(map[string]string, len(old)+1)
		for k, v := range old {
			m[k] = v
		}
		m[name] = l
		c.m.Store(&m)
	}
	return l
}

// isLower reports whether s has no ASCII upper-case letter.
func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return false
		}
	}
	return true
}
