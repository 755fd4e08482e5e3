// Package inventory keeps the list of credentials nobody else has: every
// credential vigil has seen, by token id, with what it was granted and
// what it did — first and last use, requests, scopes granted against scopes
// used, the networks, countries and endpoints it came from and called, its
// risk and decisions, and whether it is bound to a key or a certificate.
//
// The inventory is built from vigil's own observations (Use, one per
// judged request or replayed event) and answers the lifecycle questions:
// which credentials are dormant (Dormant), which scopes were granted and
// never used (UnusedScopes), which integrations still send plain bearer
// tokens (Entry.Binding).
//
// Every set an entry keeps is bounded (MaxValues distinct values per
// dimension; later values are counted in Other), and the inventory holds
// at most MaxEntries credentials, so a flood of made-up credentials cannot
// exhaust memory: when full, the entry with the fewest requests of a small
// sample is dropped, never an established credential for a one-off.
//
// Memory keeps the inventory in this process (saved to a file with a data
// directory); Shared aggregates a replica's uses and merges them into a
// Sink every few seconds (package redisstore implements one), so that
// every replica's admin API answers for all of them.
package inventory

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-sec/vigil/policy"
)

// Bounds of an entry.
const (
	// MaxValues is how many distinct values of each dimension (endpoint,
	// ASN, country, scope used) an entry keeps.
	MaxValues = 32
	// MaxHistory is how many of an entry's latest non-allow decisions it
	// keeps.
	MaxHistory = 16
	// MaxGranted bounds the scopes granted kept per credential.
	MaxGranted = 64
)

// Binding says how a request proved it was sent by the credential's holder.
type Binding uint8

const (
	// Unbound: a plain bearer token or API key, usable by whoever holds it.
	Unbound Binding = iota
	// DPoP: a DPoP-bound token with a valid proof (RFC 9449).
	DPoP
	// MTLS: a certificate-bound token presented over its mTLS connection
	// (RFC 8705).
	MTLS
	numBindings
)

var bindingNames = [numBindings]string{"unbound", "dpop", "mtls"}

func (b Binding) String() string {
	if b < numBindings {
		return bindingNames[b]
	}
	return "unknown"
}

// Use is one observed request of a credential: what Observe learns from.
// Its strings may point into the caller's buffers: the inventory copies
// what it keeps.
type Use struct {
	TokenID  string
	ClientID string
	Subject  string
	// Kind is how the credential was presented: bearer, dpop, api_key.
	Kind string
	Time int64 // Unix nanoseconds
	// Endpoint is the route called, e.g. "GET /v1/accounts/{id}".
	Endpoint string
	ASN      uint32
	Country  string
	// Granted is the space-separated scopes the credential carries (the
	// JWT scope claim, or introspection); "" when unknown.
	Granted string
	// Used is the scope the request exercised; "" when unknown.
	Used string
	// Risk and Level are vigil's decision; Signal names the strongest
	// reason of a decision other than allow.
	Risk   float64
	Level  policy.Level
	Signal string
	// Binding is the proof the request carried; BindingFailure the RFC
	// error code when a binding check failed ("" otherwise).
	Binding        Binding
	BindingFailure string
}

// Count is one value of a dimension and its uses.
type Count struct {
	Value    string    `json:"value"`
	Requests uint64    `json:"requests"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
}

// Decisions counts an entry's decisions by level.
type Decisions struct {
	Allow    uint64 `json:"allow"`
	Throttle uint64 `json:"throttle"`
	StepUp   uint64 `json:"step_up_auth"`
	Block    uint64 `json:"block"`
}

func (d *Decisions) add(l policy.Level, n uint64) {
	switch l {
	case policy.Allow:
		d.Allow += n
	case policy.Throttle:
		d.Throttle += n
	case policy.StepUp:
		d.StepUp += n
	default:
		d.Block += n
	}
}

func (d *Decisions) merge(o Decisions) {
	d.Allow += o.Allow
	d.Throttle += o.Throttle
	d.StepUp += o.StepUp
	d.Block += o.Block
}

// BindingStatus says how an entry's requests were bound.
type BindingStatus struct {
	// Requests by binding: unbound, dpop, mtls.
	Unbound uint64 `json:"unbound"`
	DPoP    uint64 `json:"dpop"`
	MTLS    uint64 `json:"mtls"`
	// Failures counts requests refused by a binding check; LastFailure is
	// the latest one's RFC error code.
	Failures      uint64    `json:"failures"`
	LastFailure   string    `json:"last_failure,omitempty"`
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
}

// Status summarizes the binding: "dpop", "mtls", "unbound", "mixed" (bound
// and unbound requests both seen) or "" (no request seen).
func (b BindingStatus) Status() string {
	bound := b.DPoP + b.MTLS
	switch {
	case bound == 0 && b.Unbound == 0:
		return ""
	case bound == 0:
		return "unbound"
	case b.Unbound > 0 || (b.DPoP > 0 && b.MTLS > 0):
		return "mixed"
	case b.DPoP > 0:
		return "dpop"
	}
	return "mtls"
}

// Decision is one of an entry's non-allow decisions.
type Decision struct {
	Time   time.Time    `json:"time"`
	Level  policy.Level `json:"level"`
	Risk   float64      `json:"risk"`
	Signal string       `json:"signal,omitempty"`
}

// Entry is what the inventory knows of one credential.
type Entry struct {
	TokenID   string    `json:"token_id"`
	ClientID  string    `json:"client_id,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Kind      string    `json:"kind,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Requests  uint64    `json:"requests"`
	Decisions Decisions `json:"decisions"`
	// Risk and Level are those of the latest request; MaxRisk the highest,
	// first reached at MaxRiskAt.
	Risk      float64      `json:"risk"`
	Level     policy.Level `json:"level"`
	MaxRisk   float64      `json:"max_risk"`
	MaxRiskAt time.Time    `json:"max_risk_at,omitzero"`
	// Granted is the scopes the credential carries, as last seen.
	Granted   []string `json:"scopes_granted,omitempty"`
	Used      []Count  `json:"scopes_used,omitempty"`
	Endpoints []Count  `json:"endpoints,omitempty"`
	ASNs      []Count  `json:"asns,omitempty"`
	Countries []Count  `json:"countries,omitempty"`
	// Other counts requests whose value did not fit the MaxValues kept,
	// per dimension.
	Other   Other         `json:"other,omitzero"`
	Binding BindingStatus `json:"binding"`
	// History is the latest non-allow decisions, oldest first.
	History []Decision `json:"history,omitempty"`

	slot int // in its Memory shard's list
}

