// Package inline is vigil's decision engine for requests in flight: the
// gate.Checker that every inline adapter (forward-auth, Envoy ext_authz,
// the reverse proxy, the net/http middleware) calls.
//
// For each request it extracts and fingerprints the credential, turns the
// request into an event, judges it with the state store (package store:
// in-process, durable in a data directory, or shared by replicas in
// Redis), applies the per-credential rate limit of a throttled
// credential, and renders what the client is told. Stores are safe for
// concurrent use, and the Checker holds no lock of its own: extraction,
// fingerprinting, reason rendering and the response run in the caller's
// goroutine with per-goroutine scratch space.
package inline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/credential"
	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/enforce"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/ratelimit"
	"github.com/vigil-sec/vigil/score"
	"github.com/vigil-sec/vigil/store"
)

// Options configure a Checker. Store, Model, Fingerprinter, Extractor,
// Limiter and Responder are required.
type Options struct {
	// Store keeps the credentials' state and judges events against it;
	// the Checker owns it from New on (Close closes it).
	Store store.Store
	// Model is the scoring model the store judges with: it names and
	// explains the reasons of a verdict.
	Model         *score.Model
	Fingerprinter *event.Fingerprinter
	Extractor     *credential.Extractor
	Limiter       *ratelimit.Limiter
	Responder     *enforce.Responder
	// Shadow decides and records every request but enforces none: every
	// request is allowed. ShadowRoutes does the same for requests whose
	// path starts with one of its prefixes.
	Shadow       bool
	ShadowRoutes []string
	// DPoP, when set, checks the proof of every DPoP-bound request (RFC
	// 9449) and refuses a key-bound token presented as Bearer; a failure
	// is answered 401 with the RFC's error (invalid_dpop_proof,
	// use_dpop_nonce, invalid_token).
	DPoP *binding.Verifier
	// MTLS checks certificate-bound tokens (RFC 8705): a token whose
	// claims carry cnf x5t#S256 must come with that client certificate
	// (gate.Request.ClientCert), else it is answered 401 invalid_token.
	MTLS bool
	// Throttle sets the rate limit of a throttled credential.
	Throttle Throttle
	// Lifecycle: the credential inventory, network zones, GeoIP and
	// automated response (lifecycle.go).
	Lifecycle Lifecycle
	// Recent is how many decisions are kept for the read API; 0 means 4096.
	Recent int
	// SyncEvery makes the store's state durable (Store.Sync: a data
	// directory's profiles are flushed) this often; 0 means every second.
	SyncEvery time.Duration
	// Metrics records decisions; nil records none.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Throttle derives a throttled credential's rate limit from its own
// baseline: its typical requests per minute (per active bucket), at least
// MinPerMinute. A credential without a learned baseline gets
// DefaultPerMinute. The burst is ten seconds' worth (at least one).
type Throttle struct {
	DefaultPerMinute float64
	MinPerMinute     float64
}

// Defaults of Throttle.
const (
	DefaultPerMinute = 60
	MinPerMinute     = 6
)

// minBuckets is how many active buckets a baseline needs before the limit
// follows it.
const minBuckets = 5

// Checker is the inline gate.Checker.
type Checker struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	bucket time.Duration

	fps  sync.Pool // *event.Fingerprinter
	work sync.Pool // *work

	store store.Store
	model *score.Model

	recent *recent
	closed atomic.Bool
	stop   chan struct{}
	synced sync.WaitGroup
	// responding tracks submissions of automated responses (lifecycle.go).
	responding sync.WaitGroup
}

// work is a goroutine's scratch space for one Check: the store judges
// batches, and a Check's batch is the one event of its request.
type work struct {
	cred  credential.Credential
	ev    [1]event.Event
	v     [1]store.Verdict
	route []byte
	id    []byte
	det   []byte
	// keep is a copy of the raw credential while a response may need it
	// (RFC 7009 revocation); wiped before Check returns.
	keep []byte
	// ep is "METHOD endpoint" and use the request, for the inventory.
	ep  []byte
	use inventory.Use
	// bindFail is the error code of a failed binding check, for the
	// inventory.
	bindFail string
}

