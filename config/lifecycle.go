package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// GeoIP names MaxMind-format databases (GeoLite2 or DB-IP Lite) that give
// requests without geography a country and an ASN.
type GeoIP struct {
	CityDB string `yaml:"city_db"`
	ASNDB  string `yaml:"asn_db"`
}

// Lifecycle configures what vigil does about credentials' lifecycle: the
// inventory, dormancy, unused scopes, network zones and the automated
// response (revocation and rotation).
type Lifecycle struct {
	Inventory    Inventory         `yaml:"inventory"`
	Scopes       map[string]string `yaml:"scopes"`
	Dormancy     Dormancy          `yaml:"dormancy"`
	UnusedScopes UnusedScopes      `yaml:"unused_scopes"`
	Zones        []ZoneRule        `yaml:"zones"`
	Response     Response          `yaml:"response"`
}

// Inventory configures the credential inventory.
type Inventory struct {
	Enabled    bool     `yaml:"enabled"`
	MaxEntries int      `yaml:"max_entries"`
	MergeEvery Duration `yaml:"merge_every"`
	Retention  Duration `yaml:"retention"`
}

// Dormancy configures dormant credentials.
type Dormancy struct {
	After      Duration `yaml:"after"`
	OnWake     string   `yaml:"on_wake"`
	Revoke     bool     `yaml:"revoke"`
	CheckEvery Duration `yaml:"check_every"`
}

// UnusedScopes configures the unused-scope report.
type UnusedScopes struct {
	Window Duration `yaml:"window"`
}

// ZoneRule is one network zone rule (package zone).
type ZoneRule struct {
	Name      string   `yaml:"name"`
	Scope     string   `yaml:"scope"`
	Subject   string   `yaml:"subject"`
	Effect    string   `yaml:"effect"`
	CIDRs     []string `yaml:"cidrs"`
	ASNs      []uint32 `yaml:"asns"`
	Countries []string `yaml:"countries"`
	Action    string   `yaml:"action"`
}

// Response configures the automated response to a credential judged
// stolen, and to operators' revocations.
type Response struct {
	AuditLog       string   `yaml:"audit_log"`
	OnBlock        bool     `yaml:"on_block"`
	StepUpsPerHour int      `yaml:"step_ups_per_hour"`
	Steps          []string `yaml:"steps"`
	DenyFor        Duration `yaml:"deny_for"`
	OAuth          OAuth    `yaml:"oauth"`
	Webhook        Webhook  `yaml:"webhook"`
}

