package inventory

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Dormant is a credential unused for a while.
type Dormant struct {
	TokenID  string        `json:"token_id"`
	ClientID string        `json:"client_id,omitempty"`
	Subject  string        `json:"subject,omitempty"`
	LastSeen time.Time     `json:"last_seen"`
	Idle     time.Duration `json:"idle_ns"`
	// IdleDays is Idle in whole days, for people and spreadsheets.
	IdleDays  int       `json:"idle_days"`
	FirstSeen time.Time `json:"first_seen"`
	Requests  uint64    `json:"requests"`
	Granted   []string  `json:"scopes_granted,omitempty"`
}

// FindDormant returns the entries not seen for at least after before now,
// longest idle first.
func FindDormant(entries []Entry, now time.Time, after time.Duration) []Dormant {
	var out []Dormant
	for i := range entries {
		e := &entries[i]
		idle := now.Sub(e.LastSeen)
		if e.Requests == 0 || idle < after {
			continue
		}
		out = append(out, Dormant{TokenID: e.TokenID, ClientID: e.ClientID, Subject: e.Subject, LastSeen: e.LastSeen,
			Idle: idle, IdleDays: int(idle / (24 * time.Hour)), FirstSeen: e.FirstSeen, Requests: e.Requests, Granted: e.Granted})
	}
	slices.SortFunc(out, func(a, b Dormant) int {
		return cmp.Or(cmp.Compare(b.Idle, a.Idle), cmp.Compare(a.TokenID, b.TokenID))
	})
	return out
}

// ScopeUse is a scope and its uses in the window.
type ScopeUse struct {
	Scope    string    `json:"scope"`
	Requests uint64    `json:"requests"`
	Last     time.Time `json:"last"`
}

// CredentialScopes is one credential's granted scopes against its used
// ones.
type CredentialScopes struct {
	TokenID  string   `json:"token_id"`
	ClientID string   `json:"client_id,omitempty"`
	Granted  []string `json:"scopes_granted"`
	// Used is the scopes used in the window, most used first.
	Used []ScopeUse `json:"scopes_used"`
	// Unused is granted and not used in the window: candidates to remove.
	Unused []string `json:"scopes_unused"`
	// Requests is the credential's requests; ObservedFrom the start of
	// the evidence (the window's start, or the credential's first use if
	// later): a scope not used since then.
	Requests     uint64    `json:"requests"`
	ObservedFrom time.Time `json:"observed_from"`
	LastSeen     time.Time `json:"last_seen"`
	// Partial: some used scopes were not kept (more than MaxValues), so
	// Unused may name scopes that were used.
	Partial bool `json:"partial,omitempty"`
}

// ClientScopes is the same for every credential of a client_id together.
type ClientScopes struct {
	ClientID    string     `json:"client_id"`
	Credentials int        `json:"credentials"`
	Granted     []string   `json:"scopes_granted"`
	Used        []ScopeUse `json:"scopes_used"`
	Unused      []string   `json:"scopes_unused"`
	Requests    uint64     `json:"requests"`
	Partial     bool       `json:"partial,omitempty"`
}

// ScopeReport is the unused-scope report: machine-readable input to an
// access review.
type ScopeReport struct {
	Generated time.Time `json:"generated"`
	// Window is the observation window: a scope counts as used if it was
	// used after Generated-Window.
	Window      time.Duration      `json:"window_ns"`
	Credentials []CredentialScopes `json:"credentials"`
	Clients     []ClientScopes     `json:"clients"`
}

// UnusedScopes reports, per credential and per client_id, the scopes
// granted and not used in the window before now. Credentials whose
// granted scopes are unknown (no scope claim, no introspection) are left
// out: nothing can be said of them.
func UnusedScopes(entries []Entry, now time.Time, window time.Duration) ScopeReport {
	rep := ScopeReport{Generated: now.UTC(), Window: window, Credentials: []CredentialScopes{}, Clients: []ClientScopes{}}
	from := now.Add(-window)
	type agg struct {
		c       ClientScopes
		granted map[string]bool
		used    map[string]*ScopeUse
	}
	clients := map[string]*agg{}
	for i := range entries {
		e := &entries[i]
		if len(e.Granted) == 0 {
			continue
		}
		cs := CredentialScopes{TokenID: e.TokenID, ClientID: e.ClientID, Granted: e.Granted, Used: []ScopeUse{},
			Requests: e.Requests, ObservedFrom: from, LastSeen: e.LastSeen, Partial: e.Other.Used > 0}
		if e.FirstSeen.After(from) {
			cs.ObservedFrom = e.FirstSeen
		}
		used := map[string]bool{}
		for _, c := range e.Used {
			if c.Last.Before(from) {
				continue
			}
			used[c.Value] = true
			cs.Used = append(cs.Used, ScopeUse{Scope: c.Value, Requests: c.Requests, Last: c.Last})
		}
		cs.Unused = []string{}
		for _, g := range e.Granted {
			if !used[g] {
				cs.Unused = append(cs.Unused, g)
			}
		}
		sortUses(cs.Used)
		rep.Credentials = append(rep.Credentials, cs)

		if e.ClientID == "" {
			continue
		}
		a := clients[e.ClientID]
		if a == nil {
			a = &agg{c: ClientScopes{ClientID: e.ClientID}, granted: map[string]bool{}, used: map[string]*ScopeUse{}}
			clients[e.ClientID] = a
		}
		a.c.Credentials++
		a.c.Requests += e.Requests
		a.c.Partial = a.c.Partial || cs.Partial
		for _, g := range e.Granted {
			a.granted[g] = true
		}
		for _, u := range cs.Used {
			have := a.used[u.Scope]
			if have == nil {
				have = &ScopeUse{Scope: u.Scope}
				a.used[u.Scope] = have
			}
			have.Requests += u.Requests
			if u.Last.After(have.Last) {
				have.Last = u.Last
			}
		}
	}
	slices.SortFunc(rep.Credentials, func(a, b CredentialScopes) int {
		return cmp.Or(cmp.Compare(len(b.Unused), len(a.Unused)), cmp.Compare(a.TokenID, b.TokenID))
	})
	for _, a := range clients {
		c := a.c
		c.Used, c.Unused = []ScopeUse{}, []string{}
		for g := range a.granted {
			c.Granted = append(c.Granted, g)
			if a.used[g] == nil {
				c.Unused = append(c.Unused, g)
			}
		}
		for _, u := range a.used {
			c.Used = append(c.Used, *u)
		}
		slices.Sort(c.Granted)
		slices.Sort(c.Unused)
		sortUses(c.Used)
		rep.Clients = append(rep.Clients, c)
	}
	slices.SortFunc(rep.Clients, func(a, b ClientScopes) int { return cmp.Compare(a.ClientID, b.ClientID) })
	return rep
}

func sortUses(u []ScopeUse) {
	slices.SortFunc(u, func(a, b ScopeUse) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Scope, b.Scope))
	})
}

// Collect reads every entry of inv, sorted by token id.
func Collect(ctx context.Context, inv Inventory) ([]Entry, error) {
	var out []Entry
	err := inv.Each(ctx, func(e *Entry) error {
		out = append(out, *e)
		return nil
	})
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.TokenID, b.TokenID) })
	return out, err
}