// New returns a Checker.
func New(o Options) (*Checker, error) {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("inline: no state store"))
	}
	if o.Model == nil {
		errs = append(errs, errors.New("inline: no scoring model"))
	}
	if o.Fingerprinter == nil {
		errs = append(errs, errors.New("inline: no fingerprinter"))
	}
	if o.Extractor == nil {
		errs = append(errs, errors.New("inline: no credential extractor"))
	}
	if o.Limiter == nil {
		errs = append(errs, errors.New("inline: no rate limiter"))
	}
	if o.Responder == nil {
		errs = append(errs, errors.New("inline: no responder"))
	}
	if o.Throttle.DefaultPerMinute == 0 {
		o.Throttle.DefaultPerMinute = DefaultPerMinute
	}
	if o.Throttle.MinPerMinute == 0 {
		o.Throttle.MinPerMinute = MinPerMinute
	}
	if o.Throttle.DefaultPerMinute < 0 || o.Throttle.MinPerMinute < 0 {
		errs = append(errs, errors.New("inline: throttle rates must be positive"))
	}
	for i, p := range o.ShadowRoutes {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("inline: shadow route %d (%q) must start with /", i, p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Recent <= 0 {
		o.Recent = 4096
	}
	c := &Checker{opts: o, now: o.Now, log: o.Log, store: o.Store, model: o.Model, recent: newRecent(o.Recent)}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.bucket = time.Minute
	fp := o.Fingerprinter
	c.fps.New = func() any { return fp.Clone() }
	c.work.New = func() any { return &work{route: make([]byte, 0, 64), id: make([]byte, 0, 40)} }
	o.Metrics.watch(c.stats)
	if o.SyncEvery <= 0 {
		o.SyncEvery = time.Second
	}
	c.stop = make(chan struct{})
	c.synced.Go(func() { c.syncLoop(o.SyncEvery) })
	return c, nil
}

// syncLoop makes the store's state durable until Close.
func (c *Checker) syncLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if err := c.store.Sync(); err != nil {
				c.log.Error("profiles not synced to disk", "err", err)
			}
		}
	}
}

// ErrClosed is returned by Check after Close.
var ErrClosed = errors.New("inline: checker closed")

