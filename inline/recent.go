package inline

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/policy"
)

// Record is one decision as the read API shows it.
type Record struct {
	Time      time.Time         `json:"time"`
	RequestID string            `json:"request_id,omitempty"`
	TokenID   string            `json:"token_id"`
	Method    string            `json:"method,omitempty"`
	Route     string            `json:"route"`
	Risk      float64           `json:"risk"`
	Decided   policy.Level      `json:"decision"`
	Enforced  policy.Level      `json:"enforced"`
	Shadow    bool              `json:"shadow,omitempty"`
	Reasons   []decision.Reason `json:"reasons"`
}

// recent keeps the latest decisions in a ring. The read API searches it by
// token id: an operator's query, not the hot path.
type recent struct {
	mu   sync.Mutex
	ring []Record
	next int
	full bool
}

func newRecent(n int) *recent { return &recent{ring: make([]Record, n)} }

// Limits on what the ring keeps of a request: its strings come from the
// client, and the ring must not become a store for whatever size they
// choose.
const (
	maxKeptMethod    = 16
	maxKeptRequestID = 128
	maxKeptRoute     = 256
	maxKeptDetail    = 512
)

func (r *recent) add(rec Record) {
	// Copies, cut to size: the request's memory is not ours to keep.
	rec.Method = clip(rec.Method, maxKeptMethod)
	rec.RequestID = clip(rec.RequestID, maxKeptRequestID)
	rec.Route = clip(rec.Route, maxKeptRoute)
	for i := range rec.Reasons {
		rec.Reasons[i].Detail = clip(rec.Reasons[i].Detail, maxKeptDetail)
	}
	r.mu.Lock()
	r.ring[r.next] = rec
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// find returns up to max decisions about tokenID, newest first.
func (r *recent) find(tokenID string, max int) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	n := r.next
	if r.full {
		n = len(r.ring)
	}
	for i := 0; i < n && len(out) < max; i++ {
		j := (r.next - 1 - i + len(r.ring)) % len(r.ring)
		if r.ring[j].TokenID == tokenID {
			out = append(out, r.ring[j])
		}
	}
	return out
}

// clip returns a copy of s cut to at most n bytes (on a UTF-8 boundary,
// with "…" when cut).
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…" // concatenation copies
}

// unsafeString views b as a string without copying. The caller guarantees
// b is not modified while the string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
