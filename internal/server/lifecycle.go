package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/action"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/zone"
)

// Paths of the lifecycle API on the admin listener.
const (
	PathActions      = "/v1/actions"        // GET: pending and failed response actions
	PathZoneProposal = "/v1/zones/proposal" // GET: zones learned from the inventory, as YAML
	// POST PathTokens + "/{token_id}/revoke"
)

// maxRevokeBody bounds one POST .../revoke.
const maxRevokeBody = 16 << 10

// RevokeRequest is the body of POST /v1/tokens/{token_id}/revoke.
type RevokeRequest struct {
	Reason string `json:"reason"`
	By     string `json:"by"`
	// Steps are those to run (denylist, revoke, webhook); empty means
	// lifecycle.response.steps.
	Steps []string `json:"steps,omitempty"`
	// Token is the raw credential, needed by the revoke step (RFC 7009):
	// vigil checks that it has the token id's fingerprint, sends it to the
	// IdP and keeps it in memory only until then.
	Token string `json:"token,omitempty"`
	// Until ends the denial (RFC 3339); empty means lifecycle.response.deny_for.
	Until string `json:"until,omitempty"`
}

// RevokeAnswer is the answer to a revocation.
type RevokeAnswer struct {
	ActionID  string              `json:"action_id"`
	Duplicate bool                `json:"duplicate"`
	Status    action.ActionStatus `json:"status"`
}

// ActionsAnswer is the body of GET /v1/actions.
type ActionsAnswer struct {
	AuditLog string          `json:"audit_log"`
	Stats    action.Stats    `json:"stats"`
	Pending  []action.Record `json:"pending"`
	Failed   []action.Record `json:"failed"`
}

func (s *Server) executorOr(w http.ResponseWriter) *action.Executor {
	lc := s.Checker.Lifecycle
	if lc == nil || lc.Actions == nil {
		problem(w, http.StatusNotFound, "no response actions are configured: set lifecycle.response.audit_log (every action is recorded there)")
		return nil
	}
	return lc.Actions
}

