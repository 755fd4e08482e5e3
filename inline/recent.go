package inline

import (
	"sync"
	"time"
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

func (r *recent) add(rec Record) {
	if rec.Method != "" {
		rec.Method = string([]byte(rec.Method)) // the request's memory is not ours to keep
	}
	if rec.RequestID != "" {
		rec.RequestID = string([]byte(rec.RequestID))
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

// unsafeString views b as a string without copying. The caller guarantees
// b is not modified while the string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
