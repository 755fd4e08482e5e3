package action

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Denier puts a credential on the denylist. The caller adapts its store:
//
//	action.DenierFunc(func(ctx context.Context, id, reason, by string, until time.Time) error {
//		return st.Deny(ctx, store.Denial{TokenID: id, Reason: reason, By: by, At: time.Now(), Until: until})
//	})
//
// Deny is called from the executor's workers, concurrently, with a
// context bounded by Options.StepTimeout; it must not keep ctx. It must be
// idempotent: a step is retried after any error, unless the error is
// marked Permanent.
type Denier interface {
	Deny(ctx context.Context, tokenID, reason, by string, until time.Time) error
}

// DenierFunc adapts a function to Denier.
type DenierFunc func(ctx context.Context, tokenID, reason, by string, until time.Time) error

func (f DenierFunc) Deny(ctx context.Context, tokenID, reason, by string, until time.Time) error {
	return f(ctx, tokenID, reason, by, until)
}

// Steps is a set of steps of an action.
type Steps uint8

const (
	StepDenylist Steps = 1 << iota // put the token id on the denylist
	StepRevoke                     // RFC 7009 revocation; needs Request.Token
	StepWebhook                    // tell a receiver to rotate or retire the credential

	allSteps = StepDenylist | StepRevoke | StepWebhook
	numSteps = 3
)

var stepNames = [numSteps]string{StepNameDenylist, StepNameRevoke, StepNameWebhook}

func stepIndex(name string) int {
	for i, n := range stepNames {
		if n == name {
			return i
		}
	}
	return -1
}

func (s Steps) String() string {
	var parts []string
	for i, n := range stepNames {
		if s&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "|")
}

// MaxField is the longest Request string field accepted, in bytes.
const MaxField = 256

// Request asks for an action on one credential.
type Request struct {
	TokenID  string // required: the credential's fingerprint
	ClientID string
	Subject  string
	JTI      string
	// Token is the raw credential, needed only by StepRevoke. The executor
	// copies it, keeps the copy in memory only, and wipes it when the
	// revoke step ends (or at Close). The caller keeps ownership of Token.
	Token         []byte
	TokenTypeHint string // optional RFC 7009 token_type_hint

	Trigger string // TriggerPolicy, TriggerOperator or TriggerDormancy
	Rule    string // the rule that fired, for policy triggers
	By      string // who asked: an operator, or "vigil"
	Reason  string

	Steps       Steps
	WebhookType string    // EventRevoke (default), EventRotate or EventDormant
	DenyUntil   time.Time // zero: denied until taken off
}

func (r *Request) validate() error {
	switch {
	case r.TokenID == "":
		return errors.New("token_id is empty")
	case r.Steps == 0 || r.Steps&^allSteps != 0:
		return fmt.Errorf("steps %#x: want a non-empty set of StepDenylist, StepRevoke, StepWebhook", uint8(r.Steps))
	case r.WebhookType != "" && !validEventType(r.WebhookType):
		return fmt.Errorf("webhook type %q: want %s, %s or %s", r.WebhookType, EventRevoke, EventRotate, EventDormant)
	case r.Trigger != "" && r.Trigger != TriggerPolicy && r.Trigger != TriggerOperator && r.Trigger != TriggerDormancy:
		return fmt.Errorf("trigger %q: want %s, %s or %s", r.Trigger, TriggerPolicy, TriggerOperator, TriggerDormancy)
	}
	for _, f := range []struct{ name, v string }{
		{"token_id", r.TokenID}, {"client_id", r.ClientID}, {"subject", r.Subject}, {"jti", r.JTI},
		{"token_type_hint", r.TokenTypeHint}, {"rule", r.Rule}, {"by", r.By}, {"reason", r.Reason},
	} {
		if len(f.v) > MaxField {
			return fmt.Errorf("%s is %d bytes, at most %d", f.name, len(f.v), MaxField)
		}
		if len(r.Token) > 0 && strings.Contains(f.v, string(r.Token)) {
			return fmt.Errorf("%s contains the raw token", f.name)
		}
	}
	return nil
}