// revoke answers POST /v1/tokens/{token_id}/revoke: 202 with the action's
// id and state once it is recorded and queued; its steps then run (and
// retry) in the background, and GET /v1/actions shows failures.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	ex := s.executorOr(w)
	if ex == nil {
		return
	}
	id := r.PathValue("token_id")
	if err := checkTokenID(id); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	var req RevokeRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRevokeBody))
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	clear(b)
	if err != nil {
		problem(w, http.StatusBadRequest, "body: want a JSON object with reason, and optionally by, steps, token, until")
		return
	}
	token := []byte(req.Token)
	req.Token = ""
	defer clear(token)
	for _, f := range []struct{ name, v string }{{"reason", req.Reason}, {"by", req.By}} {
		if err := checkText(f.name, f.v, f.name == "reason"); err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	lc := s.Checker.Lifecycle
	steps := lc.Steps
	if len(req.Steps) > 0 {
		steps = 0
		for i, name := range req.Steps {
			switch name {
			case action.StepNameDenylist:
				steps |= action.StepDenylist
			case action.StepNameRevoke:
				steps |= action.StepRevoke
			case action.StepNameWebhook:
				steps |= action.StepWebhook
			default:
				problem(w, http.StatusBadRequest, fmt.Sprintf("steps[%d]: want denylist, revoke or webhook", i))
				return
			}
		}
	}
	if steps == 0 {
		problem(w, http.StatusBadRequest, "steps: none given and lifecycle.response.steps is empty")
		return
	}
	if steps&action.StepRevoke != 0 {
		if len(token) == 0 {
			problem(w, http.StatusBadRequest, "token: the revoke step (RFC 7009) sends the raw credential to the IdP, and vigil never keeps it: give it in token, or leave revoke out of steps")
			return
		}
		fp := s.Checker.Parts.Fingerprinter.Clone()
		got := fp.AppendID(nil, event.Secret(token))
		if string(got) != id {
			problem(w, http.StatusBadRequest, "token: its fingerprint is not this token_id (is the fingerprint key the server's?)")
			return
		}
	} else if len(token) > 0 {
		problem(w, http.StatusBadRequest, "token: given without the revoke step; vigil does not take raw credentials it does not need")
		return
	}
	until := time.Time{}
	if d := lc.DenyFor; d > 0 {
		until = time.Now().Add(d)
	}
	if req.Until != "" {
		t, err := time.Parse(time.RFC3339, req.Until)
		if err != nil || !t.After(time.Now()) {
			problem(w, http.StatusBadRequest, "until: want a future RFC 3339 time")
			return
		}
		until = t
	}
	by := req.By
	if by == "" {
		by = "operator@" + r.RemoteAddr
	}
	areq := action.Request{TokenID: id, Token: token, Trigger: action.TriggerOperator, By: by, Reason: req.Reason,
		Steps: steps, DenyUntil: until}
	if inv := s.Checker.Inventory(); inv != nil {
		if e, ok, _ := inv.Get(r.Context(), id); ok {
			areq.ClientID, areq.Subject = e.ClientID, e.Subject
		}
	}
	aid, dup, err := ex.Submit(areq)
	if err != nil && aid == "" {
		problem(w, http.StatusServiceUnavailable, "the action was not recorded: "+err.Error())
		return
	}
	st, _ := ex.Status(aid)
	s.log.Info("revocation requested", "token_id", id, "action_id", aid, "steps", steps.String(), "by", by, "duplicate", dup)
	status := http.StatusAccepted
	if err != nil {
		status = http.StatusServiceUnavailable // recorded as failed: GET /v1/actions shows it
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(RevokeAnswer{ActionID: aid, Duplicate: dup, Status: st})
}

// actions answers GET /v1/actions: the executor's counters and the
// actions still running or given up.
func (s *Server) actions(w http.ResponseWriter, _ *http.Request) {
	ex := s.executorOr(w)
	if ex == nil {
		return
	}
	a := ActionsAnswer{AuditLog: s.Checker.Lifecycle.Audit, Stats: ex.Stats(), Pending: ex.Pending(), Failed: ex.Failed()}
	if a.Pending == nil {
		a.Pending = []action.Record{}
	}
	if a.Failed == nil {
		a.Failed = []action.Record{}
	}
	writeJSON(w, a)
}

// zoneProposal answers GET /v1/zones/proposal: allow rules per client and
// credential learned from the networks the inventory saw, as YAML for an
// operator to review and paste into lifecycle.zones.
func (s *Server) zoneProposal(w http.ResponseWriter, r *http.Request) {
	inv := s.inventoryOr(w)
	if inv == nil {
		return
	}
	var o zone.ProposeOptions
	q := r.URL.Query()
	if v := q.Get("min_share"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f >= 1 {
			problem(w, http.StatusBadRequest, "min_share: want a number between 0 and 1")
			return
		}
		o.MinShare = f
	}
	if v := q.Get("min_requests"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			problem(w, http.StatusBadRequest, "min_requests: want a positive number")
			return
		}
		o.MinRequests = n
	}
	var days time.Duration
	if v := q.Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3650 {
			problem(w, http.StatusBadRequest, "days: want a number of days from 1 to 3650")
			return
		}
		days = time.Duration(n) * 24 * time.Hour
	}
	var obs []zone.Observed
	ok := s.scan(w, r, inv, func(e *inventory.Entry) {
		obs = append(obs, Observed([]inventory.Entry{*e}, days)...)
	})
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	if err := zone.Format(w, zone.Propose(obs, o)); err != nil {
		s.log.Debug("zone proposal", "err", err)
	}
}

