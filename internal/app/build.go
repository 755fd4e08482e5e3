// Package app wires vigil's parts from a configuration. The commands in
// internal/cli and the tests share it, so every entry point builds the
// engine the same way.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/redisstore"
)

// Parts are the configured components of the pipeline.
type Parts struct {
	Config  *config.Config
	Tracker *profile.Tracker
	Model   *score.Model
	Ladder  policy.Ladder
	// Fingerprinter turns raw tokens into token ids. Clone it per goroutine.
	Fingerprinter *event.Fingerprinter
	// KeyRandom is true when no key was configured and a random one is used.
	KeyRandom bool
	// DPoPNonces issues and checks DPoP server nonces when
	// credentials.dpop.nonce.required; nil otherwise.
	DPoPNonces binding.Nonces
	// CertFormat is how credentials.mtls.cert_header is written.
	CertFormat binding.CertFormat
	// Log receives the state store's log lines (NewStore); nil discards
	// them.
	Log *slog.Logger

	env Env // where Build read the fingerprint key; NewStore reads the Redis password there
}

// Env looks up an environment variable; os.LookupEnv in production.
type Env func(string) (string, bool)

// Build validates cfg in full and constructs the parts.
//
// cfg is complete, as config.Parse and config.Default return it, so every
// value in it is taken as written: a zero is an error where the range of a
// setting excludes it, although the parts' constructors would read it as
// "the default".
func Build(cfg *config.Config, env Env) (*Parts, error) {
	if env == nil {
		env = os.LookupEnv
	}
	errs := zeroErrors(cfg)
	p := &Parts{Config: cfg, env: env}
	tr, err := profile.NewTracker(profile.Params{
		HalfLife:  cfg.Profile.HalfLife.D(),
		Window:    cfg.Profile.Window.D(),
		Bucket:    cfg.Profile.Bucket.D(),
		Learning:  cfg.Profile.Learning,
		Establish: cfg.Profile.Establish,
		Dormancy:  cfg.Scoring.Dormancy.D(),
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("profile: %w", err))
	}
	p.Tracker = tr

	switch cfg.Scoring.Profile {
	case config.ProfileSeed:
		p.Model, p.Ladder = score.Seed(), score.SeedLadder
	default:
		p.Model, err = score.Vigil(score.VigilOptions{
			Window:       cfg.Profile.Window.D(),
			HalfLife:     cfg.Profile.HalfLife.D(),
			Bucket:       cfg.Profile.Bucket.D(),
			WarmupEvents: cfg.Scoring.WarmupEvents,
			WarmupAge:    warmupAge(cfg.Scoring.WarmupAge.D()),
			Dormancy:     cfg.Scoring.Dormancy.D(),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("scoring: %w", err))
		}
		p.Ladder = policy.Ladder{
			Throttle: cfg.Policy.Throttle,
			StepUp:   cfg.Policy.StepUp,
			Block:    cfg.Policy.Block,
			Margin:   cfg.Policy.Hysteresis.Margin,
			Hold:     cfg.Policy.Hysteresis.Hold.D(),
		}
		if err := p.Ladder.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("policy: %w", err))
		}
		if b := cfg.Policy.BlockCredentialAt; !(b >= cfg.Policy.Throttle) {
			errs = append(errs, fmt.Errorf("policy.block_credential_at: %g must be at least the throttle threshold (%g)", b, cfg.Policy.Throttle))
		}
		if p.Model != nil {
			p.Model.Contextual = cfg.Policy.Contextual
		}
	}
	if lb := cfg.Profile.LearnBelow; !(lb > 0 && lb <= p.Ladder.Throttle) {
		errs = append(errs, fmt.Errorf("profile.learn_below: %g must be above 0 and at most the throttle threshold (%g)", lb, p.Ladder.Throttle))
	}
	if p.Model != nil {
		for name, w := range cfg.Scoring.Weights {
			if err := p.Model.SetWeight(name, w); err != nil {
				errs = append(errs, fmt.Errorf("scoring.weights: %w", err))
			}
		}
	}

	key, err := fingerprintKey(cfg.Fingerprint, env)
	if err != nil {
		errs = append(errs, err)
	}
	if key == nil && err == nil {
		key, p.KeyRandom = event.RandomKey(), true
	}
	if key != nil {
		p.Fingerprinter, err = event.NewFingerprinter(key)
		clear(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("fingerprint key: %w", err))
		}
	}
	if n := cfg.Credentials.DPoP.Nonce; n.Required {
		nonces, err := dpopNonces(n, env)
		if err != nil {
			errs = append(errs, err)
		} else {
			p.DPoPNonces = nonces
		}
	}
	if p.CertFormat, err = binding.ParseCertFormat(cfg.Credentials.MTLS.CertHeaderFormat); err != nil {
		errs = append(errs, fmt.Errorf("credentials.mtls.cert_header_format: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// dpopNonces builds the DPoP nonces from the key in $n.KeyEnv. Errors
// name the variable, never the key.
func dpopNonces(n config.DPoPNonce, env Env) (*binding.HMACNonces, error) {
	v, ok := env(n.KeyEnv)
	if !ok || v == "" {
		return nil, fmt.Errorf("credentials.dpop.nonce: $%s is not set or empty: required nonces need a key of at least %d bytes, the same on every replica", n.KeyEnv, binding.MinNonceKey)
	}
	nonces, err := binding.NewHMACNonces(binding.NonceOptions{Key: []byte(v), Period: n.Period.D()})
	if err != nil {
		return nil, fmt.Errorf("credentials.dpop.nonce: key from $%s: %w", n.KeyEnv, err)
	}
	return nonces, nil
}

// zeroErrors reports settings that are zero where zero is out of range. The
// constructors would silently replace them with their defaults.
func zeroErrors(cfg *config.Config) []error {
	var errs []error
	add := func(zero bool, format string, args ...any) {
		if zero {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	p := cfg.Profile
	add(p.HalfLife == 0, "profile: half_life 0s: must be at least 1s")
	add(p.Window == 0, "profile: window 0s: must be between 1s and 8760h")
	add(p.Bucket == 0, "profile: bucket 0s: must be at least 1s")
	add(p.Learning == 0, "profile: learning 0: must be in (0, 1]")
	add(p.Establish == 0, "profile: establish 0: must be between 1 and 255")
	if cfg.Scoring.Profile != config.ProfileSeed {
		s := cfg.Scoring
		add(s.WarmupEvents == 0, "scoring: warmup_events 0: must be at least 1")
		add(s.Dormancy == 0, "scoring: dormancy 0s: must be at least 1h")
	}
	return errs
}

// warmupAge maps a warmup_age of 0, "no minimum age", to the smallest age
// score.Vigil does not replace with its default.
func warmupAge(d time.Duration) time.Duration {
	if d == 0 {
		return time.Nanosecond
	}
	return d
}

// fingerprintKey reads the key; nil, nil means none is configured.
func fingerprintKey(f config.Fingerprint, env Env) ([]byte, error) {
	if f.KeyFile != "" {
		b, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("fingerprint.key_file: %w", err)
		}
		b = bytes.TrimSpace(b)
		if len(b) < event.MinKeyLen {
			return nil, fmt.Errorf("fingerprint.key_file %s: %w", f.KeyFile, event.ErrShortKey)
		}
		return b, nil
	}
	if f.KeyEnv != "" {
		if v, ok := env(f.KeyEnv); ok && v != "" {
			if len(v) < event.MinKeyLen {
				return nil, fmt.Errorf("fingerprint key from $%s: %w", f.KeyEnv, event.ErrShortKey)
			}
			return []byte(v), nil
		}
	}
	return nil, nil
}

// NewEngine returns an engine built from the parts.
func (p *Parts) NewEngine() (*engine.Engine, error) {
	return engine.New(p.engineOptions())
}

func (p *Parts) engineOptions() engine.Options {
	return engine.Options{
		Tracker:           p.Tracker,
		Model:             p.Model,
		Ladder:            p.Ladder,
		LearnBelow:        p.Config.Profile.LearnBelow,
		BlockCredentialAt: p.Config.Policy.BlockCredentialAt,
		MaxCredentials:    p.Config.Profile.MaxCredentials,
		MaxClients:        p.Config.Profile.MaxClients,
		Dir:               p.Config.Profile.DataDir,
	}
}

// NewStore returns the state store that the state section describes, for
// the inline Checker, which owns it:
//
//   - memory: a store.Local over NewEngine's engine, durable with its
//     denylist in profile.data_dir when that is set;
//   - redis: a redisstore.Store behind a store.Batcher, with the password
//     read from the environment variable state.redis.password_env names.
//     It fails if Redis does not answer.
func (p *Parts) NewStore(ctx context.Context) (store.Store, error) {
	st := &p.Config.State
	switch st.Backend {
	case config.BackendMemory:
		eng, err := p.NewEngine()
		if err != nil {
			return nil, err
		}
		l, err := store.NewLocal(eng, store.LocalOptions{Dir: p.Config.Profile.DataDir})
		if err != nil {
			eng.Close()
			return nil, fmt.Errorf("profile.data_dir: %w", err)
		}
		return l, nil
	case config.BackendRedis:
		r := &st.Redis
		var password string
		if r.PasswordEnv != "" {
			env := p.env
			if env == nil {
				env = os.LookupEnv
			}
			v, ok := env(r.PasswordEnv)
			if !ok || v == "" {
				return nil, fmt.Errorf("state.redis.password_env: $%s is not set or empty", r.PasswordEnv)
			}
			password = v
		}
		eo := p.engineOptions()
		eo.Dir = "" // config.Validate refuses data_dir with redis; records live in Redis
		log := p.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		s, err := redisstore.New(ctx, redisstore.Options{
			Addrs: r.Addrs, Cluster: r.Cluster, Username: r.Username, Password: password, DB: r.DB, Prefix: r.Prefix,
			Engine: eo, NewTTL: r.NewTTL.D(), IdleTTL: r.IdleTTL.D(), Timeout: r.Timeout.D(), RetryAfter: r.RetryAfter.D(),
			FailClosed: r.Fail == config.FailClosed, DenylistEvery: r.DenylistEvery.D(),
			Log: log.With("component", "redisstore"),
		})
		if err != nil {
			return nil, fmt.Errorf("state.redis: %w", err)
		}
		return store.NewBatcher(s, store.BatcherOptions{MaxBatch: r.MaxBatch}), nil
	}
	return nil, fmt.Errorf("state.backend: %q is not a state backend (want %q or %q)", st.Backend, config.BackendMemory, config.BackendRedis)
}
