// Package redisstore keeps vigil's state in Redis or a Redis Cluster, so
// that every gateway replica judges a credential against one shared
// profile: an attacker who spreads requests over replicas builds the same
// profile, and meets the same decisions, as one who sends them all to one.
//
// # Keys
//
// With the default prefix "vigil:", a credential with token id T has
//
//	vigil:{T}:r<format>        its record: an 8-byte version, then engine.Record's bytes
//	vigil:peer:{C}:r<format>   the peer record of client_id C
//	vigil:denylist             a hash: token id → denial (JSON)
//	vigil:denylist:ver         bumped on every denylist change
//
// The braces are a hash tag: in a Redis Cluster a credential's keys share
// one slot. <format> is engine.RecordFormat in hex, so that replicas of
// vigil versions whose records differ never read each other's bytes (a
// new format starts with empty profiles; the old keys expire).
//
// # Atomic updates
//
// A batch is two round trips. The first reads the records of the batch's
// credentials and peer groups; the events are judged in order on those
// copies; the second writes each changed record back with a
// compare-and-set script that succeeds only if the record's version is
// still the one read. A replica that lost a race re-reads the record (the
// script answers with it), judges that credential's events again on the
// newer copy, and tries again; peer records, which many credentials
// share, get the batch's lessons replayed onto the newer copy instead
// (engine.Judge.LearnPeer). So no update is ever lost, and a replica's
// decisions are those of one engine that saw every replica's events in
// the order their writes landed.
//
// # Expiry and memory
//
// Every write sets the record's TTL: NewTTL until the credential is
// established (20 events), IdleTTL after, so abandoned credentials expire
// and a flood of made-up ones leaves keys that expire first. Run Redis
// with maxmemory and maxmemory-policy volatile-ttl: under memory pressure
// Redis then evicts the keys nearest expiry, a flood's, before
// established credentials' baselines.
//
// # Failure
//
// Every round trip is bounded by Timeout. When Redis cannot be reached,
// the store is marked down for RetryAfter and batches are judged without
// it: fail-open judges on this replica's own profiles (an in-memory
// engine kept for outages), fail-closed blocks; either way the verdict
// says Fallback. The client reconnects by itself; the first batch after
// RetryAfter tries Redis again. The denylist is cached locally, so a
// denied credential stays denied while Redis is down.
package redisstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/store"
)

// Options configure a Store.
type Options struct {
	// Addrs of the Redis server, or of some nodes of a Redis Cluster.
	Addrs []string
	// Cluster selects the Redis Cluster protocol.
	Cluster  bool
	Username string
	Password string
	DB       int
	// Prefix of every key; "" means "vigil:". It must not contain braces.
	Prefix string

	// Engine has the scoring options (Tracker, Model, Ladder, LearnBelow,
	// BlockCredentialAt). Its MaxCredentials and MaxClients cap the
	// fail-open fallback engine; 0 means 100,000 and 10,000.
	Engine engine.Options

	// NewTTL and IdleTTL: how long a record lives after its last write,
	// before and after its credential is established. 0 means 24 hours
	// and 30 days.
	NewTTL, IdleTTL time.Duration
	// Timeout bounds each round trip; 0 means 100 ms.
	Timeout time.Duration
	// RetryAfter is how long the store stays down after a failure before
	// a batch tries Redis again; 0 means 1 s.
	RetryAfter time.Duration
	// FailClosed blocks every request while Redis is down instead of
	// judging it on local profiles.
	FailClosed bool
	// DenylistEvery is how often the local copy of the denylist is
	// refreshed (the most another replica's denial takes to be seen); 0
	// means 250 ms.
	DenylistEvery time.Duration
	// MaxRetries: how many times a batch retries a record another replica
	// wrote since it was read; 0 means 8.
	MaxRetries int

	Now func() time.Time
	Log *slog.Logger
}

// Store is a store.Store over Redis.
type Store struct {
	opts   Options
	rdb    redis.UniversalClient
	cas    *redis.Script
	suffix string // ":r<format>"

	mu       sync.Mutex // one batch at a time; guards everything below
	judge    *engine.Judge
	fallback *store.Local
	// Two batches: one being judged, one whose write-back is in flight
	// (pending) while it is.
	bufs    [2]batch
	cur     int
	pending *batch
	closed  bool

	downUntil atomic.Int64 // unix ns; 0 when up

	deny struct {
		sync.RWMutex
		m   map[string]*store.Denial
		ver string
	}
	stop chan struct{}
	done chan struct{}

	fallbacks, errs, conflicts, lost atomic.Uint64
}

