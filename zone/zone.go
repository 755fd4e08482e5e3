package zone

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Scope is whom a rule applies to.
type Scope uint8

// Scopes. The zero Scope is unset and invalid.
const (
	// Global rules apply to every request.
	Global Scope = iota + 1
	// Client rules apply to the requests of one client_id.
	Client
	// Credential rules apply to the requests of one credential, named by
	// its token id (the fingerprint, never the token).
	Credential
)

// Effect is what a rule does with the requests it matches.
type Effect uint8

// Effects. The zero Effect is unset and invalid.
const (
	// Allow rules make a zone: requests outside it are violations.
	Allow Effect = iota + 1
	// Deny rules make requests they match violations.
	Deny
)

// Action is what a violation of a rule calls for.
type Action uint8

// Actions, weakest first. The zero Action is unset and invalid.
const (
	// StepUp asks for more proof (re-authentication) before serving.
	StepUp Action = iota + 1
	// Block refuses the request.
	Block
)

var (
	scopeNames  = [...]string{Global: "global", Client: "client", Credential: "credential"}
	effectNames = [...]string{Allow: "allow", Deny: "deny"}
	actionNames = [...]string{StepUp: "step_up", Block: "block"}
)

func (s Scope) String() string  { return name(scopeNames[:], uint8(s), "Scope") }
func (e Effect) String() string { return name(effectNames[:], uint8(e), "Effect") }
func (a Action) String() string { return name(actionNames[:], uint8(a), "Action") }

