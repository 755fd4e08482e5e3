package engine

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
)

// Verdict is the engine's answer for one event.
type Verdict struct {
	Level policy.Level
	// Now is the time the event was judged at (its own time, or the
	// credential's clock if the event arrived out of order).
	Now int64
	// Trust is how far the engine learned from the event; Complete needs it.
	Trust profile.Trust
	score.Assessment
}

// Record is everything kept per credential: 512 bytes, eight cache lines.
// It holds no pointers, so the garbage collector never scans the pages,
// and its bytes (Bytes) are the whole state: a data directory maps them
// from a file, a shared store keeps them as one value. The policy keeps
// two ladders: one for requests from the credential's established
// context, one for everything else. The zero Record is a credential never
// seen.
type Record struct {
	prof profile.Profile
	home policy.State
	away policy.State
}

// A record must stay eight cache lines: this fails to compile otherwise.
var _ = [1]struct{}{}[unsafe.Sizeof(Record{})-512]

// RecordSize is the bytes an active credential's state takes in the
// engine's pages; the index adds about 20 bytes more per credential.
const RecordSize = int(unsafe.Sizeof(Record{}))

// RecordFormat names the layout of a Record's bytes. It changes whenever
// the profile or policy state changes shape, so that stored bytes of
// another vigil version are refused instead of misread. The layout is the
// machine's (little-endian on every platform vigil builds for).
const RecordFormat = uint32(1)<<16 | uint32(profile.Size)

// Bytes returns the record's memory as bytes: a view, not a copy.
func (r *Record) Bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(r)), RecordSize)
}

// SetBytes makes r the record whose Bytes are b.
func (r *Record) SetBytes(b []byte) error {
	if len(b) != RecordSize {
		return fmt.Errorf("engine: a record is %d bytes, got %d", RecordSize, len(b))
	}
	copy(r.Bytes(), b)
	return nil
}

// Snapshot is an operator's view of one credential.
type Snapshot struct {
	profile.Summary
	// Level of requests from the credential's established context (home)
	// and from elsewhere (away), as the ladder holds them.
	Home, Away policy.Level
}

// Snapshot summarizes the record for an operator.
func (r *Record) Snapshot() Snapshot {
	return Snapshot{Summary: r.prof.Summarize(), Home: r.home.Level, Away: r.away.Level}
}

// Judge decides one event against a credential's record (and its client's
// peer record) and learns from it: the part of the engine that does not
// care where records are kept. An Engine keeps them in its own memory or
// a data directory; a shared store (package redisstore) reads them from
// Redis, judges, and writes them back.
//
// A Judge holds scratch space: it is not safe for concurrent use.
type Judge struct {
	opts    Options
	keyer   profile.Keyer
	obs     profile.Observation
	peerObs profile.Observation
}

// NewJudge validates the scoring options (Tracker, Model, Ladder,
// LearnBelow, BlockCredentialAt; the others are ignored) and returns a
// Judge.
func NewJudge(opts Options) (*Judge, error) {
	if opts.Tracker == nil || opts.Model == nil {
		return nil, errors.New("engine: Tracker and Model are required")
	}
	if err := opts.Ladder.Validate(); err != nil {
		return nil, err
	}
	if opts.LearnBelow == 0 {
		opts.LearnBelow = opts.Ladder.Throttle / 2
	}
	if opts.BlockCredentialAt == 0 {
		opts.BlockCredentialAt = opts.Ladder.Block
	}
	if !(opts.BlockCredentialAt > 0) {
		return nil, fmt.Errorf("engine: block_credential_at %g must be above 0", opts.BlockCredentialAt)
	}
	if !(opts.LearnBelow > 0 && opts.LearnBelow <= opts.Ladder.Throttle) {
		return nil, fmt.Errorf("engine: learn_below %g must be in (0, throttle threshold %g]", opts.LearnBelow, opts.Ladder.Throttle)
	}
	return &Judge{opts: opts}, nil
}

// Model returns the scoring model, which renders a verdict's reasons.
func (j *Judge) Model() *score.Model { return j.opts.Model }

// Judge judges ev against r, the record of its credential, and peer, the
// record of its client's peer group (nil for none), and learns from it
// into both. It fills ev.Keys if the caller has not (profile.Keyer.Fill).
func (j *Judge) Judge(r, peer *Record, ev *event.Event, v *Verdict) {
	o := &j.obs
	if !ev.Keys.Set {
		j.keyer.Fill(ev)
	}
	j.opts.Tracker.Observe(&r.prof, ev, o)
	if peer != nil {
		j.opts.Tracker.Observe(&peer.prof, ev, &j.peerObs)
		o.Peer = &j.peerObs
	}
	m := j.opts.Model
	m.Assess(o, ev, &v.Assessment)
	state := &r.away
	if m.Contextual && o.EstablishedContext() {
		state = &r.home
		if v.CredentialRisk < j.opts.BlockCredentialAt {
			v.KeepRequestScope(m)
		}
	} else if !m.Contextual {
		state = &r.home
	}
	v.Level = j.opts.Ladder.Decide(state, v.Risk, o.Now)
	v.Now = o.Now
	// Probation (Allowed) asks whether the event was acceptable on its
	// own: a request held at throttle only by the hysteresis of its context
	// (another network's risk raised the level) still earns its network a
	// day's use.
	trust := profile.Untrusted
	switch {
	case v.Level == policy.Allow && v.Risk < j.opts.LearnBelow:
		trust = profile.Trusted
	case v.Level == policy.Allow || v.Risk < j.opts.Ladder.Throttle:
		trust = profile.Allowed
	}
	v.Trust = trust
	j.opts.Tracker.Learn(&r.prof, ev, o, trust)
	if peer != nil {
		j.opts.Tracker.Learn(&peer.prof, ev, &j.peerObs, trust)
	}
}

// Complete folds the outcome of a request judged at time at (Verdict.Now)
// with the verdict's trust into r.
func (j *Judge) Complete(r *Record, at int64, o profile.Outcome, trust profile.Trust) {
	j.opts.Tracker.Complete(&r.prof, at, o, trust == profile.Trusted)
}

// Established reports whether the record's credential has a history worth
// keeping over a newcomer's (capacity.go's threshold).
func (r *Record) Established() bool { return r.prof.Events() >= establishedAt }

// LearnPeer teaches peer, a client's peer record, an event already judged
// with trust, as Judge did: a shared store that lost a race to write the
// peer record replays its batch's lessons onto the newer copy with it.
func (j *Judge) LearnPeer(peer *Record, ev *event.Event, trust profile.Trust) {
	if !ev.Keys.Set {
		j.keyer.Fill(ev)
	}
	j.opts.Tracker.Observe(&peer.prof, ev, &j.peerObs)
	j.opts.Tracker.Learn(&peer.prof, ev, &j.peerObs, trust)
}