// casScript writes records whose version is still the one read: one call
// for a whole batch on a single server, one call per record on a Redis
// Cluster (a script's keys must share a slot there). For each key i,
// ARGV[3i-2] is the 8-byte version read ("" if the key did not exist),
// ARGV[3i-1] the new value and ARGV[3i] its TTL in ms. It answers, per
// key, 1 when written, else the current value (nil if there is none).
const casScript = `
local out = {}
for i = 1, #KEYS do
  local want = ARGV[3*i-2]
  local old = redis.call('SET', KEYS[i], ARGV[3*i-1], 'PX', ARGV[3*i], 'GET')
  if not old then
    if want == '' then
      out[i] = 1
    else
      redis.call('DEL', KEYS[i])
      out[i] = false
    end
  elseif string.sub(old, 1, 8) == want then
    out[i] = 1
  else
    redis.call('SET', KEYS[i], old, 'KEEPTTL')
    out[i] = old
  end
end
return out
`

// maxChunk caps the keys of one MGET or one call of casScript: a script
// blocks the server while it runs (about 2 µs a key).
const maxChunk = 256

const versionLen = 8

// New connects to Redis and returns a Store. It fails if Redis does not
// answer a PING within Timeout: a store that starts down would fall back
// at once, which a misconfigured address should not do silently.
func New(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("redisstore: no address")
	}
	if o.Prefix == "" {
		o.Prefix = "vigil:"
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q must not contain braces (they would move the hash tag)", o.Prefix)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.NewTTL, 24*time.Hour)
	def(&o.IdleTTL, 30*24*time.Hour)
	def(&o.Timeout, 100*time.Millisecond)
	def(&o.RetryAfter, time.Second)
	def(&o.DenylistEvery, 250*time.Millisecond)
	if o.NewTTL < time.Millisecond || o.IdleTTL < time.Millisecond || o.Timeout < 0 || o.RetryAfter < 0 || o.DenylistEvery < 0 {
		return nil, fmt.Errorf("redisstore: new_ttl %s, idle_ttl %s (at least 1ms), timeout %s, retry_after %s and denylist_every %s must be positive",
			o.NewTTL, o.IdleTTL, o.Timeout, o.RetryAfter, o.DenylistEvery)
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	j, err := engine.NewJudge(o.Engine)
	if err != nil {
		return nil, err
	}
	fo := o.Engine
	fo.Dir = ""
	if fo.MaxCredentials == 0 {
		fo.MaxCredentials = 100_000
	}
	if fo.MaxClients == 0 {
		fo.MaxClients = 10_000
	}
	feng, err := engine.New(fo)
	if err != nil {
		return nil, err
	}
	fb, _ := store.NewLocal(feng, store.LocalOptions{Now: o.Now}) // no Dir: cannot fail

	uo := &redis.UniversalOptions{
		Addrs: o.Addrs, Username: o.Username, Password: o.Password, DB: o.DB,
		// The store retries nothing itself within a batch's time budget:
		// a failed round trip marks it down and the batch falls back.
		MaxRetries:            -1,
		DialTimeout:           o.Timeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		PoolTimeout:           o.Timeout,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	}
	var rdb redis.UniversalClient
	if o.Cluster {
		rdb = redis.NewClusterClient(uo.Cluster())
	} else {
		if len(o.Addrs) > 1 {
			return nil, fmt.Errorf("redisstore: %d addresses given for one server; set cluster for a Redis Cluster", len(o.Addrs))
		}
		rdb = redis.NewClient(uo.Simple())
	}
	s := &Store{opts: o, rdb: rdb, cas: redis.NewScript(casScript), suffix: fmt.Sprintf(":r%x", engine.RecordFormat),
		judge: j, fallback: fb, stop: make(chan struct{}), done: make(chan struct{})}
	s.deny.m = make(map[string]*store.Denial)
	cctx, cancel := context.WithTimeout(ctx, max(o.Timeout, time.Second))
	defer cancel()
	if err := rdb.Ping(cctx).Err(); err != nil {
		rdb.Close()
		fb.Close()
		return nil, fmt.Errorf("redisstore: %s: %w", strings.Join(o.Addrs, ","), err)
	}
	if err := s.refreshDenylist(cctx); err != nil {
		rdb.Close()
		fb.Close()
		return nil, err
	}
	s.checkPolicy(cctx)
	go s.denylistLoop()
	return s, nil
}

// checkPolicy warns when Redis would evict established baselines or refuse
// writes under memory pressure. Managed Redis may refuse CONFIG: then it
// says nothing.
func (s *Store) checkPolicy(ctx context.Context) {
	if s.opts.Cluster {
		return
	}
	v, err := s.rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return
	}
	if p := v["maxmemory-policy"]; p != "" && p != "volatile-ttl" {
		s.opts.Log.Warn("redis maxmemory-policy is not volatile-ttl: under memory pressure a flood of new credentials may evict established baselines, or writes fail",
			"policy", p, "addr", s.opts.Addrs[0])
	}
}

