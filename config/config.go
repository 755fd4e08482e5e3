// Package config reads vigil's YAML configuration. Defaults live in one
// place, default.yaml, which `vigil config default` prints as it is; a
// user's file is decoded over them strictly: an unknown key is an error
// that names its line.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the commented default configuration.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is vigil's configuration.
type Config struct {
	Fingerprint Fingerprint `yaml:"fingerprint"`
	Profile     Profile     `yaml:"profile"`
	State       State       `yaml:"state"`
	Scoring     Scoring     `yaml:"scoring"`
	Policy      Policy      `yaml:"policy"`
	Replay      Replay      `yaml:"replay"`
	Serve       Serve       `yaml:"serve"`
	Credentials Credentials `yaml:"credentials"`
	Enforce     Enforce     `yaml:"enforce"`
	GeoIP       GeoIP       `yaml:"geoip"`
	Lifecycle   Lifecycle   `yaml:"lifecycle"`
}

// Serve configures `vigil serve` and `vigil proxy`: listeners, trust in
// forwarding headers, failure mode.
type Serve struct {
	Listen             string   `yaml:"listen"`
	GRPCListen         string   `yaml:"grpc_listen"`
	AdminListen        string   `yaml:"admin_listen"`
	AdminTokenEnv      string   `yaml:"admin_token_env"`
	TrustedProxies     []string `yaml:"trusted_proxies"`
	FailOpen           bool     `yaml:"fail_open"`
	ExtAuthzHTTPPrefix string   `yaml:"ext_authz_http_prefix"`
	ShutdownGrace      Duration `yaml:"shutdown_grace"`
	DrainDelay         Duration `yaml:"drain_delay"`
	MaxHeaderBytes     int      `yaml:"max_header_bytes"`
}

// Credentials says where requests carry credentials and how JWTs are read.
type Credentials struct {
	APIKeyHeaders []string `yaml:"api_key_headers"`
	APIKeyQuery   []string `yaml:"api_key_query"`
	MaxLength     int      `yaml:"max_length"`
	JWT           JWT      `yaml:"jwt"`
	DPoP          DPoP     `yaml:"dpop"`
	MTLS          MTLS     `yaml:"mtls"`
}

// DPoP configures checking DPoP proofs (RFC 9449) inline.
type DPoP struct {
	Verify bool      `yaml:"verify"`
	MaxAge Duration  `yaml:"max_age"`
	Nonce  DPoPNonce `yaml:"nonce"`
}

// DPoPNonce configures server nonces in DPoP proofs (RFC 9449 §8).
type DPoPNonce struct {
	// Required makes every proof carry a current server nonce.
	Required bool `yaml:"required"`
	// KeyEnv names the environment variable that holds the HMAC key
	// nonces are made with, shared by every replica; the key itself is
	// never in the file.
	KeyEnv string `yaml:"key_env"`
	// Period is how long a nonce is current; it is accepted for one more.
	Period Duration `yaml:"period"`
}

// MTLS configures checking certificate-bound access tokens (RFC 8705).
type MTLS struct {
	Verify bool `yaml:"verify"`
	// CertHeader names the header in which a trusted gateway passes the
	// client's certificate to forward-auth and the proxy; "" reads none.
	CertHeader string `yaml:"cert_header"`
	// CertHeaderFormat is CertXFCC, CertEscapedPEM or CertTraefik.
	CertHeaderFormat string `yaml:"cert_header_format"`
}

// Formats of credentials.mtls.cert_header.
const (
	CertXFCC       = "xfcc"        // Envoy's x-forwarded-client-cert
	CertEscapedPEM = "escaped_pem" // nginx's $ssl_client_escaped_cert
	CertTraefik    = "traefik"     // Traefik's X-Forwarded-Tls-Client-Cert
)

// JWT configures reading and, optionally, verifying JWT access tokens.
type JWT struct {
	Verify   bool     `yaml:"verify"`
	JWKSURL  string   `yaml:"jwks_url"`
	JWKSFile string   `yaml:"jwks_file"`
	Refresh  Duration `yaml:"refresh"`
	Issuer   string   `yaml:"issuer"`
	Audience string   `yaml:"audience"`
	Leeway   Duration `yaml:"leeway"`
}

