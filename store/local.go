package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/atomicfile"
	"github.com/vigil-sec/vigil/policy"
)

// Local is the store of one process: an engine.Engine (in memory, or
// durable with engine.Options.Dir) and a denylist, behind one mutex that
// is held for the engine's part only (about a microsecond an event).
//
// With a data directory the denylist is kept in denylist.json there,
// rewritten (write, fsync, rename) on every change.
type Local struct {
	mu      sync.Mutex
	eng     *engine.Engine
	scratch []engine.Verdict
	deny    map[string]*Denial
	file    string // denylist.json; "" in memory
	now     func() time.Time
	closed  bool
}

// LocalOptions configure NewLocal.
type LocalOptions struct {
	// Dir is the data directory of the engine (engine.Options.Dir), where
	// the denylist is kept too; "" keeps it in memory.
	Dir string
	// Now is the clock that expires denials; nil means time.Now.
	Now func() time.Time
}

// NewLocal returns a store over eng, which it owns from now on (Close
// closes it).
func NewLocal(eng *engine.Engine, o LocalOptions) (*Local, error) {
	l := &Local{eng: eng, deny: make(map[string]*Denial), now: o.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if o.Dir != "" {
		l.file = filepath.Join(o.Dir, "denylist.json")
		b, err := os.ReadFile(l.file)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("store: %w", err)
		default:
			var ds []Denial
			if err := json.Unmarshal(b, &ds); err != nil {
				return nil, fmt.Errorf("store: %s: %w", l.file, err)
			}
			for i := range ds {
				if err := ds[i].Validate(); err != nil {
					return nil, fmt.Errorf("store: %s: entry %d: %w", l.file, i, err)
				}
				l.deny[ds[i].TokenID] = &ds[i]
			}
		}
	}
	return l, nil
}

// Judge implements Store. Runs of events between denylisted ones go to
// the engine's ProcessBatch, which overlaps their cache misses.
func (l *Local) Judge(ctx context.Context, evs []event.Event, vs []Verdict) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	run := 0
	for i := range evs {
		if d := l.denied(evs[i].TokenID, now); d != nil {
			l.process(evs[run:i], vs[run:i])
			vs[i] = Blocked(d, evs[i].Time)
			run = i + 1
		}
	}
	l.process(evs[run:], vs[run:len(evs)])
	return nil
}

// process judges a run of events without denials; the caller holds mu.
func (l *Local) process(evs []event.Event, vs []Verdict) {
	switch len(evs) {
	case 0:
		return
	case 1:
		vs[0] = Verdict{}
		l.eng.Process(&evs[0], &vs[0].Verdict)
	default:
		if cap(l.scratch) < len(evs) {
			l.scratch = make([]engine.Verdict, len(evs))
		}
		sc := l.scratch[:len(evs)]
		l.eng.ProcessBatch(evs, sc)
		for i := range sc {
			vs[i] = Verdict{Verdict: sc[i]}
		}
	}
	for i := range evs {
		if vs[i].Level == policy.Throttle {
			if s, ok := l.eng.Inspect(evs[i].TokenID); ok {
				vs[i].TypicalRequests, vs[i].Buckets = s.TypicalRequests, s.Buckets
			}
		}
	}
}

// Blocked is the verdict on a request blocked without being judged, at
// its time at: by the denial d, or, with d nil, by a store that fails
// closed.
func Blocked(d *Denial, at int64) Verdict {
	v := Verdict{Denial: d}
	v.Level, v.Now = policy.Block, at
	return v
}

// denied returns the active denial of tokenID, dropping an expired one.
func (l *Local) denied(tokenID string, now time.Time) *Denial {
	if len(l.deny) == 0 {
		return nil
	}
	d := l.deny[tokenID]
	if d == nil || d.Active(now) {
		return d
	}
	delete(l.deny, tokenID)
	return nil
}

// Complete implements Store.
func (l *Local) Complete(ctx context.Context, cs []Completion) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for i := range cs {
		c := &cs[i]
		l.eng.Complete(c.TokenID, c.At, c.Outcome, c.Trust)
	}
	return nil
}

// Inspect implements Store.
func (l *Local) Inspect(ctx context.Context, tokenID string) (engine.Snapshot, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return engine.Snapshot{}, false, ErrClosed
	}
	s, ok := l.eng.Inspect(tokenID)
	return s, ok, nil
}

// Deny implements Store.
func (l *Local) Deny(ctx context.Context, d Denial) error {
	if d.At.IsZero() {
		d.At = l.now().UTC()
	}
	if err := d.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	prev := l.deny[d.TokenID]
	l.deny[d.TokenID] = &d
	if err := l.save(); err != nil {
		if prev != nil {
			l.deny[d.TokenID] = prev
		} else {
			delete(l.deny, d.TokenID)
		}
		return err
	}
	return nil
}

// Undeny implements Store.
func (l *Local) Undeny(ctx context.Context, tokenID string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, ErrClosed
	}
	prev, ok := l.deny[tokenID]
	if !ok {
		return false, nil
	}
	delete(l.deny, tokenID)
	if err := l.save(); err != nil {
		l.deny[tokenID] = prev
		return false, err
	}
	return true, nil
}

// Denials implements Store.
func (l *Local) Denials(ctx context.Context, max int) ([]Denial, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	var out []Denial
	for _, d := range l.deny {
		if max > 0 && len(out) == max {
			break
		}
		if d.Active(now) {
			out = append(out, *d)
		}
	}
	return out, nil
}

// save rewrites the denylist file; the caller holds mu.
func (l *Local) save() error {
	if l.file == "" {
		return nil
	}
	ds := make([]Denial, 0, len(l.deny))
	for _, d := range l.deny {
		ds = append(ds, *d)
	}
	b, err := json.MarshalIndent(ds, "", "\t")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := atomicfile.Write(l.file, b); err != nil {
		return fmt.Errorf("store: denylist: %w", err)
	}
	return nil
}

// Stats implements Store.
func (l *Local) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Stats{}
	}
	return Stats{Credentials: l.eng.Credentials(), Evictions: l.eng.Evictions(), Rejected: l.eng.Rejected(), Available: true}
}

// Sync implements Store.
func (l *Local) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	return l.eng.Sync()
}

// Close implements Store; a durable engine syncs as it closes.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.eng.Close()
	}
	return nil
}