// Other counts the requests of values an entry had no room for.
type Other struct {
	Used      uint64 `json:"scopes_used,omitempty"`
	Endpoints uint64 `json:"endpoints,omitempty"`
	ASNs      uint64 `json:"asns,omitempty"`
	Countries uint64 `json:"countries,omitempty"`
}

// observe adds u to e. Strings kept are copied.
func (e *Entry) observe(u *Use) {
	at := time.Unix(0, u.Time).UTC()
	if e.Requests == 0 || at.Before(e.FirstSeen) {
		e.FirstSeen = at
	}
	latest := !at.Before(e.LastSeen)
	if latest {
		e.LastSeen = at
	}
	e.Requests++
	e.Decisions.add(u.Level, 1)
	if latest || e.Requests == 1 {
		e.Risk, e.Level = u.Risk, u.Level
		setString(&e.ClientID, u.ClientID)
		setString(&e.Subject, u.Subject)
		setString(&e.Kind, u.Kind)
		if u.Granted != "" && !sameScopes(e.Granted, u.Granted) {
			e.Granted = splitScopes(u.Granted)
		}
	}
	if u.Risk > e.MaxRisk || (u.Risk == e.MaxRisk && at.Before(e.MaxRiskAt)) {
		e.MaxRisk, e.MaxRiskAt = u.Risk, at // the earliest of equals
	}
	if u.Endpoint != "" {
		e.Endpoints = addCount(e.Endpoints, u.Endpoint, 1, at, at, &e.Other.Endpoints)
	}
	if u.Used != "" {
		e.Used = addCount(e.Used, u.Used, 1, at, at, &e.Other.Used)
	}
	if u.ASN != 0 {
		var buf [10]byte
		b := strconv.AppendUint(buf[:0], uint64(u.ASN), 10)
		// A view of buf: addCount keeps a copy when it adds the value.
		e.ASNs = addCount(e.ASNs, unsafe.String(&b[0], len(b)), 1, at, at, &e.Other.ASNs)
	}
	if u.Country != "" {
		e.Countries = addCount(e.Countries, u.Country, 1, at, at, &e.Other.Countries)
	}
	switch {
	case u.BindingFailure != "":
		e.Binding.Failures++
		if !at.Before(e.Binding.LastFailureAt) {
			setString(&e.Binding.LastFailure, u.BindingFailure)
			e.Binding.LastFailureAt = at
		}
	case u.Binding == DPoP:
		e.Binding.DPoP++
	case u.Binding == MTLS:
		e.Binding.MTLS++
	default:
		e.Binding.Unbound++
	}
	if u.Level != policy.Allow {
		e.History = addHistory(e.History, Decision{Time: at, Level: u.Level, Risk: u.Risk, Signal: strings.Clone(u.Signal)})
	}
}