func name(names []string, v uint8, typ string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// ParseScope parses "global", "client" or "credential".
func ParseScope(s string) (Scope, error) {
	v, err := parse(scopeNames[:], s, "scope")
	return Scope(v), err
}

// ParseEffect parses "allow" or "deny".
func ParseEffect(s string) (Effect, error) {
	v, err := parse(effectNames[:], s, "effect")
	return Effect(v), err
}

// ParseAction parses "block" or "step_up".
func ParseAction(s string) (Action, error) {
	v, err := parse(actionNames[:], s, "action")
	return Action(v), err
}

func parse(names []string, s, what string) (uint8, error) {
	for i, n := range names {
		if n != "" && n == s {
			return uint8(i), nil
		}
	}
	var want []string
	for _, n := range names {
		if n != "" {
			want = append(want, n)
		}
	}
	return 0, fmt.Errorf("zone: unknown %s %q (want %s)", what, s, strings.Join(want, ", "))
}

// MarshalText and UnmarshalText let the enums be read from and written
// to configuration (YAML, JSON) as their names.

func (s Scope) MarshalText() ([]byte, error)         { return marshal(s.String(), s.valid()) }
func (e Effect) MarshalText() ([]byte, error)        { return marshal(e.String(), e.valid()) }
func (a Action) MarshalText() ([]byte, error)        { return marshal(a.String(), a.valid()) }
func (s *Scope) UnmarshalText(b []byte) (err error)  { *s, err = ParseScope(string(b)); return err }
func (e *Effect) UnmarshalText(b []byte) (err error) { *e, err = ParseEffect(string(b)); return err }
func (a *Action) UnmarshalText(b []byte) (err error) { *a, err = ParseAction(string(b)); return err }

func marshal(s string, ok bool) ([]byte, error) {
	if !ok {
		return nil, fmt.Errorf("zone: cannot marshal %s", s)
	}
	return []byte(s), nil
}

func (s Scope) valid() bool  { return s >= Global && s <= Credential }
func (e Effect) valid() bool { return e == Allow || e == Deny }
func (a Action) valid() bool { return a == StepUp || a == Block }

// Rule is one allow or deny rule, as configured.
type Rule struct {
	// Name identifies the rule in violations and errors; unique in a Set.
	// It may not contain commas, double quotes or control characters.
	Name string
	// Scope and Subject say whose requests the rule applies to: every
	// request (Global, no Subject), one client_id (Client) or one token
	// id (Credential).
	Scope   Scope
	Subject string
	Effect  Effect
	// The criteria are alternatives: a request matches the rule if its
	// address is in one of CIDRs, or its AS number is one of ASNs, or its
	// country is one of Countries (ISO 3166-1 alpha-2). An unknown AS
	// number (0) or country ("") matches nothing. At least one is needed.
	CIDRs     []netip.Prefix
	ASNs      []uint32
	Countries []string
	// Action is what a violation of the rule calls for.
	Action Action
	// Comment is free text that Format writes above the rule (Propose
	// puts its evidence here). Compile ignores it.
	Comment string
}

// RuleError is one thing wrong with one rule. Compile joins them.
type RuleError struct {
	// Index is the rule's position in the slice given to Compile.
	Index int
	Name  string
	// Field is the rule field at fault, with an element index for a list
	// ("countries[1]"); "" when the rule as a whole is.
	Field  string
	Reason string
}

func (e *RuleError) Error() string {
	var b strings.Builder
	b.WriteString("zone: rule ")
	b.WriteString(strconv.Itoa(e.Index))
	if e.Name != "" {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.Name))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Set is a compiled, immutable set of rules. It is safe for concurrent
// use. A nil *Set has no rules.
type Set struct {
	rules   []rule
	buckets []bucket // [0] is the global one
	clients map[string]int32
	creds   map[string]int32
	geo     bool
}

// rule is a Rule ready to match.
type rule struct {
	name      string
	scope     Scope
	subject   string
	effect    Effect
	action    Action
	prefixes  []netip.Prefix // masked, unmapped, disjoint, sorted
	asns      []uint32       // sorted, unique
	countries []uint16       // packed codes, sorted, unique
}

// bucket holds the rules of one scope and subject.
type bucket struct {
	scope   Scope
	subject string
	deny    []int32 // rule indexes, in configuration order
	allow   []int32
	// For a request outside every allow rule: their names, joined by
	// ", ", and the strongest of their actions.
	allowNames  string
	allowAction Action
}

// Compile validates rules and indexes them by scope and subject. Its
// error joins a *RuleError for everything wrong with every rule.
func Compile(rules []Rule) (*Set, error) {
	s := &Set{
		rules:   make([]rule, len(rules)),
		buckets: []bucket{{scope: Global}},
		clients: map[string]int32{},
		creds:   map[string]int32{},
	}
	var errs []error
	seen := make(map[string]int, len(rules))
	for i := range rules {
		r := &rules[i]
		bad := func(field, format string, a ...any) {
			errs = append(errs, &RuleError{Index: i, Name: r.Name, Field: field, Reason: fmt.Sprintf(format, a...)})
		}
		switch j, dup := seen[r.Name]; {
		case r.Name == "":
			bad("name", "required")
		case strings.ContainsFunc(r.Name, func(c rune) bool { return c == ',' || c == '"' || c < ' ' || c == 0x7f }):
			bad("name", "must not contain commas, double quotes or control characters")
		case dup:
			bad("name", "duplicate of rule %d", j)
		default:
			seen[r.Name] = i
		}
		switch {
		case !r.Scope.valid():
			bad("scope", "%s", unset(uint8(r.Scope), "global, client or credential"))
		case r.Scope == Global && r.Subject != "":
			bad("subject", "must be empty for global scope")
		case r.Scope != Global && r.Subject == "":
			bad("subject", "required for %s scope", r.Scope)
		}
		if !r.Effect.valid() {
			bad("effect", "%s", unset(uint8(r.Effect), "allow or deny"))
		}
		if !r.Action.valid() {
			bad("action", "%s", unset(uint8(r.Action), "block or step_up"))
		}
		if len(r.CIDRs) == 0 && len(r.ASNs) == 0 && len(r.Countries) == 0 {
			bad("", "needs at least one of cidrs, asns, countries")
		}
		c := rule{name: r.Name, scope: r.Scope, subject: r.Subject, effect: r.Effect, action: r.Action}
		for k, p := range r.CIDRs {
			if !p.IsValid() {
				bad(fmt.Sprintf("cidrs[%d]", k), "invalid prefix")
				continue
			}
			c.prefixes = append(c.prefixes, normalize(p))
		}
		c.prefixes = disjoint(c.prefixes)
		for k, n := range r.ASNs {
			if n == 0 {
				bad(fmt.Sprintf("asns[%d]", k), "0 is not an AS number")
				continue
			}
			c.asns = append(c.asns, n)
		}
		slices.Sort(c.asns)
		c.asns = slices.Compact(c.asns)
		for k, cc := range r.Countries {
			code := pack(cc)
			if code == 0 {
				bad(fmt.Sprintf("countries[%d]", k), "%q is not a two-letter country code", cc)
				continue
			}
			c.countries = append(c.countries, code)
		}
		slices.Sort(c.countries)
		c.countries = slices.Compact(c.countries)
		s.geo = s.geo || len(c.asns) > 0 || len(c.countries) > 0
		s.rules[i] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i := range s.rules {
		r := &s.rules[i]
		b := s.bucket(r.scope, r.subject)
		if r.effect == Deny {
			b.deny = append(b.deny, int32(i))
			continue
		}
		b.allow = append(b.allow, int32(i))
		if b.allowNames != "" {
			b.allowNames += ", "
		}
		b.allowNames += r.name
		b.allowAction = max(b.allowAction, r.action)
	}
	return s, nil
}

func unset(v uint8, want string) string {
	if v == 0 {
		return "required (" + want + ")"
	}
	return "invalid value " + strconv.Itoa(int(v)) + " (want " + want + ")"
}

// bucket returns the bucket of scope and subject, adding it if need be.
func (s *Set) bucket(scope Scope, subject string) *bucket {
	if scope == Global {
		return &s.buckets[0]
	}
	m := s.clients
	if scope == Credential {
		m = s.creds
	}
	i, ok := m[subject]
	if !ok {
		i = int32(len(s.buckets))
		m[subject] = i
		s.buckets = append(s.buckets, bucket{scope: scope, subject: subject})
	}
	return &s.buckets[i]
}

// normalize masks p and writes an IPv4-mapped prefix as IPv4, the form
// Check compares addresses in.
func normalize(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// disjoint sorts ps and drops the prefixes another one contains: two
// prefixes are either disjoint or nested, so what is left is disjoint
// and a binary search finds the one an address may be in.
func disjoint(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return slices.Clip(out)
}

// pack returns a two-letter country code as a number (upper case), or 0
// when s is not two ASCII letters.
func pack(s string) uint16 {
	if len(s) != 2 {
		return 0
	}
	a, b := s[0]&^0x20, s[1]&^0x20 // upper case
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return 0
	}
	return uint16(a)<<8 | uint16(b)
}

// NeedsGeo reports whether any rule matches on AS numbers or countries,
// which a request can only be checked against with a GeoIP database.
func (s *Set) NeedsGeo() bool { return s != nil && s.geo }

// Len returns the number of rules.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}
