// Package redisclients compares two Redis clients (go-redis v9 and rueidis)
// on vigil's shared-state-store access pattern. The workload (this file) is
// client-agnostic; goredis.go and rueidis.go implement the two round trips
// with each client, and the benchmarks live in bench_test.go.
//
// Per batch of B events over credentials, for each distinct credential:
//
//  1. round trip 1: MGET vigil:{<fp>}:r vigil:{<fp>}:d  (all pipelined)
//  2. round trip 2: EVALSHA cas 1 vigil:{<fp>}:r <expected version> <new record> <ttl>
//     (all pipelined; EVAL for the entries that answered NOSCRIPT)
package redisclients

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

const (
	VersionLen = 8
	StateLen   = 512
	RecordLen  = VersionLen + StateLen // 520 bytes: 8-byte big-endian version + 512 bytes state

	// RecordTTLms is ARGV[3] of the CAS script. One hour: anything a crashed
	// run leaves behind expires on its own.
	RecordTTLms = "3600000"
)

// CASScript is vigil's compare-and-set script, verbatim.
// KEYS[1] record key; ARGV[1] expected 8-byte version ("" if the key must
// not exist), ARGV[2] new value, ARGV[3] TTL in ms. Reply: 1 on success, the
// current value on a version conflict, nil if the key vanished.
//
// Both clients speak RESP3 by default. Redis 7.0.15 answers the Lua `false`
// with a null there too (checked); the RESP3 conversion rules in the Redis
// docs allow a boolean false, so both stores treat nil and false alike as
// "vanished".
const CASScript = `local cur = redis.call('GET', KEYS[1])
if cur then
  if string.sub(cur, 1, 8) ~= ARGV[1] then return cur end
elseif ARGV[1] ~= '' then
  return false
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`

// ReadReq is one MGET of round trip 1. DKey is empty for a record without a
// denylist key (the per-batch peer record), which is then read as MGET RKey.
type ReadReq struct {
	RKey, DKey string
}

// Read is the decoded reply of one ReadReq.
type Read struct {
	Rec    string // the record; valid only if Found
	Found  bool
	Denied bool // the denylist key exists
}

// Write is one CAS of round trip 2.
type Write struct {
	Key    string
	Expect string // 8-byte version the record must have; "" = must not exist
	Value  []byte // new record, RecordLen bytes; must stay untouched until Write returns
}

type Outcome uint8

const (
	OK       Outcome = iota + 1 // script returned 1
	Conflict                    // script returned the current value (WriteResult.Cur)
	Vanished                    // script returned nil/false: expected a record, found none
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Conflict:
		return "conflict"
	case Vanished:
		return "vanished"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

type WriteResult struct {
	Outcome Outcome
	Cur     string // current record on Conflict
}

// Store is one client. NewBatcher returns a per-goroutine handle that owns
// its scratch buffers; the client underneath is shared.
type Store interface {
	Name() string
	NewBatcher() Batcher
}

// Batcher runs the two pipelined round trips. dst/res must have len(reqs)/len(ws).
// Not safe for concurrent use.
type Batcher interface {
	Read(ctx context.Context, reqs []ReadReq, dst []Read) error
	Write(ctx context.Context, ws []Write, res []WriteResult) error
}

// Keyspace is the preloaded set of credentials of one run. Its fingerprints
// start with a per-run id so runs never collide.
type Keyspace struct {
	RunID string
	FPs   []string
	RKeys []string // vigil:{<fp>}:r
	DKeys []string // vigil:{<fp>}:d
}

func RecordKey(fp string) string   { return "vigil:{" + fp + "}:r" }
func DenyKey(fp string) string     { return "vigil:{" + fp + "}:d" }
func PeerKey(client string) string { return "vigil:{client:" + client + "}:r" }

// NewKeyspace derives n 22-char base64url fingerprints: 6 chars of run id
// (4 random bytes) followed by 16 chars derived from the index.
func NewKeyspace(runID string, n int) *Keyspace {
	if len(runID) != 6 {
		panic("runID must be 6 base64url chars")
	}
	ks := &Keyspace{RunID: runID, FPs: make([]string, n), RKeys: make([]string, n), DKeys: make([]string, n)}
	for i := range n {
		fp := FP(runID, "cred", i)
		ks.FPs[i], ks.RKeys[i], ks.DKeys[i] = fp, RecordKey(fp), DenyKey(fp)
	}
	return ks
}

// FP is a 22-char base64url fingerprint unique to (runID, ns, i).
func FP(runID, ns string, i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", runID, ns, i))
	return runID + base64.RawURLEncoding.EncodeToString(h[:12]) // 6 + 16
}

// NewRunID returns a random 6-char base64url id.
func NewRunID() string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], rand.Uint32())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// InitialRecord is the preloaded record of credential i: version 1 and a
// deterministic pseudo-random state.
func InitialRecord(i int) []byte {
	rec := make([]byte, RecordLen)
	binary.BigEndian.PutUint64(rec, 1)
	r := rand.New(rand.NewPCG(uint64(i), 0x9e3779b97f4a7c15))
	for j := VersionLen; j < RecordLen; j += 8 {
		binary.LittleEndian.PutUint64(rec[j:], r.Uint64())
	}
	return rec
}

