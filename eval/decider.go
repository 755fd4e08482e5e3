package eval

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/policy"
)

// Decider judges events. The evaluation calls Decide once per event, in
// input order, from one goroutine; a Decider keeps whatever state it needs
// between calls and need not be safe for concurrent use. Decide may fill
// derived fields of ev (the engine fills ev.Keys) but must not change what
// the event says, since the next Decider sees the same event.
type Decider interface {
	// Name names the decider in reports: "vigil", "seed", "ip_limiter".
	Name() string
	// Describe says in one line what the decider is, for reports.
	Describe() string
	// Decide returns the level for ev.
	Decide(ev *event.Event) policy.Level
}

// Interface guards.
var (
	_ Decider = (*EngineDecider)(nil)
	_ Decider = (*IPLimiter)(nil)
)

// EngineDecider is a vigil engine built from a configuration.
type EngineDecider struct {
	name, desc string
	eng        *engine.Engine
	v          engine.Verdict
}

// NewEngineDecider builds an engine from cfg with app.Build. env supplies
// the fingerprint key as for every command (nil: the process environment);
// the evaluation decodes events itself, so the key only matters to callers
// that share the returned Parts' Fingerprinter.
func NewEngineDecider(name string, cfg *config.Config, env app.Env) (*EngineDecider, *app.Parts, error) {
	parts, err := app.Build(cfg, env)
	if err != nil {
		return nil, nil, fmt.Errorf("eval: %s: %w", name, err)
	}
	eng, err := parts.NewEngine()
	if err != nil {
		return nil, nil, fmt.Errorf("eval: %s: %w", name, err)
	}
	l := parts.Ladder
	desc := fmt.Sprintf("scoring profile %s: throttle ≥ %g, step_up_auth ≥ %g, block ≥ %g, hysteresis margin %g, hold %v",
		cfg.Scoring.Profile, l.Throttle, l.StepUp, l.Block, l.Margin, l.Hold)
	return &EngineDecider{name: name, desc: desc, eng: eng}, parts, nil
}

// SeedConfig returns a copy of cfg that uses the seed scoring profile: the
// same profile tuning, the article's five rules and their ladder. Weights
// are dropped, as they name vigil's signals.
func SeedConfig(cfg *config.Config) *config.Config {
	c := *cfg
	c.Scoring.Profile = config.ProfileSeed
	c.Scoring.Weights = nil
	return &c
}

// Name implements Decider.
func (d *EngineDecider) Name() string { return d.name }

// Describe implements Decider.
func (d *EngineDecider) Describe() string { return d.desc }

// Decide implements Decider.
func (d *EngineDecider) Decide(ev *event.Event) policy.Level {
	d.eng.Process(ev, &d.v)
	return d.v.Level
}

// Close releases the engine.
func (d *EngineDecider) Close() { d.eng.Close() }

// IPLimiterOptions configure an IPLimiter. The zero value is 60 requests
// per one-minute window.
type IPLimiterOptions struct {
	// Limit is the requests a source address may make in one window; the
	// ones beyond it are throttled. 0 means 60.
	Limit int
	// Window is the length of the fixed windows, aligned on the Unix epoch
	// in event time. 0 means one minute.
	Window time.Duration
}

func (o *IPLimiterOptions) validate() error {
	if o.Limit == 0 {
		o.Limit = 60
	}
	if o.Window == 0 {
		o.Window = time.Minute
	}
	var errs []error
	if o.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d must be positive", o.Limit))
	}
	if o.Window < 0 {
		errs = append(errs, fmt.Errorf("window %v must be positive", o.Window))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("eval: ip limiter: %w", err)
	}
	return nil
}

// IPLimiter is the baseline most APIs have: a fixed-window rate limit per
// source IP address, blind to the credential. Within each window (of event
// time, aligned on the epoch) an address's first Limit requests are
// allowed and the rest throttled. It never answers step_up_auth or block,
// so its recall at ≥ step_up_auth is 0 by construction.
type IPLimiter struct {
	opts IPLimiterOptions
	win  map[netip.Addr]*ipWindow
}

type ipWindow struct {
	start int64 // window number: event time / window length
	n     int
}

// NewIPLimiter returns an IPLimiter.
func NewIPLimiter(opts IPLimiterOptions) (*IPLimiter, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &IPLimiter{opts: opts, win: make(map[netip.Addr]*ipWindow)}, nil
}

// Name implements Decider.
func (l *IPLimiter) Name() string { return "ip_limiter" }

// Describe implements Decider.
func (l *IPLimiter) Describe() string {
	return fmt.Sprintf("fixed window per source IP: %d requests per %v, throttle beyond; never steps up or blocks", l.opts.Limit, l.opts.Window)
}

// Decide implements Decider.
func (l *IPLimiter) Decide(ev *event.Event) policy.Level {
	n := floorDiv(ev.Time, int64(l.opts.Window))
	w := l.win[ev.SourceIP]
	if w == nil {
		w = &ipWindow{start: n}
		l.win[ev.SourceIP] = w
	}
	// An event older than the address's window (out of order) counts in
	// the current one: fixed windows never reopen.
	if n > w.start {
		w.start, w.n = n, 0
	}
	w.n++
	if w.n > l.opts.Limit {
		return policy.Throttle
	}
	return policy.Allow
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
