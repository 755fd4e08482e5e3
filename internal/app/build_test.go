package app_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/score"
)

// env is a fixed environment; Build never sees the process's in these
// tests unless one says so.
func env(vars map[string]string) app.Env {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

var token = event.Secret("s3cr3t-TOKEN-1")

func build(t *testing.T, cfg *config.Config, e app.Env) *app.Parts {
	t.Helper()
	p, err := app.Build(cfg, e)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p
}

func TestBuildDefault(t *testing.T) {
	cfg := config.Default()
	p := build(t, cfg, env(nil))
	if p.Config != cfg || p.Tracker == nil || p.Model == nil || p.Fingerprinter == nil {
		t.Fatalf("parts incomplete: %+v", p)
	}
	if p.Model.Name != "vigil" {
		t.Errorf("model %q, want vigil", p.Model.Name)
	}
	want := policy.Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 1, Hold: 5 * time.Minute}
	if p.Ladder != want {
		t.Errorf("ladder %+v, want %+v", p.Ladder, want)
	}
	if p.Tracker.HalfLife() != 30*time.Minute || p.Tracker.Window() != 20*time.Minute || p.Tracker.Bucket() != time.Minute {
		t.Errorf("tracker %v %v %v, want default.yaml's 30m 20m 1m", p.Tracker.HalfLife(), p.Tracker.Window(), p.Tracker.Bucket())
	}
	if !p.KeyRandom {
		t.Error("KeyRandom is false with no key configured")
	}
	if _, err := p.NewEngine(); err != nil {
		t.Errorf("NewEngine: %v", err)
	}
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Error("Build changed the configuration")
	}
}

func TestBuildRandomKey(t *testing.T) {
	for name, e := range map[string]app.Env{
		"variable unset": env(nil),
		"variable empty": env(map[string]string{"VIGIL_FINGERPRINT_KEY": ""}),
	} {
		a, b := build(t, config.Default(), e), build(t, config.Default(), e)
		if !a.KeyRandom || !b.KeyRandom {
			t.Errorf("%s: KeyRandom false", name)
		}
		if a.Fingerprinter.ID(token) == b.Fingerprinter.ID(token) {
			t.Errorf("%s: two random keys give the same id", name)
		}
	}
	cfg := config.Default()
	cfg.Fingerprint.KeyEnv = ""
	if p := build(t, cfg, env(map[string]string{"VIGIL_FINGERPRINT_KEY": "0123456789abcdef"})); !p.KeyRandom {
		t.Error("key_env empty: the default variable was read")
	}
}

func TestBuildKeyFromEnv(t *testing.T) {
	const key = "vigil-env-key-0123456789abcdef"
	e := env(map[string]string{"VIGIL_FINGERPRINT_KEY": key})
	a, b := build(t, config.Default(), e), build(t, config.Default(), e)
	if a.KeyRandom || b.KeyRandom {
		t.Fatal("KeyRandom with a key in the environment")
	}
	id := a.Fingerprinter.ID(token)
	if got := b.Fingerprinter.ID(token); got != id {
		t.Errorf("same env key, two Builds: %q and %q", id, got)
	}
	want, _ := event.NewFingerprinter([]byte(key))
	if id != want.ID(token) {
		t.Errorf("id %q is not the fingerprint under the env key (%q)", id, want.ID(token))
	}
	other := build(t, config.Default(), env(map[string]string{"VIGIL_FINGERPRINT_KEY": key + "x"}))
	if other.Fingerprinter.ID(token) == id {
		t.Error("a different key gives the same id")
	}
}

func TestBuildKeyFromProcessEnv(t *testing.T) {
	const key = "vigil-process-env-key-0123456789"
	t.Setenv("VIGIL_APP_TEST_KEY", key)
	cfg := config.Default()
	cfg.Fingerprint.KeyEnv = "VIGIL_APP_TEST_KEY"
	p := build(t, cfg, nil) // nil means os.LookupEnv
	want, _ := event.NewFingerprinter([]byte(key))
	if p.KeyRandom || p.Fingerprinter.ID(token) != want.ID(token) {
		t.Error("Build(cfg, nil) does not read the process environment")
	}
}

