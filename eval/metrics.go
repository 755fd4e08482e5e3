package eval

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/simulate"
)

// Report is the evaluation of every decider on one labeled traffic.
type Report struct {
	Events int `json:"events"`
	// Credentials in the traffic; Attacked have at least one attacker
	// event, Benign have none.
	Credentials int             `json:"credentials"`
	Attacked    int             `json:"attacked_credentials"`
	Benign      int             `json:"benign_credentials"`
	Deciders    []DeciderReport `json:"deciders"`
	Targets     []TargetCheck   `json:"targets"`
	Comparisons []Comparison    `json:"comparisons"`
}

// DeciderReport is one decider's metrics.
type DeciderReport struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Attacks has one row per attack scenario, by name, then the row
	// AllAttacks ("all attacks") pooling them.
	Attacks []AttackRow `json:"attacks"`
	// Benign pools the benign credentials; Archetypes splits them by the
	// scenario of their owner events, by name.
	Benign     BenignRow   `json:"benign"`
	Archetypes []BenignRow `json:"benign_archetypes"`
}

// AllAttacks names the row that pools every attack scenario.
const AllAttacks = "all attacks"

// AttackRow is the metrics of one attack scenario (or all of them).
//
// An attack is a (credential, scenario) pair: the attacker events of that
// scenario on that credential.
type AttackRow struct {
	Scenario       string `json:"scenario"`
	AttackerEvents int    `json:"attacker_events"`
	Attacks        int    `json:"attacks"`
	// RecallThrottle is the share of attacker events decided ≥ throttle
	// (event-level recall); RecallStepUp ≥ step_up_auth.
	RecallThrottle Ratio `json:"recall_throttle"`
	RecallStepUp   Ratio `json:"recall_step_up_auth"`
	// Detected is the share of attacks with at least one attacker event
	// ≥ throttle (credential-level detection).
	Detected Ratio `json:"detected"`
	// ToThrottle is, over the attacks, the median number of attacker
	// events before the first one ≥ throttle; an attack never caught
	// counts as infinite.
	ToThrottle Median `json:"median_events_to_throttle"`
	// Allowed is the share of attacker events allowed.
	Allowed Ratio `json:"allowed"`
	// Collateral is the share of the owner's events not allowed, among
	// the owner's events on an attacked credential that come after the
	// attack's first event (in input order).
	Collateral Ratio `json:"collateral"`
	// PerAttack lists each attack, by token id.
	PerAttack []AttackDetail `json:"per_attack"`
}

// AttackDetail is one attack on one credential.
type AttackDetail struct {
	TokenID        string `json:"token_id"`
	Scenario       string `json:"scenario"`
	AttackerEvents int    `json:"attacker_events"`
	// ToThrottle is the attacker events before the first ≥ throttle;
	// Never when none was.
	ToThrottle Count `json:"events_to_throttle"`
	// OwnerAfter is the owner's events after the attack's first event;
	// OwnerHit those of them not allowed.
	OwnerAfter int `json:"owner_events_after"`
	OwnerHit   int `json:"owner_events_after_not_allowed"`
}

// BenignRow is the metrics of the credentials that were never attacked.
type BenignRow struct {
	// Archetype is empty for the row of all benign credentials.
	Archetype   string `json:"archetype,omitempty"`
	Credentials int    `json:"credentials"`
	Events      int    `json:"events"`
	// EverStepUp is the share of credentials with at least one event
	// ≥ step_up_auth.
	EverStepUp Ratio `json:"ever_step_up_auth"`
	// EverThrottle is the share of credentials with at least one event
	// ≥ throttle.
	EverThrottle Ratio `json:"ever_throttle"`
	// EventsThrottle is the share of their events ≥ throttle.
	EventsThrottle Ratio `json:"events_throttle"`
}

// Ratio is N of Of; with Of 0 it has no value.
type Ratio struct{ N, Of int }

// Value returns N/Of, and false if Of is 0.
func (r Ratio) Value() (float64, bool) {
	if r.Of == 0 {
		return 0, false
	}
	return float64(r.N) / float64(r.Of), true
}

// MarshalJSON writes {"n":…,"of":…,"value":…}, value null without one.
func (r Ratio) MarshalJSON() ([]byte, error) {
	var v any
	if x, ok := r.Value(); ok {
		v = math.Round(x*1e6) / 1e6
	}
	return json.Marshal(struct {
		N     int `json:"n"`
		Of    int `json:"of"`
		Value any `json:"value"`
	}{r.N, r.Of, v})
}

