package action

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// Rules a Triggers fires with.
const (
	RuleBlock   = "block"
	RuleStepUps = "step_ups_per_hour"
)

// MaxStepUpsPerHour bounds TriggerOptions.StepUpsPerHour (each tracked
// credential keeps that many timestamps).
const MaxStepUpsPerHour = 1000

// TriggerOptions configure Triggers; zero values mean defaults.
type TriggerOptions struct {
	// OnBlock fires on a block verdict.
	OnBlock bool
	// StepUpsPerHour fires on that many step_up_auth verdicts of one
	// credential within an hour (0: off).
	StepUpsPerHour int
	// MaxTracked bounds the credentials tracked (default 100,000).
	MaxTracked int
}

const triggerShards = 16

// Triggers decides, from the verdicts of the request path, when a
// credential's action should be submitted: at most once per credential
// per hour. It is safe for concurrent use; allow and throttle verdicts
// take no lock and allocate nothing.
//
// When MaxTracked credentials are tracked, a new one evicts an old one
// (the least recently seen of a few sampled), which forgets its step-ups
// and when it last fired; the Executor's idempotency covers a second
// firing.
type Triggers struct {
	onBlock  bool
	n        int
	perShard int
	seed     maphash.Seed
	shards   [triggerShards]triggerShard
}

type triggerShard struct {
	mu sync.Mutex
	m  map[string]*tracked
	_  [48]byte // keep shards' locks on separate cache lines
}

type tracked struct {
	fired int64   // unix ns of the last firing, 0 never
	last  int64   // unix ns of the last verdict observed
	ups   []int64 // ring of the last n step-ups, unix ns
	next  int     // ring position of the oldest, once full
}

// NewTriggers validates o and returns Triggers.
func NewTriggers(o TriggerOptions) (*Triggers, error) {
	switch {
	case o.StepUpsPerHour < 0 || o.StepUpsPerHour > MaxStepUpsPerHour:
		return nil, fmt.Errorf("action: triggers: step_ups_per_hour %d: want 0 to %d", o.StepUpsPerHour, MaxStepUpsPerHour)
	case o.MaxTracked < 0:
		return nil, errors.New("action: triggers: max_tracked is negative")
	}
	if o.MaxTracked == 0 {
		o.MaxTracked = 100_000
	}
	t := &Triggers{onBlock: o.OnBlock, n: o.StepUpsPerHour, seed: maphash.MakeSeed()}
	t.perShard = max(1, (o.MaxTracked+triggerShards-1)/triggerShards)
	for i := range t.shards {
		t.shards[i].m = make(map[string]*tracked)
	}
	return t, nil
}

// Observe notes a verdict of level ("allow", "throttle", "step_up_auth"
// or "block") for tokenID at time at, and reports whether the
// credential's action should fire now, and by which rule.
func (t *Triggers) Observe(tokenID string, level string, at time.Time) (fire bool, rule string) {
	switch level {
	case "block":
		if !t.onBlock {
			return false, ""
		}
		rule = RuleBlock
	case "step_up_auth":
		if t.n == 0 {
			return false, ""
		}
		rule = RuleStepUps
	default:
		return false, ""
	}
	if tokenID == "" {
		return false, ""
	}
	now := at.UnixNano()
	s := &t.shards[maphash.String(t.seed, tokenID)%triggerShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[tokenID]
	if e == nil {
		if len(s.m) >= t.perShard {
			s.evict(now)
		}
		e = &tracked{}
		s.m[strings.Clone(tokenID)] = e
	}
	e.last = max(e.last, now)
	if rule == RuleStepUps {
		if len(e.ups) < t.n {
			e.ups = append(e.ups, now)
		} else {
			e.ups[e.next] = now
			e.next = (e.next + 1) % t.n
		}
		if len(e.ups) < t.n || now-e.ups[e.next] >= int64(time.Hour) {
			return false, ""
		}
	}
	if d := now - e.fired; e.fired != 0 && d < int64(time.Hour) && d > -int64(time.Hour) {
		return false, "" // fired within the hour (either side: verdicts may come out of order)
	}
	e.fired = now
	return true, rule
}

// evict drops, of a few entries sampled (map order is random), the one
// seen least recently.
func (s *triggerShard) evict(now int64) {
	var victim string
	var oldest int64
	n := 0
	for id, e := range s.m {
		if n == 0 || e.last < oldest {
			victim, oldest = id, e.last
		}
		if n++; n == 8 || now-e.last >= int64(time.Hour) {
			break
		}
	}
	delete(s.m, victim)
}

// Tracked reports how many credentials are tracked.
func (t *Triggers) Tracked() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
