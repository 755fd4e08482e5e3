package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDenier records denials; the first fail calls fail.
type fakeDenier struct {
	mu     sync.Mutex
	fail   int
	err    error // returned while fail > 0 (default: a transient error)
	denied map[string]int
	until  map[string]time.Time
}

func (d *fakeDenier) Deny(_ context.Context, tokenID, reason, by string, until time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail > 0 {
		d.fail--
		if d.err != nil {
			return d.err
		}
		return errors.New("store unavailable")
	}
	if d.denied == nil {
		d.denied, d.until = map[string]int{}, map[string]time.Time{}
	}
	d.denied[tokenID]++
	d.until[tokenID] = until
	return nil
}

func (d *fakeDenier) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.denied[id]
}

var _ Denier = (*fakeDenier)(nil)
var _ Denier = DenierFunc(nil)

// harness is an executor wired to a test OAuth server, a receiver and a
// denier, logging into a buffer.
type harness struct {
	t     *testing.T
	path  string
	oauth *oauthServer
	rc    *receiver
	deny  *fakeDenier
	logs  *logBuffer
	audit *Audit
	x     *Executor
	o     Options
}

const testToken = "rt_SECRETv4lue-never.logged~0123456789abcdef"

func newHarness(t *testing.T, mod func(*Options)) *harness {
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "audit.jsonl"), oauth: newOAuthServer(t, testToken),
		rc: newReceiver(t), deny: &fakeDenier{}, logs: &logBuffer{}}
	h.o = Options{Deny: h.deny, OAuth: h.oauth.client(t, ""), Webhook: h.rc.webhook(t),
		Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Log: h.logs.logger()}
	if mod != nil {
		mod(&h.o)
	}
	h.start()
	return h
}

// start opens the audit log and a new executor on it.
func (h *harness) start() {
	h.t.Helper()
	a, err := OpenAudit(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	h.audit = a
	o := h.o
	o.Audit = a
	x, err := New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.x = x
	h.t.Cleanup(func() { h.stop() })
}

func (h *harness) stop() {
	if h.x != nil {
		h.x.Close(context.Background())
		h.audit.Close()
		h.x = nil
	}
}

func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) waitState(id string, want State) ActionStatus {
	h.t.Helper()
	var st ActionStatus
	waitFor(h.t, fmt.Sprintf("%s to be %s", id, want), func() bool {
		st, _ = h.x.Status(id)
		return st.State == want
	})
	return st
}

