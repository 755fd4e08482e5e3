package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/store"
)

// slot is one record a batch reads, changes and writes back.
type slot struct {
	key      string
	ver      uint64
	exists   bool
	dirty    bool
	conflict bool
	r        engine.Record
}

// batch is the scratch space of one Judge or Complete; the Store reuses
// it under its mutex.
type batch struct {
	s      *Store
	evs    []event.Event // the batch's own copies (own, arena): see reset
	own    []event.Event
	arena  []byte
	vs     []store.Verdict // the batch's own verdicts
	comps  []store.Completion
	skip   []bool  // per event: denied, not judged
	evCred []int32 // per event (or completion): its credential's slot
	evPeer []int32 // per event: its peer group's slot, or -1
	slots  []slot  // credentials first, then peer groups
	nCred  int
	credOf map[string]int32
	peerOf map[string]int32
	key    []byte
	keys   []string
	args   []any
	reads  []*redis.SliceCmd
	writes []*redis.Cmd
	which  []int32 // slots written, in the order of the writes' keys
	vals   []byte  // arena of the values written

	// The write-back in flight (send, finish).
	inflight bool
	done     chan error
	cancel   context.CancelFunc
}

func (b *batch) clear(s *Store, n int) {
	b.s = s
	if b.credOf == nil {
		b.credOf, b.peerOf = make(map[string]int32), make(map[string]int32)
	}
	clear(b.credOf)
	clear(b.peerOf)
	b.slots = b.slots[:0]
	b.skip = grow(b.skip, n)
	clear(b.skip)
	b.evCred = grow(b.evCred, n)
	b.evPeer = grow(b.evPeer, n)
	b.evs, b.comps = nil, nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (b *batch) slotFor(m map[string]int32, id string, peer bool) int32 {
	if i, ok := m[id]; ok {
		return i
	}
	i := int32(len(b.slots))
	// Keys live in one arena per batch, dropped (not reused: commands of
	// the last batch may still hold them) when it fills.
	n := len(b.s.opts.Prefix) + len(id) + 16
	if cap(b.key)-len(b.key) < n {
		b.key = make([]byte, 0, max(16<<10, n))
	}
	start := len(b.key)
	if peer {
		b.key = b.s.peerKey(b.key, id)
	} else {
		b.key = b.s.recordKey(b.key, id)
	}
	b.slots = append(b.slots, slot{key: unsafe.String(&b.key[start], len(b.key)-start)})
	m[id] = i
	return i
}

// reset prepares a batch of events: one slot per distinct credential,
// then one per distinct client. It copies the events, strings and all:
// the batch's write-back, and judging again after a lost race, may come
// after the caller has its verdicts and has reused its memory.
func (b *batch) reset(s *Store, src []event.Event) {
	b.clear(s, len(src))
	b.own = grow(b.own, len(src))
	b.vs = grow(b.vs, len(src))
	b.arena = b.arena[:0]
	for i := range src {
		b.own[i] = src[i]
		b.arena = b.own[i].Detach(b.arena)
	}
	evs := b.own[:len(src)]
	b.evs = evs
	for i := range evs {
		b.evCred[i] = b.slotFor(b.credOf, evs[i].TokenID, false)
	}
	b.nCred = len(b.slots)
	for i := range evs {
		b.evPeer[i] = -1
		if id := evs[i].ClientID; id != "" {
			b.evPeer[i] = b.slotFor(b.peerOf, id, true)
		}
	}
}

// resetCompletions prepares a batch of completions.
func (b *batch) resetCompletions(s *Store, cs []store.Completion) {
	b.clear(s, len(cs))
	b.comps = cs
	for i := range cs {
		b.evCred[i] = b.slotFor(b.credOf, cs[i].TokenID, false)
	}
	b.nCred = len(b.slots)
}

// read fetches every slot's record in one round trip: MGETs of up to
// maxChunk keys on a single server, a GET per key on a Redis Cluster
// (the client sends each node its share).
//
// (Reading under WATCH, to write back with MULTI/EXEC instead of the
// script, was measured and is slower: Redis 7.0's WATCH checks each key
// against the keys the connection already watches, quadratic in the
// batch, 2.7 µs a key at 276 keys.)
func (b *batch) read(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.s.opts.Timeout)
	defer cancel()
	b.reads = b.reads[:0]
	b.keys = b.keys[:0]
	for i := range b.slots {
		b.keys = append(b.keys, b.slots[i].key)
	}
	if len(b.keys) == 0 {
		return nil
	}
	step := maxChunk
	if b.s.opts.Cluster {
		step = 1
	}
	pipe := b.s.rdb.Pipeline()
	for off := 0; off < len(b.keys); off += step {
		b.reads = append(b.reads, pipe.MGet(ctx, b.keys[off:min(off+step, len(b.keys))]...))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: read %d records: %w", len(b.slots), err)
	}
	i := 0
	for _, c := range b.reads {
		for _, v := range c.Val() {
			if v, ok := v.(string); ok {
				b.load(&b.slots[i], unsafeBytes(v))
			}
			i++
		}
	}
	return nil
}