// Check judges a request. It implements gate.Checker.
func (c *Checker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	w := c.work.Get().(*work)
	defer c.work.Put(w)

	now := r.Time
	if now.IsZero() {
		now = c.now()
	}
	reasons, hdr, up := res.Verdict.Reasons[:0], res.Response.Header, res.Response.Upstream
	*res = gate.Result{Response: gate.Response{Header: hdr, Upstream: up}}
	v := &res.Verdict
	v.RequestID = r.RequestID

	// The credential: fingerprinted at once, the raw bytes wiped.
	err := c.opts.Extractor.Extract(r.Header, r.URI, &w.cred)
	var cerr *credential.Error
	if errors.As(err, &cerr) {
		v.Problem = cerr.Problem
		c.opts.Metrics.badRequest("credential_" + cerr.Problem)
		c.log.Debug("malformed credential", "field", cerr.Field, "reason", cerr.Reason, "client", r.ClientIP)
	} else if err != nil {
		return err
	}
	v.Kind = w.cred.Kind
	w.bindFail = ""
	if (c.opts.DPoP != nil || c.opts.MTLS) && v.Problem == "" {
		v.Problem, v.DPoPNonce = c.checkBinding(w, r)
		w.bindFail = v.Problem
	}
	if w.cred.Kind != gate.Anonymous {
		fp := c.fps.Get().(*event.Fingerprinter)
		w.id = fp.AppendID(w.id[:0], w.cred.Secret)
		c.fps.Put(fp)
		if v.Problem == "" {
			v.Problem = c.introspect(ctx, w, unsafeString(w.id))
		}
		if c.keepsSecret() {
			w.keep = append(w.keep[:0], w.cred.Secret...)
			defer clear(w.keep)
		}
		w.cred.Secret.Wipe()
	} else {
		w.id = event.AppendAnonymousKey(w.id[:0], r.ClientIP)
	}
	v.TokenID = string(w.id)

	if c.closed.Load() {
		return ErrClosed
	}
	c.fill(w, r, now, v.TokenID)
	ev := &w.ev[0]
	v.Reasons = reasons
	// A request outside its network zone is refused by rule: not judged,
	// and nothing learned from it. sv stays nil.
	var sv *store.Verdict
	if !c.checkZone(w, v) {
		if err := c.store.Judge(ctx, w.ev[:], w.v[:]); err != nil {
			w.ev[0] = event.Event{}
			if errors.Is(err, store.ErrClosed) {
				return ErrClosed
			}
			return fmt.Errorf("inline: state store: %w", err)
		}
		sv = &w.v[0]
		c.verdict(w, v, sv)
	}
	var perMinute float64
	if sv != nil && sv.Level == policy.Throttle && v.Problem == "" {
		perMinute = c.opts.Throttle.DefaultPerMinute
		if sv.Buckets >= minBuckets {
			perMinute = max(c.opts.Throttle.MinPerMinute, sv.TypicalRequests*float64(time.Minute)/float64(c.bucket))
		}
	}
	c.onWake(v)
	if v.Problem != "" && v.Level < policy.StepUp {
		// A malformed credential is refused whatever its risk: the request
		// cannot be authorized upstream either.
		v.Level = policy.StepUp
	}
	if v.Level == policy.StepUp && v.Problem == "" && (v.Kind == gate.APIKey || v.Kind == gate.Anonymous) {
		// Step-up authentication (RFC 9470) is an OAuth challenge: an API
		// key or a request without a credential cannot answer it, so the
		// request is refused instead (Decided still says step_up_auth).
		v.Level = policy.Block
	}
	// Shadow mode enforces none of vigil's own decisions; a denial is an
	// operator's, and is enforced regardless.
	denied := sv != nil && sv.Denial != nil
	shadow := v.Level != policy.Allow && !denied && c.shadow(r)
	if shadow {
		v.Shadow, v.Level, perMinute = true, policy.Allow, 0
	}
	if perMinute > 0 {
		burst := max(1, int(math.Ceil(perMinute/6))) // ten seconds' worth
		lr := c.opts.Limiter.Allow(v.TokenID, now, perMinute/60, burst)
		v.RateLimit = gate.RateLimit{Limit: lr.Limit, Remaining: lr.Remaining, Reset: lr.Reset, Window: lr.Window}
		if lr.Allowed {
			v.Level = policy.Allow
		} else {
			v.Limited, v.RetryAfter = true, lr.RetryAfter
		}
	}
	c.opts.Responder.Respond(v, &res.Response)
	if sv != nil && !denied {
		// A denied request taught the profile nothing, and its outcome
		// has nothing to complete.
		res.Ticket = gate.Ticket{TokenID: v.TokenID, Time: time.Unix(0, sv.Now), Trust: uint8(sv.Trust)}
	}
	c.record(w, r, v, sv, now)

	c.recent.add(Record{Time: now, RequestID: r.RequestID, TokenID: v.TokenID, Method: r.Method,
		Route: strings.Clone(ev.Endpoint), Risk: v.Risk, Decided: v.Decided, Enforced: v.Level, Shadow: v.Shadow,
		Reasons: slices.Clone(v.Reasons)}) // res is the caller's to reuse
	c.opts.Metrics.decided(v, time.Since(start))
	if sv != nil {
		c.opts.Metrics.stored(sv)
	}
	*ev = event.Event{}
	return nil
}

// verdict fills v from the store's verdict: risk, level and the reasons,
// explained.
func (c *Checker) verdict(w *work, v *gate.Verdict, sv *store.Verdict) {
	ev := &w.ev[0]
	v.Risk = sv.Risk
	v.Decided = sv.Level
	v.Level = sv.Level
	if d := sv.Denial; d != nil {
		w.det = appendDenial(w.det[:0], d)
		v.Reasons = append(v.Reasons, decision.Reason{Signal: SignalDenylisted, Detail: string(w.det)})
	}
	if n := sv.N; n > 0 {
		m := c.model
		for i := range n {
			rs := &sv.Reasons[i]
			w.det = m.AppendDetail(w.det[:0], ev, rs)
			v.Reasons = append(v.Reasons, decision.Reason{Signal: m.SignalName(rs), Contribution: math.Round(rs.Contribution*100) / 100, Detail: string(w.det)})
		}
	}
	if sv.Fallback {
		detail := fallbackOpen
		switch {
		case sv.Denial != nil:
			detail = fallbackDenylist
		case sv.FailClosed:
			detail = fallbackClosed
		}
		v.Reasons = append(v.Reasons, decision.Reason{Signal: SignalStoreUnavailable, Detail: detail})
	}
}

