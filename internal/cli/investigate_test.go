package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/simulate"
)

// investigateCmd runs `vigil investigate` in-process.
func investigateCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Main(append([]string{"investigate"}, args...), cli.IO{
		Stdin:     strings.NewReader(stdin),
		Stdout:    &out,
		Stderr:    &errOut,
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	return out.String(), errOut.String(), code
}

// TestInvestigateSimulated: three days of simulated owners, one of whose
// credentials is stolen and used from a rented server abroad to download
// in bulk. The report names the stolen credential first, and its
// deviation is at or after the theft.
func TestInvestigateSimulated(t *testing.T) {
	tr, err := simulate.Generate(simulate.Options{
		Seed:        3,
		Duration:    72 * time.Hour,
		Credentials: map[string]int{"poller": 1, "browser": 1, "mobile": 1},
		Attacks:     []string{"cloud_exfil"},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	events, page := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "report.html")
	f, err := os.Create(events)
	if err != nil {
		t.Fatal(err)
	}
	if err := simulate.WriteEvents(f, tr.Items); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	attack := tr.Attacks[0]
	victim := attack.Tokens[0]

	stdout, stderr, code := investigateCmd(t, "", "--html", page, "--top", "3", events)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "\n1. "+victim+" ") {
		t.Fatalf("the first credential is not the stolen %s (attack from %v):\n%s", victim, attack.Start, stdout)
	}
	if !strings.Contains(stderr, "0 bad lines") || !strings.Contains(stderr, "HTML report written to "+page) {
		t.Errorf("stderr:\n%s", stderr)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(html, []byte("<!DOCTYPE html>")) || !bytes.Contains(html, []byte(victim)) || !bytes.Contains(html, []byte("<svg ")) {
		t.Errorf("HTML report of %d bytes without the stolen credential or its chart", len(html))
	}

	// The same log on standard input gives the same report.
	in, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	if again, stderr, code := investigateCmd(t, string(in), "--top", "3", "-"); code != 0 || again != stdout {
		t.Errorf("from standard input: exit %d, report differs:\n%s", code, stderr)
	}
}

// TestInvestigateBadLines: unusable lines are reported and counted, not
// fatal.
func TestInvestigateBadLines(t *testing.T) {
	in := `{"timestamp":"2026-03-02T09:00:00Z","token_id":"key-42","source_ip":"198.51.100.7","endpoint":"/v1/me","status_code":200}
{"timestamp":"2026-03-02T09:00:01Z","token_id":"key-42","source_ip":"198.51.100.7","endpoint":"/v1/me","status_code":"200"}
{"timestamp":"2026-03-02T09:00:02Z","token_id":"key-42","source_ip":"198.51.100.7","endpoint":"/v1/me","status_code":200}
`
	stdout, stderr, code := investigateCmd(t, in)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "line 2: field \"status_code\"") || !strings.Contains(stderr, "2 events judged, 1 bad line") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if !strings.Contains(stdout, "other credentials: 1 credential, 2 events, none at or above throttle") {
		t.Errorf("report:\n%s", stdout)
	}
}

func TestInvestigateUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "syslog", "x.log"}, `--format: `},
		{[]string{"--min-level", "allow", "x.log"}, `--min-level "allow"`},
		{[]string{"--min-level", "severe", "x.log"}, `--min-level "severe"`},
		{[]string{"--top", "-1", "x.log"}, "--top -1"},
		{[]string{"--html", "-", "x.log"}, "--html needs a file name"},
		{[]string{"a.log", "b.log"}, "at most one FILE"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		_, stderr, code := investigateCmd(t, "", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s", tc.args, code, stderr)
		}
	}
	if _, stderr, code := investigateCmd(t, "", filepath.Join(t.TempDir(), "missing.jsonl")); code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d, %s", code, stderr)
	}
	if stdout, _, code := investigateCmd(t, "", "-h"); code != 0 || !strings.Contains(stdout, "which credentials were abused") {
		t.Errorf("-h: exit %d:\n%s", code, stdout)
	}
}

// TestInvestigateStolenCloudKey: a small CloudTrail file (gzipped, a
// Records document, format detected) where an access key used for two days
// from one address makes six calls from another with another SDK. The
// report names the key, dates its first alert, and says since when the
// new address was in use: the attacker's first four calls stayed under
// the alert.
func TestInvestigateStolenCloudKey(t *testing.T) {
	var out, errb bytes.Buffer
	code := cli.Main([]string{"investigate", "testdata/cloudtrail-stolen-key.json.gz"}, cli.IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		LookupEnv: func(string) (string, bool) { return "", false }})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	for _, want := range []string{
		"1. AKIAEXAMPLEKEY123456 (client ci-deploy)",
		"first deviation  2026-03-03 10:04:00 UTC, after 100 events",
		"203.0.113.66 2 (since 2026-03-03 10:00:00)",
		"iam.amazonaws.com CreateUser  NEW",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "102 events judged, 0 bad lines") {
		t.Errorf("stderr:\n%s", errb.String())
	}
}
