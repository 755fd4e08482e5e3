// Package store is where vigil keeps what it knows between requests: every
// credential's record (its profile and policy state), the peer groups of
// its clients, and the denylist. Three stores pass one conformance suite
// (package storetest):
//
//   - Local over an in-memory engine (the default): nothing survives a
//     restart;
//   - Local over a durable engine (engine.Options.Dir): records in files
//     under a data directory, a kill -9 loses at most the last sync
//     interval;
//   - redisstore: records in Redis or a Redis Cluster, shared by every
//     replica, updated atomically per credential, so that traffic spread
//     over replicas builds one profile.
//
// A Store judges batches of events in order. Inline servers use a Batcher
// in front of a shared store, so that concurrent requests share round
// trips.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/profile"
)

// Store keeps credentials' state and judges events against it.
// Implementations are safe for concurrent use.
type Store interface {
	// Judge judges evs in order into vs (at least as long) and learns from
	// them. An error means no verdict was given (a fail-closed store gives
	// blocking verdicts instead and returns nil).
	Judge(ctx context.Context, evs []event.Event, vs []Verdict) error
	// Complete folds the upstream's answers into their credentials'
	// profiles (engine.Judge.Complete). Unknown credentials are skipped.
	Complete(ctx context.Context, cs []Completion) error
	// Inspect returns a credential's state without creating it.
	Inspect(ctx context.Context, tokenID string) (engine.Snapshot, bool, error)

	// Deny puts a credential on the denylist: its requests are blocked
	// (reason "denylisted") until Until, or for good if Until is zero. A
	// shared store makes it seen by every replica within a second.
	Deny(ctx context.Context, d Denial) error
	// Undeny takes a credential off the denylist; it reports whether it
	// was on it.
	Undeny(ctx context.Context, tokenID string) (bool, error)
	// Denials lists the denylist, at most max entries (0: all), in no
	// particular order.
	Denials(ctx context.Context, max int) ([]Denial, error)

	// Stats reports the store's counters.
	Stats() Stats
	// Sync makes what the store holds durable as far as it can (a data
	// directory's files are flushed); it does nothing for others.
	Sync() error
	// Close releases the store; it must not be used after.
	Close() error
}

// EarlyJudge is a Store that can give its verdicts before it has written
// what it learned: JudgeThen calls ready (at most once) as soon as vs
// holds the verdicts, then goes on writing, and may leave a write in
// flight when it returns, to be finished by its next call or by Flush.
// It keeps copies of what it still needs: once ready is called, the
// caller may reuse evs, vs and the memory evs' strings point to. A shared
// store's decision then waits for one round trip instead of two, and its
// server writes one batch while vigil judges the next.
type EarlyJudge interface {
	JudgeThen(ctx context.Context, evs []event.Event, vs []Verdict, ready func()) error
	// Flush finishes the write in flight, if any.
	Flush()
}

// Verdict is a store's answer for one event.
type Verdict struct {
	engine.Verdict
	// Denial is set when the credential is on the denylist: Level is
	// Block, and the engine neither judged nor learned from the event.
	Denial *Denial
	// Fallback: a shared store could not be reached in time. A fail-open
	// store judged the event on this replica's own profile of the
	// credential; a fail-closed store blocked it (Level Block, no risk,
	// FailClosed set).
	Fallback, FailClosed bool
	// Typical requests per active bucket and how many buckets its baseline
	// has learned, after this event: filled for throttled verdicts, whose
	// rate limit follows the credential's own baseline.
	TypicalRequests float64
	Buckets         uint32
}

// Completion is the upstream's answer to a judged request.
type Completion struct {
	TokenID string
	At      int64 // Verdict.Now
	Outcome profile.Outcome
	Trust   profile.Trust
}

// Denial is one denylist entry.
type Denial struct {
	TokenID string    `json:"token_id"`
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by,omitempty"`
	At      time.Time `json:"at"`
	Until   time.Time `json:"until,omitzero"` // zero: until taken off
}

// Active reports whether d blocks requests at time now.
func (d *Denial) Active(now time.Time) bool {
	return d.Until.IsZero() || now.Before(d.Until)
}

// MaxReason is the longest denial reason kept, in bytes.
const MaxReason = 256

// Validate checks d before it is stored.
func (d *Denial) Validate() error {
	switch {
	case d.TokenID == "":
		return errors.New("store: denial: token_id is empty")
	case len(d.TokenID) > event.MaxStringLen:
		return fmt.Errorf("store: denial: token_id is %d bytes, at most %d", len(d.TokenID), event.MaxStringLen)
	case len(d.Reason) > MaxReason:
		return fmt.Errorf("store: denial: reason is %d bytes, at most %d", len(d.Reason), MaxReason)
	case len(d.By) > MaxReason:
		return fmt.Errorf("store: denial: by is %d bytes, at most %d", len(d.By), MaxReason)
	case !d.Until.IsZero() && !d.Until.After(d.At):
		return fmt.Errorf("store: denial: until %s is not after %s", d.Until.Format(time.RFC3339), d.At.Format(time.RFC3339))
	}
	return nil
}

// Stats are a store's counters, for metrics.
type Stats struct {
	// Credentials with a record held by this process (a shared store
	// reports none: Redis holds them).
	Credentials int
	// Evictions and rejections of the profile cap (engine.Engine).
	Evictions, Rejected uint64
	// Shared stores: batches judged on local profiles or blocked because
	// the store was unavailable, store errors, and write conflicts with
	// other replicas retried.
	Fallbacks, Errors, Conflicts uint64
	// Available is false while a shared store is considered down.
	Available bool
}

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("store: closed")