// Merge adds o, another view of the same credential (a replica's, or a
// saved one), to e.
func (e *Entry) Merge(o *Entry) {
	if o.Requests == 0 {
		return
	}
	if e.Requests == 0 || o.FirstSeen.Before(e.FirstSeen) {
		e.FirstSeen = o.FirstSeen
	}
	if e.Requests == 0 || !o.LastSeen.Before(e.LastSeen) {
		e.LastSeen = o.LastSeen
		e.Risk, e.Level = o.Risk, o.Level
		setString(&e.ClientID, o.ClientID)
		setString(&e.Subject, o.Subject)
		setString(&e.Kind, o.Kind)
		if len(o.Granted) > 0 {
			e.Granted = slices.Clone(o.Granted)
		}
	}
	e.Requests += o.Requests
	e.Decisions.merge(o.Decisions)
	if o.MaxRisk > e.MaxRisk || (o.MaxRisk == e.MaxRisk && o.MaxRiskAt.Before(e.MaxRiskAt)) {
		e.MaxRisk, e.MaxRiskAt = o.MaxRisk, o.MaxRiskAt
	}
	for _, c := range o.Used {
		e.Used = addCount(e.Used, c.Value, c.Requests, c.First, c.Last, &e.Other.Used)
	}
	for _, c := range o.Endpoints {
		e.Endpoints = addCount(e.Endpoints, c.Value, c.Requests, c.First, c.Last, &e.Other.Endpoints)
	}
	for _, c := range o.ASNs {
		e.ASNs = addCount(e.ASNs, c.Value, c.Requests, c.First, c.Last, &e.Other.ASNs)
	}
	for _, c := range o.Countries {
		e.Countries = addCount(e.Countries, c.Value, c.Requests, c.First, c.Last, &e.Other.Countries)
	}
	e.Other.Used += o.Other.Used
	e.Other.Endpoints += o.Other.Endpoints
	e.Other.ASNs += o.Other.ASNs
	e.Other.Countries += o.Other.Countries
	b := &e.Binding
	b.Unbound += o.Binding.Unbound
	b.DPoP += o.Binding.DPoP
	b.MTLS += o.Binding.MTLS
	b.Failures += o.Binding.Failures
	if o.Binding.LastFailure != "" && !o.Binding.LastFailureAt.Before(b.LastFailureAt) {
		b.LastFailure, b.LastFailureAt = o.Binding.LastFailure, o.Binding.LastFailureAt
	}
	for _, d := range o.History {
		e.History = addHistory(e.History, d)
	}
}

// Clone returns a deep copy of e.
func (e *Entry) Clone() Entry {
	c := *e
	c.slot = 0
	c.Granted = slices.Clone(e.Granted)
	c.Used = slices.Clone(e.Used)
	c.Endpoints = slices.Clone(e.Endpoints)
	c.ASNs = slices.Clone(e.ASNs)
	c.Countries = slices.Clone(e.Countries)
	c.History = slices.Clone(e.History)
	return c
}

// Sort orders the entry's value lists by requests, most first, then value.
func (e *Entry) Sort() {
	for _, cs := range [...][]Count{e.Used, e.Endpoints, e.ASNs, e.Countries} {
		slices.SortFunc(cs, func(a, b Count) int {
			if a.Requests != b.Requests {
				if a.Requests > b.Requests {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Value, b.Value)
		})
	}
}

// addCount adds n requests of value v (first and last seen at first, last)
// to cs, or to *other when cs is full.
func addCount(cs []Count, v string, n uint64, first, last time.Time, other *uint64) []Count {
	for i := range cs {
		c := &cs[i]
		if c.Value != v {
			continue
		}
		c.Requests += n
		if first.Before(c.First) {
			c.First = first
		}
		if last.After(c.Last) {
			c.Last = last
		}
		return cs
	}
	if len(cs) >= MaxValues {
		*other += n
		return cs
	}
	return append(cs, Count{Value: strings.Clone(v), Requests: n, First: first, Last: last})
}

// addHistory inserts d in time order, keeping the latest MaxHistory.
func addHistory(h []Decision, d Decision) []Decision {
	i := len(h)
	for i > 0 && h[i-1].Time.After(d.Time) {
		i--
	}
	if len(h) >= MaxHistory {
		if i == 0 {
			return h // older than everything kept
		}
		copy(h, h[1:i])
		h[i-1] = d
		return h
	}
	return slices.Insert(h, i, d)
}

func setString(dst *string, s string) {
	if s != "" && s != *dst {
		*dst = strings.Clone(s)
	}
}

// splitScopes splits a space-separated scope string, deduplicated and
// sorted, at most MaxGranted.
func splitScopes(s string) []string {
	f := strings.Fields(s)
	slices.Sort(f)
	f = slices.Compact(f)
	if len(f) > MaxGranted {
		f = f[:MaxGranted]
	}
	for i := range f {
		f[i] = strings.Clone(f[i])
	}
	return slices.Clip(f)
}

// sameScopes reports whether have (sorted) holds exactly the scopes of s.
func sameScopes(have []string, s string) bool {
	n := 0
	for f := range strings.FieldsSeq(s) {
		if _, ok := slices.BinarySearch(have, f); !ok {
			return false
		}
		n++
	}
	return n == len(have) || (n > len(have) && len(have) == MaxGranted)
}
