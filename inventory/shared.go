package inventory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Sink is a store shared by replicas that entries are merged into (package
// redisstore implements one). Merge adds each entry (a replica's uses
// since its last merge) to the stored one, creating it if needed; it may
// be called concurrently with Get and Each, which read merged entries.
//
// batch names the merge: a failed Merge is retried with the same batch
// and entries, and a sink that can fail after applying part of a batch
// (a timeout) must apply each entry of a batch at most once, so that a
// retry counts nothing twice.
type Sink interface {
	Merge(ctx context.Context, batch string, entries []*Entry) error
	Get(ctx context.Context, tokenID string) (Entry, bool, error)
	Each(ctx context.Context, fn func(*Entry) error) error
}

// SharedOptions configure a Shared inventory.
type SharedOptions struct {
	Sink Sink
	// Every is how often uses are merged into the sink; 0 means 5s.
	// Entries read through Get and Each lag this replica's uses by as
	// much (each replica's by its own).
	Every time.Duration
	// MaxPending bounds the credentials aggregated between merges; 0
	// means DefaultMaxEntries. Past it, the oldest fewest-used are dropped
	// (and counted in Stats.Evicted).
	MaxPending int
	// Batch is how many entries one Merge call gets; 0 means 512.
	Batch int
	Log   *slog.Logger
}

// Shared aggregates this replica's uses in memory and merges them into a
// Sink every SharedOptions.Every, so every replica reads one inventory.
type Shared struct {
	opts    SharedOptions
	log     *slog.Logger
	mu      sync.Mutex
	pending *Memory
	flushMu sync.Mutex
	// Under flushMu: merges that failed, retried as they were (same batch
	// name, same entries) before anything newer; the replica's name and
	// its merge counter name batches.
	retry   []batch
	retried int
	replica string
	seq     uint64
	errs    atomic.Uint64
	evicted atomic.Uint64
	lost    atomic.Uint64
	stop    chan struct{}
	done    sync.WaitGroup
	closed  atomic.Bool
}

var _ Inventory = (*Shared)(nil)

// NewShared starts a Shared inventory; Close merges what is pending.
func NewShared(o SharedOptions) (*Shared, error) {
	if o.Sink == nil {
		return nil, errors.New("inventory: shared inventory without a sink")
	}
	if o.Every < 0 || o.MaxPending < 0 || o.Batch < 0 {
		return nil, errors.New("inventory: shared options must not be negative")
	}
	if o.Every == 0 {
		o.Every = 5 * time.Second
	}
	if o.Batch == 0 {
		o.Batch = 512
	}
	var rid [8]byte
	rand.Read(rid[:])
	s := &Shared{opts: o, log: o.Log, stop: make(chan struct{}), replica: hex.EncodeToString(rid[:])}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.pending, err = NewMemory(Options{MaxEntries: o.MaxPending}); err != nil {
		return nil, err
	}
	s.done.Go(s.loop)
	return s, nil
}

func (s *Shared) loop() {
	t := time.NewTicker(s.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.Every)
			if err := s.Flush(ctx); err != nil {
				s.log.Warn("inventory not merged into the shared store; kept for the next try", "err", err)
			}
			cancel()
		}
	}
}

// Observe aggregates a use until the next merge.
func (s *Shared) Observe(u *Use) {
	s.mu.Lock()
	p := s.pending
	s.mu.Unlock()
	p.Observe(u)
}

// batch is one Merge call's worth of entries and its name.
type batch struct {
	name    string
	entries []*Entry
}

// Flush merges the uses aggregated since the last merge into the sink,
// after retrying the merges that failed before (as they were, so a sink
// that had applied part of one skips that part). Failed merges are kept
// for the next Flush, up to MaxPending entries; past that the oldest are
// dropped and counted in Stats.Lost.
func (s *Shared) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	fresh, _ := NewMemory(Options{MaxEntries: s.opts.MaxPending})
	s.mu.Lock()
	p := s.pending
	s.pending = fresh
	s.mu.Unlock()
	s.evicted.Add(p.evicted.Load())

	todo := s.retry
	s.retry, s.retried = nil, 0
	var cur []*Entry
	cut := func() {
		if len(cur) > 0 {
			s.seq++
			todo = append(todo, batch{name: s.replica + "-" + strconv.FormatUint(s.seq, 36), entries: cur})
			cur = nil
		}
	}
	_ = p.Each(context.Background(), func(e *Entry) error {
		c := *e
		cur = append(cur, &c)
		if len(cur) == s.opts.Batch {
			cut()
		}
		return nil
	})
	cut()
	var first error
	for _, b := range todo {
		if first == nil {
			if err := s.opts.Sink.Merge(ctx, b.name, b.entries); err != nil {
				first = err
			} else {
				continue
			}
		}
		// Not sent, or failed: kept, in order.
		s.retry = append(s.retry, b)
		s.retried += len(b.entries)
	}
	limit := s.opts.MaxPending
	if limit == 0 {
		limit = DefaultMaxEntries
	}
	for s.retried > limit && len(s.retry) > 0 {
		s.lost.Add(uint64(len(s.retry[0].entries)))
		s.retried -= len(s.retry[0].entries)
		s.retry = s.retry[1:]
	}
	if first != nil {
		s.errs.Add(1)
		return fmt.Errorf("inventory: merging: %d entries kept for the next try: %w", s.retried, first)
	}
	return nil
}

// Get reads a credential's merged entry from the sink.
func (s *Shared) Get(ctx context.Context, tokenID string) (Entry, bool, error) {
	return s.opts.Sink.Get(ctx, tokenID)
}

// Each reads every merged entry from the sink.
func (s *Shared) Each(ctx context.Context, fn func(*Entry) error) error {
	return s.opts.Sink.Each(ctx, fn)
}

// Stats reports the entries pending and the failed merges.
func (s *Shared) Stats() Stats {
	s.mu.Lock()
	p := s.pending
	s.mu.Unlock()
	st := p.Stats()
	return Stats{Entries: st.Entries, Evicted: s.evicted.Load() + st.Evicted, FlushErrors: s.errs.Load(), Lost: s.lost.Load()}
}

// Close stops the merge loop and merges what is pending (for at most
// 5 s).
func (s *Shared) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Flush(ctx)
}