// Observed turns inventory entries into what zone.Propose learns from:
// per client and per credential, requests by ASN (countries where no ASN
// is known). With days > 0, only networks a credential used within its
// first days count: a zone learned from the start of its life, before
// anyone could have stolen it.
func Observed(es []inventory.Entry, days time.Duration) []zone.Observed {
	var out []zone.Observed
	early := func(e *inventory.Entry, c inventory.Count) bool {
		return days <= 0 || !c.First.After(e.FirstSeen.Add(days))
	}
	add := func(sc zone.Scope, subject string, e *inventory.Entry) {
		var withASN uint64
		for _, c := range e.ASNs {
			if !early(e, c) {
				continue
			}
			asn, err := strconv.ParseUint(c.Value, 10, 32)
			if err != nil {
				continue
			}
			out = append(out, zone.Observed{Scope: sc, Subject: subject, ASN: uint32(asn), Requests: c.Requests})
			withASN += c.Requests
		}
		if withASN > 0 {
			return
		}
		for _, c := range e.Countries {
			if !early(e, c) {
				continue
			}
			out = append(out, zone.Observed{Scope: sc, Subject: subject, Country: c.Value, Requests: c.Requests})
		}
	}
	for i := range es {
		e := &es[i]
		add(zone.Credential, e.TokenID, e)
		if e.ClientID != "" {
			add(zone.Client, e.ClientID, e)
		}
	}
	return out
}

// dormancyLoop revokes dormant credentials (lifecycle.dormancy.revoke)
// every check_every until ctx ends. The raw token of a dormant credential
// is not at hand, so the IdP revocation step is left out.
func dormancyLoop(ctx context.Context, lc *app.Lifecycle, after, every time.Duration, log *slog.Logger) {
	steps := lc.Steps &^ action.StepRevoke
	if steps == 0 || lc.Actions == nil || lc.Inventory == nil {
		log.Warn("lifecycle.dormancy.revoke: nothing to do: steps other than revoke (denylist, webhook) and an audit log are needed")
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := revokeDormant(ctx, lc, after, steps, log); err != nil && ctx.Err() == nil {
			log.Error("dormant credentials not checked", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func revokeDormant(ctx context.Context, lc *app.Lifecycle, after time.Duration, steps action.Steps, log *slog.Logger) error {
	es, err := inventory.Collect(ctx, lc.Inventory)
	if err != nil && len(es) == 0 {
		return err
	}
	now := time.Now()
	var errs []error
	n := 0
	for _, d := range inventory.FindDormant(es, now, after) {
		_, dup, err := lc.Actions.Submit(action.Request{TokenID: d.TokenID, ClientID: d.ClientID, Subject: d.Subject,
			Trigger: action.TriggerDormancy, Rule: "dormancy", By: "vigil", Steps: steps, WebhookType: action.EventDormant,
			Reason: fmt.Sprintf("dormant: unused for %d days (lifecycle.dormancy.after %s)", d.IdleDays, FormatDays(after))})
		switch {
		case errors.Is(err, action.ErrQueueFull):
			errs = append(errs, err) // the next check tries again
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", d.TokenID, err))
		case !dup:
			n++
		}
	}
	if n > 0 {
		log.Info("dormant credentials revoked", "count", n, "after", FormatDays(after))
	}
	return errors.Join(errs...)
}

// lifecycleLoops runs the Server's background lifecycle work until ctx
// ends; wait waits for it.
type lifecycleLoops struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (s *Server) startLifecycle() *lifecycleLoops {
	ctx, cancel := context.WithCancel(context.Background())
	l := &lifecycleLoops{cancel: cancel}
	lc, d := s.Checker.Lifecycle, s.cfg.Lifecycle.Dormancy
	if lc != nil && d.Revoke {
		l.wg.Go(func() { dormancyLoop(ctx, lc, d.After.D(), d.CheckEvery.D(), s.log.With("component", "dormancy")) })
	}
	if lc != nil && lc.Inventory != nil && s.cfg.Profile.DataDir != "" {
		// A Shared inventory merges on its own; a Memory one is saved to
		// the data directory here (and on exit).
		l.wg.Go(func() { saveLoop(ctx, lc.Inventory, inventorySaveEvery, s.log) })
	}
	return l
}

// inventorySaveEvery is how often an in-process inventory is saved to the
// data directory: a crash loses at most this much of it.
const inventorySaveEvery = time.Minute

func saveLoop(ctx context.Context, inv inventory.Inventory, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := inv.Flush(ctx); err != nil && ctx.Err() == nil {
				log.Error("inventory not saved", "err", err)
			}
		}
	}
}

func (l *lifecycleLoops) stop() {
	l.cancel()
	l.wg.Wait()
}
