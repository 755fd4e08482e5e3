package server

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/extauthz"
	"github.com/vigil-sec/vigil/forwardauth"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/inline"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/middleware"
	"github.com/vigil-sec/vigil/profile"
)

// Paths of the decision listener.
const (
	PathForwardAuth      = "/v1/forward-auth"       // Traefik, Caddy (X-Forwarded-*)
	PathForwardAuthNginx = "/v1/forward-auth/nginx" // nginx auth_request (X-Original-*)
	PathReport           = "/v1/report"
	PathCredentials      = "/v1/credentials/" // admin: + token_id
	PathDenylist         = "/v1/denylist"     // admin: GET; PUT and DELETE + "/" + token_id
)

// maxReportBody bounds one POST to /v1/report.
const maxReportBody = 1 << 20

// Server is `vigil serve`: the decision listener, the gRPC ext_authz
// listener and the admin listener around one Checker.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	Checker *Checker
	reg     *prometheus.Registry

	decide, admin http.Handler
	grpc          *grpc.Server
	ready         atomic.Bool
	adminToken    string
	drain         func()
}

// recoverUnary turns a panic in a gRPC handler into an Internal error for
// that call instead of a crash of the process (grpc-go does not recover).
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic in gRPC handler", "method", info.FullMethod, "panic", fmt.Sprint(p))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

// Options select what the decision listener serves.
type Options struct {
	// Upstream, when set, makes the Server `vigil proxy`: the decision
	// listener is a reverse proxy to Upstream that enforces every decision
	// itself (package middleware), and there is no gRPC listener.
	Upstream *url.URL
}