// Count is a number of events, or Never (infinite).
type Count int

// Never is the Count of an attack never escalated.
const Never Count = math.MaxInt

func (c Count) String() string {
	if c == Never {
		return "never"
	}
	return strconv.Itoa(int(c))
}

// MarshalJSON writes the number, or "never".
func (c Count) MarshalJSON() ([]byte, error) {
	if c == Never {
		return []byte(`"never"`), nil
	}
	return strconv.AppendInt(nil, int64(c), 10), nil
}

// Median is the median of Counts, Never counting as infinite. With an
// even number of values it is the larger of the two middle ones, so that
// it never flatters the decider. Of is the number of values; Never the
// values that are Never.
type Median struct {
	Value Count
	Of    int
	Never int
}

// MarshalJSON writes {"value": n|"never"|null, "of": …, "never": …}.
func (m Median) MarshalJSON() ([]byte, error) {
	var v any
	if m.Of > 0 {
		v = m.Value
	}
	return json.Marshal(struct {
		Value any `json:"value"`
		Of    int `json:"of"`
		Never int `json:"never"`
	}{v, m.Of, m.Never})
}

func median(cs []Count) Median {
	m := Median{Of: len(cs)}
	if len(cs) == 0 {
		return m
	}
	s := slices.Clone(cs)
	slices.Sort(s)
	for _, c := range s {
		if c == Never {
			m.Never++
		}
	}
	m.Value = s[len(s)/2]
	return m
}

// Report computes the metrics of every decider over the events added.
func (e *Evaluator) Report() *Report {
	t := e.truth()
	r := &Report{Events: len(e.recs), Credentials: len(e.credID), Attacked: t.attacked, Benign: len(e.credID) - t.attacked,
		Comparisons: []Comparison{}}
	for i, d := range e.ds {
		r.Deciders = append(r.Deciders, e.decider(t, d, e.levels[i]))
	}
	r.Targets = checkTargets(&r.Deciders[0])
	for i := 1; i < len(r.Deciders); i++ {
		r.Comparisons = append(r.Comparisons, compare(&r.Deciders[0], &r.Deciders[i]))
	}
	return r
}

// truth is what the labels say, whatever the decider.
type truth struct {
	attacked int
	// attacks by (credential, scenario), in order of first event.
	attacks []attack
	byKey   map[attackKey]int
	// per credential: its attacks (indices), whether attacked, archetype
	// (scenario of its first owner event, -1 if none).
	credAttacks [][]int
	archetype   []int
}

type attackKey struct {
	cred int32
	scen uint16
}

type attack struct {
	attackKey
	first int // index of its first attacker event
}

func (e *Evaluator) truth() *truth {
	t := &truth{byKey: make(map[attackKey]int), credAttacks: make([][]int, len(e.credID)), archetype: make([]int, len(e.credID))}
	for i := range t.archetype {
		t.archetype[i] = -1
	}
	for i, r := range e.recs {
		if r.role == simulate.Owner {
			if t.archetype[r.cred] < 0 {
				t.archetype[r.cred] = int(r.scen)
			}
			continue
		}
		k := attackKey{r.cred, r.scen}
		if _, ok := t.byKey[k]; !ok {
			t.byKey[k] = len(t.attacks)
			if len(t.credAttacks[r.cred]) == 0 {
				t.attacked++
			}
			t.credAttacks[r.cred] = append(t.credAttacks[r.cred], len(t.attacks))
			t.attacks = append(t.attacks, attack{attackKey: k, first: i})
		}
	}
	return t
}

// attackAcc accumulates one attack's numbers.
type attackAcc struct {
	events, throttle, stepUp, allowed int
	toThrottle                        Count
	ownerAfter, ownerHit              int
}

