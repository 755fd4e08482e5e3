// Package server assembles vigil's inline parts from a configuration: the
// Checker every adapter asks, `vigil serve` (forward-auth, Envoy ext_authz
// over HTTP and gRPC, outcome reports, health, metrics and the read API)
// and the listeners' lifecycle.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/credential"
	"github.com/vigil-sec/vigil/enforce"
	"github.com/vigil-sec/vigil/inline"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/ratelimit"
	"github.com/vigil-sec/vigil/store"
)

// Checker is an inline.Checker with the parts it owns.
type Checker struct {
	*inline.Checker
	Parts   *app.Parts
	Metrics *inline.Metrics
	// Lifecycle holds the inventory, zones, GeoIP and response executor.
	Lifecycle *app.Lifecycle
	extract   *credential.Extractor
}

// NewChecker builds the inline Checker that cfg describes, registering its
// metrics with reg (nil: none).
func NewChecker(ctx context.Context, cfg *config.Config, env app.Env, reg prometheus.Registerer, log *slog.Logger) (*Checker, error) {
	parts, err := app.Build(cfg, env)
	if err != nil {
		return nil, err
	}
	if parts.KeyRandom {
		log.Warn("no fingerprint key configured: using a random key for this run, so token ids will differ from other runs and replicas",
			"key_env", cfg.Fingerprint.KeyEnv)
		if cfg.Profile.DataDir != "" {
			return nil, fmt.Errorf("profile.data_dir %q keeps profiles by token id, and without a fingerprint key every run gives the same credential another id: set %s or fingerprint.key_file",
				cfg.Profile.DataDir, cfg.Fingerprint.KeyEnv)
		}
		if cfg.State.Backend == config.BackendRedis {
			return nil, fmt.Errorf("state.backend redis shares profiles by token id between replicas, and without a fingerprint key every replica and run gives the same credential another id: set %s or fingerprint.key_file",
				cfg.Fingerprint.KeyEnv)
		}
	}
	parts.Log = log
	c := cfg.Credentials
	x, err := credential.New(ctx, credential.Options{
		APIKeyHeaders: nonNil(c.APIKeyHeaders),
		APIKeyQuery:   c.APIKeyQuery,
		MaxLength:     c.MaxLength,
		JWT: credential.JWTOptions{
			Verify: c.JWT.Verify, JWKSURL: c.JWT.JWKSURL, JWKSFile: c.JWT.JWKSFile,
			Refresh: c.JWT.Refresh.D(), Issuer: c.JWT.Issuer, Audience: c.JWT.Audience, Leeway: c.JWT.Leeway.D(),
		},
	}, log)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	e := cfg.Enforce
	resp, err := enforce.NewResponder(enforce.Options{
		Realm: e.Realm, ACRValues: e.StepUpACRValues, MaxAge: e.StepUpMaxAge.D(), UpstreamHeaders: e.UpstreamHeaders,
	})
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("enforce: %w", err)
	}
	lim, err := ratelimit.New(ratelimit.Options{MaxKeys: e.RateLimitKeys})
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("enforce.rate_limit_keys: %w", err)
	}
	var m *inline.Metrics
	if reg != nil {
		if m, err = inline.NewMetrics(reg); err != nil {
			x.Close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	st, err := parts.NewStore(ctx)
	if err != nil {
		x.Close()
		return nil, err
	}
	var dpop *binding.Verifier
	if c.DPoP.Verify {
		// Proofs are used once everywhere: through Redis when replicas
		// share state, else in this process.
		var replay binding.ReplayCache = &binding.MemoryReplay{}
		if b, ok := st.(*store.Batcher); ok {
			if r, ok := b.Store.(binding.ReplayCache); ok {
				replay = r
			}
		}
		if dpop, err = binding.NewVerifier(binding.DPoPOptions{MaxAge: c.DPoP.MaxAge.D(), Replay: replay, Nonces: parts.DPoPNonces}); err != nil {
			st.Close()
			x.Close()
			return nil, fmt.Errorf("credentials.dpop: %w", err)
		}
	}
	lc, err := parts.NewLifecycle(st)
	if err != nil {
		st.Close()
		x.Close()
		return nil, err
	}
	life := inline.Lifecycle{Inventory: lc.Inventory, Scopes: lc.Scopes, Zones: lc.Zones, OnWake: lc.OnWake}
	if lc.GeoIP != nil {
		life.GeoIP = lc.GeoIP
	}
	if lc.Introspect != nil {
		life.Introspect = lc.Introspect
	}
	if lc.Triggers != nil && lc.Actions != nil {
		life.Response = &inline.Response{Actions: lc.Actions, Triggers: lc.Triggers, Steps: lc.Steps, DenyFor: lc.DenyFor,
			Submitted: m.ResponseSubmitted}
	}
	ch, err := inline.New(inline.Options{
		Lifecycle: life,
		Store:     st, Model: parts.Model, DPoP: dpop, MTLS: c.MTLS.Verify, Fingerprinter: parts.Fingerprinter, Extractor: x, Limiter: lim, Responder: resp,
		Shadow: e.Shadow, ShadowRoutes: e.ShadowRoutes,
		Throttle: inline.Throttle{DefaultPerMinute: e.ThrottleDefaultPerMinute, MinPerMinute: e.ThrottleMinPerMinute},
		Recent:   e.RecentDecisions, Metrics: m, Log: log, SyncEvery: cfg.Profile.SyncEvery.D(),
	})
	if err != nil {
		lc.Close()
		st.Close()
		x.Close()
		return nil, fmt.Errorf("enforce: %w", err)
	}
	if reg != nil {
		if err := reg.Register(newLifecycleCollector(lc)); err != nil {
			ch.Close()
			lc.Close()
			x.Close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return &Checker{Checker: ch, Parts: parts, Metrics: m, Lifecycle: lc, extract: x}, nil
}

// Close closes the state store and stops the JWKS refresh.
func (c *Checker) Close() error {
	// Responses in flight reach the executor before it closes; the
	// inventory merges into the store's Redis as it closes: before the
	// store.
	c.Checker.WaitResponses()
	lerr := c.Lifecycle.Close()
	err := c.Checker.Close()
	c.extract.Close()
	return errors.Join(err, lerr)
}

// nonNil keeps an explicitly empty list empty: credential.Options reads nil
// as "the default".
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ParsePrefixes parses CIDR prefixes or bare addresses, naming the setting
// and position of a bad one.
func ParsePrefixes(setting string, ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%s[%d]: %q is not an address or CIDR prefix", setting, i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
