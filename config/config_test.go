package config_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/app"
)

// fixture reads a testdata file whose first line is "# want: <text>", the
// text the error must contain.
func fixture(t *testing.T, path string) (body []byte, want string) {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(body, []byte("\n"))
	want, ok := strings.CutPrefix(string(first), "# want: ")
	if !ok || want == "" {
		t.Fatalf("%s: first line must be '# want: <error text>'", path)
	}
	return body, want
}

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	return paths
}

// TestInvalid loads each file of testdata/invalid, which config.Load must
// reject with the error its first line names.
func TestInvalid(t *testing.T) {
	for _, path := range fixtures(t, "invalid") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, want := fixture(t, path)
			cfg, err := config.Load(path)
			if err == nil {
				t.Fatalf("Load(%s) succeeded: %+v", path, cfg)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Load(%s):\n%v\nwant it to contain\n%s", path, err, want)
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

// testEnv is the environment the Build tests see, never the process's.
func testEnv(vars map[string]string) app.Env {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// TestInvalidBuild loads each file of testdata/invalid-build, which
// config.Load accepts and app.Build must reject with the error its first
// line names.
func TestInvalidBuild(t *testing.T) {
	const shortKey = "short-key-123"
	env := testEnv(map[string]string{"VIGIL_TEST_SHORT_KEY": shortKey})
	for _, path := range fixtures(t, "invalid-build") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, want := fixture(t, path)
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("Load(%s): %v; want it to load and fail in app.Build", path, err)
			}
			parts, err := app.Build(cfg, env)
			if err == nil {
				t.Fatalf("Build(%s) succeeded: %+v", path, parts)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Build(%s):\n%v\nwant it to contain\n%s", path, err, want)
			}
			for _, secret := range []string{shortKey, "too-short-key", "0123456789abcde"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the key", err)
				}
			}
		})
	}
}

