package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/event"
)

// `vigil simulate` writes events and labels, one label per event, and the
// same arguments give the same files.
func TestSimulateWritesFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	runOnce := func(name string, extra ...string) (events, labels []byte) {
		t.Helper()
		ev := filepath.Join(dir, name+".jsonl")
		args := append([]string{"simulate", "--mix", "small", "--days", "2", "--seed", "9", "--events", ev}, extra...)
		_, errOut, code := run(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		if !strings.Contains(errOut, "vigil simulate: mix small, seed 9:") || !strings.Contains(errOut, "attacker minted") {
			t.Errorf("summary:\n%s", errOut)
		}
		events, err := os.ReadFile(ev)
		if err != nil {
			t.Fatal(err)
		}
		lb := filepath.Join(dir, name+".labels.jsonl")
		if len(extra) > 0 {
			lb = extra[1]
		}
		labels, err = os.ReadFile(lb)
		if err != nil {
			t.Fatal(err)
		}
		return events, labels
	}
	ev1, lb1 := runOnce("a")
	ev2, lb2 := runOnce("b", "--labels", filepath.Join(dir, "b-labels.jsonl"))
	if !bytes.Equal(ev1, ev2) || !bytes.Equal(lb1, lb2) {
		t.Error("two runs with the same arguments wrote different files")
	}
	evLines := bytes.Split(bytes.TrimSuffix(ev1, []byte("\n")), []byte("\n"))
	lbLines := bytes.Split(bytes.TrimSuffix(lb1, []byte("\n")), []byte("\n"))
	if len(evLines) != len(lbLines) || len(evLines) < 10_000 {
		t.Fatalf("%d events, %d labels", len(evLines), len(lbLines))
	}
	dec := event.NewDecoder(nil)
	scenarios := make(map[string]bool)
	for i := range evLines {
		var ev event.Event
		if err := dec.Decode(evLines[i], &ev); err != nil {
			t.Fatalf("events line %d: %v", i+1, err)
		}
		if i%97 != 0 && !bytes.Contains(lbLines[i], []byte(`"attacker"`)) {
			continue
		}
		var lb struct {
			RequestID string `json:"request_id"`
			Label     string `json:"label"`
			Scenario  string `json:"scenario"`
			TokenID   string `json:"token_id"`
		}
		if err := json.Unmarshal(lbLines[i], &lb); err != nil {
			t.Fatalf("labels line %d: %v", i+1, err)
		}
		if lb.RequestID != ev.RequestID || lb.TokenID != ev.TokenID || (lb.Label != "owner" && lb.Label != "attacker") {
			t.Fatalf("line %d: label %+v for event %s of %s", i+1, lb, ev.RequestID, ev.TokenID)
		}
		scenarios[lb.Label+"/"+lb.Scenario] = true
	}
	for _, a := range []string{"cloud_exfil", "proxy_replay", "scope_probe", "bola", "lowslow", "dormant", "minted"} {
		if !scenarios["attacker/"+a] {
			t.Errorf("no %s in the labels", a)
		}
	}
}

func TestSimulateStdout(t *testing.T) {
	t.Parallel()
	lb := filepath.Join(t.TempDir(), "labels.jsonl")
	out, errOut, code := run(t, "simulate", "--mix", "small", "--days", "1", "--labels", lb)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	labels, err := os.ReadFile(lb)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := strings.Count(out, "\n"), bytes.Count(labels, []byte("\n")); n == 0 || n != m {
		t.Errorf("%d events on stdout, %d labels", n, m)
	}
}

func TestSimulateArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"simulate"}, exitUsage, "--labels FILE is required"},
		{[]string{"simulate", "--labels", "-"}, exitUsage, "both go to standard output"},
		{[]string{"simulate", "--events", "x.jsonl", "--labels", "x.jsonl"}, exitUsage, "same file"},
		{[]string{"simulate", "--mix", "huge", "--labels", "l"}, exitUsage, `no mix "huge"`},
		{[]string{"simulate", "--days", "400", "--labels", "l"}, exitUsage, "--days 400"},
		{[]string{"simulate", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"simulate", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"simulate", "-h"}, exitOK, "Mixes:"},
		{[]string{"simulate", "--mix", "small", "--days", "1", "--events", filepath.Join(t.TempDir(), "no", "dir", "e.jsonl")}, exitError, "no such file or directory"},
	} {
		_, errOut, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestLabelsBeside(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"events.jsonl":        "events.labels.jsonl",
		"out/run1.ndjson":     filepath.Join("out", "run1.labels.ndjson"),
		"/tmp/traffic":        "/tmp/traffic.labels.jsonl",
		"dir.v2/events.jsonl": filepath.Join("dir.v2", "events.labels.jsonl"),
	} {
		if got := labelsBeside(in); got != want {
			t.Errorf("labelsBeside(%q) = %q, want %q", in, got, want)
		}
	}
}
