package server

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/inventory"
)

// Paths of the inventory API on the admin listener.
const (
	PathTokens        = "/v1/tokens"                // GET list; + "/" + token_id
	PathDormant       = "/v1/reports/dormant"       // GET
	PathUnusedScopes  = "/v1/reports/unused-scopes" // GET
	defaultTokenLimit = 1000
	maxTokenLimit     = 1_000_000
)

// TokenList is the body of GET /v1/tokens.
type TokenList struct {
	Generated time.Time `json:"generated"`
	// Total is how many credentials matched; Entries holds the first
	// Limit of them in the order asked for.
	Total   int               `json:"total"`
	Entries []inventory.Entry `json:"entries"`
}

// DormantReport is the body of GET /v1/reports/dormant.
type DormantReport struct {
	Generated   time.Time           `json:"generated"`
	After       string              `json:"after"`
	Credentials []inventory.Dormant `json:"credentials"`
}

// inventoryOr answers 404 when no inventory is kept and returns nil.
func (s *Server) inventoryOr(w http.ResponseWriter) inventory.Inventory {
	inv := s.Checker.Inventory()
	if inv == nil {
		problem(w, http.StatusNotFound, "no credential inventory is kept (lifecycle.inventory.enabled is false)")
	}
	return inv
}

// scan calls fn with every inventory entry (a copy fn may keep),
// answering 503 when the store fails before any entry was read. Entries
// that do not decode are skipped and logged: what could be read is
// answered rather than nothing. Callers keep only what they need, so an
// inventory of hundreds of thousands of credentials is never held twice.
func (s *Server) scan(w http.ResponseWriter, r *http.Request, inv inventory.Inventory, fn func(*inventory.Entry)) bool {
	n := 0
	err := inv.Each(r.Context(), func(e *inventory.Entry) error {
		n++
		fn(e)
		return nil
	})
	if err != nil {
		s.log.Warn("inventory: reading", "err", err)
		if n == 0 {
			problem(w, http.StatusServiceUnavailable, "the credential inventory could not be read: "+err.Error())
			return false
		}
	}
	return true
}

