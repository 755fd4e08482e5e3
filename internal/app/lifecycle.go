package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-sec/vigil/action"
	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/geoip"
	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/redisstore"
	"github.com/vigil-sec/vigil/zone"
)

// Lifecycle is what the lifecycle section builds. Close releases it all.
type Lifecycle struct {
	Inventory inventory.Inventory // nil when disabled
	Scopes    *inventory.ScopeMap
	GeoIP     *geoip.DB // nil without databases
	Zones     *zone.Set // nil without rules
	OnWake    policy.Level
	// Actions runs response steps; nil without an audit log.
	Actions    *action.Executor
	Triggers   *action.Triggers // nil without a trigger
	Steps      action.Steps
	DenyFor    time.Duration
	Introspect *action.Introspector // nil unless oauth.introspect
	// Audit is the audit log's path ("" without one).
	Audit string
}

// Close flushes the inventory and stops the executor (waiting up to 5 s
// for attempts in flight).
func (l *Lifecycle) Close() error {
	var errs []error
	if l.Actions != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, l.Actions.Close(ctx))
		cancel()
	}
	if l.Inventory != nil {
		errs = append(errs, l.Inventory.Close())
	}
	if l.GeoIP != nil {
		errs = append(errs, l.GeoIP.Close())
	}
	return errors.Join(errs...)
}

// InventoryFile is the inventory's file in a data directory.
const InventoryFile = "inventory.jsonl"

// OpenGeoIP opens the geoip section's databases; nil without any.
func (p *Parts) OpenGeoIP() (*geoip.DB, error) {
	g := p.Config.GeoIP
	if g.CityDB == "" && g.ASNDB == "" {
		return nil, nil
	}
	db, err := geoip.Open(geoip.Options{CityPath: g.CityDB, ASNPath: g.ASNDB})
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	return db, nil
}

