package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
)

// Batcher puts concurrent callers' events into shared batches: one
// goroutine takes every event queued while the previous batch was being
// judged and hands them to the store at once, so that a shared store
// answers a whole batch in the same two round trips one event would take.
// Nothing waits for a batch to fill: with one caller at a time the batch
// is one event, and under load batches grow by themselves. Events are
// judged in the order they were queued, so one credential's requests are
// judged in the order they arrived.
//
// The latency trade-off: a request that arrives while a batch is in
// flight waits for it to finish, then for its own batch, so a decision
// takes up to two batches' time instead of one. A store that can answer
// before it writes back (EarlyJudge, as redisstore does) shortens both:
// callers are answered after the batch's read round trip and judging,
// and the write-back overlaps the next batch.
//
// Completions are queued without waiting and applied between batches; if
// more than the queue holds are waiting, the extra ones are dropped and
// counted (Dropped): a report is worth less than a decision.
//
// Batcher implements Store: everything but Judge and Complete goes
// straight to the store behind it.
type Batcher struct {
	Store
	max   int
	in    chan *call
	comps chan Completion
	pool  sync.Pool
	done  chan struct{}
	once  sync.Once

	dropped atomic.Uint64
	mu      sync.RWMutex // Judge holds it shared; Close exclusively
	closed  bool
}

type call struct {
	ev   *event.Event
	v    *Verdict
	err  error
	done chan struct{}
}

// BatcherOptions configure NewBatcher.
type BatcherOptions struct {
	// MaxBatch caps a batch; 0 means 256.
	MaxBatch int
	// Completions is how many completions may wait; 0 means 8192.
	Completions int
}

// flushAfter is how long an idle Batcher leaves a write-back in flight
// before finishing it alone.
const flushAfter = 500 * time.Microsecond

// NewBatcher starts a Batcher in front of s. Close stops it and closes s.
func NewBatcher(s Store, o BatcherOptions) *Batcher {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Completions <= 0 {
		o.Completions = 8192
	}
	b := &Batcher{Store: s, max: o.MaxBatch, in: make(chan *call, o.MaxBatch*4), comps: make(chan Completion, o.Completions),
		done: make(chan struct{})}
	b.pool.New = func() any { return &call{done: make(chan struct{}, 1)} }
	go b.loop()
	return b
}

// Judge queues evs and waits for their verdicts. It waits even when ctx
// ends first: the batch may be reading the events, which belong to the
// caller; the store behind bounds the wait with its own timeouts.
func (b *Batcher) Judge(ctx context.Context, evs []event.Event, vs []Verdict) error {
	var one [1]*call
	calls := one[:0]
	if len(evs) > 1 {
		calls = make([]*call, 0, len(evs))
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	for i := range evs {
		c := b.pool.Get().(*call)
		c.ev, c.v, c.err = &evs[i], &vs[i], nil
		b.in <- c
		calls = append(calls, c)
	}
	b.mu.RUnlock()
	var err error
	for _, c := range calls {
		<-c.done
		err = errors.Join(err, c.err)
		c.ev, c.v = nil, nil
		b.pool.Put(c)
	}
	return err
}

// Complete queues cs without waiting.
func (b *Batcher) Complete(ctx context.Context, cs []Completion) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	for _, c := range cs {
		select {
		case b.comps <- c:
		default:
			b.dropped.Add(1)
		}
	}
	return nil
}

// Dropped returns how many completions were dropped because the queue was
// full.
func (b *Batcher) Dropped() uint64 { return b.dropped.Load() }

func (b *Batcher) loop() {
	defer close(b.done)
	calls := make([]*call, 0, b.max)
	evs := make([]event.Event, b.max)
	vs := make([]Verdict, b.max)
	var comps []Completion
	early, _ := b.Store.(EarlyJudge)
	ctx := context.Background()
	// unflushed: the store may have a write-back in flight. The next batch
	// finishes it (overlapping its own read and judging); if none comes
	// within flushAfter, it is finished alone.
	unflushed := false
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		calls = calls[:0]
		if unflushed {
			idle.Reset(flushAfter)
		}
		select {
		case <-idle.C:
			early.Flush()
			unflushed = false
			continue
		case c, ok := <-b.in:
			if !ok {
				return
			}
			calls = append(calls, c)
		case c := <-b.comps:
			comps = append(comps[:0], c)
			comps = b.drainCompletions(comps)
			_ = b.Store.Complete(ctx, comps) // counted by the store; settles a write-back
			unflushed = false
			continue
		}
	fill:
		for len(calls) < b.max {
			select {
			case c, ok := <-b.in:
				if !ok {
					break fill
				}
				calls = append(calls, c)
			default:
				break fill
			}
		}
		idle.Stop()
		for i, c := range calls {
			evs[i] = *c.ev
		}
		n := len(calls)
		answered := false
		answer := func(err error) {
			if answered {
				return
			}
			answered = true
			for i, c := range calls {
				if err != nil {
					c.err = err
				} else {
					*c.v = vs[i]
					c.ev.Keys = evs[i].Keys
				}
				c.done <- struct{}{}
			}
		}
		var err error
		if early != nil {
			err = early.JudgeThen(ctx, evs[:n], vs[:n], func() { answer(nil) })
		} else {
			err = b.Store.Judge(ctx, evs[:n], vs[:n])
		}
		answer(err)
		clear(evs[:n])
		// Completions after the callers have their answers: a report is
		// worth less than a decision.
		if comps = b.drainCompletions(comps[:0]); len(comps) > 0 {
			_ = b.Store.Complete(ctx, comps)
		}
		unflushed = early != nil
	}
}

func (b *Batcher) drainCompletions(comps []Completion) []Completion {
	for len(comps) < b.max {
		select {
		case c := <-b.comps:
			comps = append(comps, c)
		default:
			return comps
		}
	}
	return comps
}

// Inspect implements Store.
func (b *Batcher) Inspect(ctx context.Context, tokenID string) (engine.Snapshot, bool, error) {
	return b.Store.Inspect(ctx, tokenID)
}

// Close stops the Batcher once queued events are judged, then closes the
// store behind it.
func (b *Batcher) Close() error {
	var err error
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		// No Judge holds the lock, so none will queue again: the loop
		// judges what is queued and stops.
		close(b.in)
		<-b.done
		err = b.Store.Close()
	})
	return err
}