func (e *Evaluator) decider(t *truth, d Decider, lv []policy.Level) DeciderReport {
	acc := make([]attackAcc, len(t.attacks))
	for i := range acc {
		acc[i].toThrottle = Never
	}
	// Owner events after the first of any attack on their credential.
	type credAcc struct {
		events, throttle, ownerAfter, ownerHit int
		stepUp                                 bool
	}
	creds := make([]credAcc, len(e.credID))
	for i, r := range e.recs {
		l := lv[i]
		c := &creds[r.cred]
		c.events++
		if l >= policy.Throttle {
			c.throttle++
		}
		if l >= policy.StepUp {
			c.stepUp = true
		}
		if r.role == simulate.Attacker {
			a := &acc[t.byKey[attackKey{r.cred, r.scen}]]
			if l >= policy.Throttle && a.toThrottle == Never {
				a.toThrottle = Count(a.events)
			}
			a.events++
			switch {
			case l >= policy.StepUp:
				a.stepUp++
				a.throttle++
			case l >= policy.Throttle:
				a.throttle++
			default:
				a.allowed++
			}
			continue
		}
		var after bool
		for _, k := range t.credAttacks[r.cred] {
			if t.attacks[k].first < i {
				after = true
				acc[k].ownerAfter++
				if l != policy.Allow {
					acc[k].ownerHit++
				}
			}
		}
		if after {
			c.ownerAfter++
			if l != policy.Allow {
				c.ownerHit++
			}
		}
	}

	rep := DeciderReport{Name: d.Name(), Description: d.Describe()}
	// Attack rows, by scenario name, then all attacks.
	byScen := make(map[string][]int)
	for k, a := range t.attacks {
		name := e.scen[a.scen]
		byScen[name] = append(byScen[name], k)
	}
	row := func(name string, ks []int, collateral Ratio) AttackRow {
		ar := AttackRow{Scenario: name, Attacks: len(ks)}
		var tt []Count
		for _, k := range ks {
			a := &acc[k]
			ar.AttackerEvents += a.events
			ar.RecallThrottle.N += a.throttle
			ar.RecallStepUp.N += a.stepUp
			ar.Allowed.N += a.allowed
			if a.toThrottle != Never {
				ar.Detected.N++
			}
			ar.Collateral.N += a.ownerHit
			ar.Collateral.Of += a.ownerAfter
			tt = append(tt, a.toThrottle)
			ar.PerAttack = append(ar.PerAttack, AttackDetail{
				TokenID: e.credID[t.attacks[k].cred], Scenario: e.scen[t.attacks[k].scen], AttackerEvents: a.events,
				ToThrottle: a.toThrottle, OwnerAfter: a.ownerAfter, OwnerHit: a.ownerHit,
			})
		}
		ar.RecallThrottle.Of, ar.RecallStepUp.Of, ar.Allowed.Of = ar.AttackerEvents, ar.AttackerEvents, ar.AttackerEvents
		ar.Detected.Of = len(ks)
		ar.ToThrottle = median(tt)
		if collateral.Of >= 0 {
			ar.Collateral = collateral
		}
		slices.SortFunc(ar.PerAttack, func(x, y AttackDetail) int {
			return cmp.Or(cmp.Compare(x.TokenID, y.TokenID), cmp.Compare(x.Scenario, y.Scenario))
		})
		return ar
	}
	for _, name := range sortedKeys(byScen) {
		rep.Attacks = append(rep.Attacks, row(name, byScen[name], Ratio{Of: -1}))
	}
	if len(t.attacks) > 0 {
		// Pooled collateral counts each owner event once, however many
		// attacks its credential suffers.
		var coll Ratio
		for ci := range creds {
			coll.N += creds[ci].ownerHit
			coll.Of += creds[ci].ownerAfter
		}
		all := make([]int, len(t.attacks))
		for k := range all {
			all[k] = k
		}
		rep.Attacks = append(rep.Attacks, row(AllAttacks, all, coll))
	}

	// Benign credentials: never attacked.
	byArch := make(map[string]*BenignRow)
	rep.Benign = BenignRow{}
	for ci := range creds {
		if len(t.credAttacks[ci]) > 0 {
			continue
		}
		c := &creds[ci]
		name := "-"
		if a := t.archetype[ci]; a >= 0 && e.scen[a] != "" {
			name = e.scen[a]
		}
		br := byArch[name]
		if br == nil {
			br = &BenignRow{Archetype: name}
			byArch[name] = br
		}
		for _, b := range []*BenignRow{&rep.Benign, br} {
			b.Credentials++
			b.Events += c.events
			b.EventsThrottle.N += c.throttle
			if c.stepUp {
				b.EverStepUp.N++
			}
			if c.throttle > 0 {
				b.EverThrottle.N++
			}
		}
	}
	fin := func(b *BenignRow) {
		b.EverStepUp.Of, b.EverThrottle.Of, b.EventsThrottle.Of = b.Credentials, b.Credentials, b.Events
	}
	fin(&rep.Benign)
	for _, name := range sortedKeys(byArch) {
		fin(byArch[name])
		rep.Archetypes = append(rep.Archetypes, *byArch[name])
	}
	return rep
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
