// Package app wires vigil's parts from a configuration. The commands in
// internal/cli and the tests share it, so every entry point builds the
// engine the same way.
package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
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
	p := &Parts{Config: cfg}
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
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
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
	return engine.New(engine.Options{
		Tracker:           p.Tracker,
		Model:             p.Model,
		Ladder:            p.Ladder,
		LearnBelow:        p.Config.Profile.LearnBelow,
		BlockCredentialAt: p.Config.Policy.BlockCredentialAt,
		MaxCredentials:    p.Config.Profile.MaxCredentials,
		MaxClients:        p.Config.Profile.MaxClients,
		Dir:               p.Config.Profile.DataDir,
	})
}
