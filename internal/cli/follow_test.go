package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/policy"
)

// followEvent is one event line of the contract (docs/events.md).
func followEvent(ts time.Time, token, ip, endpoint string, status int, rest string) string {
	return fmt.Sprintf(`{"timestamp":%q,"token_id":%q,"source_ip":%q,"endpoint":%q,"status_code":%d,%s}`+"\n",
		ts.UTC().Format(time.RFC3339), token, ip, endpoint, status, rest)
}

var followStart = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// ownerEvents are alice's ordinary requests i in [from, to), five minutes
// apart: enough for her profile to be learned after 20 of them and an hour.
func ownerEvents(from, to int) string {
	endpoints := []string{"/v1/orders", "/v1/orders/{id}", "/v1/me"}
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(followEvent(followStart.Add(time.Duration(i)*5*time.Minute), "tk_follow_alice",
			fmt.Sprintf("93.184.216.%d", 10+i%3), endpoints[i%3], 200,
			fmt.Sprintf(`"request_id":"owner-%d","method":"GET","payload_bytes":1800,"user_agent":"acme-sdk-java/3.4.1 (Linux; amd64)","country":"DE","asn":3320`, i)))
	}
	return b.String()
}

// attackEvents is a burst with alice's stolen token: a new country and
// network, another client, failures on admin endpoints.
func attackEvents(n int) string {
	t0 := followStart.Add(150 * time.Minute)
	var b strings.Builder
	for i := range n {
		b.WriteString(followEvent(t0.Add(time.Duration(i)*3*time.Second), "tk_follow_alice",
			fmt.Sprintf("185.220.101.%d", 7+i%4), fmt.Sprintf("/v1/admin/%d", i%5), 401+2*(i%2),
			fmt.Sprintf(`"request_id":"attack-%d","method":"GET","payload_bytes":300,"user_agent":"python-requests/2.32.3","country":"NL","asn":60729`, i)))
	}
	return b.String()
}

// running is `vigil follow` run in-process until its context is cancelled.
type running struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	code           chan int
}

func startFollow(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, code: make(chan int, 1)}
	cio := IO{Stdout: r.stdout, Stderr: r.stderr, LookupEnv: func(string) (string, bool) { return "", false }}
	go func() { r.code <- followContext(ctx, cio, append([]string{"--poll", "5ms"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(time.Minute):
			t.Error("vigil follow did not stop")
		}
	})
	return r
}

// stop cancels the command and returns its exit status.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.code:
		r.code <- code // for the cleanup
		return code
	case <-time.After(time.Minute):
		t.Fatalf("vigil follow did not stop; stderr:\n%s", r.stderr)
		return -1
	}
}

// waitUntil waits for cond, with a generous deadline.
func waitUntil(t *testing.T, what string, r *running, cond func() bool) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("still waiting for %s; stdout:\n%s\nstderr:\n%s", what, r.stdout, r.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestFollow follows a log while it grows: the owner's history, then an
// attack burst that is contained and alerted on, then a rotation after
// which the new file's events are decided too. Interrupting it prints
// the summary.
func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.log")
	appendFile(t, path, ownerEvents(0, 25))
	r := startFollow(t, "--from-start", path)
	decided := func(id string) func() bool {
		return func() bool { return strings.Contains(r.stdout.String(), `"request_id":"`+id+`"`) }
	}
	waitUntil(t, "the existing events", r, decided("owner-24"))

	appendFile(t, path, ownerEvents(25, 30))
	waitUntil(t, "appended events", r, decided("owner-29"))
	if strings.Contains(r.stderr.String(), "ALERT") {
		t.Fatalf("alerts on the owner's traffic:\n%s", r.stderr)
	}

	const burst = 12
	appendFile(t, path, attackEvents(burst))
	waitUntil(t, "an alert", r, func() bool { return strings.Contains(r.stderr.String(), "ALERT") })
	waitUntil(t, "the burst", r, decided(fmt.Sprint("attack-", burst-1)))
	contained := 0
	for _, l := range strings.Split(r.stdout.String(), "\n") {
		if strings.Contains(l, `"attack-`) && !strings.Contains(l, `"decision":"allow"`) {
			contained++
		}
	}
	if contained == 0 {
		t.Fatalf("no request of the burst was contained:\n%s", r.stdout)
	}

	// logrotate create: rename, new file, the writer reopens.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, followEvent(followStart.Add(4*time.Hour), "tk_follow_bob", "198.51.100.7", "/v1/me", 200, `"request_id":"bob-0"`))
	appendFile(t, path, followEvent(followStart.Add(4*time.Hour+time.Minute), "tk_follow_bob", "198.51.100.7", "/v1/me", 200, `"request_id":"bob-1"`))
	waitUntil(t, "events after the rotation", r, decided("bob-1"))

	if code := r.stop(t); code != exitOK {
		t.Errorf("exit %d", code)
	}
	stdout, stderr := r.stdout.String(), r.stderr.String()
	if n, want := strings.Count(stdout, "\n"), 30+burst+2; n != want {
		t.Errorf("%d decisions, want %d", n, want)
	}
	alerts := 0
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "ALERT ") {
			continue
		}
		alerts++
		if !strings.Contains(l, "token tk_follow_alice risk ") || !strings.Contains(l, "[request attack-") {
			t.Errorf("alert %q", l)
		}
	}
	if alerts != contained {
		t.Errorf("%d alerts for %d contained requests", alerts, contained)
	}
	for _, want := range []string{
		path + ": rotated",
		fmt.Sprintf("vigil follow: %d events decided, 0 bad lines, %s (throttle or above), 1 rotation, 0 truncations, 0 long lines skipped",
			30+burst+2, plural(alerts, "alert")),
		"  decisions: allow ",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestFollowFiles: decisions and alerts to files, a higher --min-level,
// several files (one of them created later), bad lines reported.
func TestFollowFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	decisions, alerts := filepath.Join(dir, "decisions.jsonl"), filepath.Join(dir, "alerts.txt")
	appendFile(t, a, ownerEvents(0, 30))
	r := startFollow(t, "--from-start", "--decisions", decisions, "--alerts", alerts, "--min-level", "step_up_auth", a, b)
	lines := func(path string) int {
		data, _ := os.ReadFile(path)
		return bytes.Count(data, []byte("\n"))
	}
	waitUntil(t, "the decisions of a.log", r, func() bool { return lines(decisions) == 30 })
	appendFile(t, b, attackEvents(20)+"not json\n")
	waitUntil(t, "the decisions of b.log", r, func() bool { return lines(decisions) == 50 })
	waitUntil(t, "the bad line", r, func() bool { return strings.Contains(r.stderr.String(), "invalid JSON") })
	if code := r.stop(t); code != exitOK {
		t.Errorf("exit %d: %s", code, r.stderr)
	}
	if r.stdout.String() != "" {
		t.Errorf("standard output: %q", r.stdout)
	}
	data, err := os.ReadFile(alerts)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l != "" && !strings.Contains(l, " step_up_auth ") && !strings.Contains(l, " block ") {
			t.Errorf("alert below step_up_auth: %q", l)
		}
	}
	if !strings.Contains(r.stderr.String(), b+": missing") || !strings.Contains(r.stderr.String(), b+": reopened") {
		t.Errorf("b.log not reported missing, then reopened:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr.String(), "50 events decided, 1 bad line,") {
		t.Errorf("summary:\n%s", r.stderr)
	}
}