// Enforce says what clients are told and when nothing is enforced.
type Enforce struct {
	Shadow                   bool     `yaml:"shadow"`
	ShadowRoutes             []string `yaml:"shadow_routes"`
	ThrottleDefaultPerMinute float64  `yaml:"throttle_default_per_minute"`
	ThrottleMinPerMinute     float64  `yaml:"throttle_min_per_minute"`
	StepUpACRValues          string   `yaml:"step_up_acr_values"`
	StepUpMaxAge             Duration `yaml:"step_up_max_age"`
	Realm                    string   `yaml:"realm"`
	UpstreamHeaders          bool     `yaml:"upstream_headers"`
	RateLimitKeys            int      `yaml:"rate_limit_keys"`
	RecentDecisions          int      `yaml:"recent_decisions"`
}

// Fingerprint says where the HMAC key for raw credentials comes from.
type Fingerprint struct {
	KeyFile string `yaml:"key_file"`
	KeyEnv  string `yaml:"key_env"`
}

// Profile tunes per-credential profiles (see profile.Params).
type Profile struct {
	HalfLife   Duration `yaml:"half_life"`
	Window     Duration `yaml:"window"`
	Bucket     Duration `yaml:"bucket"`
	Learning   float64  `yaml:"learning"`
	Establish  int      `yaml:"establish"`
	LearnBelow float64  `yaml:"learn_below"`
	// MaxCredentials caps the profiles held (0: no cap).
	MaxCredentials int `yaml:"max_credentials"`
	// MaxClients caps the peer groups (0: no cap).
	MaxClients int `yaml:"max_clients"`
	// DataDir keeps profiles on disk ("": in memory).
	DataDir string `yaml:"data_dir"`
	// SyncEvery is how often durable profiles are flushed to the device.
	SyncEvery Duration `yaml:"sync_every"`
}

// State says where `vigil serve` and `vigil proxy` keep credentials'
// state (profiles, policy state, the denylist).
type State struct {
	// Backend is BackendMemory (this process; durable with
	// profile.data_dir) or BackendRedis (shared by every replica).
	Backend string `yaml:"backend"`
	Redis   Redis  `yaml:"redis"`
}

// Redis configures the redis state backend (package store/redisstore).
type Redis struct {
	// Addrs of the server, or of some nodes of a Redis Cluster.
	Addrs    []string `yaml:"addrs"`
	Cluster  bool     `yaml:"cluster"`
	Username string   `yaml:"username"`
	// PasswordEnv names the environment variable that holds the password;
	// the password itself is never in the file.
	PasswordEnv string `yaml:"password_env"`
	DB          int    `yaml:"db"`
	Prefix      string `yaml:"prefix"`
	// Timeout bounds each round trip; RetryAfter is how long Redis is
	// left alone after a failure.
	Timeout    Duration `yaml:"timeout"`
	RetryAfter Duration `yaml:"retry_after"`
	// NewTTL and IdleTTL: how long a record lives after its last write,
	// before and after its credential is established.
	NewTTL  Duration `yaml:"new_ttl"`
	IdleTTL Duration `yaml:"idle_ttl"`
	// Fail is FailOpen or FailClosed: what requests get while Redis is
	// down.
	Fail string `yaml:"fail"`
	// DenylistEvery is how often the denylist is refreshed from Redis.
	DenylistEvery Duration `yaml:"denylist_every"`
	// MaxBatch caps the requests judged in one round trip.
	MaxBatch int `yaml:"max_batch"`
}

// State backends and failure modes.
const (
	BackendMemory = "memory"
	BackendRedis  = "redis"
	FailOpen      = "open"
	FailClosed    = "closed"
)

// Scoring selects and tunes the scoring profile.
type Scoring struct {
	Profile      string             `yaml:"profile"`
	WarmupEvents int                `yaml:"warmup_events"`
	WarmupAge    Duration           `yaml:"warmup_age"`
	Dormancy     Duration           `yaml:"dormancy"`
	Weights      map[string]float64 `yaml:"weights"`
}