// Zones compiles lifecycle.zones; nil without rules.
func Zones(rules []config.ZoneRule) (*zone.Set, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	var errs []error
	zr := make([]zone.Rule, len(rules))
	for i, r := range rules {
		name := fmt.Sprintf("lifecycle.zones[%d]", i)
		z := zone.Rule{Name: r.Name, Subject: r.Subject, ASNs: r.ASNs, Countries: r.Countries}
		var err error
		if z.Scope, err = zone.ParseScope(r.Scope); err != nil {
			errs = append(errs, fmt.Errorf("%s.scope: %w", name, err))
		}
		if z.Effect, err = zone.ParseEffect(r.Effect); err != nil {
			errs = append(errs, fmt.Errorf("%s.effect: %w", name, err))
		}
		if z.Action, err = zone.ParseAction(r.Action); err != nil {
			errs = append(errs, fmt.Errorf("%s.action: %w", name, err))
		}
		for j, c := range r.CIDRs {
			pfx, err := netip.ParsePrefix(c)
			if err != nil {
				a, aerr := netip.ParseAddr(c)
				if aerr != nil {
					errs = append(errs, fmt.Errorf("%s.cidrs[%d]: %q is not an address or CIDR prefix", name, j, c))
					continue
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			z.CIDRs = append(z.CIDRs, pfx)
		}
		zr[i] = z
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s, err := zone.Compile(zr)
	if err != nil {
		return nil, fmt.Errorf("lifecycle.zones: %w", err)
	}
	return s, nil
}

// NewLifecycle builds the lifecycle section for a running server over its
// state store st: the inventory (in this process, saved to the data
// directory if there is one, or merged into Redis with backend redis),
// zones, GeoIP and the response executor.
func (p *Parts) NewLifecycle(st store.Store) (_ *Lifecycle, err error) {
	cfg := p.Config
	lc := &cfg.Lifecycle
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Lifecycle{}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.Scopes, err = inventory.NewScopeMap(lc.Scopes); err != nil {
		return nil, fmt.Errorf("lifecycle.scopes: %w", err)
	}
	if l.GeoIP, err = p.OpenGeoIP(); err != nil {
		return nil, err
	}
	if l.Zones, err = Zones(lc.Zones); err != nil {
		return nil, err
	}
	if l.Zones.NeedsGeo() && l.GeoIP == nil {
		return nil, errors.New("lifecycle.zones: rules by ASN or country need a GeoIP database (geoip.city_db for countries, geoip.asn_db for ASNs): inline requests carry neither")
	}
	switch lc.Dormancy.OnWake {
	case config.WakeStepUp:
		l.OnWake = policy.StepUp
	case config.WakeBlock:
		l.OnWake = policy.Block
	}
	if lc.Inventory.Enabled {
		if l.Inventory, err = p.newInventory(st, log); err != nil {
			return nil, err
		}
	}
	if err := p.newResponse(l, st, log); err != nil {
		return nil, err
	}
	return l, nil
}

func (p *Parts) newInventory(st store.Store, log *slog.Logger) (inventory.Inventory, error) {
	inv := &p.Config.Lifecycle.Inventory
	if rs := redisOf(st); rs != nil {
		return inventory.NewShared(inventory.SharedOptions{Sink: rs.Inventory(inv.Retention.D()), Every: inv.MergeEvery.D(),
			MaxPending: inv.MaxEntries, Log: log.With("component", "inventory")})
	}
	o := inventory.Options{MaxEntries: inv.MaxEntries}
	if dir := p.Config.Profile.DataDir; dir != "" {
		o.Path = filepath.Join(dir, InventoryFile)
	}
	m, err := inventory.NewMemory(o)
	if err != nil && m == nil {
		return nil, fmt.Errorf("lifecycle.inventory: %w", err)
	}
	if err != nil {
		// Damaged lines lose those entries only: keep going, loudly.
		log.Error("inventory file damaged: the bad lines were skipped", "err", err)
	}
	return m, nil
}

// redisOf finds the Redis store under st's Batcher, or nil.
func redisOf(st store.Store) *redisstore.Store {
	if b, ok := st.(*store.Batcher); ok {
		st = b.Store
	}
	rs, _ := st.(*redisstore.Store)
	return rs
}

func (p *Parts) newResponse(l *Lifecycle, st store.Store, log *slog.Logger) error {
	r := &p.Config.Lifecycle.Response
	env := p.env
	if env == nil {
		env = os.LookupEnv
	}
	var oauth *action.OAuth
	if o := r.OAuth; o.RevocationURL != "" || o.IntrospectionURL != "" {
		var secret string
		if o.ClientSecretEnv != "" {
			v, ok := env(o.ClientSecretEnv)
			if !ok || v == "" {
				return fmt.Errorf("lifecycle.response.oauth.client_secret_env: $%s is not set or empty", o.ClientSecretEnv)
			}
			secret = v
		}
		var err error
		if oauth, err = action.NewOAuth(action.OAuthOptions{RevocationURL: o.RevocationURL, IntrospectionURL: o.IntrospectionURL,
			ClientID: o.ClientID, ClientSecret: secret, AuthMethod: o.AuthMethod}); err != nil {
			return fmt.Errorf("lifecycle.response.oauth: %w", err)
		}
		if o.Introspect {
			if l.Introspect, err = action.NewIntrospector(action.IntrospectorOptions{Client: oauth, TTL: o.IntrospectTTL.D()}); err != nil {
				return fmt.Errorf("lifecycle.response.oauth: %w", err)
			}
		}
	}
	var hook *action.Webhook
	if w := r.Webhook; w.URL != "" {
		key, ok := env(w.SecretEnv)
		if !ok || len(key) < 16 {
			return fmt.Errorf("lifecycle.response.webhook.secret_env: $%s is not set or shorter than 16 bytes", w.SecretEnv)
		}
		var err error
		if hook, err = action.NewWebhook(action.WebhookOptions{URL: w.URL, Secret: []byte(key)}); err != nil {
			return fmt.Errorf("lifecycle.response.webhook: %w", err)
		}
	}
	for _, s := range r.Steps {
		switch s {
		case config.StepDenylist:
			l.Steps |= action.StepDenylist
		case config.StepRevoke:
			l.Steps |= action.StepRevoke
		case config.StepWebhook:
			l.Steps |= action.StepWebhook
		}
	}
	l.DenyFor = r.DenyFor.D()
	if r.AuditLog == "" {
		return nil
	}
	audit, err := action.OpenAudit(r.AuditLog)
	if err != nil {
		return fmt.Errorf("lifecycle.response.audit_log: %w", err)
	}
	l.Audit = r.AuditLog
	deny := action.DenierFunc(func(ctx context.Context, tokenID, reason, by string, until time.Time) error {
		return st.Deny(ctx, store.Denial{TokenID: tokenID, Reason: reason, By: by, Until: until, At: time.Now()})
	})
	if l.Actions, err = action.New(action.Options{Deny: deny, OAuth: oauth, Webhook: hook, Audit: audit,
		Log: log.With("component", "response")}); err != nil {
		audit.Close()
		return fmt.Errorf("lifecycle.response: %w", err)
	}
	if r.OnBlock || r.StepUpsPerHour > 0 {
		if l.Triggers, err = action.NewTriggers(action.TriggerOptions{OnBlock: r.OnBlock, StepUpsPerHour: r.StepUpsPerHour}); err != nil {
			return fmt.Errorf("lifecycle.response: %w", err)
		}
	}
	return nil
}