// value is what a slot's record is stored as: its next version, then its
// bytes, in the batch's arena.
func (b *batch) value(sl *slot) []byte {
	const n = versionLen + engine.RecordSize
	if cap(b.vals)-len(b.vals) < n {
		b.vals = make([]byte, 0, maxChunk*n)
	}
	val := b.vals[len(b.vals) : len(b.vals)+n]
	b.vals = b.vals[:len(b.vals)+n]
	binary.BigEndian.PutUint64(val, sl.ver+1)
	copy(val[versionLen:], sl.r.Bytes())
	return val
}

// override replaces the records read of the credentials and peer groups
// that p, the batch whose write-back is in flight, is writing, with what
// p is writing: the read may have reached Redis before that write. If
// p's write then loses a race, this batch's write of those records loses
// one too (it expects p's version), and is judged again on the newer
// record, so nothing is lost either way.
func (b *batch) override(p *batch) {
	for _, pair := range [2][2]map[string]int32{{b.credOf, p.credOf}, {b.peerOf, p.peerOf}} {
		for id, i := range pair[0] {
			j, ok := pair[1][id]
			if !ok || !p.slots[j].dirty {
				continue
			}
			sl, ps := &b.slots[i], &p.slots[j]
			sl.r, sl.ver, sl.exists = ps.r, ps.ver+1, true
		}
	}
}

// load makes v, a value read from Redis, the slot's record. A value of the
// wrong size (written by something else) is overwritten by the next write,
// which expects its version.
func (b *batch) load(sl *slot, v []byte) {
	sl.exists = true
	ver, err := decode(v, &sl.r)
	if err != nil {
		b.s.errs.Add(1)
		b.s.opts.Log.Warn("unreadable record replaced", "key", sl.key, "err", err)
		sl.r = engine.Record{}
		if len(v) >= versionLen {
			ver = binary.BigEndian.Uint64(v)
		}
	}
	sl.ver = ver
}

// judgeAll judges the batch's events in order on the slots' records.
func (b *batch) judgeAll(vs []store.Verdict) {
	for i := range b.evs {
		if !b.skip[i] {
			b.judgeOne(i, vs, nil)
		}
	}
}

// judgeOne judges event i; peer, when set, is used instead of the peer
// group's slot (a scratch copy, when judging again after a conflict).
func (b *batch) judgeOne(i int, vs []store.Verdict, peer *engine.Record) {
	sl := &b.slots[b.evCred[i]]
	if p := b.evPeer[i]; p >= 0 && peer == nil {
		b.slots[p].dirty = true
		peer = &b.slots[p].r
	}
	v := &vs[i]
	*v = store.Verdict{}
	b.s.judge.Judge(&sl.r, peer, &b.evs[i], &v.Verdict)
	sl.dirty = true
	if v.Level == policy.Throttle {
		sn := sl.r.Snapshot()
		v.TypicalRequests, v.Buckets = sn.TypicalRequests, sn.Buckets
	}
}

// rejudge judges again the events of credentials whose write lost a race,
// on the newer records read back, then replays the batch's lessons onto
// the newer peer records of the groups whose write lost.
func (b *batch) rejudge(vs []store.Verdict) {
	var scratch engine.Record
	for i := range b.evs {
		if b.skip[i] || !b.slots[b.evCred[i]].conflict {
			continue
		}
		var peer *engine.Record
		if p := b.evPeer[i]; p >= 0 {
			// The peer group already learned this event: judge against a
			// copy, so that it does not learn it twice.
			scratch = b.slots[p].r
			peer = &scratch
		}
		b.judgeOne(i, vs, peer)
	}
	for i := range b.evs {
		if p := b.evPeer[i]; !b.skip[i] && p >= 0 && b.slots[p].conflict {
			b.s.judge.LearnPeer(&b.slots[p].r, &b.evs[i], vs[i].Trust)
			b.slots[p].dirty = true
		}
	}
	b.endConflicts()
}

func (b *batch) endConflicts() {
	for i := range b.slots {
		b.slots[i].conflict = false
	}
}

// completeAll folds the completions into the records of known credentials.
func (b *batch) completeAll() {
	for i := range b.comps {
		b.completeOne(i)
	}
}