// Policy is the decision ladder.
type Policy struct {
	Throttle   float64    `yaml:"throttle"`
	StepUp     float64    `yaml:"step_up_auth"`
	Block      float64    `yaml:"block"`
	Hysteresis Hysteresis `yaml:"hysteresis"`
	// Contextual decisions and the credential-wide evidence that
	// overrides them.
	Contextual        bool    `yaml:"contextual"`
	BlockCredentialAt float64 `yaml:"block_credential_at"`
}

// Hysteresis keeps a credential from flapping between levels.
type Hysteresis struct {
	Margin float64  `yaml:"margin"`
	Hold   Duration `yaml:"hold"`
}

// Replay tunes `vigil replay`.
type Replay struct {
	Workers int `yaml:"workers"`
	Batch   int `yaml:"batch"`
}

// Scoring profile names.
const (
	ProfileVigil = "vigil"
	ProfileSeed  = "seed"
)

// Default returns the default configuration.
func Default() *Config {
	c, err := decode(nil, defaultYAML, "default.yaml")
	if err != nil {
		panic("config: embedded default.yaml is invalid: " + err.Error()) // caught by TestDefault
	}
	return c
}

// Load reads the file at path over the defaults and validates the result.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes YAML over the defaults and validates the result. name is
// used in error messages.
func Parse(b []byte, name string) (*Config, error) {
	c, err := decode(Default(), b, name)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func decode(c *Config, b []byte, name string) (*Config, error) {
	if c == nil {
		c = &Config{}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document", name)
	}
	// key: null, or a key left out of a list item, leaves a nil slice or
	// map; written back it reads as an empty one. Empty it is, so that a
	// configuration reads the same after a round trip.
	emptyNils(reflect.ValueOf(c).Elem())
	// yaml.v3 truncates a float into an int field (workers: 1.5 gives 1):
	// read the document again as nodes and insist on integers there.
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err == nil {
		if err := checkInts(&doc, reflect.TypeFor[Config](), ""); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return c, nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// emptyNils replaces every nil slice and map under v (a struct) by an
// empty one.
func emptyNils(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				emptyNils(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		for i := range v.Len() {
			emptyNils(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	}
}

// checkInts reports a value in n that is decoded into an integer field of t
// but is not written as an integer.
func checkInts(n *yaml.Node, t reflect.Type, path string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch {
	case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
		return checkInts(n.Content[0], t, path)
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			for j := range t.NumField() {
				f := t.Field(j)
				if f.Tag.Get("yaml") == n.Content[i].Value {
					if err := checkInts(n.Content[i+1], f.Type, path+"."+n.Content[i].Value); err != nil {
						return err
					}
				}
			}
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() != "!!int" && n.ShortTag() != "!!null":
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return fmt.Errorf("line %d: %s: want an integer, got %s", n.Line, path[1:], n.Value)
		}
	}
	return nil
}

// Validate checks values that the YAML types alone do not constrain. The
// constructors of the parts (profile.NewTracker, score.Vigil, the policy
// ladder) check the rest when the configuration is built.
func (c *Config) Validate() error {
	var errs []error
	switch c.Scoring.Profile {
	case ProfileVigil, ProfileSeed:
	default:
		errs = append(errs, fmt.Errorf("scoring.profile: %q is not a scoring profile (want %q or %q)", c.Scoring.Profile, ProfileVigil, ProfileSeed))
	}
	if c.Profile.MaxCredentials < 0 {
		errs = append(errs, fmt.Errorf("profile.max_credentials: %d must not be negative (0 means no cap)", c.Profile.MaxCredentials))
	}
	if c.Profile.MaxClients < 0 {
		errs = append(errs, fmt.Errorf("profile.max_clients: %d must not be negative (0 means no cap)", c.Profile.MaxClients))
	}
	if c.Replay.Workers < 0 || c.Replay.Workers > 256 {
		errs = append(errs, fmt.Errorf("replay.workers: %d must be between 0 and 256", c.Replay.Workers))
	}
	if c.Replay.Batch < 1 || c.Replay.Batch > 1<<16 {
		errs = append(errs, fmt.Errorf("replay.batch: %d must be between 1 and 65536", c.Replay.Batch))
	}
	if c.Enforce.ThrottleDefaultPerMinute <= 0 || c.Enforce.ThrottleMinPerMinute <= 0 {
		errs = append(errs, errors.New("enforce: throttle_default_per_minute and throttle_min_per_minute must be positive"))
	}
	if c.Enforce.RateLimitKeys < 1 {
		errs = append(errs, fmt.Errorf("enforce.rate_limit_keys: %d must be at least 1", c.Enforce.RateLimitKeys))
	}
	if c.Enforce.RecentDecisions < 1 {
		errs = append(errs, fmt.Errorf("enforce.recent_decisions: %d must be at least 1", c.Enforce.RecentDecisions))
	}
	if c.Serve.MaxHeaderBytes < 4096 {
		errs = append(errs, fmt.Errorf("serve.max_header_bytes: %d must be at least 4096", c.Serve.MaxHeaderBytes))
	}
	if c.Credentials.MaxLength < 16 {
		errs = append(errs, fmt.Errorf("credentials.max_length: %d must be at least 16", c.Credentials.MaxLength))
	}
	errs = append(errs, c.validateBinding()...)
	errs = append(errs, c.validateState()...)
	errs = append(errs, c.validateLifecycle()...)
	// YAML has .nan and .inf; no setting means either. (NaN would pass the
	// range checks of the parts, which are all written as comparisons.)
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"profile.learning", c.Profile.Learning},
		{"profile.learn_below", c.Profile.LearnBelow},
		{"policy.throttle", c.Policy.Throttle},
		{"policy.step_up_auth", c.Policy.StepUp},
		{"policy.block", c.Policy.Block},
		{"policy.hysteresis.margin", c.Policy.Hysteresis.Margin},
		{"policy.block_credential_at", c.Policy.BlockCredentialAt},
		{"enforce.throttle_default_per_minute", c.Enforce.ThrottleDefaultPerMinute},
		{"enforce.throttle_min_per_minute", c.Enforce.ThrottleMinPerMinute},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			errs = append(errs, fmt.Errorf("%s: %v is not a finite number", f.name, f.v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Scoring.Weights)) {
		if w := c.Scoring.Weights[k]; math.IsNaN(w) || math.IsInf(w, 0) {
			errs = append(errs, fmt.Errorf("scoring.weights.%s: %v is not a finite number", k, w))
		}
	}
	return errors.Join(errs...)
}

// validateState checks the state section. The redis keys are checked
// whatever the backend, so that a mistake shows before the day the backend
// is switched; only the missing addresses are no error with memory.
func (c *Config) validateState() []error {
	var errs []error
	st, r := &c.State, &c.State.Redis
	switch st.Backend {
	case BackendMemory:
	case BackendRedis:
		if len(r.Addrs) == 0 {
			errs = append(errs, errors.New("state.redis.addrs: empty while state.backend is redis"))
		}
		if c.Profile.DataDir != "" {
			errs = append(errs, fmt.Errorf("profile.data_dir: %q is set while state.backend is redis: profiles live in Redis, shared by every replica, and a data directory would keep a second copy on this replica that drifts from them; leave data_dir empty", c.Profile.DataDir))
		}
	default:
		errs = append(errs, fmt.Errorf("state.backend: %q is not a state backend (want %q or %q)", st.Backend, BackendMemory, BackendRedis))
	}
	for i, a := range r.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("state.redis.addrs[%d]: %q is not host:port", i, a))
		}
	}
	if len(r.Addrs) > 1 && !r.Cluster {
		errs = append(errs, fmt.Errorf("state.redis.addrs: %d addresses without state.redis.cluster: a single server takes one address (set cluster: true for a Redis Cluster)", len(r.Addrs)))
	}
	if r.DB < 0 {
		errs = append(errs, fmt.Errorf("state.redis.db: %d must not be negative", r.DB))
	} else if r.DB != 0 && r.Cluster {
		errs = append(errs, fmt.Errorf("state.redis.db: %d with state.redis.cluster: a Redis Cluster has database 0 only", r.DB))
	}
	if r.PasswordEnv != "" && !envName(r.PasswordEnv) {
		// Not quoted: it may be a password written where its variable's
		// name belongs.
		errs = append(errs, errors.New("state.redis.password_env: not an environment variable name (letters, digits, _): name the variable that holds the password, never the password itself"))
	}
	switch {
	case r.Prefix == "":
		errs = append(errs, errors.New("state.redis.prefix: empty: every key needs a prefix (default vigil:)"))
	case strings.ContainsAny(r.Prefix, "{}"):
		errs = append(errs, fmt.Errorf("state.redis.prefix: %q must not contain braces: they would change the hash tag that keeps a credential's keys in one cluster slot", r.Prefix))
	}
	switch r.Fail {
	case FailOpen, FailClosed:
	default:
		errs = append(errs, fmt.Errorf("state.redis.fail: %q is not %s or %s", r.Fail, FailOpen, FailClosed))
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"timeout", r.Timeout}, {"retry_after", r.RetryAfter}, {"new_ttl", r.NewTTL},
		{"idle_ttl", r.IdleTTL}, {"denylist_every", r.DenylistEvery},
	} {
		if d.v.D() < time.Millisecond {
			errs = append(errs, fmt.Errorf("state.redis.%s: %s must be at least 1ms", d.name, d.v.D()))
		}
	}
	if r.MaxBatch < 1 || r.MaxBatch > 1<<16 {
		errs = append(errs, fmt.Errorf("state.redis.max_batch: %d must be between 1 and 65536", r.MaxBatch))
	}
	return errs
}