// records returns the audit log's records of step for id, as "outcome" or
// "outcome#attempt".
func (h *harness) records(id, step string) []string {
	h.t.Helper()
	f, err := os.Open(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	var out []string
	if err := ReadAudit(f, func(r Record) error {
		if r.ID == id && r.Step == step {
			s := r.Outcome
			if r.Attempt > 0 {
				s += fmt.Sprint("#", r.Attempt)
			}
			out = append(out, s)
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func request(steps Steps) Request {
	return Request{TokenID: "tk_stolen", ClientID: "app-1", Subject: "user-1", JTI: "j-1", Token: []byte(testToken),
		TokenTypeHint: "access_token", Trigger: TriggerPolicy, Rule: RuleBlock, By: "vigil", Reason: "impossible travel", Steps: steps}
}

func TestExecutorRevokeAfterRetries(t *testing.T) {
	h := newHarness(t, nil)
	h.oauth.set(func(s *oauthServer) { s.fail503 = 3 })
	req := request(StepDenylist | StepRevoke | StepWebhook)
	req.DenyUntil = time.Now().Add(24 * time.Hour).Truncate(time.Second)
	id, dup, err := h.x.Submit(req)
	if err != nil || dup || id != ActionID("tk_stolen", StepDenylist|StepRevoke|StepWebhook, EventRevoke) {
		t.Fatalf("submit: %s %v %v", id, dup, err)
	}
	st := h.waitState(id, StateSucceeded)
	if len(st.Steps) != 3 {
		t.Fatalf("status %+v", st)
	}
	if got := strings.Join(h.records(id, StepNameRevoke), ","); got != "requested,retrying#1,retrying#2,retrying#3,succeeded#4" {
		t.Fatalf("revoke records: %s", got)
	}
	if got := strings.Join(h.records(id, StepNameDenylist), ","); got != "requested,succeeded#1" {
		t.Fatalf("denylist records: %s", got)
	}
	in, err := h.oauth.client(t, "").Introspect(context.Background(), []byte(testToken))
	if err != nil || in.Active {
		t.Fatalf("introspection after revoke: %+v %v", in, err)
	}
	if h.deny.count("tk_stolen") != 1 || !h.deny.until["tk_stolen"].Equal(req.DenyUntil) {
		t.Fatalf("denials %v %v", h.deny.denied, h.deny.until)
	}
	if keys := h.rc.delivered(); len(keys) != 1 || keys[0] != id {
		t.Fatalf("webhook deliveries %q", keys)
	}
	if _, hints := h.oauth.seen(); hints[0] != "access_token" {
		t.Fatalf("hints %q", hints)
	}
	s := h.x.Stats()
	if s.Submitted != 1 || s.Succeeded != 3 || s.Retries != 3 || s.Failed != 0 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
	// The token copy is gone.
	h.x.mu.Lock()
	tok := h.x.actions[id].token
	h.x.mu.Unlock()
	if tok != nil {
		t.Fatal("token kept after the revoke step")
	}
}

func TestExecutorPermanentFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*oauthServer)
		want  string
	}{
		{"unsupported_token_type", func(s *oauthServer) { s.unsupported = true }, "HTTP 400: unsupported_token_type"},
		{"invalid_client", func(s *oauthServer) { s.secret = "rotated" }, "HTTP 401: invalid_client"},
		{"gave up", func(s *oauthServer) { s.fail503 = 1000 }, "gave up after 4 attempts: action: revoke: HTTP 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.MaxAttempts = 4 })
			h.oauth.set(tc.setup)
			id, _, err := h.x.Submit(request(StepDenylist | StepRevoke))
			if err != nil {
				t.Fatal(err)
			}
			h.waitState(id, StateFailed)
			failed := h.x.Failed()
			if len(failed) != 1 || failed[0].Step != StepNameRevoke || !strings.Contains(failed[0].Error, tc.want) {
				t.Fatalf("failed %+v", failed)
			}
			recs := h.records(id, StepNameRevoke)
			if last := recs[len(recs)-1]; !strings.HasPrefix(last, OutcomeFailed) {
				t.Fatalf("revoke records %v", recs)
			}
			if h.deny.count("tk_stolen") != 1 {
				t.Fatal("denylist step held back by the revoke failure")
			}
			if !strings.Contains(string(h.logs.Bytes()), "action: step failed") {
				t.Fatal("failure not logged")
			}
		})
	}
}

func TestExecutorDuplicateAndRetryAfterFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.oauth.set(func(s *oauthServer) { s.unsupported = true })
	req := request(StepRevoke | StepWebhook)
	id, _, _ := h.x.Submit(req)
	if _, dup, _ := h.x.Submit(req); !dup {
		t.Fatal("second submit in progress not a duplicate")
	}
	h.waitState(id, StateFailed)
	if revokes, _ := h.oauth.counts(); revokes != 1 || len(h.rc.delivered()) != 1 {
		t.Fatalf("%d revokes, %d webhooks", revokes, len(h.rc.delivered()))
	}
	// After a failure, the same request runs the failed step, only.
	h.oauth.set(func(s *oauthServer) { s.unsupported = false })
	if id2, dup, err := h.x.Submit(req); id2 != id || dup || err != nil {
		t.Fatalf("resubmit: %s %v %v", id2, dup, err)
	}
	h.waitState(id, StateSucceeded)
	if _, dup, _ := h.x.Submit(req); !dup {
		t.Fatal("submit after success not a duplicate")
	}
	if revokes, _ := h.oauth.counts(); revokes != 2 || len(h.rc.delivered()) != 1 {
		t.Fatalf("%d revokes, %d webhooks; want 2 and 1", revokes, len(h.rc.delivered()))
	}
	if s := h.x.Stats(); s.Duplicates != 2 || s.Submitted != 4 {
		t.Fatalf("stats %+v", s)
	}
	// Another step set or webhook type is another action.
	req.WebhookType = EventRotate
	if _, dup, _ := h.x.Submit(req); dup {
		t.Fatal("rotate webhook a duplicate of revoke")
	}
}

func TestExecutorRestartIdempotent(t *testing.T) {
	h := newHarness(t, nil)
	req := request(StepDenylist | StepRevoke | StepWebhook)
	id, _, _ := h.x.Submit(req)
	h.waitState(id, StateSucceeded)
	h.restart()
	if st, ok := h.x.Status(id); !ok || st.State != StateSucceeded {
		t.Fatalf("after restart: %+v %v", st, ok)
	}
	if _, dup, err := h.x.Submit(req); !dup || err != nil {
		t.Fatalf("submit after restart: dup %v, %v", dup, err)
	}
	if revokes, _ := h.oauth.counts(); revokes != 1 || len(h.rc.delivered()) != 1 || h.deny.count("tk_stolen") != 1 {
		t.Fatalf("calls repeated after restart: %d revokes, %d webhooks", revokes, len(h.rc.delivered()))
	}
}

