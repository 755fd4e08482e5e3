package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// ScopeMap says which OAuth scope a request exercises, from its method and
// path: rules like "GET /v1/contacts" → contacts:read. A rule's path
// covers itself and everything under it ("/v1/contacts" covers
// "/v1/contacts/42", not "/v1/contacts-archive"); the longest matching
// path wins, and a rule with a method wins over one without. The zero
// ScopeMap and a nil one map nothing.
type ScopeMap struct {
	rules []scopeRule
}

type scopeRule struct {
	method, path, scope string
}

// NewScopeMap compiles rules: keys are "METHOD /path" or "/path" (any
// method), values the scope. Errors name the bad key.
func NewScopeMap(rules map[string]string) (*ScopeMap, error) {
	m := &ScopeMap{}
	var errs []string
	for k, scope := range rules {
		method, path, ok := strings.Cut(strings.TrimSpace(k), " ")
		if !ok {
			method, path = "", method
		}
		path = strings.TrimSpace(path)
		switch {
		case !strings.HasPrefix(path, "/"):
			errs = append(errs, fmt.Sprintf("%q: want \"METHOD /path\" or \"/path\"", k))
			continue
		case method != "" && strings.ToUpper(method) != method:
			errs = append(errs, fmt.Sprintf("%q: the method must be upper case", k))
			continue
		case scope == "" || strings.ContainsAny(scope, " \t\n"):
			errs = append(errs, fmt.Sprintf("%q: scope %q must be one non-empty word", k, scope))
			continue
		}
		m.rules = append(m.rules, scopeRule{method: method, path: path, scope: scope})
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return nil, fmt.Errorf("inventory: scope map: %s", strings.Join(errs, "; "))
	}
	slices.SortFunc(m.rules, func(a, b scopeRule) int {
		return cmp.Or(cmp.Compare(len(b.path), len(a.path)), cmp.Compare(len(b.method), len(a.method)),
			cmp.Compare(a.path, b.path), cmp.Compare(a.method, b.method))
	})
	return m, nil
}

// Lookup returns the scope a request exercises, or "".
func (m *ScopeMap) Lookup(method, path string) string {
	if m == nil {
		return ""
	}
	for i := range m.rules {
		r := &m.rules[i]
		if (r.method == "" || r.method == method) && under(path, r.path) {
			return r.scope
		}
	}
	return ""
}

// under reports whether path is p or lies below it.
func under(path, p string) bool {
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || strings.HasSuffix(p, "/") || path[len(p)] == '/'
}