func (s *Store) recordKey(dst []byte, tokenID string) []byte {
	dst = append(dst, s.opts.Prefix...)
	dst = append(dst, '{')
	dst = append(dst, tokenID...)
	dst = append(dst, '}')
	return append(dst, s.suffix...)
}

func (s *Store) peerKey(dst []byte, clientID string) []byte {
	dst = append(dst, s.opts.Prefix...)
	dst = append(dst, "peer:{"...)
	dst = append(dst, clientID...)
	dst = append(dst, '}')
	return append(dst, s.suffix...)
}

func (s *Store) denyKey() string    { return s.opts.Prefix + "denylist" }
func (s *Store) denyVerKey() string { return s.opts.Prefix + "denylist:ver" }

// Available reports whether Redis is considered up.
func (s *Store) available(now time.Time) bool {
	d := s.downUntil.Load()
	return d == 0 || now.UnixNano() >= d
}

func (s *Store) markDown(err error, what string) {
	s.errs.Add(1)
	first := s.downUntil.Load() == 0
	s.downUntil.Store(s.opts.Now().Add(s.opts.RetryAfter).UnixNano())
	if first {
		s.opts.Log.Error("redis unavailable: judging without it", "op", what, "err", err, "fail_closed", s.opts.FailClosed, "retry_after", s.opts.RetryAfter)
	}
}

func (s *Store) markUp() {
	if s.downUntil.Load() != 0 {
		s.downUntil.Store(0)
		s.opts.Log.Info("redis available again")
	}
}

// Judge implements store.Store.
func (s *Store) Judge(ctx context.Context, evs []event.Event, vs []store.Verdict) error {
	return s.JudgeThen(ctx, evs, vs, nil)
}

// JudgeThen implements store.EarlyJudge. The batch is read (records the
// previous batch is still writing are taken from it, see override) and
// judged; ready is called; the previous batch's write-back is waited for
// and settled; this batch's write-back is sent and left in flight, so that
// Redis writes it while vigil answers, gathers and reads the next batch
// (measured: 78k events/s → 85–101k in one A/B run, uniform batches of
// 256, against waiting for the read to send it). The next call, or Flush,
// settles it. Judge, with no ready, settles its own write before it
// returns.
func (s *Store) JudgeThen(ctx context.Context, evs []event.Event, vs []store.Verdict, ready func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	now := s.opts.Now()
	if !s.available(now) {
		s.settle()
		return s.judgeFallback(ctx, evs, vs, now)
	}
	b := &s.bufs[s.cur]
	b.reset(s, evs)
	if err := b.read(ctx); err != nil {
		s.settle()
		s.markDown(err, "read")
		return s.judgeFallback(ctx, evs, vs, now)
	}
	s.markUp()
	if s.pending != nil {
		b.override(s.pending)
	}
	s.denials(b, now)
	b.judgeAll(b.vs)
	copy(vs, b.vs[:len(evs)])
	if ready != nil {
		ready()
	}
	s.settle()
	b.send()
	s.pending, s.cur = b, 1-s.cur
	if ready == nil {
		s.settle()
		copy(vs, b.vs[:len(evs)]) // as judged again after a lost race
	}
	return nil
}

// Flush waits for the write-back in flight, if any, and settles it.
func (s *Store) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
}

// settle waits for the pending batch's write-back and, for records
// another replica wrote meanwhile, judges that batch's events again on
// the newer records and writes again. The verdicts stand even if the
// write fails: they were judged on the shared records; only what they
// taught is lost. The caller holds mu.
func (s *Store) settle() {
	b := s.pending
	if b == nil {
		return
	}
	s.pending = nil
	n, err := b.finish()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		n, err = b.write(context.Background())
	}
	_ = s.writeBack(b, n, err, func() { b.rejudge(b.vs) })
}