func TestExecutorResume(t *testing.T) {
	// Every step fails transiently and waits an hour before retrying.
	h := newHarness(t, func(o *Options) { o.Backoff, o.MaxBackoff = time.Hour, time.Hour })
	h.deny.fail = 1
	h.rc.fail, h.rc.status = 1, 503
	h.oauth.set(func(s *oauthServer) { s.fail503 = 1 })
	req := request(StepDenylist | StepRevoke | StepWebhook)
	req.WebhookType = EventRotate
	req.DenyUntil = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	id, _, _ := h.x.Submit(req)
	waitFor(t, "three retries scheduled", func() bool { return h.x.Stats().Retries == 3 })
	if p := h.x.Pending(); len(p) != 3 || p[0].NextAttempt.IsZero() {
		t.Fatalf("pending %+v", p)
	}

	h.o.Backoff, h.o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	h.restart()
	st := h.waitState(id, StateFailed)
	for _, r := range st.Steps {
		want := OutcomeSucceeded
		if r.Step == StepNameRevoke {
			want = OutcomeFailed
			if r.Error != "raw token not kept across restarts" {
				t.Fatalf("revoke error %q", r.Error)
			}
		}
		if r.Outcome != want {
			t.Fatalf("%s: %s, want %s", r.Step, r.Outcome, want)
		}
	}
	if got := strings.Join(h.records(id, StepNameWebhook), ","); got != "requested,retrying#1,succeeded#2" {
		t.Fatalf("webhook records %s", got)
	}
	if h.deny.count("tk_stolen") != 1 || !h.deny.until["tk_stolen"].Equal(req.DenyUntil) {
		t.Fatalf("denial after resume: %v", h.deny.until)
	}
	var body map[string]any
	if err := json.Unmarshal(h.rc.lastBody(), &body); err != nil || body["type"] != EventRotate || body["jti"] != "j-1" {
		t.Fatalf("resumed webhook body %v %v", body, err)
	}
	// The failed revoke can be retried with the token.
	if _, dup, err := h.x.Submit(req); dup || err != nil {
		t.Fatalf("resubmit: %v %v", dup, err)
	}
	h.waitState(id, StateSucceeded)
}

func TestExecutorQueueFull(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Queue, o.Backoff, o.MaxBackoff = 1, time.Hour, time.Hour })
	h.deny.fail = 1
	id1, _, err := h.x.Submit(request(StepDenylist))
	if err != nil {
		t.Fatal(err)
	}
	req := request(StepDenylist)
	req.TokenID = "tk_other"
	id2, dup, err := h.x.Submit(req)
	if !errors.Is(err, ErrQueueFull) || dup || id2 == "" {
		t.Fatalf("second submit: %s %v %v", id2, dup, err)
	}
	if got := h.records(id2, StepNameDenylist); fmt.Sprint(got) != "[failed]" {
		t.Fatalf("queue-full records %v", got)
	}
	if f := h.x.Failed(); len(f) != 1 || f[0].ID != id2 || !strings.Contains(f[0].Error, "queue full") {
		t.Fatalf("failed %+v", f)
	}
	if st, _ := h.x.Status(id1); st.State != StatePending {
		t.Fatalf("first action %s", st.State)
	}
	if h.x.Stats().QueueFull != 1 {
		t.Fatal("queue full not counted")
	}
}

func TestExecutorMissingDependencies(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.OAuth, o.Webhook = nil, nil })
	id, _, err := h.x.Submit(request(StepDenylist | StepRevoke | StepWebhook))
	if err == nil || !strings.Contains(err.Error(), "revoke: no OAuth client configured") || !strings.Contains(err.Error(), "webhook: no webhook configured") {
		t.Fatalf("submit: %v", err)
	}
	h.waitState(id, StateFailed)
	if f := h.x.Failed(); len(f) != 2 {
		t.Fatalf("failed %+v", f)
	}
	if h.deny.count("tk_stolen") != 1 {
		t.Fatal("denylist step not run")
	}

	h2 := newHarness(t, nil)
	req := request(StepRevoke)
	req.Token = nil
	if _, _, err := h2.x.Submit(req); err == nil || !strings.Contains(err.Error(), "no raw token given") {
		t.Fatalf("no token: %v", err)
	}
}