func TestParseNamesFile(t *testing.T) {
	_, err := config.Parse([]byte("bogus: 1\n"), "vigil.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "vigil.yaml: ") {
		t.Errorf("Parse error %v does not start with the name", err)
	}
	_, err = config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestDefault(t *testing.T) {
	def := config.Default()
	if err := def.Validate(); err != nil {
		t.Fatalf("Default().Validate(): %v", err)
	}
	parsed, err := config.Parse(config.DefaultYAML(), "default.yaml")
	if err != nil {
		t.Fatalf("Parse(DefaultYAML()): %v", err)
	}
	if !reflect.DeepEqual(def, parsed) {
		t.Errorf("Default() = %+v\nParse(DefaultYAML()) = %+v", def, parsed)
	}
	empty, err := config.Parse(nil, "empty")
	if err != nil || !reflect.DeepEqual(def, empty) {
		t.Errorf("Parse of an empty file = %+v, %v; want Default()", empty, err)
	}
	// Each call returns fresh values the caller may change.
	def.Scoring.Weights["rate"] = 9
	def.Replay.Workers = 7
	if again := config.Default(); again.Scoring.Weights["rate"] != 0 || again.Replay.Workers != 0 {
		t.Errorf("Default() shares state between calls: %+v", again)
	}
	y := config.DefaultYAML()
	y[0] = '!'
	if config.DefaultYAML()[0] == '!' {
		t.Error("DefaultYAML() returns the embedded bytes, not a copy")
	}
	// Values the documentation of default.yaml states.
	if d := config.Default(); d.Profile.HalfLife.D() != 30*time.Minute || d.Scoring.Profile != config.ProfileVigil ||
		d.Fingerprint.KeyEnv != "VIGIL_FINGERPRINT_KEY" || d.Replay.Batch != 1024 {
		t.Errorf("Default() = %+v", d)
	}
}

// TestDefaultYAMLComplete walks the Config struct with reflect and
// default.yaml as a YAML node tree: every field must appear as a key, so
// that the printed default (`vigil config default`) is the whole of it.
func TestDefaultYAMLComplete(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(config.DefaultYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		t.Fatalf("default.yaml is not one document")
	}
	var walk func(n *yaml.Node, typ reflect.Type, path string)
	walk = func(n *yaml.Node, typ reflect.Type, path string) {
		if n.Kind != yaml.MappingNode {
			t.Errorf("%s: want a mapping in default.yaml for %v", path, typ)
			return
		}
		keys := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			keys[n.Content[i].Value] = n.Content[i+1]
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || tag == "-" || strings.Contains(tag, ",") {
				t.Errorf("%s.%s: want a plain yaml tag, got %q", path, f.Name, tag)
				continue
			}
			v, ok := keys[tag]
			if !ok {
				t.Errorf("%s%s (%s) is missing from default.yaml", path, tag, f.Type)
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == typ.PkgPath() {
				walk(v, f.Type, path+tag+".")
			}
		}
		if len(keys) != typ.NumField() {
			t.Errorf("%s: default.yaml has %d keys, %v has %d fields", path, len(keys), typ, typ.NumField())
		}
	}
	walk(doc.Content[0], reflect.TypeFor[config.Config](), "")
}

// TestPartial checks that a user's file changes only what it names.
func TestPartial(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		change func(*config.Config)
	}{
		{"empty", "", func(*config.Config) {}},
		{"comments only", "# nothing\n\n", func(*config.Config) {}},
		{"one key", "replay:\n  workers: 4\n", func(c *config.Config) { c.Replay.Workers = 4 }},
		{"nested key", "policy:\n  hysteresis:\n    hold: 1m\n",
			func(c *config.Config) { c.Policy.Hysteresis.Hold = config.Duration(time.Minute) }},
		{"a duration", "profile:\n  half_life: 1h30m\n",
			func(c *config.Config) { c.Profile.HalfLife = config.Duration(90 * time.Minute) }},
		{"quoted duration", "profile:\n  bucket: \"2m\"\n",
			func(c *config.Config) { c.Profile.Bucket = config.Duration(2 * time.Minute) }},
		{"weights", "scoring:\n  weights: {rate: 1.5, user_agent: 0}\n",
			func(c *config.Config) { c.Scoring.Weights = map[string]float64{"rate": 1.5, "user_agent": 0} }},
		{"seed profile", "scoring:\n  profile: seed\n", func(c *config.Config) { c.Scoring.Profile = config.ProfileSeed }},
		{"key file", "fingerprint:\n  key_file: /etc/vigil/key\n",
			func(c *config.Config) { c.Fingerprint.KeyFile = "/etc/vigil/key" }},
		{"integer for float", "policy:\n  throttle: 3\n", func(c *config.Config) { c.Policy.Throttle = 3 }},
		{"float with zero fraction is not an integer but a float", "policy:\n  block: 12.0\n",
			func(c *config.Config) { c.Policy.Block = 12 }},
		{"anchors", "profile:\n  window: &w 10m\nscoring:\n  warmup_age: *w\n", func(c *config.Config) {
			c.Profile.Window = config.Duration(10 * time.Minute)
			c.Scoring.WarmupAge = config.Duration(10 * time.Minute)
		}},
		{"document marker", "---\nreplay:\n  batch: 64\n", func(c *config.Config) { c.Replay.Batch = 64 }},
		// null keeps the default, as yaml.v3 leaves the value alone.
		{"null section", "profile: null\n", func(*config.Config) {}},
		{"empty value", "profile:\n  half_life:\n", func(*config.Config) {}},
		{"null weights", "scoring:\n  weights:\n", func(*config.Config) {}},
		{"several sections", "replay:\n  batch: 10\nprofile:\n  establish: 3\n", func(c *config.Config) {
			c.Replay.Batch = 10
			c.Profile.Establish = 3
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.yaml), "user.yaml")
			if err != nil {
				t.Fatal(err)
			}
			want := config.Default()
			tt.change(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.yaml, got, want)
			}
		})
	}
}

// TestMarshalRoundTrip checks Duration.MarshalYAML: a configuration
// written out reads back the same.
func TestMarshalRoundTrip(t *testing.T) {
	c := config.Default()
	c.Profile.HalfLife = config.Duration(90 * time.Second)
	c.Scoring.Weights = map[string]float64{"rate": 0.25}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("half_life: 1m30s")) {
		t.Errorf("durations are not written as Go durations:\n%s", out)
	}
	back, err := config.Parse(out, "marshalled")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, c)
	}
	if got := c.Profile.HalfLife.D(); got != 90*time.Second {
		t.Errorf("D() = %v", got)
	}
}