// ActionID is the id of the action on tokenID with steps (and webhook
// type, when steps include StepWebhook): the same request gives the same
// id, which makes repeated triggers idempotent.
func ActionID(tokenID string, steps Steps, webhookType string) string {
	if steps&StepWebhook == 0 {
		webhookType = ""
	} else if webhookType == "" {
		webhookType = EventRevoke
	}
	h := sha256.New()
	h.Write([]byte("vigil-action\x00"))
	h.Write([]byte(tokenID))
	h.Write([]byte{0, byte(steps), 0})
	h.Write([]byte(webhookType))
	return "act_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// Errors of Submit.
var (
	ErrQueueFull = errors.New("action: queue full")
	ErrClosed    = errors.New("action: executor closed")
)

// Options configure an Executor; zero values mean defaults.
type Options struct {
	Deny    Denier   // for StepDenylist
	OAuth   *OAuth   // for StepRevoke
	Webhook *Webhook // for StepWebhook
	Audit   *Audit   // required; read back by New
	// MaxAttempts per step (default 8).
	MaxAttempts int
	// Backoff before the first retry (default 1s), doubling each retry up
	// to MaxBackoff (default 5m), with ±20% jitter. A longer Retry-After
	// from the server is honored, up to MaxRetryAfter.
	Backoff, MaxBackoff time.Duration
	// Queue bounds the actions in progress (default 1024).
	Queue int
	// Workers run steps (default 2).
	Workers int
	// StepTimeout bounds one attempt of a step (default 30s).
	StepTimeout time.Duration
	// Now stamps records (default time.Now); waits use the real clock.
	Now func() time.Time
	Log *slog.Logger // default discards
}

// MaxRetryAfter caps the Retry-After honored.
const MaxRetryAfter = time.Hour

func (o *Options) validate() error {
	switch {
	case o.Audit == nil:
		return errors.New("action: executor: audit is nil")
	case o.MaxAttempts < 0, o.Backoff < 0, o.MaxBackoff < 0, o.Queue < 0, o.Workers < 0, o.StepTimeout < 0:
		return errors.New("action: executor: negative option")
	case o.MaxBackoff > 0 && o.Backoff > o.MaxBackoff:
		return fmt.Errorf("action: executor: backoff %s above max_backoff %s", o.Backoff, o.MaxBackoff)
	}
	return nil
}

// Executor runs actions on credentials judged stolen: each step on its
// own, retried with backoff, every outcome appended to the audit log.
// It is safe for concurrent use.
type Executor struct {
	o      Options
	log    *slog.Logger
	runCtx context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}
	quit   chan struct{}

	mu       sync.Mutex
	closing  bool
	actions  map[string]*action
	jobs     jobHeap
	inflight int // actions with a step not finished
	stats    Stats
}

type action struct {
	id    string
	base  Record // the request's fields
	hint  string
	steps Steps
	last  [numSteps]Record // latest record per step in steps
	open  [numSteps]bool   // step not finished
	token secret           // while the revoke step is open
}

func (a *action) pending() bool { return a.open[0] || a.open[1] || a.open[2] }

func (a *action) state() State {
	if a.pending() {
		return StatePending
	}
	for i := range numSteps {
		if a.steps&(1<<i) != 0 && a.last[i].Outcome == OutcomeFailed {
			return StateFailed
		}
	}
	return StateSucceeded
}

// record returns a record of step i with the action's fields.
func (a *action) record(i int, now time.Time, outcome string, attempt int) Record {
	r := a.base
	r.Time, r.ID, r.Step, r.Outcome, r.Attempt = now, a.id, stepNames[i], outcome, attempt
	if i != 2 {
		r.Event = ""
	}
	if i != 0 {
		r.Until = time.Time{}
	}
	return r
}

type job struct {
	a       *action
	step    int
	attempt int
	due     time.Time
}

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(*job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}

// State is an action's state.
type State string

const (
	StatePending   State = "pending"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed" // a step failed for good; a new Submit retries it
)

// ActionStatus is an action's state and the latest record of each step.
type ActionStatus struct {
	ID, TokenID string
	State       State
	Steps       []Record
}