func TestExecutorSubmitRefused(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		mod  func(*Request)
		want string
	}{
		{"no token id", func(r *Request) { r.TokenID = "" }, "token_id is empty"},
		{"no steps", func(r *Request) { r.Steps = 0 }, "steps"},
		{"unknown step", func(r *Request) { r.Steps = 8 }, "steps"},
		{"webhook type", func(r *Request) { r.WebhookType = "credential.burn" }, "webhook type"},
		{"trigger", func(r *Request) { r.Trigger = "cron" }, "trigger"},
		{"long reason", func(r *Request) { r.Reason = strings.Repeat("r", MaxField+1) }, "reason is 257 bytes"},
		{"token in reason", func(r *Request) { r.Reason = "saw " + testToken }, "reason contains the raw token"},
		{"deny until past", func(r *Request) { r.DenyUntil = time.Now().Add(-time.Minute) }, "not in the future"},
	} {
		req := request(StepDenylist)
		tc.mod(&req)
		if _, _, err := h.x.Submit(req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// An audit log that cannot be written refuses the action, visibly.
	h.audit.Close()
	id, _, err := h.x.Submit(request(StepDenylist))
	if !errors.Is(err, ErrAuditClosed) {
		t.Fatalf("closed audit: %v", err)
	}
	if st, _ := h.x.Status(id); st.State != StateFailed || h.x.Stats().AuditErrors == 0 {
		t.Fatalf("status %+v", st)
	}
	h.x.Close(context.Background())
	if _, _, err := h.x.Submit(request(StepDenylist)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestExecutorCloseWipes(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Backoff, o.MaxBackoff = time.Hour, time.Hour })
	h.oauth.set(func(s *oauthServer) { s.fail503 = 1 })
	id, _, _ := h.x.Submit(request(StepRevoke))
	waitFor(t, "the retry scheduled", func() bool { return h.x.Stats().Retries == 1 })
	h.x.mu.Lock()
	held := h.x.actions[id].token
	h.x.mu.Unlock()
	if string(held) != testToken {
		t.Fatal("token not held while the step is pending")
	}
	if err := h.x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range held {
		if c != 0 {
			t.Fatalf("token not wiped: %q", held)
		}
	}
}

func TestExecutorCloseInterruptsInFlight(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, func(o *Options) {
		o.Deny = DenierFunc(func(ctx context.Context, _, _, _ string, _ time.Time) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-release:
				return nil
			}
		})
	})
	id, _, _ := h.x.Submit(request(StepDenylist))
	waitFor(t, "the attempt to start", func() bool {
		h.x.mu.Lock()
		defer h.x.mu.Unlock()
		return len(h.x.jobs) == 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.x.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v", err)
	}
	// Left open, for the next executor.
	if got := h.records(id, StepNameDenylist); fmt.Sprint(got) != "[requested retrying#1]" {
		t.Fatalf("records %v", got)
	}
}

func TestBackoff(t *testing.T) {
	x := &Executor{o: Options{Backoff: time.Second, MaxBackoff: 10 * time.Second}}
	for _, tc := range []struct {
		n        int
		err      error
		min, max time.Duration
	}{
		{1, errors.New("x"), 800 * time.Millisecond, 1200 * time.Millisecond},
		{2, errors.New("x"), 1600 * time.Millisecond, 2400 * time.Millisecond},
		{4, errors.New("x"), 6400 * time.Millisecond, 9600 * time.Millisecond},
		{30, errors.New("x"), 8 * time.Second, 12 * time.Second},
		{1, &HTTPError{Status: 503, Retryable: true, RetryAfter: time.Minute}, time.Minute, time.Minute},
		{1, &HTTPError{Status: 503, Retryable: true, RetryAfter: 48 * time.Hour}, MaxRetryAfter, MaxRetryAfter},
	} {
		for range 50 {
			if d := x.delay(tc.n, tc.err); d < tc.min || d > tc.max {
				t.Fatalf("delay(%d, %v) = %s, want [%s, %s]", tc.n, tc.err, d, tc.min, tc.max)
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	a, _ := OpenAudit(filepath.Join(t.TempDir(), "a"))
	defer a.Close()
	for _, o := range []Options{{}, {Audit: a, MaxAttempts: -1}, {Audit: a, Backoff: time.Minute, MaxBackoff: time.Second}} {
		if _, err := New(o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
}