func TestBuildKeyFile(t *testing.T) {
	const key = "vigil-file-key-0123456789abcdef"
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("  "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Fingerprint.KeyFile = path
	// The file wins over the environment; surrounding space is trimmed.
	p := build(t, cfg, env(map[string]string{"VIGIL_FINGERPRINT_KEY": "another-key-0123456789"}))
	want, _ := event.NewFingerprinter([]byte(key))
	if p.KeyRandom || p.Fingerprinter.ID(token) != want.ID(token) {
		t.Error("key_file not used, or not trimmed")
	}
}

func TestBuildKeyErrorsHideKey(t *testing.T) {
	const short = "short-key"
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string]func(*config.Config) app.Env{
		"env":  func(*config.Config) app.Env { return env(map[string]string{"VIGIL_FINGERPRINT_KEY": short}) },
		"file": func(c *config.Config) app.Env { c.Fingerprint.KeyFile = path; return env(nil) },
	} {
		cfg := config.Default()
		e := set(cfg)
		_, err := app.Build(cfg, e)
		if err == nil {
			t.Fatalf("%s: short key accepted", name)
		}
		if strings.Contains(err.Error(), short) {
			t.Errorf("%s: error %q shows the key", name, err)
		}
		if !strings.Contains(err.Error(), "at least 16 bytes") {
			t.Errorf("%s: error %q does not say why", name, err)
		}
	}
}

func TestBuildSeed(t *testing.T) {
	cfg := config.Default()
	cfg.Scoring.Profile = config.ProfileSeed
	cfg.Scoring.Weights = map[string]float64{"latency": 0.5}
	// The policy section and vigil's scoring settings do not apply to seed.
	cfg.Policy.Throttle, cfg.Policy.StepUp = 9, 1
	cfg.Scoring.WarmupEvents, cfg.Scoring.Dormancy = 0, 0
	p := build(t, cfg, env(nil))
	if p.Ladder != score.SeedLadder {
		t.Errorf("ladder %+v, want the seed ladder %+v", p.Ladder, score.SeedLadder)
	}
	if p.Model.Name != "seed" || !p.Model.Round2 {
		t.Errorf("model %q (Round2 %v), want seed", p.Model.Name, p.Model.Round2)
	}
	for i, s := range p.Model.Signals {
		if want := map[bool]float64{true: 0.5, false: 1}[s.Name() == "latency"]; p.Model.Weights[i] != want {
			t.Errorf("weight of %s = %v, want %v", s.Name(), p.Model.Weights[i], want)
		}
	}
	if _, err := p.NewEngine(); err != nil {
		t.Errorf("NewEngine: %v", err)
	}
}

func TestBuildWeights(t *testing.T) {
	cfg := config.Default()
	cfg.Scoring.Weights = map[string]float64{"rate": 1.5, "user_agent": 0}
	p := build(t, cfg, env(nil))
	got := map[string]float64{}
	for i, s := range p.Model.Signals {
		got[s.Name()] = p.Model.Weights[i]
	}
	if got["rate"] != 1.5 || got["user_agent"] != 0 || got["volume"] != 1 {
		t.Errorf("weights %v", got)
	}
}

// TestBuildWarmupAgeZero: warmup_age 0 means no minimum age, not
// score.Vigil's default of 1h.
func TestBuildWarmupAgeZero(t *testing.T) {
	cfg := config.Default()
	cfg.Scoring.WarmupAge = 0
	build(t, cfg, env(nil))
}

// TestBuildReportsAll checks that Build reports every problem at once.
func TestBuildReportsAll(t *testing.T) {
	cfg := config.Default()
	cfg.Profile.Learning = 2
	cfg.Policy.Block = 1
	cfg.Scoring.Weights = map[string]float64{"nope": 1}
	cfg.Fingerprint.KeyFile = filepath.Join(t.TempDir(), "missing")
	_, err := app.Build(cfg, env(nil))
	if err == nil {
		t.Fatal("Build succeeded")
	}
	for _, want := range []string{"learning 2", "thresholds must rise", `no signal "nope"`, "fingerprint.key_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