// FuzzParse checks that the loader never panics and that what it accepts
// is valid and reads back the same when written out.
func FuzzParse(f *testing.F) {
	f.Add(config.DefaultYAML())
	for _, dir := range []string{"invalid", "invalid-build"} {
		paths, _ := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("profile: &p {window: 1m}\nscoring: *p\n"))
	f.Add([]byte("scoring:\n  weights: {? [a]: 1}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse(b, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted %q, Validate rejects it: %v", b, err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of %+v: %v", c, err)
		}
		back, err := config.Parse(out, "again")
		if err != nil {
			t.Fatalf("Parse(%q) accepted, its marshalled form\n%s\nis not: %v", b, out, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("Parse(%q) round trip:\n got %+v\nwant %+v", b, back, c)
		}
	})
}

// TestState: the state section's defaults are those default.yaml states,
// a complete redis section reads as written, and a password written where
// its variable's name belongs is refused without being repeated.
func TestState(t *testing.T) {
	want := config.State{Backend: config.BackendMemory, Redis: config.Redis{
		Addrs: []string{}, Prefix: "vigil:", Fail: config.FailOpen, MaxBatch: 256,
		Timeout: config.Duration(100 * time.Millisecond), RetryAfter: config.Duration(time.Second),
		NewTTL: config.Duration(24 * time.Hour), IdleTTL: config.Duration(720 * time.Hour),
		DenylistEvery: config.Duration(500 * time.Millisecond),
	}}
	if got := config.Default().State; !reflect.DeepEqual(got, want) {
		t.Errorf("default state\n got %+v\nwant %+v", got, want)
	}

	c, err := config.Parse([]byte(`
state:
  backend: redis
  redis:
    addrs: ["redis-0.redis:6379", "redis-1.redis:6379", "[2001:db8::7]:6380"]
    cluster: true
    username: vigil
    password_env: VIGIL_REDIS_PASSWORD
    prefix: "prod:vigil:"
    timeout: 50ms
    retry_after: 2s
    new_ttl: 12h
    idle_ttl: 2160h
    fail: closed
    denylist_every: 250ms
    max_batch: 1024
`), "redis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want = config.State{Backend: config.BackendRedis, Redis: config.Redis{
		Addrs:   []string{"redis-0.redis:6379", "redis-1.redis:6379", "[2001:db8::7]:6380"},
		Cluster: true, Username: "vigil", PasswordEnv: "VIGIL_REDIS_PASSWORD", Prefix: "prod:vigil:",
		Timeout: config.Duration(50 * time.Millisecond), RetryAfter: config.Duration(2 * time.Second),
		NewTTL: config.Duration(12 * time.Hour), IdleTTL: config.Duration(2160 * time.Hour),
		Fail: config.FailClosed, DenylistEvery: config.Duration(250 * time.Millisecond), MaxBatch: 1024,
	}}
	if !reflect.DeepEqual(c.State, want) {
		t.Errorf("redis section\n got %+v\nwant %+v", c.State, want)
	}
	// The rest is untouched.
	d := config.Default()
	d.State = want
	if !reflect.DeepEqual(c, d) {
		t.Errorf("a state section changed other settings: %+v", c)
	}

	// One server, database 3: no cluster.
	if _, err := config.Parse([]byte("state: {backend: redis, redis: {addrs: [\"127.0.0.1:6379\"], db: 3}}\n"), "t"); err != nil {
		t.Errorf("single server: %v", err)
	}

	const password = "Tr0ub4dor&3-secret"
	_, err = config.Parse([]byte("state: {redis: {password_env: \""+password+"\"}}\n"), "t")
	if err == nil || !strings.Contains(err.Error(), "state.redis.password_env") || strings.Contains(err.Error(), password) {
		t.Errorf("a password in password_env: %v", err)
	}
}
