// Package engine runs vigil's per-request pipeline for one process: find the
// credential's profile, measure the event against it, score, decide, learn.
//
// An Engine is sequential and deterministic: the same events in the same
// order give the same verdicts. Callers that want parallelism decode and
// encode in parallel and feed one Engine in order (see package replay), or
// shard credentials over several Engines.
package engine

import (
	"errors"
	"fmt"
	"hash/maphash"
	"unsafe"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
)

// Options configure an Engine. Tracker and Model are required.
type Options struct {
	Tracker *profile.Tracker
	Model   *score.Model
	Ladder  policy.Ladder
	// LearnBelow: only events allowed with a risk below it teach the
	// profile (establish values, feed baselines). Being allowed is not
	// enough: an attacker's first requests from a new network may stay
	// under the throttle threshold, and must not make that network known.
	// Zero means half the throttle threshold.
	LearnBelow float64
	// BlockCredentialAt: with a contextual model, a request from the
	// credential's established context counts credential-wide evidence
	// (rate, volume, failures, network churn) only once that evidence
	// alone reaches this risk; below it, the owner's everyday requests are
	// judged by their own context while a thief's are contained. Zero
	// means the block threshold.
	BlockCredentialAt float64
	// MaxCredentials caps the profiles held; 0 means no cap. At the cap,
	// a credential without a profile gets one only by outranking a victim
	// (see capacity.go); otherwise it is judged on an empty profile that
	// is not kept.
	MaxCredentials int
	// MaxClients caps the peer groups (one per client_id); 0 means no cap.
	// Past it, a new client_id gets no peer group.
	MaxClients int
	// Dir, when set, keeps the profiles in files there (durable.go): a
	// restart, even after kill -9, finds every credential's profile as it
	// was. The owner calls Sync every second or so for power loss. Linux.
	Dir string
}

const pageBits = 12 // 4096 records, 2 MiB a page

// Engine holds the profiles of every credential it has seen.
// It is not safe for concurrent use.
type Engine struct {
	opts  Options
	judge *Judge
	seed  maphash.Seed
	index index // keyed hash of token_id → record number
	pages [][]Record
	frees []func()
	n     uint32

	// Peer groups: one profile per client_id, learned from the trusted
	// requests of all its credentials. Clients are few; a map will do.
	clients map[uint64]*Record

	// Capacity (capacity.go): the index hash of each record's credential,
	// page-parallel to pages; the admission sketch; a scratch record for
	// credentials not admitted.
	owners              [][]owner
	sk                  sketch
	rng                 splitmix
	scratch             Record
	evictions, rejected uint64

	st       *store // Options.Dir; nil in memory
	storeErr error  // the first failure to grow the files, reported by Sync
}

// New returns an Engine.
func New(opts Options) (*Engine, error) {
	j, err := NewJudge(opts)
	if err != nil {
		return nil, err
	}
	opts = j.opts
	if opts.MaxCredentials < 0 || opts.MaxClients < 0 {
		return nil, fmt.Errorf("engine: max_credentials %d and max_clients %d must not be negative", opts.MaxCredentials, opts.MaxClients)
	}
	e := &Engine{opts: opts, judge: j, seed: maphash.MakeSeed(), index: newIndex(), clients: make(map[uint64]*Record), rng: splitmix{s: 1}}
	if opts.MaxCredentials > 0 {
		e.sk = newSketch(opts.MaxCredentials)
	}
	if opts.Dir != "" {
		if err := e.restore(); err != nil {
			e.index.release()
			return nil, err
		}
	}
	return e, nil
}

// restore opens the data directory and rebuilds the index and peer groups
// from it.
func (e *Engine) restore() error {
	st, pages, err := openStore(e.opts.Dir)
	if err != nil {
		return err
	}
	clients, err := st.loadClients()
	if err != nil {
		st.close()
		return err
	}
	e.st, e.pages, e.clients, e.n = st, pages, clients, st.count()
	for range pages {
		if e.opts.MaxCredentials > 0 {
			e.owners = append(e.owners, make([]owner, 1<<pageBits))
		}
	}
	for i := range e.n {
		h := st.key(i)
		e.index.insert(h, i)
		if e.opts.MaxCredentials > 0 {
			e.setOwner(i, owner{h: h, sk: h})
		}
	}
	return nil
}