// Stats are an Executor's counters. Succeeded, Failed and Retries count
// steps; Submitted (valid requests, duplicates included), Duplicates and
// QueueFull count Submit calls.
type Stats struct {
	Submitted, Duplicates, QueueFull uint64
	Succeeded, Failed, Retries       uint64
	AuditErrors                      uint64
	Pending                          int // actions in progress
}

// New validates o, reads the audit log back and returns a running
// Executor. Actions that succeeded stay idempotent; denylist and webhook
// steps left pending are resumed; a revoke step left pending is recorded
// as failed, since the raw token is not kept across restarts. Lines of
// the log that cannot be read are logged and skipped.
func New(o Options) (*Executor, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff == 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(5*time.Minute, o.Backoff)
	}
	if o.Queue == 0 {
		o.Queue = 1024
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.StepTimeout == 0 {
		o.StepTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Executor{
		o: o, log: log,
		wake:    make(chan struct{}, o.Workers),
		quit:    make(chan struct{}),
		actions: make(map[string]*action),
	}
	if err := e.replay(); err != nil {
		return nil, err
	}
	e.runCtx, e.cancel = context.WithCancel(context.Background())
	e.resume()
	for range o.Workers {
		e.wg.Add(1)
		go e.work()
	}
	return e, nil
}

// replay rebuilds the actions' states from the audit log.
func (e *Executor) replay() error {
	f, err := os.Open(e.o.Audit.Path())
	if err != nil {
		return fmt.Errorf("action: executor: reading the audit log: %w", err)
	}
	defer f.Close()
	lineErrs, err := readAudit(f, func(r Record) error {
		i := stepIndex(r.Step)
		a := e.actions[r.ID]
		if a == nil {
			a = &action{id: r.ID}
			e.actions[r.ID] = a
		}
		if r.Outcome == OutcomeRequested || a.base.TokenID == "" {
			b := &a.base
			b.Time, b.TokenID, b.ClientID, b.Subject, b.JTI = r.Time, r.TokenID, r.ClientID, r.Subject, r.JTI
			b.Trigger, b.Rule, b.By, b.Reason = r.Trigger, r.Rule, r.By, r.Reason
		}
		switch i {
		case 0:
			a.base.Until = r.Until
		case 2:
			a.base.Event = r.Event
		}
		a.steps |= 1 << i
		a.last[i] = r
		a.open[i] = r.Outcome == OutcomeRequested || r.Outcome == OutcomeRetrying
		return nil
	})
	for _, le := range lineErrs {
		e.log.Warn("action: skipping an audit line", "path", e.o.Audit.Path(), "err", le)
	}
	if err != nil {
		return fmt.Errorf("action: executor: reading the audit log: %w", err)
	}
	return nil
}

// resume schedules the steps the log left open.
func (e *Executor) resume() {
	ids := make([]string, 0, len(e.actions))
	for id := range e.actions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	now := e.o.Now()
	for _, id := range ids {
		a := e.actions[id]
		if !a.pending() {
			continue
		}
		var recs []Record
		var jobs []*job
		for i := range numSteps {
			if !a.open[i] {
				continue
			}
			var why string
			switch i {
			case 1:
				why = "raw token not kept across restarts"
			default:
				why = e.missing(i)
			}
			if why != "" {
				r := a.record(i, now, OutcomeFailed, a.last[i].Attempt)
				r.Error = why
				a.last[i], a.open[i] = r, false
				recs = append(recs, r)
				e.stats.Failed++
				continue
			}
			jobs = append(jobs, &job{a: a, step: i, attempt: a.last[i].Attempt + 1, due: time.Now()})
		}
		for _, r := range recs {
			e.append(r)
		}
		if len(jobs) > 0 {
			e.inflight++
			e.log.Info("action: resuming", "id", id, "token_id", a.base.TokenID, "steps", len(jobs))
		}
		for _, j := range jobs {
			heap.Push(&e.jobs, j)
		}
	}
}

// missing says why step i cannot run, or "".
func (e *Executor) missing(i int) string {
	switch {
	case i == 0 && e.o.Deny == nil:
		return "no denier configured"
	case i == 1 && e.o.OAuth == nil:
		return "no OAuth client configured"
	case i == 1 && e.o.OAuth.o.RevocationURL == "":
		return "OAuth client has no revocation_url"
	case i == 2 && e.o.Webhook == nil:
		return "no webhook configured"
	}
	return ""
}

// Submit starts the action req asks for and returns its id. The same
// request again is a duplicate (dup true, nothing done) while the action
// is in progress or after it succeeded; after it failed, Submit runs the
// failed steps again. err is non-nil when the request was refused
// (invalid, executor closed, queue full, audit log not writable) or when
// a step could not start (its dependency is missing); such steps are
// recorded as failed, and id is set whenever the action was recorded.
func (e *Executor) Submit(req Request) (id string, dup bool, err error) {
	if err := req.validate(); err != nil {
		return "", false, fmt.Errorf("action: submit: %w", err)
	}
	if req.Steps&StepWebhook != 0 && req.WebhookType == "" {
		req.WebhookType = EventRevoke
	}
	id = ActionID(req.TokenID, req.Steps, req.WebhookType)
	now := e.o.Now()
	if req.Steps&StepDenylist != 0 && !req.DenyUntil.IsZero() && !req.DenyUntil.After(now) {
		return "", false, fmt.Errorf("action: submit: deny_until %s is not in the future", req.DenyUntil.Format(time.RFC3339))
	}

	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return "", false, ErrClosed
	}
	e.stats.Submitted++
	a := e.actions[id]
	if a != nil && a.state() != StateFailed {
		e.stats.Duplicates++
		e.mu.Unlock()
		return id, true, nil
	}
	if a == nil {
		a = &action{id: id, steps: req.Steps}
		e.actions[id] = a
	}
	a.base = Record{
		Time: now, TokenID: req.TokenID, ClientID: req.ClientID, Subject: req.Subject, JTI: req.JTI,
		Trigger: req.Trigger, Rule: req.Rule, By: req.By, Reason: req.Reason,
	}
	if req.Steps&StepWebhook != 0 {
		a.base.Event = req.WebhookType
	}
	if req.Steps&StepDenylist != 0 {
		a.base.Until = req.DenyUntil
	}
	a.hint = req.TokenTypeHint
	// The steps to run: all of a new action, the failed ones of a failed one.
	var run []int
	for i := range numSteps {
		if req.Steps&(1<<i) != 0 && a.last[i].Outcome != OutcomeSucceeded {
			run = append(run, i)
		}
	}
	var recs []Record
	var errs []error
	var start []int
	full := e.inflight >= e.o.Queue
	for _, i := range run {
		why := e.missing(i)
		if why == "" && i == 1 && len(req.Token) == 0 {
			why = "no raw token given"
		}
		if why == "" && full {
			why = fmt.Sprintf("queue full (%d actions in progress)", e.o.Queue)
		}
		if why != "" {
			r := a.record(i, now, OutcomeFailed, 0)
			r.Error = why
			a.last[i] = r
			recs = append(recs, r)
			errs = append(errs, fmt.Errorf("%s: %s", stepNames[i], why))
			e.stats.Failed++
			continue
		}
		a.last[i] = a.record(i, now, OutcomeRequested, 0)
		a.open[i] = true
		recs = append(recs, a.last[i])
		start = append(start, i)
	}
	if full {
		e.stats.QueueFull++
	}
	if len(start) > 0 {
		e.inflight++
		if req.Steps&StepRevoke != 0 && a.open[1] {
			a.token.wipe()
			a.token = secret(bytes.Clone(req.Token))
		}
	}
	e.mu.Unlock()

	// The records go to the log before any step starts, so that a step's
	// outcome never precedes its request in it.
	var auditErr error
	for _, r := range recs {
		if err := e.append(r); err != nil && auditErr == nil {
			auditErr = err
		}
	}
	e.mu.Lock()
	if auditErr != nil && len(start) > 0 {
		// Unrecorded, the action would neither resume after a restart nor
		// be idempotent: refuse it, visibly.
		for _, i := range start {
			r := a.record(i, now, OutcomeFailed, 0)
			r.Error = "audit log not writable"
			a.last[i], a.open[i] = r, false
			e.stats.Failed++
		}
		a.token.wipe()
		a.token = nil
		e.inflight--
		e.mu.Unlock()
		return id, false, fmt.Errorf("action: submit %s: %w", id, auditErr)
	}
	for _, i := range start {
		heap.Push(&e.jobs, &job{a: a, step: i, attempt: 1, due: time.Now()})
	}
	e.mu.Unlock()
	e.notify(len(start))
	if len(start) > 0 {
		e.log.Info("action: submitted", "id", id, "token_id", req.TokenID, "steps", req.Steps.String(), "trigger", req.Trigger, "rule", req.Rule, "by", req.By)
	}
	switch {
	case full:
		e.log.Error("action: queue full", "id", id, "token_id", req.TokenID, "queue", e.o.Queue)
		return id, false, fmt.Errorf("%w (%d actions in progress): %s recorded as failed", ErrQueueFull, e.o.Queue, id)
	case len(errs) > 0:
		err := fmt.Errorf("action: %s: %w", id, errors.Join(errs...))
		e.log.Error("action: steps could not start", "id", id, "token_id", req.TokenID, "err", err)
		return id, false, err
	}
	return id, false, nil
}