func TestFollowUsage(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "a.log")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "at least one FILE"},
		{[]string{"--format", "syslog", log}, exitUsage, `--format: `},
		{[]string{filepath.Join(t.TempDir(), "not-yet.log")}, exitUsage, `no file holds lines yet to detect the format from: give --format`},
		{[]string{"--min-level", "allow", log}, exitUsage, "--min-level"},
		{[]string{"--min-level", "severe", log}, exitUsage, "--min-level"},
		{[]string{"--poll", "0s", log}, exitUsage, "--poll"},
		{[]string{dir}, exitError, "is a directory"},
		{[]string{log, log}, exitError, "given twice"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cio := IO{Stdout: &stdout, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }}
			if code := followContext(context.Background(), cio, tc.args); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
	var stdout bytes.Buffer
	if code := Main([]string{"follow", "-h"}, IO{Stdout: &stdout, Stderr: &stdout}); code != exitOK || !strings.Contains(stdout.String(), "Usage: vigil follow") {
		t.Errorf("follow -h: exit %d\n%s", code, stdout.String())
	}
	stdout.Reset()
	if Main([]string{"help"}, IO{Stdout: &stdout}); !strings.Contains(stdout.String(), "vigil follow [flags] FILE") {
		t.Error("follow is not in the usage")
	}
}

// TestAlerter: decision lines cut anywhere by the writes still give one
// alert each, for levels at or above the minimum only.
func TestAlerter(t *testing.T) {
	in := `{"request_id":"r1","token_id":"tk_a","timestamp":"2026-11-02T10:31:00Z","risk":0,"decision":"allow","reasons":[]}
{"request_id":"r2 \"decision\":\"block\"","token_id":"tk_a","timestamp":"2026-11-02T10:31:10Z","risk":4.5,"decision":"throttle","reasons":[{"signal":"new_network","contribution":3.5,"detail":"x"},{"signal":"user_agent","contribution":1,"detail":"y"}]}
{"request_id":"r3","token_id":"tk_\u001b[31mred","timestamp":"2026-11-02T10:31:20Z","risk":12.5,"decision":"block","reasons":[{"signal":"rate","contribution":1,"detail":"a"},{"signal":"volume","contribution":4,"detail":"b"},{"signal":"new_network","contribution":3.5,"detail":"c"},{"signal":"auth_failures","contribution":4,"detail":"d"}]}
`
	want := `ALERT 2026-11-02T10:31:10Z throttle token tk_a risk 4.5: new_network +3.5, user_agent +1 [request r2 "decision":"block"]
ALERT 2026-11-02T10:31:20Z block token tk_?[31mred risk 12.5: volume +4, auth_failures +4, new_network +3.5 (+1 more) [request r3]
`
	for _, step := range []int{1, 7, 100, len(in)} {
		var decisions, alerts bytes.Buffer
		a := &alerter{decisions: &decisions, alerts: &alerts, min: policy.Throttle}
		for s := in; s != ""; {
			n := min(step, len(s))
			if k, err := a.Write([]byte(s[:n])); k != n || err != nil {
				t.Fatalf("Write: %d, %v", k, err)
			}
			s = s[n:]
		}
		if decisions.String() != in {
			t.Errorf("writes of %d: decisions not passed on", step)
		}
		if alerts.String() != want || a.count != 2 {
			t.Errorf("writes of %d: %d alerts\n%s\nwant\n%s", step, a.count, alerts.String(), want)
		}
	}
	var alerts bytes.Buffer
	a := &alerter{decisions: &bytes.Buffer{}, alerts: &alerts, min: policy.Block}
	a.Write([]byte(in))
	if a.count != 1 || !strings.Contains(alerts.String(), " block ") {
		t.Errorf("min block: %s", alerts.String())
	}
}
