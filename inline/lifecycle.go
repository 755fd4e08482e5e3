package inline

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/action"
	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/enforce"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/zone"
)

// Lifecycle configures what the Checker does for credentials' lifecycle
// besides deciding: every part is optional.
type Lifecycle struct {
	// Inventory records every judged request of a credential (anonymous
	// requests are not credentials and are left out).
	Inventory inventory.Inventory
	// Scopes maps requests to the scope they exercise, for the inventory's
	// scopes-used and the unused-scope report.
	Scopes *inventory.ScopeMap
	// GeoIP gives requests a country, a location and an ASN (inline
	// requests carry none): the profile's network and travel signals and
	// zones by ASN or country need them.
	GeoIP Enricher
	// Zones are the network zones: a request outside its zone is refused
	// (block) or challenged (step_up) by rule, without being judged or
	// taught to the profile.
	Zones *zone.Set
	// OnWake is the least level of the first requests after a long
	// silence (the scoring's dormancy signal); Allow leaves them to the
	// score.
	OnWake policy.Level
	// Introspect looks opaque tokens up at the IdP (RFC 7662) for their
	// client_id and scopes; an inactive token is refused (invalid_token).
	Introspect Introspector
	// Response revokes credentials whose requests trigger it.
	Response *Response
}

// Enricher adds GeoIP fields an event lacks; safe for concurrent use.
type Enricher interface{ Enrich(ev *event.Event) }

// Introspector answers RFC 7662 introspection, cached by token id; safe
// for concurrent use.
type Introspector interface {
	Lookup(ctx context.Context, tokenID string, token []byte) (action.Introspection, error)
}

// Submitter runs response actions (action.Executor); Submit must not
// block for long: it queues.
type Submitter interface {
	Submit(r action.Request) (id string, dup bool, err error)
}

// Response is the automated response: when Triggers fire for a credential
// (a block, too many step-ups in an hour), Steps run through Actions.
type Response struct {
	Actions  Submitter
	Triggers *action.Triggers
	Steps    action.Steps
	// DenyFor bounds the denial; 0 means until removed.
	DenyFor time.Duration
	// Submitted is called after each submission (metrics); may be nil.
	Submitted func(rule string, err error)
}

// SignalNetworkZone is the reason of a request outside its network zone.
const SignalNetworkZone = "network_zone"

// SignalDormancy is the scoring model's dormancy signal; with OnWake its
// reason sets the least level.
const SignalDormancy = "dormancy"

// Inventory returns the Checker's credential inventory, or nil.
func (c *Checker) Inventory() inventory.Inventory { return c.opts.Lifecycle.Inventory }

// keepsSecret reports whether a request's raw credential must outlive its
// fingerprinting: an RFC 7009 revocation needs it.
func (c *Checker) keepsSecret() bool {
	r := c.opts.Lifecycle.Response
	return r != nil && r.Steps&action.StepRevoke != 0
}

// introspect looks an opaque bearer token up (before its bytes are wiped)
// and fills the claims introspection gives. It returns the problem code of
// an inactive token, or "". A failed lookup is logged and the request is
// judged without the answer: the IdP being down must not take the API
// down with it.
func (c *Checker) introspect(ctx context.Context, w *work, tokenID string) string {
	in := c.opts.Lifecycle.Introspect
	if in == nil || w.cred.Claims.JWT || (w.cred.Kind != gate.Bearer && w.cred.Kind != gate.DPoP) {
		return ""
	}
	res, err := in.Lookup(ctx, tokenID, w.cred.Secret)
	if err != nil {
		c.opts.Metrics.badRequest("introspection_failed")
		c.log.Warn("token introspection failed: judged without it", "err", err)
		return ""
	}
	if !res.Active {
		c.opts.Metrics.badRequest("token_inactive")
		return enforce.CodeInvalidToken
	}
	cl := &w.cred.Claims
	cl.ClientID, cl.Subject, cl.JTI = res.ClientID, res.Subject, res.JTI
	cl.Scope = strings.Join(res.Scope, " ")
	if res.CNF.JKT != "" {
		cl.JKT = res.CNF.JKT
	}
	if res.CNF.X5TS256 != "" {
		cl.X5T = res.CNF.X5TS256
	}
	return ""
}

// checkZone reports the network zone the request breaks, filling the
// verdict of a refused request: the rule's level and a reason naming it.
func (c *Checker) checkZone(w *work, v *gate.Verdict) bool {
	z := c.opts.Lifecycle.Zones
	if z == nil {
		return false
	}
	ev := &w.ev[0]
	zr := zone.Request{TokenID: ev.TokenID, ClientID: ev.ClientID, Addr: ev.SourceIP, ASN: ev.ASN, Country: ev.Country}
	viol, bad := z.Check(&zr)
	if !bad {
		return false
	}
	level := policy.Block
	if viol.Action == zone.StepUp {
		level = policy.StepUp
	}
	v.Level, v.Decided = level, level
	w.det = viol.AppendDetail(w.det[:0], &zr)
	v.Reasons = append(v.Reasons, decision.Reason{Signal: SignalNetworkZone, Detail: string(w.det)})
	c.opts.Metrics.zoneViolation(viol.Rule)
	return true
}