func (e *Executor) notify(n int) {
	for range min(n, cap(e.wake)) {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// append writes r to the audit log; a failure is logged and counted.
func (e *Executor) append(r Record) error {
	err := e.o.Audit.Append(r)
	if err != nil {
		e.mu.Lock()
		e.stats.AuditErrors++
		e.mu.Unlock()
		e.log.Error("action: audit log not written", "id", r.ID, "step", r.Step, "outcome", r.Outcome, "token_id", r.TokenID, "err", err)
	}
	return err
}

func (e *Executor) work() {
	defer e.wg.Done()
	for {
		j := e.take()
		if j == nil {
			return
		}
		e.attempt(j)
	}
}

// take waits for a job that is due; nil when closing.
func (e *Executor) take() *job {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		e.mu.Lock()
		if e.closing {
			e.mu.Unlock()
			return nil
		}
		var timer <-chan time.Time
		if len(e.jobs) > 0 {
			d := time.Until(e.jobs[0].due)
			if d <= 0 {
				j := heap.Pop(&e.jobs).(*job)
				e.mu.Unlock()
				return j
			}
			if t == nil {
				t = time.NewTimer(d)
			} else {
				t.Reset(d)
			}
			timer = t.C
		}
		e.mu.Unlock()
		select {
		case <-e.wake:
		case <-timer:
		case <-e.quit:
		}
	}
}

// attempt runs one attempt of a step and records its outcome.
func (e *Executor) attempt(j *job) {
	a := j.a
	ctx, cancel := context.WithTimeout(e.runCtx, e.o.StepTimeout)
	var err error
	switch j.step {
	case 0:
		err = e.o.Deny.Deny(ctx, a.base.TokenID, a.base.Reason, a.base.By, a.base.Until)
	case 1:
		err = e.o.OAuth.Revoke(ctx, a.token, a.hint)
	case 2:
		err = e.o.Webhook.Send(ctx, Event{
			ID: a.id, Type: a.base.Event, TokenID: a.base.TokenID, ClientID: a.base.ClientID,
			Subject: a.base.Subject, JTI: a.base.JTI, Reason: a.base.Reason, Rule: a.base.Rule,
			By: a.base.By, Time: a.base.Time,
		})
	}
	cancel()

	now := e.o.Now()
	interrupted := err != nil && e.runCtx.Err() != nil
	var retry bool
	var delay time.Duration
	outcome := OutcomeSucceeded
	var msg string
	if err != nil {
		msg = errorText(err, a.token)
		switch {
		case interrupted:
			outcome, msg = OutcomeRetrying, "interrupted by shutdown: "+msg
		case e.retryable(j.step, err) && j.attempt < e.o.MaxAttempts:
			outcome, retry, delay = OutcomeRetrying, true, e.delay(j.attempt, err)
		default:
			outcome = OutcomeFailed
			if e.retryable(j.step, err) {
				msg = fmt.Sprintf("gave up after %d attempts: %s", j.attempt, msg)
			}
		}
	}
	e.mu.Lock()
	r := a.record(j.step, now, outcome, j.attempt)
	e.mu.Unlock()
	r.Error = msg
	if retry {
		r.NextAttempt = now.Add(delay)
	}
	// Recorded before the next attempt can run, so the log keeps the order.
	e.append(r)
	attrs := []any{"id", a.id, "step", stepNames[j.step], "token_id", r.TokenID, "attempt", j.attempt}
	switch outcome {
	case OutcomeSucceeded:
		e.log.Info("action: step succeeded", attrs...)
	case OutcomeRetrying:
		e.log.Warn("action: step will be retried", append(attrs, "err", msg, "next_attempt", r.NextAttempt)...)
	default:
		e.log.Error("action: step failed", append(attrs, "err", msg)...)
	}

	e.mu.Lock()
	a.last[j.step] = r
	switch {
	case retry:
		e.stats.Retries++
		heap.Push(&e.jobs, &job{a: a, step: j.step, attempt: j.attempt + 1, due: time.Now().Add(delay)})
	case interrupted:
		// Left open: a restart resumes it (or fails it, for revoke).
	default:
		if outcome == OutcomeSucceeded {
			e.stats.Succeeded++
		} else {
			e.stats.Failed++
		}
		a.open[j.step] = false
		if j.step == 1 {
			a.token.wipe()
			a.token = nil
		}
		if !a.pending() {
			e.inflight--
		}
	}
	e.mu.Unlock()
	if retry {
		e.notify(1)
	}
}

func (e *Executor) retryable(step int, err error) bool {
	if step == 0 {
		var p permanentError
		return !errors.As(err, &p) && !errors.Is(err, context.Canceled)
	}
	return IsRetryable(err)
}

// delay is the wait before attempt n+1: Backoff doubled n-1 times, capped
// at MaxBackoff, ±20%, or a longer Retry-After.
func (e *Executor) delay(n int, err error) time.Duration {
	d := e.o.Backoff
	for i := 1; i < n && d < e.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, e.o.MaxBackoff)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	var h *HTTPError
	if errors.As(err, &h) && h.RetryAfter > d {
		d = min(h.RetryAfter, MaxRetryAfter)
	}
	return d
}

