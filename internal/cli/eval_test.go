package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEvalSimulation(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "eval", "--seed", "3", "--mix", "small")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		"vigil eval: simulation seed 3, mix small",
		"\nvigil — scoring profile vigil",
		"\nseed — scoring profile seed",
		"\nip_limiter — fixed window per source IP: 60 requests per 1m0s, throttle beyond; never steps up or blocks",
		"cloud_exfil", "proxy_replay", "scope_probe",
		"Targets (issue 3) on vigil:",
		"vigil compared with seed and ip_limiter",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalFilesJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	events, labels := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "labels.jsonl")
	if _, errOut, code := run(t, "demo", "--events", events, "--labels", labels); code != exitOK {
		t.Fatalf("demo: exit %d: %s", code, errOut)
	}
	out, errOut, code := run(t, "eval", "--json", "--events", events, "--labels", labels, "--ip-limit", "30")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var r struct {
		Events   int `json:"events"`
		Attacked int `json:"attacked_credentials"`
		Deciders []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"deciders"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if r.Events == 0 || r.Attacked != 3 || len(r.Deciders) != 3 || r.Deciders[0].Name != "vigil" ||
		!strings.Contains(r.Deciders[2].Description, "30 requests per 1m0s") {
		t.Errorf("report: %+v", r)
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	labels := filepath.Join(dir, "labels.jsonl")
	if err := os.WriteFile(events, []byte(`{"timestamp":"2026-03-02T09:00:00Z","token_id":"t","source_ip":"198.51.100.1","endpoint":"/v1/me","status_code":200,"request_id":"r1"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(labels, []byte(`{"request_id":"r1","label":"owner","scenario":"browser"}`+"\n"+`{"request_id":"r9","label":"attacker","scenario":"x"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--events", events}, exitUsage, "--events and --labels go together"},
		{[]string{"--events", events, "--labels", labels, "--seed", "2"}, exitUsage, "do not apply to --events"},
		{[]string{"--mix", "nope"}, exitUsage, `--mix "nope"`},
		{[]string{"--ip-limit", "0"}, exitUsage, "must be positive"},
		{[]string{"extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"--events", filepath.Join(dir, "missing"), "--labels", labels}, exitError, "missing"},
		{[]string{"--events", events, "--labels", labels}, exitError, labels + ` line 2: request_id "r9": request_id matches no event`},
	} {
		_, errOut, code := run(t, append([]string{"eval"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("eval %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if out, _, code := run(t, "eval", "-h"); code != exitOK || !strings.Contains(out, "Usage: vigil eval") {
		t.Errorf("eval -h: exit %d:\n%s", code, out)
	}
}