// OAuth names the identity provider's revocation (RFC 7009) and
// introspection (RFC 7662) endpoints and vigil's client credentials there.
type OAuth struct {
	RevocationURL    string   `yaml:"revocation_url"`
	IntrospectionURL string   `yaml:"introspection_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecretEnv  string   `yaml:"client_secret_env"`
	AuthMethod       string   `yaml:"auth_method"`
	Introspect       bool     `yaml:"introspect"`
	IntrospectTTL    Duration `yaml:"introspect_ttl"`
}

// Webhook is the signed rotation webhook.
type Webhook struct {
	URL       string `yaml:"url"`
	SecretEnv string `yaml:"secret_env"`
}

// Response steps.
const (
	StepDenylist = "denylist"
	StepRevoke   = "revoke"
	StepWebhook  = "webhook"
)

// On-wake actions of lifecycle.dormancy.on_wake.
const (
	WakeNone   = "none"
	WakeStepUp = "step_up"
	WakeBlock  = "block"
)

func (c *Config) validateLifecycle() []error {
	var errs []error
	l := &c.Lifecycle
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if l.Inventory.MaxEntries < 0 {
		add("lifecycle.inventory.max_entries: %d must not be negative (0: the default)", l.Inventory.MaxEntries)
	}
	if d := l.Inventory.MergeEvery.D(); d < 100*time.Millisecond || d > time.Hour {
		add("lifecycle.inventory.merge_every: %s must be between 100ms and 1h", d)
	}
	if d := l.Inventory.Retention.D(); d < 24*time.Hour {
		add("lifecycle.inventory.retention: %s must be at least 24h", d)
	}
	for _, k := range sortedKeys(l.Scopes) {
		if !strings.Contains(k, "/") {
			add("lifecycle.scopes: %q: want \"METHOD /path\" or \"/path\"", k)
		}
	}
	if d := l.Dormancy.After.D(); d < time.Hour {
		add("lifecycle.dormancy.after: %s must be at least 1h", d)
	}
	if d := l.Dormancy.CheckEvery.D(); d < time.Minute {
		add("lifecycle.dormancy.check_every: %s must be at least 1m", d)
	}
	switch l.Dormancy.OnWake {
	case WakeNone, WakeStepUp, WakeBlock:
		if l.Dormancy.OnWake != WakeNone && c.Scoring.Profile != ProfileVigil {
			add("lifecycle.dormancy.on_wake: %s needs scoring.profile vigil (its dormancy signal sees the wake-up)", l.Dormancy.OnWake)
		}
	default:
		add("lifecycle.dormancy.on_wake: %q is not none, step_up or block", l.Dormancy.OnWake)
	}
	if l.Dormancy.Revoke && !l.Inventory.Enabled {
		add("lifecycle.dormancy.revoke: the inventory (lifecycle.inventory.enabled) finds dormant credentials; it is off")
	}
	if d := l.UnusedScopes.Window.D(); d < time.Hour {
		add("lifecycle.unused_scopes.window: %s must be at least 1h", d)
	}
	for i, z := range l.Zones {
		if z.Name == "" {
			add("lifecycle.zones[%d]: name: empty", i)
		}
	}
	errs = append(errs, c.validateResponse()...)
	return errs
}

func (c *Config) validateResponse() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	r := &c.Lifecycle.Response
	triggered := r.OnBlock || r.StepUpsPerHour > 0 || c.Lifecycle.Dormancy.Revoke
	if r.StepUpsPerHour < 0 {
		add("lifecycle.response.step_ups_per_hour: %d must not be negative (0: off)", r.StepUpsPerHour)
	}
	if r.DenyFor.D() < 0 {
		add("lifecycle.response.deny_for: %s must not be negative (0: until removed)", r.DenyFor.D())
	}
	for i, s := range r.Steps {
		switch s {
		case StepDenylist:
		case StepRevoke:
			if r.OAuth.RevocationURL == "" {
				add("lifecycle.response.steps[%d]: revoke needs lifecycle.response.oauth.revocation_url", i)
			}
		case StepWebhook:
			if r.Webhook.URL == "" {
				add("lifecycle.response.steps[%d]: webhook needs lifecycle.response.webhook.url", i)
			}
		default:
			add("lifecycle.response.steps[%d]: %q is not denylist, revoke or webhook", i, s)
		}
		if slices.Index(r.Steps, s) != i {
			add("lifecycle.response.steps[%d]: %q is listed twice", i, s)
		}
	}
	if triggered && len(r.Steps) == 0 {
		add("lifecycle.response.steps: empty while a trigger is on (on_block, step_ups_per_hour or dormancy.revoke)")
	}
	if triggered && r.AuditLog == "" {
		add("lifecycle.response.audit_log: empty while a trigger is on: every response action is recorded in this append-only file")
	}
	o := &r.OAuth
	for _, u := range []struct{ name, v string }{{"revocation_url", o.RevocationURL}, {"introspection_url", o.IntrospectionURL}} {
		if u.v != "" {
			if err := checkURL(u.v); err != nil {
				add("lifecycle.response.oauth.%s: %v", u.name, err)
			}
		}
	}
	if (o.RevocationURL != "" || o.IntrospectionURL != "") && o.ClientID == "" {
		add("lifecycle.response.oauth.client_id: empty: the IdP's endpoints need vigil's client credentials")
	}
	switch o.AuthMethod {
	case "client_secret_basic", "client_secret_post":
	default:
		add("lifecycle.response.oauth.auth_method: %q is not client_secret_basic or client_secret_post", o.AuthMethod)
	}
	if o.ClientSecretEnv != "" && !envName(o.ClientSecretEnv) {
		errs = append(errs, errors.New("lifecycle.response.oauth.client_secret_env: not an environment variable name: name the variable that holds the secret, never the secret itself"))
	}
	if o.Introspect && o.IntrospectionURL == "" {
		add("lifecycle.response.oauth.introspect: on without introspection_url")
	}
	if d := o.IntrospectTTL.D(); d < time.Second {
		add("lifecycle.response.oauth.introspect_ttl: %s must be at least 1s", d)
	}
	w := &r.Webhook
	if w.URL != "" {
		if err := checkURL(w.URL); err != nil {
			add("lifecycle.response.webhook.url: %v", err)
		}
		if w.SecretEnv == "" {
			add("lifecycle.response.webhook.secret_env: empty: the webhook is signed with the HMAC key this variable holds")
		}
	}
	if w.SecretEnv != "" && !envName(w.SecretEnv) {
		errs = append(errs, errors.New("lifecycle.response.webhook.secret_env: not an environment variable name: name the variable that holds the key, never the key itself"))
	}
	return errs
}

// checkURL accepts https URLs, and http ones to loopback hosts.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" {
			return nil
		}
		return fmt.Errorf("%q: http is allowed to loopback hosts only (secrets and tokens travel here); use https", s)
	}
	return fmt.Errorf("%q: want an https URL", s)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