// tokens answers GET /v1/tokens: the inventory, filtered and sorted by the
// query (client_id, binding, dormant, sort, limit) as JSON (default), JSON
// lines (format=jsonl) or CSV (format=csv).
func (s *Server) tokens(w http.ResponseWriter, r *http.Request) {
	inv := s.inventoryOr(w)
	if inv == nil {
		return
	}
	q := r.URL.Query()
	o, err := parseListQuery(q)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	now := time.Now()
	// The first o.limit in the order asked for, kept as the entries go by:
	// at most twice the limit is held.
	var es []inventory.Entry
	total := 0
	ok := s.scan(w, r, inv, func(e *inventory.Entry) {
		if !o.match(e, now) {
			return
		}
		total++
		es = append(es, *e)
		if len(es) >= 2*o.limit {
			o.sortEntries(es)
			es = es[:o.limit]
		}
	})
	if !ok {
		return
	}
	o.sortEntries(es)
	if len(es) > o.limit {
		es = es[:o.limit]
	}
	for i := range es {
		es[i].Sort()
	}
	switch o.format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="vigil-tokens.csv"`)
		if err := inventory.WriteCSV(w, es); err != nil {
			s.log.Debug("inventory: csv", "err", err)
		}
	case "jsonl":
		w.Header().Set("Content-Type", "application/jsonl")
		enc := json.NewEncoder(w)
		for i := range es {
			if enc.Encode(&es[i]) != nil {
				return
			}
		}
	default:
		if es == nil {
			es = []inventory.Entry{}
		}
		writeJSON(w, TokenList{Generated: now.UTC(), Total: total, Entries: es})
	}
}

// token answers GET /v1/tokens/{token_id}: one credential's entry.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	inv := s.inventoryOr(w)
	if inv == nil {
		return
	}
	id := r.PathValue("token_id")
	if err := checkTokenID(id); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	e, ok, err := inv.Get(r.Context(), id)
	switch {
	case err != nil && !ok:
		s.log.Warn("inventory: reading", "err", err)
		problem(w, http.StatusServiceUnavailable, "the credential inventory could not be read")
		return
	case !ok:
		problem(w, http.StatusNotFound, "vigil has not seen this credential (or its entry expired)")
		return
	}
	e.Sort()
	writeJSON(w, e)
}

// dormant answers GET /v1/reports/dormant?after=30d.
func (s *Server) dormant(w http.ResponseWriter, r *http.Request) {
	inv := s.inventoryOr(w)
	if inv == nil {
		return
	}
	after := s.cfg.Lifecycle.Dormancy.After.D()
	if v := r.URL.Query().Get("after"); v != "" {
		d, err := ParseDays(v)
		if err != nil || d <= 0 {
			problem(w, http.StatusBadRequest, fmt.Sprintf("after: %q: want a positive duration such as 30d or 720h", v))
			return
		}
		after = d
	}
	now := time.Now()
	var es []inventory.Entry
	ok := s.scan(w, r, inv, func(e *inventory.Entry) {
		if now.Sub(e.LastSeen) >= after {
			es = append(es, *e)
		}
	})
	if !ok {
		return
	}
	d := inventory.FindDormant(es, now, after)
	if d == nil {
		d = []inventory.Dormant{}
	}
	writeJSON(w, DormantReport{Generated: now.UTC(), After: FormatDays(after), Credentials: d})
}

// unusedScopes answers GET /v1/reports/unused-scopes?window=30d.
func (s *Server) unusedScopes(w http.ResponseWriter, r *http.Request) {
	inv := s.inventoryOr(w)
	if inv == nil {
		return
	}
	window := s.cfg.Lifecycle.UnusedScopes.Window.D()
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := ParseDays(v)
		if err != nil || d <= 0 {
			problem(w, http.StatusBadRequest, fmt.Sprintf("window: %q: want a positive duration such as 30d or 720h", v))
			return
		}
		window = d
	}
	var es []inventory.Entry
	ok := s.scan(w, r, inv, func(e *inventory.Entry) {
		if len(e.Granted) > 0 { // the report says nothing of the others
			es = append(es, *e)
		}
	})
	if !ok {
		return
	}
	writeJSON(w, inventory.UnusedScopes(es, time.Now(), window))
}

// listQuery is GET /v1/tokens's query.
type listQuery struct {
	clientID, binding, sort, format string
	dormant                         time.Duration
	limit                           int
}

var listSorts = []string{"max_risk", "risk", "last_seen", "first_seen", "requests", "token_id"}

func parseListQuery(q url.Values) (listQuery, error) {
	o := listQuery{clientID: q.Get("client_id"), binding: q.Get("binding"), sort: cmp.Or(q.Get("sort"), "max_risk"),
		format: cmp.Or(q.Get("format"), "json"), limit: defaultTokenLimit}
	if !slices.Contains(listSorts, o.sort) {
		return o, fmt.Errorf("sort: %q: want one of %s", o.sort, strings.Join(listSorts, ", "))
	}
	if !slices.Contains([]string{"json", "jsonl", "csv"}, o.format) {
		return o, fmt.Errorf("format: %q: want json, jsonl or csv", o.format)
	}
	if o.binding != "" && !slices.Contains([]string{"unbound", "dpop", "mtls", "mixed"}, o.binding) {
		return o, fmt.Errorf("binding: %q: want unbound, dpop, mtls or mixed", o.binding)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTokenLimit {
			return o, fmt.Errorf("limit: %q: want a number from 1 to %d", v, maxTokenLimit)
		}
		o.limit = n
	}
	if v := q.Get("dormant"); v != "" {
		d, err := ParseDays(v)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("dormant: %q: want a positive duration such as 30d or 720h", v)
		}
		o.dormant = d
	}
	return o, nil
}

// match reports whether an entry passes the query's filters.
func (o *listQuery) match(e *inventory.Entry, now time.Time) bool {
	return (o.clientID == "" || e.ClientID == o.clientID) &&
		(o.binding == "" || e.Binding.Status() == o.binding) &&
		(o.dormant <= 0 || now.Sub(e.LastSeen) >= o.dormant)
}

// sortEntries orders entries as the query asks; ties by token id.
func (o *listQuery) sortEntries(es []inventory.Entry) {
	slices.SortFunc(es, func(a, b inventory.Entry) int {
		var c int
		switch o.sort {
		case "max_risk":
			c = cmp.Compare(b.MaxRisk, a.MaxRisk)
		case "risk":
			c = cmp.Compare(b.Risk, a.Risk)
		case "last_seen":
			c = b.LastSeen.Compare(a.LastSeen)
		case "first_seen":
			c = a.FirstSeen.Compare(b.FirstSeen)
		case "requests":
			c = cmp.Compare(b.Requests, a.Requests)
		}
		return cmp.Or(c, cmp.Compare(a.TokenID, b.TokenID))
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// ParseDays parses a Go duration, or a whole number of days as "30d".
func ParseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 || d > 100*365 {
			return 0, fmt.Errorf("%q: want a number of days", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// FormatDays formats whole days as "30d", anything else as a duration.
func FormatDays(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