// New builds a Server from cfg. Nothing listens until Run.
func New(ctx context.Context, cfg *config.Config, env app.Env, log *slog.Logger, o Options) (*Server, error) {
	if env == nil {
		return nil, errors.New("server: no environment")
	}
	s := &Server{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	if name := cfg.Serve.AdminTokenEnv; name != "" {
		s.adminToken, _ = env(name)
	}
	if err := checkAdminBind(cfg.Serve.AdminListen, s.adminToken != ""); err != nil {
		return nil, err
	}
	trusted, err := ParsePrefixes("serve.trusted_proxies", cfg.Serve.TrustedProxies)
	if err != nil {
		return nil, err
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ch, err := NewChecker(ctx, cfg, env, s.reg, log)
	if err != nil {
		return nil, err
	}
	s.Checker = ch

	mux := http.NewServeMux()
	handlers := map[string]*forwardauth.Handler{}
	var ext *forwardauth.Handler
	var extPrefix string
	for _, h := range []struct {
		path   string
		o      forwardauth.Options
		prefix bool
	}{
		{PathForwardAuth, forwardauth.Options{Gateway: forwardauth.Forwarded}, false},
		{PathForwardAuthNginx, forwardauth.Options{Gateway: forwardauth.Nginx}, false},
		{cfg.Serve.ExtAuthzHTTPPrefix, forwardauth.Options{Gateway: forwardauth.Envoy, PathPrefix: cfg.Serve.ExtAuthzHTTPPrefix}, true},
	} {
		if h.path == "" {
			continue
		}
		h.o.TrustedProxies, h.o.FailOpen = trusted, cfg.Serve.FailOpen
		if m := cfg.Credentials.MTLS; m.Verify {
			h.o.CertHeader, h.o.CertFormat = m.CertHeader, ch.Parts.CertFormat
		}
		fa, err := forwardauth.New(ch, h.o, log)
		if err != nil {
			ch.Close()
			return nil, fmt.Errorf("serve: %s: %w", h.path, err)
		}
		handlers[h.o.Gateway.String()] = fa
		if h.prefix {
			ext, extPrefix = fa, h.path
			continue
		}
		mux.Handle(h.path, fa)
	}
	mux.Handle("POST "+PathReport, s.reporters(trusted, s.report))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	s.decide = mux
	if ext != nil {
		// Envoy sends the original path under the prefix as it came:
		// ServeMux would clean it ("//", "/./") and answer a redirect,
		// which Envoy takes as a denial. The prefix goes to the handler
		// before the mux sees it.
		s.decide = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := r.URL.Path; p == extPrefix || strings.HasPrefix(p, extPrefix+"/") {
				ext.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	if o.Upstream != nil {
		s.decide = s.proxy(o.Upstream, trusted)
	}

	amux := http.NewServeMux()
	amux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	amux.HandleFunc("GET "+PathCredentials+"{token_id}", s.credential)
	amux.HandleFunc("GET "+PathDenylist, s.denials)
	amux.HandleFunc("PUT "+PathDenylist+"/{token_id}", s.deny)
	amux.HandleFunc("DELETE "+PathDenylist+"/{token_id}", s.undeny)
	amux.HandleFunc("GET "+PathTokens, s.tokens)
	amux.HandleFunc("GET "+PathTokens+"/{token_id}", s.token)
	amux.HandleFunc("POST "+PathTokens+"/{token_id}/revoke", s.revoke)
	amux.HandleFunc("GET "+PathDormant, s.dormant)
	amux.HandleFunc("GET "+PathUnusedScopes, s.unusedScopes)
	amux.HandleFunc("GET "+PathActions, s.actions)
	amux.HandleFunc("GET "+PathZoneProposal, s.zoneProposal)
	amux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	amux.HandleFunc("GET /readyz", s.readyz)
	s.admin = s.requireAdmin(amux)

	if o.Upstream == nil {
		s.reg.MustRegister(newForwardAuthCollector(handlers))
	}
	if cfg.Serve.GRPCListen != "" && o.Upstream == nil {
		s.grpc = grpc.NewServer(grpc.ChainUnaryInterceptor(recoverUnary(log)), grpc.MaxRecvMsgSize(cfg.Serve.MaxHeaderBytes+64<<10))
		ext := extauthz.NewServer(ch, extauthz.Options{FailOpen: cfg.Serve.FailOpen, Logger: log})
		ext.Register(s.grpc)
		s.reg.MustRegister(ext)
		s.drain = ext.Drain
	}
	return s, nil
}

// checkAdminBind refuses an admin listener reachable from other hosts
// unless an admin token protects it.
func checkAdminBind(addr string, token bool) error {
	if addr == "" || token {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("serve.admin_listen: %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		return nil
	}
	return fmt.Errorf("serve.admin_listen: %q is not a loopback address; set the admin token (serve.admin_token_env) to expose the admin endpoints", addr)
}

// Handler is the decision listener's handler (forward-auth, ext_authz over
// HTTP, reports, health).
func (s *Server) Handler() http.Handler { return s.decide }

// AdminHandler is the admin listener's handler (metrics, the read API).
func (s *Server) AdminHandler() http.Handler { return s.admin }

// Listeners are the addresses a running Server listens on.
type Listeners struct {
	HTTP, GRPC, Admin net.Addr
}

// Run listens on the configured addresses and serves until ctx ends, then
// shuts down gracefully: it stops accepting, lets requests in flight finish
// within serve.shutdown_grace, and closes the Checker. started, if not nil,
// receives the bound addresses once every listener is up.
func (s *Server) Run(ctx context.Context, started func(Listeners)) error {
	loops := s.startLifecycle()
	defer func() {
		loops.stop()
		if err := s.Checker.Close(); err != nil {
			s.log.Error("closing the state store", "err", err)
		}
	}()
	var ls Listeners
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	listen := func(addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("serve: %w", err)
		}
		closers = append(closers, l)
		return l, nil
	}
	hl, err := listen(s.cfg.Serve.Listen)
	if err != nil {
		return err
	}
	ls.HTTP = hl.Addr()
	var gl, al net.Listener
	if s.grpc != nil {
		if gl, err = listen(s.cfg.Serve.GRPCListen); err != nil {
			return err
		}
		ls.GRPC = gl.Addr()
	}
	if s.cfg.Serve.AdminListen != "" {
		if al, err = listen(s.cfg.Serve.AdminListen); err != nil {
			return err
		}
		ls.Admin = al.Addr()
	}

	newHTTP := func(h http.Handler) *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			MaxHeaderBytes: s.cfg.Serve.MaxHeaderBytes, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	}
	hs := newHTTP(s.decide)
	var as *http.Server
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	serve := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- err
			}
		}()
	}
	serve(func() error { return hs.Serve(hl) })
	if gl != nil {
		serve(func() error { return s.grpc.Serve(gl) })
	}
	if al != nil {
		as = newHTTP(s.admin)
		serve(func() error { return as.Serve(al) })
	}
	s.ready.Store(true)
	s.log.Info("vigil serving", "listen", ls.HTTP, "grpc", ls.GRPC, "admin", ls.Admin, "profile", s.Checker.Model(), "state", s.cfg.State.Backend)
	if started != nil {
		started(ls)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.ready.Store(false)
	if s.drain != nil {
		s.drain() // gRPC health says NOT_SERVING while requests finish
	}
	if d := s.cfg.Serve.DrainDelay.D(); d > 0 {
		// Load balancers and Envoy see /readyz and the gRPC health fail
		// and stop sending before the listeners close.
		s.log.Info("vigil draining", "delay", d)
		time.Sleep(d)
	}
	s.log.Info("vigil shutting down", "grace", s.cfg.Serve.ShutdownGrace.D())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Serve.ShutdownGrace.D())
	defer cancel()
	var shut sync.WaitGroup
	shut.Go(func() { hs.Shutdown(sctx) })
	if as != nil {
		shut.Go(func() { as.Shutdown(sctx) })
	}
	if s.grpc != nil {
		shut.Go(func() {
			done := make(chan struct{})
			go func() { s.grpc.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-sctx.Done():
				s.grpc.Stop()
			}
		})
	}
	shut.Wait()
	wg.Wait()
	return runErr
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// requireAdmin checks the admin token when one is configured. Without
// one, the admin listener binds to loopback only (checkAdminBind), and the
// handler too answers loopback peers only, wherever it is mounted.
func (s *Server) requireAdmin(h http.Handler) http.Handler {
	if s.adminToken == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := forwardauth.PeerAddr(r); !p.IsValid() || !p.Unmap().IsLoopback() {
				http.Error(w, "admin endpoints answer loopback peers only unless an admin token is set (serve.admin_token_env)", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	want := []byte("Bearer " + s.adminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// reporters admits outcome reports only from trusted proxies or with the
// admin token: a report moves a credential's failure and volume counters,
// so anyone else could push another credential towards a block.
func (s *Server) reporters(trusted []netip.Prefix, h http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + s.adminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := forwardauth.PeerAddr(r)
		ok := peer.IsValid() && slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(peer.Unmap()) })
		if !ok && s.adminToken != "" {
			ok = subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1
		}
		if !ok {
			if s.Checker.Metrics != nil {
				s.Checker.Metrics.BadRequest("report_forbidden")
			}
			http.Error(w, "reports are accepted from serve.trusted_proxies or with the admin token", http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

// credentialView is the read API's answer.
type credentialView struct {
	TokenID string          `json:"token_id"`
	Known   bool            `json:"known"`
	Profile *profileView    `json:"profile,omitempty"`
	Recent  []inline.Record `json:"recent_decisions"`
}

type profileView struct {
	Events          uint64            `json:"events"`
	FirstSeen       time.Time         `json:"first_seen"`
	LastSeen        time.Time         `json:"last_seen"`
	Established     map[string]int    `json:"established"`
	Tracked         map[string]int    `json:"tracked"`
	TypicalRequests float64           `json:"typical_requests_per_bucket"`
	TypicalBytes    float64           `json:"typical_bytes_per_bucket"`
	TypicalSize     float64           `json:"typical_response_bytes"`
	Buckets         uint32            `json:"buckets_learned"`
	Levels          map[string]string `json:"levels"`
}

func (s *Server) credential(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("token_id")
	if len(id) > 256 {
		http.Error(w, "token_id too long", http.StatusBadRequest)
		return
	}
	snap, recent, ok, err := s.Checker.Inspect(r.Context(), id, 50)
	if err != nil {
		s.log.Warn("read API: state store", "err", err)
		problem(w, http.StatusServiceUnavailable, "state store unavailable")
		return
	}
	v := credentialView{TokenID: id, Known: ok, Recent: recent}
	if v.Recent == nil {
		v.Recent = []inline.Record{}
	}
	if ok {
		p := &profileView{Events: snap.Events, FirstSeen: snap.FirstSeen, LastSeen: snap.LastSeen,
			Established: map[string]int{}, Tracked: map[string]int{},
			TypicalRequests: snap.TypicalRequests, TypicalBytes: snap.TypicalBytes, TypicalSize: snap.TypicalSize, Buckets: snap.Buckets,
			Levels: map[string]string{"established_context": snap.Home.String(), "elsewhere": snap.Away.String()}}
		for d := profile.Dim(0); d < profile.NumDims; d++ {
			p.Established[d.String()], p.Tracked[d.String()] = snap.Established[d], snap.Tracked[d]
		}
		v.Profile = p
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok && len(recent) == 0 {
		w.WriteHeader(http.StatusNotFound)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// reportLine is one outcome in a POST to /v1/report.
type reportLine struct {
	TokenID       string    `json:"token_id"`
	Time          time.Time `json:"time"`
	Status        int       `json:"status"`
	ResponseBytes *int64    `json:"response_bytes"`
}

// report takes outcomes from gateways that cannot feed them back inline
// (forward-auth, ext_authz): JSON lines of {token_id, time, status,
// response_bytes}, from an access-log shipper. Bad lines are reported by
// number and skipped; the others are applied.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(http.MaxBytesReader(w, r.Body, maxReportBody))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var applied int
	var errs []string
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var rl reportLine
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err := dec.Decode(&rl)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("line %d: %v", line, err))
		case rl.TokenID == "":
			errs = append(errs, fmt.Sprintf("line %d: token_id: missing", line))
		case rl.Status < 100 || rl.Status > 599:
			errs = append(errs, fmt.Sprintf("line %d: status: %d is not an HTTP status", line, rl.Status))
		case rl.ResponseBytes != nil && *rl.ResponseBytes < 0:
			errs = append(errs, fmt.Sprintf("line %d: response_bytes: must not be negative", line))
		default:
			if rl.Time.IsZero() {
				rl.Time = time.Now()
			}
			o := gate.Outcome{Status: rl.Status, ResponseBytes: -1}
			if rl.ResponseBytes != nil {
				o.ResponseBytes = *rl.ResponseBytes
			}
			s.Checker.Report(gate.Ticket{TokenID: rl.TokenID, Time: rl.Time}, o)
			applied++
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Sprintf("line %d: %v", line+1, err))
	}
	if len(errs) > 0 && s.Checker.Metrics != nil {
		for range errs {
			s.Checker.Metrics.BadRequest("report_line")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if applied == 0 && len(errs) > 0 {
		w.WriteHeader(http.StatusBadRequest)
	}
	if len(errs) > 20 {
		errs = append(errs[:20], fmt.Sprintf("... %d more", len(errs)-20))
	}
	json.NewEncoder(w).Encode(map[string]any{"applied": applied, "errors": errs})
}

// proxy is `vigil proxy`'s handler: the middleware in front of a reverse
// proxy to upstream.
func (s *Server) proxy(upstream *url.URL, trusted []netip.Prefix) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	o := middleware.Options{TrustedProxies: trusted, FailOpen: s.cfg.Serve.FailOpen, Log: s.log}
	if m := s.cfg.Credentials.MTLS; m.Verify {
		o.CertHeader, o.CertFormat = m.CertHeader, s.Checker.Parts.CertFormat
	}
	return middleware.New(s.Checker, o)(rp)
}