// Sync makes the durable profiles safe from a power loss (and writes the
// peer groups); without Options.Dir it does nothing. It reports a failure
// to grow the files since the last Sync: the credentials that found no
// room were judged on empty profiles.
func (e *Engine) Sync() error {
	if e.st == nil {
		return nil
	}
	err := errors.Join(e.storeErr, e.st.sync(e.clients))
	e.storeErr = nil
	return err
}

// hash is the index key of a token id.
func (e *Engine) hash(tokenID string) uint64 {
	if e.st != nil {
		return e.st.hash(tokenID)
	}
	return maphash.String(e.seed, tokenID)
}

// sketchKey is the admission sketch's key of a credential: a fixed
// function of the token id, so that admissions are the same in every run
// (in a durable engine, the index key already is).
func (e *Engine) sketchKey(h uint64, tokenID string) uint64 {
	if e.st != nil {
		return h
	}
	return sketchHash(tokenID)
}

// Close releases the engine's memory. The engine must not be used after.
func (e *Engine) Close() {
	if e.st != nil {
		_ = e.Sync()
		e.st.close()
		e.st = nil
	}
	for _, f := range e.frees {
		f()
	}
	e.index.release()
	e.pages, e.frees, e.index, e.n, e.owners = nil, nil, newIndex(), 0, nil
	clear(e.clients)
}

// Credentials returns the number of credentials with a profile.
func (e *Engine) Credentials() int { return int(e.n) }

// Footprint returns the bytes the engine holds for its credentials:
// record pages and index.
func (e *Engine) Footprint() int {
	return len(e.pages)*(1<<pageBits)*RecordSize + len(e.index.slots)*int(unsafe.Sizeof(entry{}))
}

// Model returns the scoring model, which renders a verdict's reasons.
func (e *Engine) Model() *score.Model { return e.opts.Model }

// Process judges ev and learns from it. It fills ev.Keys if the caller has
// not (profile.Keyer.Fill).
func (e *Engine) Process(ev *event.Event, v *Verdict) {
	e.process(e.record(e.lookupAt(e.hash(ev.TokenID), ev.TokenID, ev.Time)), ev, v)
}

// ProcessBatch judges evs in order into vs, which must be at least as long.
// It gives exactly the verdicts of calling Process on each event in turn,
// and is faster over many credentials: it works on upcoming events in
// stages and prefetches their memory, so that the cache misses of several
// events overlap instead of queueing one after another:
//
//	event i+24: hash the token id, prefetch its index slot
//	event i+16: find (or create) its record number
//	event i+8:  prefetch the record's eight cache lines, the event's first
//	            and the verdict's header
//	event i:    judge it
func (e *Engine) ProcessBatch(evs []event.Event, vs []Verdict) {
	const (
		hashAhead  = 24
		findAhead  = 16
		touchAhead = 8
		ring       = 32 // > hashAhead, a power of two
	)
	var hs [ring]uint64
	var idx [ring]uint32
	var gen [ring]uint64 // e.evictions when idx was found
	n := len(evs)
	_ = vs[:n]
	for i := -hashAhead; i < n; i++ {
		if j := i + hashAhead + 8; j < n {
			// The token id is read at the next stage: its header is on the
			// event's second line.
			prefetchLine(unsafe.Add(unsafe.Pointer(&evs[j]), 64))
		}
		if j := i + hashAhead; j < n {
			h := e.hash(evs[j].TokenID)
			hs[j%ring] = h
			prefetchLine(unsafe.Pointer(e.index.slotAddr(h)))
		}
		if j := i + findAhead; j >= 0 && j < n {
			if e.opts.MaxCredentials > 0 {
				// With a cap, records are created, admitted and evicted only
				// when their event is judged, in order, as Process does.
				ix, ok := e.index.find(hs[j%ring])
				if !ok {
					ix = noRecord
				}
				idx[j%ring] = ix
			} else {
				idx[j%ring] = e.lookupHash(hs[j%ring])
			}
			gen[j%ring] = e.evictions
		}
		if j := i + touchAhead; j >= 0 && j < n {
			if idx[j%ring] != noRecord {
				prefetchRecord(unsafe.Pointer(e.record(idx[j%ring])))
			}
			prefetchLine(unsafe.Pointer(&evs[j]))
			// A verdict's header may straddle two lines.
			prefetchLineW(unsafe.Pointer(&vs[j]))
			prefetchLineW(unsafe.Add(unsafe.Pointer(&vs[j]), 63))
		}
		if i >= 0 {
			var r *Record
			switch ix := idx[i%ring]; {
			case ix == noRecord || gen[i%ring] != e.evictions:
				r = e.record(e.lookupAt(hs[i%ring], evs[i].TokenID, evs[i].Time))
			default:
				if e.full() {
					e.sk.add(e.sketchKey(hs[i%ring], evs[i].TokenID))
				}
				r = e.record(ix)
			}
			e.process(r, &evs[i], &vs[i])
		}
	}
}