// errorText is err's message for records and logs: scrubbed of the raw
// token, at most 512 bytes.
func errorText(err error, token secret) string {
	s := scrub(err.Error(), token)
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}

// Status reports an action's state.
func (e *Executor) Status(id string) (ActionStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.actions[id]
	if a == nil {
		return ActionStatus{}, false
	}
	s := ActionStatus{ID: id, TokenID: a.base.TokenID, State: a.state()}
	for i := range numSteps {
		if a.steps&(1<<i) != 0 && a.last[i].ID != "" {
			s.Steps = append(s.Steps, a.last[i])
		}
	}
	return s, true
}

// Failed returns the latest record of every step that failed for good
// (and was not run again since), oldest first.
func (e *Executor) Failed() []Record {
	return e.records(func(a *action, i int) bool { return !a.open[i] && a.last[i].Outcome == OutcomeFailed })
}

// Pending returns the latest record of every step in progress, oldest first.
func (e *Executor) Pending() []Record {
	return e.records(func(a *action, i int) bool { return a.open[i] })
}

func (e *Executor) records(keep func(*action, int) bool) []Record {
	e.mu.Lock()
	var out []Record
	for _, a := range e.actions {
		for i := range numSteps {
			if a.steps&(1<<i) != 0 && a.last[i].ID != "" && keep(a, i) {
				out = append(out, a.last[i])
			}
		}
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Step < out[j].Step
	})
	return out
}

// Stats reports the Executor's counters.
func (e *Executor) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Pending = e.inflight
	return s
}

// Close stops the workers, waiting for attempts in flight until ctx ends
// (then cancelling them), and wipes the raw tokens held. Steps not
// finished stay open in the audit log, for the next Executor to resume.
// Close does not close the Audit.
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil
	}
	e.closing = true
	close(e.quit)
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		e.cancel()
		<-done
	}
	e.cancel()
	e.mu.Lock()
	for _, a := range e.actions {
		a.token.wipe()
		a.token = nil
	}
	e.mu.Unlock()
	return err
}