// writeBack settles a write that returned n and err: after each write that
// lost races to other replicas, it redoes the batch's work on the newer
// records (redo) and writes again, at most MaxRetries times.
func (s *Store) writeBack(b *batch, n int, err error, redo func()) error {
	for attempt := 0; ; attempt++ {
		if err != nil {
			s.markDown(err, "write")
			s.lost.Add(uint64(n))
			return err
		}
		if n == 0 {
			return nil
		}
		s.conflicts.Add(uint64(n))
		if attempt == s.opts.MaxRetries {
			s.lost.Add(uint64(n))
			return nil
		}
		redo()
		n, err = b.write(context.Background())
	}
}

// denials gives the verdicts of denylisted credentials' events, which
// the batch then skips.
func (s *Store) denials(b *batch, now time.Time) {
	s.deny.RLock()
	defer s.deny.RUnlock()
	if len(s.deny.m) == 0 {
		return
	}
	for i := range b.evs {
		if d := s.denial(b.evs[i].TokenID, now); d != nil {
			b.vs[i] = store.Blocked(d, b.evs[i].Time)
			b.skip[i] = true
		}
	}
}

// denial returns the active denial of tokenID in the local copy of the
// denylist, or nil; the caller holds s.deny's read lock.
func (s *Store) denial(tokenID string, now time.Time) *store.Denial {
	if d := s.deny.m[tokenID]; d != nil && d.Active(now) {
		return d
	}
	return nil
}

// judgeFallback judges a batch while Redis is down.
func (s *Store) judgeFallback(ctx context.Context, evs []event.Event, vs []store.Verdict, now time.Time) error {
	s.fallbacks.Add(1)
	if s.opts.FailClosed {
		s.deny.RLock()
		for i := range evs {
			vs[i] = store.Blocked(s.denial(evs[i].TokenID, now), evs[i].Time)
			vs[i].Fallback, vs[i].FailClosed = true, true
		}
		s.deny.RUnlock()
		return nil
	}
	if err := s.fallback.Judge(ctx, evs, vs); err != nil {
		return err
	}
	s.deny.RLock()
	for i := range evs {
		if d := s.denial(evs[i].TokenID, now); d != nil {
			vs[i] = store.Blocked(d, evs[i].Time)
		}
		vs[i].Fallback = true
	}
	s.deny.RUnlock()
	return nil
}

// Complete implements store.Store: each credential's record is read,
// completed and written back with the same compare-and-set as Judge.
func (s *Store) Complete(ctx context.Context, cs []store.Completion) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.settle()
	if !s.available(s.opts.Now()) {
		return s.fallback.Complete(ctx, cs)
	}
	b := &s.bufs[s.cur]
	b.resetCompletions(s, cs)
	if err := b.read(ctx); err != nil {
		s.markDown(err, "read")
		return s.fallback.Complete(ctx, cs)
	}
	b.completeAll()
	n, err := b.write(ctx)
	if err := s.writeBack(b, n, err, b.recomplete); err != nil {
		return fmt.Errorf("redisstore: completions: %w", err)
	}
	return nil
}

// Inspect implements store.Store. It waits for a write-back in flight.
func (s *Store) Inspect(ctx context.Context, tokenID string) (engine.Snapshot, bool, error) {
	s.Flush()
	if !s.available(s.opts.Now()) {
		return s.fallback.Inspect(ctx, tokenID)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	v, err := s.rdb.Get(ctx, string(s.recordKey(nil, tokenID))).Bytes()
	if errors.Is(err, redis.Nil) {
		return engine.Snapshot{}, false, nil
	}
	if err != nil {
		return engine.Snapshot{}, false, fmt.Errorf("redisstore: %w", err)
	}
	var r engine.Record
	if _, err := decode(v, &r); err != nil {
		return engine.Snapshot{}, false, err
	}
	return r.Snapshot(), true, nil
}

// decode reads a stored value into r and returns its version.
func decode(v []byte, r *engine.Record) (uint64, error) {
	if len(v) != versionLen+engine.RecordSize {
		return 0, fmt.Errorf("redisstore: a record value is %d bytes, want %d", len(v), versionLen+engine.RecordSize)
	}
	if err := r.SetBytes(v[versionLen:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// Deny implements store.Store. The denial is written to the shared
// denylist and applied here at once; other replicas see it at their next
// refresh (DenylistEvery).
func (s *Store) Deny(ctx context.Context, d store.Denial) error {
	if d.At.IsZero() {
		d.At = s.opts.Now().UTC()
	}
	if err := d.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout*4)
	defer cancel()
	if err := s.rdb.HSet(ctx, s.denyKey(), d.TokenID, b).Err(); err != nil {
		return fmt.Errorf("redisstore: deny: %w", err)
	}
	if err := s.rdb.Incr(ctx, s.denyVerKey()).Err(); err != nil {
		return fmt.Errorf("redisstore: deny: %w", err)
	}
	s.deny.Lock()
	s.deny.m[d.TokenID] = &d
	s.deny.Unlock()
	return nil
}

// Undeny implements store.Store.
func (s *Store) Undeny(ctx context.Context, tokenID string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout*4)
	defer cancel()
	n, err := s.rdb.HDel(ctx, s.denyKey(), tokenID).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: undeny: %w", err)
	}
	if err := s.rdb.Incr(ctx, s.denyVerKey()).Err(); err != nil {
		return false, fmt.Errorf("redisstore: undeny: %w", err)
	}
	s.deny.Lock()
	delete(s.deny.m, tokenID)
	s.deny.Unlock()
	return n > 0, nil
}

// Denials implements store.Store. It reads Redis, not the local copy.
func (s *Store) Denials(ctx context.Context, max int) ([]store.Denial, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout*10)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, s.denyKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: denials: %w", err)
	}
	now := s.opts.Now()
	var out []store.Denial
	for id, v := range m {
		if max > 0 && len(out) == max {
			break
		}
		var d store.Denial
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			s.opts.Log.Warn("unreadable denylist entry skipped", "token_id", id, "err", err)
			continue
		}
		if d.Active(now) {
			out = append(out, d)
		}
	}
	return out, nil
}