// Judge computes a credential's new record from its current one: version+1,
// state carried over with an event counter (state[0:8]) bumped by n and a
// denylist flag byte (state[8]). cur == "" means no record yet. dst must have
// RecordLen bytes. This is the same for both clients.
func Judge(dst []byte, cur string, n uint32, denied bool) {
	var ver uint64
	if len(cur) == RecordLen {
		ver = binary.BigEndian.Uint64([]byte(cur[:VersionLen])) // no alloc: compiler elides the copy
		copy(dst[VersionLen:], cur[VersionLen:])
	} else {
		clear(dst[VersionLen:])
	}
	binary.BigEndian.PutUint64(dst, ver+1)
	st := dst[VersionLen:]
	binary.LittleEndian.PutUint64(st, binary.LittleEndian.Uint64(st)+uint64(n))
	if denied {
		st[8] = 1
	}
}

// Worker draws batches and runs them against a Batcher. One per goroutine.
type Worker struct {
	KS   *Keyspace
	B    int
	Peer string // if non-empty, the batch also reads and CASes this peer key (pattern 2b)

	rng   *rand.Rand
	mark  []uint32 // dedup: mark[id] == gen  <=> id already in this batch
	slot  []int32  // index of id in ids, valid when marked
	gen   uint32
	ids   []int32
	count []uint32
	reqs  []ReadReq
	reads []Read
	ws    []Write
	res   []WriteResult
	arena []byte

	// Tallies since creation.
	Batches, Events, Creds, Conflicts, Vanished, Denied int
}

func NewWorker(ks *Keyspace, b int, seed uint64, peer string) *Worker {
	n := b + 1
	return &Worker{
		KS: ks, B: b, Peer: peer,
		rng:   rand.New(rand.NewPCG(seed, 0x5eed)),
		mark:  make([]uint32, len(ks.RKeys)),
		slot:  make([]int32, len(ks.RKeys)),
		ids:   make([]int32, 0, b),
		count: make([]uint32, 0, b),
		reqs:  make([]ReadReq, 0, n),
		reads: make([]Read, n),
		ws:    make([]Write, 0, n),
		res:   make([]WriteResult, n),
		arena: make([]byte, n*RecordLen),
	}
}

// Batch draws B credentials uniformly at random and runs one judged batch:
// read round trip, judge, CAS round trip.
func (w *Worker) Batch(ctx context.Context, bt Batcher) error {
	w.gen++
	w.ids, w.count = w.ids[:0], w.count[:0]
	for range w.B {
		id := int32(w.rng.IntN(len(w.KS.RKeys)))
		if w.mark[id] == w.gen {
			w.count[w.slot[id]]++
			continue
		}
		w.mark[id], w.slot[id] = w.gen, int32(len(w.ids))
		w.ids = append(w.ids, id)
		w.count = append(w.count, 1)
	}
	return w.Run(ctx, bt, w.ids, w.count)
}

// Run judges a batch over the given distinct credentials (count[i] events for ids[i]).
func (w *Worker) Run(ctx context.Context, bt Batcher, ids []int32, count []uint32) error {
	reqs := w.reqs[:0]
	for _, id := range ids {
		reqs = append(reqs, ReadReq{RKey: w.KS.RKeys[id], DKey: w.KS.DKeys[id]})
	}
	if w.Peer != "" {
		reqs = append(reqs, ReadReq{RKey: w.Peer})
	}
	reads := w.reads[:len(reqs)]
	if err := bt.Read(ctx, reqs, reads); err != nil {
		return err
	}

	ws := w.ws[:0]
	var total uint32
	for i, rd := range reads {
		var n uint32
		if i < len(ids) {
			n = count[i]
			total += n
		} else {
			n = total // the peer record counts the whole batch
		}
		val := w.arena[i*RecordLen : (i+1)*RecordLen]
		var exp string
		if rd.Found {
			if len(rd.Rec) != RecordLen {
				return fmt.Errorf("%s: record of %d bytes, want %d", reqs[i].RKey, len(rd.Rec), RecordLen)
			}
			exp = rd.Rec[:VersionLen]
			Judge(val, rd.Rec, n, rd.Denied)
		} else {
			Judge(val, "", n, rd.Denied)
		}
		if rd.Denied {
			w.Denied++
		}
		ws = append(ws, Write{Key: reqs[i].RKey, Expect: exp, Value: val})
	}
	res := w.res[:len(ws)]
	if err := bt.Write(ctx, ws, res); err != nil {
		return err
	}
	for _, r := range res {
		switch r.Outcome {
		case OK:
		case Conflict:
			w.Conflicts++
		case Vanished:
			w.Vanished++
		default:
			return fmt.Errorf("unclassified CAS reply %v", r.Outcome)
		}
	}
	w.Batches++
	w.Events += int(total)
	w.Creds += len(ids)
	return nil
}
