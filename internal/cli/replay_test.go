package cli_test

import (
	"bytes"
	"compress/gzip"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../../testdata/replay")

const testdata = "../../testdata/replay/"

// testKey is the fingerprint key the tests configure through the
// environment, so token ids are stable.
const testKey = "vigil-test-fingerprint-key-0001"

type result struct {
	stdout, stderr string
	code           int
}

// vigil runs the command in-process. env holds the environment; nil gives
// the test key in $VIGIL_FINGERPRINT_KEY.
func vigil(t *testing.T, stdin []byte, env map[string]string, args ...string) result {
	t.Helper()
	if env == nil {
		env = map[string]string{"VIGIL_FINGERPRINT_KEY": testKey}
	}
	var out, errOut bytes.Buffer
	code := cli.Main(args, cli.IO{
		Stdin:  bytes.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	})
	return result{out.String(), errOut.String(), code}
}

// timing matches the summary's timing line, which varies from run to run.
var timing = regexp.MustCompile(`(?m)^  elapsed [0-9.]+s, [0-9]+ events/s$`)

func stableStderr(s string) string {
	return timing.ReplaceAllString(s, "  elapsed (time), (rate) events/s")
}

func goldenFile(t *testing.T, path string, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./internal/cli -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestReplayGolden runs `vigil replay` on the hand-written streams, from a
// file and from standard input. Decisions must match the replay package's
// golden files; standard error (error lines, summary) has its own.
func TestReplayGolden(t *testing.T) {
	for _, name := range []string{"attack", "bad"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(testdata + name + ".jsonl")
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(testdata + name + ".decisions.golden")
			if err != nil {
				t.Fatal(err)
			}
			fromFile := vigil(t, nil, nil, "replay", testdata+name+".jsonl")
			fromStdin := vigil(t, in, nil, "replay", "--workers", "3", "--batch", "2", "-")
			for _, r := range []result{fromFile, fromStdin} {
				if r.code != 0 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				if r.stdout != string(want) {
					t.Errorf("decisions differ from %s.decisions.golden", name)
				}
				if !timing.MatchString(r.stderr) {
					t.Errorf("no timing line in the summary:\n%s", r.stderr)
				}
				if strings.Contains(r.stdout+r.stderr, "sk_live_") {
					t.Error("a raw token in the output")
				}
			}
			goldenFile(t, testdata+name+".stderr.golden", stableStderr(fromFile.stderr))
			if stableStderr(fromStdin.stderr) != stableStderr(fromFile.stderr) {
				t.Errorf("stderr from stdin differs:\n%s", fromStdin.stderr)
			}
			// No FILE means standard input too.
			if r := vigil(t, in, nil, "replay"); r.stdout != string(want) {
				t.Errorf("replay without FILE: exit %d, %s", r.code, r.stderr)
			}
		})
	}
}

// TestReplayStrict: --strict exits 2 at the first bad line, after the
// decisions of the lines before it.
func TestReplayStrict(t *testing.T) {
	in, err := os.ReadFile(testdata + "bad.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	r := vigil(t, in, nil, "replay", "--strict", "--batch", "1")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2", r.code)
	}
	golden, _ := os.ReadFile(testdata + "bad.decisions.golden")
	first := strings.SplitAfter(string(golden), "\n")[0] // line 1 is the only good line before line 2
	if r.stdout != first {
		t.Errorf("stdout %q, want %q", r.stdout, first)
	}
	want := "line 2: invalid JSON at byte 120: expected ',' or '}' after object value\n" +
		"vigil replay: 1 event decided, 1 bad line, 1 credential\n" +
		"  decisions: allow 1, throttle 0, step_up_auth 0, block 0\n" +
		"  elapsed (time), (rate) events/s\n" +
		"vigil replay: stopped at line 2 of standard input (--strict)\n"
	if got := stableStderr(r.stderr); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
}