// Signals of the reasons the Checker adds to the scoring model's.
const (
	// SignalDenylisted: the credential is on the denylist (Store.Deny).
	SignalDenylisted = "denylisted"
	// SignalStoreUnavailable: a shared state store could not be reached.
	SignalStoreUnavailable = "state_store_unavailable"
)

// Details of the state_store_unavailable reason, by what the store did.
const (
	fallbackOpen     = "shared state unreachable: judged on this replica's local profile"
	fallbackClosed   = "shared state unreachable: fail_closed"
	fallbackDenylist = "shared state unreachable: denylist checked against this replica's copy"
)

// appendDenial appends the detail of a denylisted reason: the operator's
// reason, who denied and until when. It never holds the credential: a
// denial is keyed by token id, and the token id is not repeated here.
func appendDenial(dst []byte, d *store.Denial) []byte {
	dst = append(dst, "credential denylisted: "...)
	if d.Reason != "" {
		dst = append(dst, d.Reason...)
	} else {
		dst = append(dst, "no reason given"...)
	}
	dst = append(dst, " ("...)
	if d.By != "" {
		dst = append(dst, "by "...)
		dst = append(dst, d.By...)
		dst = append(dst, ", "...)
	}
	if d.Until.IsZero() {
		return append(dst, "no expiry)"...)
	}
	dst = append(dst, "until "...)
	dst = d.Until.UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, ')')
}

// fill turns r into the engine's event in w.ev. Strings point into r and
// w's buffers; the engine keeps none of them.
func (c *Checker) fill(w *work, r *gate.Request, now time.Time, tokenID string) {
	e := &w.ev[0]
	*e = event.Event{Time: now.UnixNano(), TokenID: tokenID, SourceIP: r.ClientIP}
	path := r.URI
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if r.Route != "" {
		e.Endpoint = r.Route
	} else {
		w.route = event.AppendRoute(w.route[:0], path)
		e.Endpoint = unsafeString(w.route)
	}
	if path != "" {
		e.Path, e.Has = path, e.Has|event.HasPath
	}
	if r.Method != "" {
		e.Method, e.Has = r.Method, e.Has|event.HasMethod
	}
	if r.RequestID != "" {
		e.RequestID, e.Has = r.RequestID, e.Has|event.HasRequestID
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		e.UserAgent, e.Has = ua, e.Has|event.HasUserAgent
	}
	cl := &w.cred.Claims
	if cl.ClientID != "" {
		e.ClientID, e.Has = cl.ClientID, e.Has|event.HasClientID
	}
	if cl.Scope != "" {
		e.Scope, e.Has = cl.Scope, e.Has|event.HasScope
	}
	if g := c.opts.Lifecycle.GeoIP; g != nil {
		g.Enrich(e)
	}
}