// denylistLoop refreshes the local copy of the denylist until Close.
func (s *Store) denylistLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.DenylistEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout*10)
			if err := s.refreshDenylist(ctx); err != nil {
				s.opts.Log.Debug("denylist not refreshed", "err", err)
			}
			cancel()
		}
	}
}

// refreshDenylist reloads the denylist when its version changed, and drops
// expired entries from Redis.
func (s *Store) refreshDenylist(ctx context.Context) error {
	ver, err := s.rdb.Get(ctx, s.denyVerKey()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: denylist: %w", err)
	}
	s.deny.RLock()
	same := ver == s.deny.ver && ver != ""
	s.deny.RUnlock()
	if same {
		return nil
	}
	raw, err := s.rdb.HGetAll(ctx, s.denyKey()).Result()
	if err != nil {
		return fmt.Errorf("redisstore: denylist: %w", err)
	}
	now := s.opts.Now()
	m := make(map[string]*store.Denial, len(raw))
	var expired []string
	for id, v := range raw {
		d := new(store.Denial)
		if err := json.Unmarshal([]byte(v), d); err != nil || d.TokenID != id {
			s.opts.Log.Warn("unreadable denylist entry skipped", "token_id", id, "err", err)
			continue
		}
		if !d.Active(now) {
			expired = append(expired, id)
			continue
		}
		m[id] = d
	}
	if len(expired) > 0 {
		// Best effort; the next refresh tries again.
		_ = s.rdb.HDel(ctx, s.denyKey(), expired...).Err()
	}
	s.deny.Lock()
	s.deny.m, s.deny.ver = m, ver
	s.deny.Unlock()
	return nil
}

// Stats implements store.Store.
func (s *Store) Stats() store.Stats {
	fs := s.fallback.Stats()
	return store.Stats{Credentials: fs.Credentials, Fallbacks: s.fallbacks.Load(), Errors: s.errs.Load(),
		Conflicts: s.conflicts.Load(), Available: s.available(s.opts.Now())}
}

// Lost returns how many record writes were given up: a write that failed,
// or that kept losing races past MaxRetries.
func (s *Store) Lost() uint64 { return s.lost.Load() }

// Sync implements store.Store: Redis keeps what it was given.
func (s *Store) Sync() error { return nil }

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.settle()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.fallback.Close()
	return s.rdb.Close()
}

// ttl is how long a record lives after this write, in ms as casScript
// takes it: NewTTL until its credential is established, IdleTTL after.
func (s *Store) ttl(r *engine.Record) string {
	d := s.opts.NewTTL
	if r.Established() {
		d = s.opts.IdleTTL
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// Seen records key until the given time and reports whether it was
// already recorded, for every replica at once (SET NX): the replay cache
// of DPoP proofs (binding.ReplayCache).
func (s *Store) Seen(key string, until time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	ttl := time.Until(until)
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	ok, err := s.rdb.SetNX(ctx, s.opts.Prefix+"seen:{"+key+"}", 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: replay cache: %w", err)
	}
	return !ok, nil
}