// onWake raises the level of a request the dormancy signal flagged.
func (c *Checker) onWake(v *gate.Verdict) {
	l := c.opts.Lifecycle.OnWake
	if l == policy.Allow || v.Level >= l {
		return
	}
	for i := range v.Reasons {
		if v.Reasons[i].Signal == SignalDormancy {
			v.Level, v.Decided = l, max(v.Decided, l)
			return
		}
	}
}

// record adds the request to the inventory and runs the response when it
// triggers. sv is nil for requests refused before judging (zones).
func (c *Checker) record(w *work, r *gate.Request, v *gate.Verdict, sv *store.Verdict, now time.Time) {
	l := &c.opts.Lifecycle
	if v.Kind == gate.Anonymous {
		return
	}
	ev := &w.ev[0]
	if inv := l.Inventory; inv != nil {
		// In w, not on the stack: an interface call would move it to the
		// heap on every request.
		u := &w.use
		*u = inventory.Use{TokenID: v.TokenID, ClientID: ev.ClientID, Subject: w.cred.Claims.Subject, Kind: v.Kind.String(),
			Time: now.UnixNano(), Endpoint: ev.Endpoint, ASN: ev.ASN, Country: ev.Country, Granted: w.cred.Claims.Scope,
			Used: l.Scopes.Lookup(r.Method, ev.Path), Risk: v.Risk, Level: v.Level}
		if v.Shadow {
			u.Level = v.Decided // what vigil decided, shadow or not
		}
		if u.Level != policy.Allow && len(v.Reasons) > 0 {
			u.Signal = strongest(v.Reasons)
		}
		switch {
		case w.bindFail != "":
			u.BindingFailure = w.bindFail
		case v.Problem != "":
		case w.cred.Kind == gate.DPoP && c.opts.DPoP != nil:
			u.Binding = inventory.DPoP
		case w.cred.Claims.X5T != "" && c.opts.MTLS:
			u.Binding = inventory.MTLS
		}
		if r.Method != "" && ev.Endpoint != "" {
			w.ep = append(append(append(w.ep[:0], r.Method...), ' '), ev.Endpoint...)
			u.Endpoint = unsafeString(w.ep)
		}
		inv.Observe(u)
		*u = inventory.Use{}
	}
	if resp := l.Response; resp != nil && !v.Shadow && (sv == nil || sv.Denial == nil) {
		if fire, rule := resp.Triggers.Observe(v.TokenID, v.Level.String(), now); fire {
			c.respond(w, v, rule)
		}
	}
}

// respond submits the response to a credential that triggered it.
func (c *Checker) respond(w *work, v *gate.Verdict, rule string) {
	resp := c.opts.Lifecycle.Response
	req := action.Request{TokenID: v.TokenID, ClientID: w.cred.Claims.ClientID, Subject: w.cred.Claims.Subject,
		JTI: w.cred.Claims.JTI, Trigger: action.TriggerPolicy, Rule: rule, By: "vigil", Steps: resp.Steps,
		Reason: "automated response: " + rule + " (risk " + formatRisk(v.Risk) + ")"}
	if resp.DenyFor > 0 {
		req.DenyUntil = time.Now().Add(resp.DenyFor)
	}
	if resp.Steps&action.StepRevoke != 0 {
		// w.keep is wiped when Check returns: this copy is wiped once the
		// executor has taken its own.
		req.Token = bytes.Clone(w.keep)
	}
	for _, s := range []*string{&req.ClientID, &req.Subject, &req.JTI} {
		if len(*s) > action.MaxField {
			*s = ""
		} else {
			*s = strings.Clone(*s) // they point into the request's buffers
		}
	}
	// Submit records the action in the audit log (an fsync) before
	// queueing it: not on the request's time. Triggers fire at most once
	// an hour per credential, which bounds these goroutines.
	c.responding.Go(func() {
		defer clear(req.Token)
		_, dup, err := resp.Actions.Submit(req)
		if err != nil && !errors.Is(err, action.ErrQueueFull) {
			c.log.Error("automated response not submitted", "token_id", req.TokenID, "rule", rule, "err", err)
		}
		if !dup && resp.Submitted != nil {
			resp.Submitted(rule, err)
		}
	})
}

// strongest names the reason with the largest contribution (operator
// reasons, which have none, first).
func strongest(rs []decision.Reason) string {
	best := 0
	for i := range rs {
		if rs[i].Contribution == 0 && rs[best].Contribution != 0 {
			return rs[i].Signal
		}
		if rs[i].Contribution > rs[best].Contribution {
			best = i
		}
	}
	return rs[best].Signal
}

func formatRisk(r float64) string { return strconv.FormatFloat(r, 'f', 2, 64) }

// WaitResponses waits until the automated responses submitted so far are
// handed to their executor: before it is closed, once requests stopped.
func (c *Checker) WaitResponses() { c.responding.Wait() }