// checkBinding checks a bound credential before its bytes are wiped: the
// client certificate of a certificate-bound token (RFC 8705, with
// Options.MTLS) and the proof of a DPoP-bound one (RFC 9449, with
// Options.DPoP). It returns the RFC's error code, or "", and with a DPoP
// failure the server nonce for the client's next proof (when nonces are
// required). A token bound to a key (cnf.jkt) presented as a plain Bearer
// token is refused: whoever stole it need not have the key.
func (c *Checker) checkBinding(w *work, r *gate.Request) (code, nonce string) {
	if x5t := w.cred.Claims.X5T; c.opts.MTLS && x5t != "" {
		if err := binding.CheckCertBound(x5t, r.ClientCert); err != nil {
			reason := "mtls_cert_mismatch"
			if errors.Is(err, binding.ErrNoClientCert) {
				reason = "mtls_no_cert"
			}
			c.opts.Metrics.badRequest(reason)
			c.log.Debug("certificate-bound token refused", "reason", reason, "client", r.ClientIP)
			return enforce.CodeInvalidToken, ""
		}
	}
	if c.opts.DPoP == nil {
		return "", ""
	}
	jkt := w.cred.Claims.JKT
	switch w.cred.Kind {
	case gate.DPoP:
	case gate.Bearer:
		if jkt != "" {
			c.opts.Metrics.badRequest("dpop_bound_token_as_bearer")
			return enforce.CodeInvalidToken, ""
		}
		return "", ""
	default:
		return "", ""
	}
	scheme := r.Scheme
	if scheme == "" {
		scheme = "https"
	}
	path := r.URI
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	_, err := c.opts.DPoP.Verify(r.Header.Get("DPoP"), binding.Request{Method: r.Method, URL: scheme + "://" + r.Host + path,
		AccessToken: w.cred.Secret, JKT: jkt})
	var be *binding.Error
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &be):
		c.opts.Metrics.badRequest("dpop_" + be.Code)
		c.log.Debug("DPoP proof refused", "reason", be.Reason, "client", r.ClientIP)
		return be.Code, c.opts.DPoP.Nonce()
	default:
		// The replay cache failed: a proof that cannot be checked for
		// replay is not accepted.
		c.opts.Metrics.badRequest("dpop_unchecked")
		c.log.Warn("DPoP proof not checked", "err", err)
		return binding.ErrInvalidProof, c.opts.DPoP.Nonce()
	}
}

func (c *Checker) shadow(r *gate.Request) bool {
	if c.opts.Shadow {
		return true
	}
	for _, p := range c.opts.ShadowRoutes {
		if routeHasPrefix(r.URI, p) {
			return true
		}
	}
	return false
}

// routeHasPrefix reports whether uri's path is p or lies under it: "/beta"
// covers "/beta", "/beta/x" and "/beta?q", not "/beta-admin".
func routeHasPrefix(uri, p string) bool {
	if !strings.HasPrefix(uri, p) {
		return false
	}
	if len(uri) == len(p) || strings.HasSuffix(p, "/") {
		return true
	}
	switch uri[len(p)] {
	case '/', '?', '#':
		return true
	}
	return false
}

// Report feeds the upstream's answer back into the credential's profile. It
// implements gate.Checker. A shared store behind a Batcher applies it
// asynchronously.
func (c *Checker) Report(t gate.Ticket, o gate.Outcome) {
	if t.TokenID == "" || c.closed.Load() {
		return
	}
	cs := [1]store.Completion{{TokenID: t.TokenID, At: t.Time.UnixNano(), Trust: profile.Trust(t.Trust),
		Outcome: profile.Outcome{Status: o.Status, ResponseBytes: o.ResponseBytes, HasBytes: o.ResponseBytes >= 0}}}
	err := c.store.Complete(context.Background(), cs[:])
	if err != nil && !errors.Is(err, store.ErrClosed) {
		c.log.Debug("outcome not applied", "err", err)
	}
	c.opts.Metrics.reported(err == nil)
}

// Inspect returns a credential's profile summary and its recent decisions,
// newest first, for the read API. ok is false when the store holds no
// state for the credential.
func (c *Checker) Inspect(ctx context.Context, tokenID string, max int) (s engine.Snapshot, recent []Record, ok bool, err error) {
	if c.closed.Load() {
		return engine.Snapshot{}, nil, false, ErrClosed
	}
	s, ok, err = c.store.Inspect(ctx, tokenID)
	if err != nil {
		return engine.Snapshot{}, nil, false, fmt.Errorf("inline: state store: %w", err)
	}
	return s, c.recent.find(tokenID, max), ok, nil
}

// Store is the Checker's state store, for the denylist API. The Checker
// owns it: callers must not close it.
func (c *Checker) Store() store.Store { return c.store }

// Model names the scoring profile in use.
func (c *Checker) Model() string { return c.model.Name }

// stats reads the store's counters for the metrics.
func (c *Checker) stats() store.Stats {
	if c.closed.Load() {
		return store.Stats{}
	}
	return c.store.Stats()
}

// Close stops the Checker and closes the store (a durable one syncs as it
// closes). Checks after Close fail with ErrClosed.
func (c *Checker) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.stop)
	c.synced.Wait()
	c.responding.Wait()
	if err := c.store.Close(); err != nil {
		return fmt.Errorf("inline: closing the state store: %w", err)
	}
	return nil
}