// validateBinding checks credentials.dpop.nonce and credentials.mtls. The
// nonce key is read by app.Build, which refuses a missing or short one.
func (c *Config) validateBinding() []error {
	var errs []error
	d, n := &c.Credentials.DPoP, &c.Credentials.DPoP.Nonce
	if p := n.Period.D(); p < time.Second || p > 24*time.Hour {
		errs = append(errs, fmt.Errorf("credentials.dpop.nonce.period: %s must be between 1s and 24h", p))
	}
	switch {
	case n.KeyEnv != "" && !envName(n.KeyEnv):
		// Not quoted: it may be the key written where its variable's name
		// belongs.
		errs = append(errs, errors.New("credentials.dpop.nonce.key_env: not an environment variable name (letters, digits, _): name the variable that holds the key, never the key itself"))
	case n.Required && n.KeyEnv == "":
		errs = append(errs, errors.New("credentials.dpop.nonce.key_env: empty while nonces are required: name the variable that holds the nonce key"))
	}
	if n.Required && !d.Verify {
		errs = append(errs, errors.New("credentials.dpop.nonce.required: nonces are checked in DPoP proofs, which only credentials.dpop.verify checks: turn it on"))
	}
	m := &c.Credentials.MTLS
	switch m.CertHeaderFormat {
	case CertXFCC, CertEscapedPEM, CertTraefik:
	default:
		errs = append(errs, fmt.Errorf("credentials.mtls.cert_header_format: %q is not %s, %s or %s", m.CertHeaderFormat, CertXFCC, CertEscapedPEM, CertTraefik))
	}
	if h := m.CertHeader; h != "" {
		switch {
		case !headerName(h):
			errs = append(errs, fmt.Errorf("credentials.mtls.cert_header: %q is not a header name", h))
		case len(h) >= len("X-Vigil-") && strings.EqualFold(h[:len("X-Vigil-")], "X-Vigil-"):
			errs = append(errs, fmt.Errorf("credentials.mtls.cert_header: %q: X-Vigil-* headers are vigil's own", h))
		}
	}
	return errs
}

// headerName reports whether s is an HTTP field name: an RFC 9110 token.
func headerName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// envName reports whether s is a portable environment variable name.
func envName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Duration is a time.Duration written as a Go duration string in YAML.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		return fmt.Errorf("line %d: want a duration such as 30m, got a mapping", n.Line)
	case yaml.SequenceNode:
		return fmt.Errorf("line %d: want a duration such as 30m, got a sequence", n.Line)
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 30m, got %q", n.Line, n.Value)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: want a duration such as 30m, got %q", n.Line, s)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q must not be negative", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