func (e *Engine) process(r *Record, ev *event.Event, v *Verdict) {
	var peer *Record
	if ev.ClientID != "" {
		peer = e.client(ev.ClientID)
	}
	e.judge.Judge(r, peer, ev, v)
}

// Complete folds the outcome of a request judged at time at (Verdict.Now)
// into its credential's profile: inline enforcement judges a request before
// the upstream has answered. trust is the verdict's. It reports whether the
// credential is known.
func (e *Engine) Complete(tokenID string, at int64, o profile.Outcome, trust profile.Trust) bool {
	i, ok := e.index.find(e.hash(tokenID))
	if !ok {
		return false
	}
	e.judge.Complete(e.record(i), at, o, trust)
	return true
}

// Inspect returns the state of a credential without creating it.
func (e *Engine) Inspect(tokenID string) (Snapshot, bool) {
	i, ok := e.index.find(e.hash(tokenID))
	if !ok {
		return Snapshot{}, false
	}
	return e.record(i).Snapshot(), true
}

// lookupAt finds, creates or admits the record of the credential hashed h
// when its event (at time now) is judged; while the engine is full it
// counts the request for admission. It returns noRecord for a credential
// not admitted. The index is keyed by a per-process keyed hash (maphash),
// so nobody who chooses token ids can force two credentials onto one
// profile; a chance collision of two 64-bit hashes reaches even odds at
// about 5 billion credentials.
func (e *Engine) lookupAt(h uint64, tokenID string, now int64) uint32 {
	if e.full() {
		sh := e.sketchKey(h, tokenID)
		if i, ok := e.index.find(h); ok {
			e.sk.add(sh)
			return i
		}
		return e.admit(h, sh, now)
	}
	n := e.n
	i := e.lookupHash(h)
	if e.opts.MaxCredentials > 0 && e.n > n { // created: remember whose it is
		e.setOwner(i, owner{h: h, sk: e.sketchKey(h, tokenID)})
	}
	return i
}

func (e *Engine) lookupHash(h uint64) uint32 {
	if i, ok := e.index.find(h); ok {
		return i
	}
	i := e.n
	if int(i>>pageBits) == len(e.pages) {
		if e.st != nil {
			p, err := e.st.page(len(e.pages))
			if err != nil {
				// No room on disk: judged on an empty profile, reported by Sync.
				if e.storeErr == nil {
					e.storeErr = err
				}
				return noRecord
			}
			e.pages = append(e.pages, p)
		} else {
			p, free := newPage()
			e.pages = append(e.pages, p)
			e.frees = append(e.frees, free)
		}
		if e.opts.MaxCredentials > 0 {
			e.owners = append(e.owners, make([]owner, 1<<pageBits))
		}
	}
	e.index.insert(h, i)
	e.n++
	if e.st != nil {
		e.st.setKey(i, h)
		e.st.setCount(e.n)
	}
	return i
}

// client returns the peer-group record of a client_id.
// It returns nil for a new client_id once MaxClients are held: client_id
// may come from a claim nobody verified, and made-up ones must not grow
// the engine.
func (e *Engine) client(id string) *Record {
	h := e.hash(id)
	r, ok := e.clients[h]
	if !ok {
		if e.opts.MaxClients > 0 && len(e.clients) >= e.opts.MaxClients {
			return nil
		}
		r = new(Record)
		e.clients[h] = r
	}
	return r
}

// Clients returns the number of client_ids with a peer profile.
func (e *Engine) Clients() int { return len(e.clients) }

func (e *Engine) record(i uint32) *Record {
	if i == noRecord {
		e.scratch = Record{}
		return &e.scratch
	}
	return &e.pages[i>>pageBits][i&(1<<pageBits-1)]
}
