// Package eval measures how well a decider — vigil's engine, the seed
// profile, a per-IP rate limiter — tells a stolen credential's attacker
// from its owner, on labeled traffic: events in vigil's contract
// (docs/events.md) and, for each, whether its owner or an attacker made
// it and in which scenario.
//
// An Evaluator feeds every event, in input order, to each Decider and keeps
// one decision level per event and decider (a few bytes each), then
// computes the metrics of docs/eval.md from them: per attack scenario,
// recall at ≥ throttle and ≥ step_up_auth, how many attacker requests pass
// before the first ≥ throttle, the attacker requests allowed and the
// collateral on the owner; for credentials never attacked, how often they
// are escalated. Events are not kept: files are streamed (ReadFiles) and
// simulated traffic is judged in place (Traffic).
//
// Everything is deterministic: the same events, labels and deciders give
// the same Report, byte for byte once written.
package eval

import (
	"errors"
	"fmt"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/simulate"
)

// Label is the ground truth of one event.
type Label struct {
	RequestID string
	Role      simulate.Role
	// Scenario is the attack's name for attacker events and the benign
	// archetype's (browser, mobile, …) for owner events.
	Scenario string
	// TokenID is the credential the event belongs to; empty means the
	// event's own token_id. Metrics group events by it.
	TokenID string
}

// Options configure an Evaluator.
type Options struct {
	// Deciders to evaluate, at least one. The first is the subject: the
	// report checks the targets on it and compares it with each
	// of the others.
	Deciders []Decider
}

func (o *Options) validate() error {
	if len(o.Deciders) == 0 {
		return errors.New("eval: at least one decider is required")
	}
	seen := make(map[string]bool, len(o.Deciders))
	for _, d := range o.Deciders {
		if d == nil {
			return errors.New("eval: nil decider")
		}
		if seen[d.Name()] {
			return fmt.Errorf("eval: two deciders named %q", d.Name())
		}
		seen[d.Name()] = true
	}
	return nil
}

// Evaluator collects the deciders' levels for a stream of labeled events.
// It is not safe for concurrent use.
type Evaluator struct {
	ds     []Decider
	creds  map[string]int32
	credID []string
	scens  map[string]uint16
	scen   []string
	recs   []rec
	levels [][]policy.Level // per decider, per event
}

// rec is what the metrics need of one event.
type rec struct {
	cred int32
	scen uint16
	role simulate.Role
}

// New returns an Evaluator.
func New(opts Options) (*Evaluator, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Evaluator{
		ds:     opts.Deciders,
		creds:  make(map[string]int32),
		scens:  make(map[string]uint16),
		levels: make([][]policy.Level, len(opts.Deciders)),
	}, nil
}

// maxScenarios bounds the distinct scenario names (attacks and archetypes).
const maxScenarios = 1 << 16

// Add judges ev with every decider, in the order they were given, and
// records the levels under l. Events must come in input order: deciders
// keep state from one event to the next.
func (e *Evaluator) Add(ev *event.Event, l Label) error {
	if l.Role != simulate.Owner && l.Role != simulate.Attacker {
		return fmt.Errorf("eval: invalid role %d", l.Role)
	}
	tok := l.TokenID
	if tok == "" {
		tok = ev.TokenID
	}
	c, ok := e.creds[tok]
	if !ok {
		c = int32(len(e.credID))
		e.creds[tok] = c
		e.credID = append(e.credID, tok)
	}
	s, ok := e.scens[l.Scenario]
	if !ok {
		if len(e.scen) == maxScenarios {
			return fmt.Errorf("eval: more than %d scenario names", maxScenarios)
		}
		s = uint16(len(e.scen))
		e.scens[l.Scenario] = s
		e.scen = append(e.scen, l.Scenario)
	}
	e.recs = append(e.recs, rec{cred: c, scen: s, role: l.Role})
	for i, d := range e.ds {
		e.levels[i] = append(e.levels[i], d.Decide(ev))
	}
	return nil
}

// Events returns the number of events added.
func (e *Evaluator) Events() int { return len(e.recs) }

// Traffic evaluates simulated traffic in place, in its order. The items'
// events are copied before they are judged, so items is not changed.
func Traffic(items []simulate.Item, opts Options) (*Report, error) {
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	e.recs = make([]rec, 0, len(items))
	for i := range e.levels {
		e.levels[i] = make([]policy.Level, 0, len(items))
	}
	var ev event.Event
	for i := range items {
		ev = items[i].Event
		l := items[i].Label
		if err := e.Add(&ev, Label{RequestID: l.RequestID, Role: l.Role, Scenario: l.Scenario}); err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
	}
	return e.Report(), nil
}