// TestReplayRandomKey: without a key, raw tokens draw one warning that
// says how to configure a key; token_id-only input draws none.
func TestReplayRandomKey(t *testing.T) {
	noEnv := map[string]string{}
	r := vigil(t, nil, noEnv, "replay", "--batch", "1", testdata+"attack.jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "warning:"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, r.stderr)
	}
	for _, want := range []string{"line 38 carries a raw token", "random for this run", "fingerprint.key_file", "$VIGIL_FINGERPRINT_KEY"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("warning lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "sk_live_") {
		t.Error("a raw token in the output")
	}
	// bad.jsonl has raw tokens only in unusable lines: nothing is
	// fingerprinted, so there is nothing to warn about.
	if r := vigil(t, nil, noEnv, "replay", testdata+"bad.jsonl"); strings.Contains(r.stderr, "warning") {
		t.Errorf("warning without a fingerprinted token:\n%s", r.stderr)
	}
	// With a key configured there is no warning.
	if r := vigil(t, nil, nil, "replay", testdata+"attack.jsonl"); strings.Contains(r.stderr, "warning") {
		t.Errorf("warning with a key:\n%s", r.stderr)
	}
}

// TestReplayConfig: the configuration file is used, and its replay
// settings do not change the decisions.
func TestReplayConfig(t *testing.T) {
	dir := t.TempDir()
	tuned := filepath.Join(dir, "tuned.yaml")
	seed := filepath.Join(dir, "seed.yaml")
	keyFile := filepath.Join(dir, "key")
	writeFile(t, keyFile, testKey+"\n")
	writeFile(t, tuned, "replay:\n  workers: 1\n  batch: 5\nfingerprint:\n  key_file: "+keyFile+"\n")
	writeFile(t, seed, "scoring:\n  profile: seed\n")

	want, _ := os.ReadFile(testdata + "attack.decisions.golden")
	r := vigil(t, nil, map[string]string{}, "replay", "--config", tuned, testdata+"attack.jsonl")
	if r.code != 0 || r.stdout != string(want) {
		t.Errorf("key from key_file, replay settings from the file: exit %d, decisions equal: %v\n%s", r.code, r.stdout == string(want), r.stderr)
	}
	r = vigil(t, nil, nil, "replay", "--config", seed, testdata+"attack.jsonl")
	if r.code != 0 || r.stdout == string(want) || !strings.Contains(r.stdout, `"signal":"volume"`) {
		t.Errorf("seed profile: exit %d, %s", r.code, r.stderr)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReplayUsage covers exit statuses for arguments and I/O.
func TestReplayUsage(t *testing.T) {
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "bad.yaml")
	writeFile(t, badConfig, "policy:\n  throttel: 3\n")
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string // a substring of stderr
		stdout string // a substring of stdout
	}{
		{"help", nil, []string{"replay", "-h"}, 0, "", "Usage: vigil replay"},
		{"unknown flag", nil, []string{"replay", "--fast"}, 2, "flag provided but not defined: -fast", ""},
		{"two files", nil, []string{"replay", "a", "b"}, 2, "at most one FILE may be given", ""},
		{"workers", nil, []string{"replay", "--workers", "-1"}, 2, "--workers -1", ""},
		{"batch", nil, []string{"replay", "--batch", "0"}, 2, "--batch 0", ""},
		{"batch too big", nil, []string{"replay", "--batch", "100000"}, 2, "--batch 100000", ""},
		{"missing file", nil, []string{"replay", filepath.Join(dir, "none.jsonl")}, 1, "no such file", ""},
		{"missing config", nil, []string{"replay", "--config", filepath.Join(dir, "none.yaml")}, 1, "no such file", ""},
		{"bad config", nil, []string{"replay", "--config", badConfig}, 1, "line 2", ""},
		{"short key", map[string]string{"VIGIL_FINGERPRINT_KEY": "k3y-m4t3r1al"}, []string{"replay", "-"}, 1, "at least 16 bytes", ""},
		{"empty input", nil, []string{"replay"}, 0, "0 events decided, 0 bad lines, 0 credentials", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := vigil(t, nil, tt.env, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) || !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "k3y-m4t3r1al") {
				t.Error("key material in the error")
			}
		})
	}
}

// ingestData holds a sample log of every format (package ingest's).
const ingestData = "../../ingest/testdata/"

var formatSamples = []struct {
	format, file string
	events       int
}{
	{"vigil", "vigil.jsonl", 100},
	{"nginx", "nginx.log", 500},
	{"nginx-json", "nginx-json.log", 200},
	{"envoy", "envoy.log", 200},
	{"apigateway", "apigateway.log", 200},
	{"cloudtrail", "cloudtrail.json", 120},
	{"github", "github.jsonl", 200},
}

// summaryLine matches the summary's counts.
var summaryLine = regexp.MustCompile(`(?m)^vigil replay: (\d+) events? decided, (\d+) bad lines?,`)

func counts(t *testing.T, stderr string) (events, bad string) {
	t.Helper()
	m := summaryLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary:\n%s", stderr)
	}
	return m[1], m[2]
}