func (b *batch) completeOne(i int) {
	sl := &b.slots[b.evCred[i]]
	if !sl.exists {
		return
	}
	c := &b.comps[i]
	b.s.judge.Complete(&sl.r, c.At, c.Outcome, c.Trust)
	sl.dirty = true
}

// recomplete applies the completions of the credentials whose write lost
// a race again, on the newer records.
func (b *batch) recomplete() {
	for i := range b.comps {
		if b.slots[b.evCred[i]].conflict {
			b.completeOne(i)
		}
	}
	b.endConflicts()
}

// write stores every changed record with the compare-and-set script in
// one round trip and waits for it. It returns how many writes lost a race
// (their slots now hold the newer record and are marked conflict), or,
// with an error, how many writes may not have landed.
func (b *batch) write(ctx context.Context) (int, error) {
	b.send()
	n, err := b.finish()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted or its scripts were flushed: load and retry.
		ctx, cancel := context.WithTimeout(ctx, b.s.opts.Timeout)
		lerr := b.s.cas.Load(ctx, b.s.rdb).Err()
		cancel()
		if lerr != nil {
			return n, fmt.Errorf("redisstore: load script: %w", lerr)
		}
		b.send()
		n, err = b.finish()
	}
	return n, err
}

// send starts writing every changed record with the compare-and-set
// script, in one round trip on a connection of its own; finish waits for
// it. Between the two, the store may read and judge the next batch.
func (b *batch) send() {
	ctx, cancel := context.WithTimeout(context.Background(), b.s.opts.Timeout)
	pipe := b.s.rdb.Pipeline()
	b.writes, b.which = b.writes[:0], b.which[:0]
	step := maxChunk
	if b.s.opts.Cluster {
		step = 1
	}
	b.keys, b.args = b.keys[:0], b.args[:0]
	flush := func() {
		if len(b.keys) > 0 {
			b.writes = append(b.writes, b.s.cas.EvalSha(ctx, pipe, b.keys, b.args...))
			b.keys, b.args = b.keys[:0], b.args[:0] // the command copied them
		}
	}
	for i := range b.slots {
		sl := &b.slots[i]
		if !sl.dirty {
			continue
		}
		want := ""
		if sl.exists {
			want = versionString(sl.ver)
		}
		b.keys = append(b.keys, sl.key)
		b.args = append(b.args, want, b.value(sl), b.s.ttl(&sl.r))
		b.which = append(b.which, int32(i))
		if len(b.keys) == step {
			flush()
		}
	}
	flush()
	if len(b.writes) == 0 {
		cancel()
		return
	}
	if b.done == nil {
		b.done = make(chan error, 1)
	}
	b.inflight, b.cancel = true, cancel
	go func() {
		_, err := pipe.Exec(ctx)
		b.done <- err
	}()
}

// finish waits for the write send started and applies its answers; see
// write for what it returns.
func (b *batch) finish() (int, error) {
	if !b.inflight {
		return 0, nil
	}
	err := <-b.done
	b.cancel()
	b.inflight = false
	if err != nil {
		var rerr redis.Error
		if !errors.As(err, &rerr) || redis.HasErrorPrefix(err, "NOSCRIPT") {
			return len(b.which), fmt.Errorf("redisstore: write %d records: %w", len(b.which), err)
		}
	}
	conflicts, k := 0, 0
	for _, c := range b.writes {
		res, err := c.Slice()
		if err != nil {
			// Redis refused the call (out of memory, say): its records
			// are lost.
			n := (len(c.Args()) - 3) / 4 // its keys: EVALSHA sha numkeys keys... 3 args each
			for range n {
				b.slots[b.which[k]].dirty = false
				k++
			}
			b.s.errs.Add(1)
			b.s.lost.Add(uint64(n))
			b.s.opts.Log.Warn("records not written", "records", n, "err", err)
			continue
		}
		for _, r := range res {
			sl := &b.slots[b.which[k]]
			k++
			switch r := r.(type) {
			case int64:
				sl.ver++
				sl.exists, sl.dirty = true, false
			case string:
				b.load(sl, unsafeBytes(r))
				sl.conflict = true
				conflicts++
			case nil: // the key vanished (expired, evicted): write it anew
				sl.exists, sl.ver, sl.conflict = false, 0, true
				sl.r = engine.Record{}
				conflicts++
			default:
				b.s.errs.Add(1)
				sl.dirty = false
				b.s.opts.Log.Warn("unexpected reply to a record write", "key", sl.key, "reply", fmt.Sprintf("%T", r))
			}
		}
	}
	return conflicts, nil
}

// versionString is a version as the 8 bytes stored before a record.
func versionString(v uint64) string {
	var b [versionLen]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

// unsafeBytes views s as bytes; the caller only reads them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
