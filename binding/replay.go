package binding

import (
	"container/heap"
	"sync"
	"time"
)

// MemoryReplay is a ReplayCache for one process: it remembers at most Max
// keys (0: 1,000,000) until they expire. Full of unexpired keys, it
// reports every new key as seen, refusing proofs rather than forgetting
// one that might be replayed. Replicas share a cache through the state
// store instead (redisstore.Store.Seen).
type MemoryReplay struct {
	Max int
	Now func() time.Time

	mu   sync.Mutex
	keys map[string]time.Time
	exp  expiries
}

// Seen implements ReplayCache.
func (m *MemoryReplay) Seen(key string, until time.Time) (bool, error) {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = make(map[string]time.Time)
	}
	for len(m.exp) > 0 && !m.exp[0].until.After(now) {
		e := heap.Pop(&m.exp).(expiry)
		if m.keys[e.key].Equal(e.until) {
			delete(m.keys, e.key)
		}
	}
	if t, ok := m.keys[key]; ok && t.After(now) {
		return true, nil
	}
	max := m.Max
	if max <= 0 {
		max = 1_000_000
	}
	if len(m.keys) >= max {
		return true, nil
	}
	m.keys[key] = until
	heap.Push(&m.exp, expiry{key: key, until: until})
	return false, nil
}

type expiry struct {
	key   string
	until time.Time
}

type expiries []expiry

func (e expiries) Len() int           { return len(e) }
func (e expiries) Less(i, j int) bool { return e[i].until.Before(e[j].until) }
func (e expiries) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *expiries) Push(x any)        { *e = append(*e, x.(expiry)) }
func (e *expiries) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}