// TestReplayFormats: every format's sample replays, named or detected,
// from a file or gzipped from standard input, with one decision per event
// and no bad line.
func TestReplayFormats(t *testing.T) {
	for _, s := range formatSamples {
		t.Run(s.format, func(t *testing.T) {
			path := ingestData + s.file
			plain, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(plain)
			zw.Close()
			runs := map[string]result{
				"named":           vigil(t, nil, nil, "replay", "--format", s.format, path),
				"detected":        vigil(t, nil, nil, "replay", path),
				"gzipped, stdin":  vigil(t, z.Bytes(), nil, "replay", "--workers", "2", "--batch", "7"),
				"gzipped, stdin-": vigil(t, z.Bytes(), nil, "replay", "--format", s.format, "-"),
			}
			var first string
			for name, r := range runs {
				if r.code != 0 {
					t.Fatalf("%s: exit %d\n%s", name, r.code, r.stderr)
				}
				events, bad := counts(t, r.stderr)
				if events != strconv.Itoa(s.events) || bad != "0" {
					t.Errorf("%s: %s events, %s bad lines; want %d and 0\n%s", name, events, bad, s.events, r.stderr)
				}
				if n := strings.Count(r.stdout, "\n"); n != s.events {
					t.Errorf("%s: %d decision lines, want %d", name, n, s.events)
				}
				if first == "" {
					first = r.stdout
				} else if r.stdout != first {
					t.Errorf("%s: decisions differ from another run's", name)
				}
				detected := strings.Contains(r.stderr, "as "+s.format+" (detected")
				if want := s.format != "vigil" && !strings.Contains(name, "named") && !strings.HasSuffix(name, "-"); detected != want {
					t.Errorf("%s: detection note %v, want %v:\n%s", name, detected, want, r.stderr)
				}
			}
		})
	}
}

// TestReplayFormatBadLines: malformed lines of a foreign log are reported
// by line number, without their content, and the replay goes on.
func TestReplayFormatBadLines(t *testing.T) {
	good, err := os.ReadFile(ingestData + "nginx-json.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")[:10]
	secret := "sk_live_c0ffee5ecret"
	lines[2] = `{"time":"2026-03-04T08:01:00+00:00","remote_addr":"198.51.100.7","uri":"/v1/me","status":"OK","token_id":"` + secret + `"}` + "\n"
	lines[5] = `{"time":"2026-03-04T08:02:00+00:00","remote_addr":"` + secret + `","uri":"/v1/me","status":"200"}` + "\n"
	lines[7] = `{"time":"2026-03-04T08:03:00+00:00",` + secret + "\n"
	in := strings.Join(lines, "")
	r := vigil(t, []byte(in), nil, "replay", "--format", "nginx-json", "--batch", "3")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"line 3: field \"status\": expected a number\n",
		"line 6: field \"remote_addr\": not an IP address\n",
		"line 8: invalid JSON at byte 36: expected a string as object key\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("no %q in:\n%s", want, r.stderr)
		}
	}
	if events, bad := counts(t, r.stderr); events != "7" || bad != "3" {
		t.Errorf("%s events, %s bad lines; want 7 and 3", events, bad)
	}
	if strings.Contains(r.stdout+r.stderr, "c0ffee") {
		t.Error("a raw credential in the output")
	}
	// With --strict, the first one stops the replay.
	r = vigil(t, []byte(in), nil, "replay", "--format", "nginx-json", "--strict")
	if r.code != 2 || !strings.Contains(r.stderr, "stopped at line 3 of standard input") {
		t.Errorf("strict: exit %d\n%s", r.code, r.stderr)
	}
}

// TestReplayFormatUsage: unknown or undetectable formats are usage errors
// that list the formats.
func TestReplayFormatUsage(t *testing.T) {
	const list = "vigil, nginx, nginx-json, envoy, apigateway, cloudtrail, github"
	r := vigil(t, nil, nil, "replay", "--format", "apache", ingestData+"nginx.log")
	if r.code != 2 || !strings.Contains(r.stderr, `--format: unknown log format "apache": give one of `+list) || !strings.Contains(r.stderr, "Usage: vigil replay") {
		t.Errorf("unknown format: exit %d\n%s", r.code, r.stderr)
	}
	r = vigil(t, []byte("hello\nworld\n"), nil, "replay")
	if r.code != 2 || !strings.Contains(r.stderr, "vigil replay: standard input: cannot detect the log format from its first lines: give one of "+list+" (--format)") {
		t.Errorf("undetectable: exit %d\n%s", r.code, r.stderr)
	}
	r = vigil(t, []byte{0x1f, 0x8b, 1, 2}, nil, "replay")
	if r.code != 1 || !strings.Contains(r.stderr, "gzip") {
		t.Errorf("broken gzip: exit %d\n%s", r.code, r.stderr)
	}
	if r := vigil(t, nil, nil, "replay", "-h"); !strings.Contains(r.stdout, "-format") || !strings.Contains(r.stdout, list) {
		t.Errorf("usage lacks --format:\n%s", r.stdout)
	}
}
