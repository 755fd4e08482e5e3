package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/config"
)

// TestConfigDefault: `vigil config default` prints default.yaml exactly,
// and what it prints checks as valid.
func TestConfigDefault(t *testing.T) {
	r := vigil(t, nil, nil, "config", "default")
	if r.code != 0 || r.stdout != string(config.DefaultYAML()) || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout equal: %v", r.code, r.stderr, r.stdout == string(config.DefaultYAML()))
	}
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	writeFile(t, path, r.stdout)
	if r := vigil(t, nil, nil, "config", "check", path); r.code != 0 || r.stdout != path+": ok\n" {
		t.Errorf("the default does not check: exit %d\n%s", r.code, r.stderr)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	tests := []struct {
		name    string
		path    string
		env     map[string]string
		code    int
		stdout  string
		stderrs []string // substrings of stderr
	}{
		{"empty file is the default", file("empty.yaml", ""), nil, 0, "empty.yaml: ok\n", nil},
		{"tuned", file("tuned.yaml", "policy:\n  throttle: 3\nscoring:\n  weights: {rate: 1.5}\n"), nil, 0, "tuned.yaml: ok\n", nil},
		{"no key", file("nokey.yaml", "replay:\n  workers: 2\n"), map[string]string{}, 0, "nokey.yaml: ok\n",
			[]string{"no fingerprint key is configured", "$VIGIL_FINGERPRINT_KEY"}},
		{"unknown key", file("typo.yaml", "policy:\n  throttle: 3\n  blokc: 9\n"), nil, 2, "",
			[]string{"typo.yaml", "line 3", "blokc"}},
		{"wrong type", file("type.yaml", "profile:\n  half_life: often\n"), nil, 2, "", []string{"line 2", "duration"}},
		{"validation", file("valid.yaml", "replay:\n  batch: 0\nscoring:\n  profile: magic\n"), nil, 2, "",
			[]string{"replay.batch", "scoring.profile"}},
		{"build errors", file("build.yaml", "policy:\n  throttle: 8\n  step_up_auth: 7\nscoring:\n  weights: {nope: 1}\n"), nil, 2, "",
			[]string{"build.yaml: policy: thresholds must rise", "build.yaml: scoring.weights:", "nope"}},
		{"missing key file", file("keyfile.yaml", "fingerprint:\n  key_file: "+filepath.Join(dir, "absent")+"\n"), nil, 2, "",
			[]string{"fingerprint.key_file"}},
		{"missing file", filepath.Join(dir, "absent.yaml"), nil, 1, "", []string{"no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := vigil(t, nil, tt.env, "config", "check", tt.path)
			if r.code != tt.code || !strings.HasSuffix(r.stdout, tt.stdout) || (tt.stdout == "") != (r.stdout == "") {
				t.Errorf("exit %d (want %d), stdout %q (want …%q)\nstderr: %s", r.code, tt.code, r.stdout, tt.stdout, r.stderr)
			}
			for _, want := range tt.stderrs {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if tt.stderrs == nil && r.stderr != "" {
				t.Errorf("unexpected stderr: %s", r.stderr)
			}
		})
	}
}

func TestConfigUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"config"}, 2, "", "missing subcommand"},
		{[]string{"config", "-h"}, 0, "vigil config check FILE", ""},
		{[]string{"config", "lint"}, 2, "", `unknown subcommand "lint"`},
		{[]string{"config", "check"}, 2, "", "check takes one FILE"},
		{[]string{"config", "check", "a", "b"}, 2, "", "check takes one FILE"},
		{[]string{"config", "default", "x"}, 2, "", "default takes no arguments"},
		{[]string{"config", "--x"}, 2, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		r := vigil(t, nil, nil, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%q: exit %d (want %d)\nstdout: %s\nstderr: %s", tt.args, r.code, tt.code, r.stdout, r.stderr)
		}
	}
}
