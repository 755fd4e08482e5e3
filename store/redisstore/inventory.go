package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/policy"
)

// Inventory is the credential inventory shared by replicas
// (inventory.Sink): a hash per credential, <prefix>{<token_id>}:inv, in
// the credential's slot, and its latest non-allow decisions in a list,
// <prefix>{<token_id>}:invh. Replicas aggregate their uses and merge them
// every few seconds (inventory.Shared) with one script call per
// credential, which adds counts and keeps the earliest first-seen and the
// latest last-seen times and the latest MaxHistory decisions, so merges
// from replicas in any order give the same entry. Both keys expire Retention after the last merge.
//
// Hash fields (see mergeScript for the ARGV layout): first, last (Unix µs), n, d0–d3 (decisions by level), bu,
// bd, bm, bf (binding: unbound, DPoP, mTLS, failures), lf/lfa (last
// binding failure), risk, level, mr/mra (highest risk), client, sub, kind,
// granted; one field per value seen, "<dim>|<value>" = "n,first,last" with
// dim e (endpoint), a (ASN), c (country), s (scope used); "#<dim>" counts
// them, at most inventory.MaxValues, and "o<dim>" counts the requests of
// values past that.
type Inventory struct {
	s         *Store
	retention time.Duration
	merge     *redis.Script
}

// DefaultRetention keeps a credential's inventory entry 13 months after
// its last use: a dormant credential is reported for a year.
const DefaultRetention = 395 * 24 * time.Hour

// Inventory returns the store's shared inventory; retention 0 means
// DefaultRetention.
func (s *Store) Inventory(retention time.Duration) *Inventory {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Inventory{s: s, retention: retention, merge: redis.NewScript(mergeScript)}
}

var _ inventory.Sink = (*Inventory)(nil)

// mergeScript merges one replica's view of a credential (see Merge for
// ARGV). Times are Unix microseconds: Lua numbers hold them exactly.
const mergeScript = `
local h, hist, applied = KEYS[1], KEYS[2], KEYS[3]
local replica, seq = ARGV[26 + tonumber(ARGV[25])], tonumber(ARGV[27 + tonumber(ARGV[25])])
if seq <= tonumber(redis.call('HGET', applied, replica) or '0') then return 0 end
if redis.call('HLEN', applied) >= 32 then redis.call('DEL', applied) end
redis.call('HSET', applied, replica, ARGV[27 + tonumber(ARGV[25])])
redis.call('PEXPIRE', applied, 86400000)
local nh, maxv = tonumber(ARGV[25]), tonumber(ARGV[24])
local first = 28 + nh
local fields = {'first', 'last', 'n', 'd0', 'd1', 'd2', 'd3', 'bu', 'bd', 'bm', 'bf', 'lfa', 'mr', 'mra',
  '#e', '#a', '#c', '#s', 'oe', 'oa', 'oc', 'os'}
for i = first, #ARGV - 3, 4 do fields[#fields + 1] = ARGV[i] end
local cur, get = redis.call('HMGET', h, unpack(fields)), {}
for j, f in ipairs(fields) do get[f] = cur[j] end
local out = {}
local function set(f, v) out[#out + 1] = f; out[#out + 1] = v end
local function num(f) return tonumber(get[f] or '0') or 0 end
local function fmt(x) return string.format('%.0f', x) end
if num('first') == 0 or tonumber(ARGV[2]) < num('first') then set('first', ARGV[2]) end
if tonumber(ARGV[3]) >= num('last') then
  set('last', ARGV[3]); set('risk', ARGV[15]); set('level', ARGV[16])
  for i, f in ipairs({'client', 'sub', 'kind', 'granted'}) do
    if ARGV[18 + i] ~= '' then set(f, ARGV[18 + i]) end
  end
end
for i, f in ipairs({'n', 'd0', 'd1', 'd2', 'd3', 'bu', 'bd', 'bm', 'bf'}) do
  local d = tonumber(ARGV[3 + i])
  if d ~= 0 then set(f, fmt(num(f) + d)) end
end
if ARGV[13] ~= '' and tonumber(ARGV[14]) >= num('lfa') then set('lf', ARGV[13]); set('lfa', ARGV[14]) end
local mr, cmr = tonumber(ARGV[17]), tonumber(get['mr'] or '-1')
if mr > cmr or (mr == cmr and tonumber(ARGV[18]) < num('mra')) then set('mr', ARGV[17]); set('mra', ARGV[18]) end
local count, over = {}, {}
for i = first, #ARGV - 3, 4 do
  local f, n, fi, la = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local dim = string.sub(f, 1, 1)
  local c = get[f]
  if c then
    local cn, cfi, cla = string.match(c, '^(%d+),(%d+),(%d+)$')
    if cn then
      if tonumber(cfi) < tonumber(fi) then fi = cfi end
      if tonumber(cla) > tonumber(la) then la = cla end
      n = n + tonumber(cn)
    end
    set(f, fmt(n) .. ',' .. fi .. ',' .. la)
  else
    local have = count[dim] or num('#' .. dim)
    if have >= maxv then
      over[dim] = (over[dim] or 0) + n
    else
      set(f, fmt(n) .. ',' .. fi .. ',' .. la)
      count[dim] = have + 1
    end
  end
end
for dim, c in pairs(count) do set('#' .. dim, fmt(c)) end
for dim, n in pairs(over) do set('o' .. dim, fmt(num('o' .. dim) + n)) end
if #out > 0 then redis.call('HSET', h, unpack(out)) end
redis.call('PEXPIRE', h, ARGV[1])
if nh > 0 then
  local items, keyed = redis.call('LRANGE', hist, 0, -1), {}
  for j = 1, nh do items[#items + 1] = ARGV[25 + j] end
  for j, it in ipairs(items) do keyed[j] = {tonumber(string.match(it, '^(%d+),')) or 0, j, it} end
  table.sort(keyed, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
  local keep = {}
  for j = math.max(1, #keyed - tonumber(ARGV[23]) + 1), #keyed do keep[#keep + 1] = keyed[j][3] end
  redis.call('DEL', hist)
  redis.call('RPUSH', hist, unpack(keep))
  redis.call('PEXPIRE', hist, ARGV[1])
end
return 1
`

func (v *Inventory) key(tokenID string) string {
	return v.s.opts.Prefix + "{" + tokenID + "}:inv"
}

func micros(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// Merge adds each entry to the stored one, pipelined: one script call per
// credential, one round trip per node.
//
// batch is "<replica>-<n>" (inventory.Shared names them so): each entry
// records, in <prefix>{<token_id>}:invm, the latest n merged from each
// replica, so a retried batch that a timeout had partly applied skips
// what was applied. Shared retries a replica's failed batches in order
// before newer ones, which this relies on.
func (v *Inventory) Merge(ctx context.Context, batch string, entries []*inventory.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	i := strings.LastIndexByte(batch, '-')
	if i <= 0 {
		return fmt.Errorf("redisstore: inventory: batch %q: want <replica>-<n>", batch)
	}
	seq, err := strconv.ParseUint(batch[i+1:], 36, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("redisstore: inventory: batch %q: want <replica>-<n>", batch)
	}
	replica, n := batch[:i], strconv.FormatUint(seq, 10)
	ctx, cancel := context.WithTimeout(ctx, max(v.s.opts.Timeout, time.Second))
	defer cancel()
	run := func() ([]redis.Cmder, error) {
		return v.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range entries {
				k := v.key(e.TokenID)
				v.merge.EvalSha(ctx, p, []string{k, k + "h", k + "m"}, v.args(e, replica, n)...)
			}
			return nil
		})
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := v.merge.Load(ctx, v.s.rdb).Err(); lerr != nil {
			return fmt.Errorf("redisstore: inventory: loading the merge script: %w", lerr)
		}
		cmds, err = run()
	}
	if err != nil {
		for _, c := range cmds {
			if c.Err() != nil {
				return fmt.Errorf("redisstore: inventory: merging %d entries: %w", len(entries), c.Err())
			}
		}
		return fmt.Errorf("redisstore: inventory: merging %d entries: %w", len(entries), err)
	}
	return nil
}

// args are the script's ARGV for e.
func (v *Inventory) args(e *inventory.Entry, replica, seq string) []any {
	d, b := &e.Decisions, &e.Binding
	a := []any{v.retention.Milliseconds(), micros(e.FirstSeen), micros(e.LastSeen),
		u64(e.Requests), u64(d.Allow), u64(d.Throttle), u64(d.StepUp), u64(d.Block),
		u64(b.Unbound), u64(b.DPoP), u64(b.MTLS), u64(b.Failures), b.LastFailure, micros(b.LastFailureAt),
		strconv.FormatFloat(e.Risk, 'g', -1, 64), strconv.Itoa(int(e.Level)),
		strconv.FormatFloat(e.MaxRisk, 'g', -1, 64), micros(e.MaxRiskAt),
		e.ClientID, e.Subject, e.Kind, strings.Join(e.Granted, " "),
		inventory.MaxHistory, inventory.MaxValues, len(e.History)}
	for _, h := range e.History {
		a = append(a, micros(h.Time)+","+strconv.Itoa(int(h.Level))+","+strconv.FormatFloat(h.Risk, 'g', -1, 64)+","+h.Signal)
	}
	a = append(a, replica, seq)
	for _, dim := range [...]struct {
		c  string
		cs []inventory.Count
	}{{"e|", e.Endpoints}, {"a|", e.ASNs}, {"c|", e.Countries}, {"s|", e.Used}} {
		for _, c := range dim.cs {
			a = append(a, dim.c+c.Value, u64(c.Requests), micros(c.First), micros(c.Last))
		}
	}
	return a
}

// Get reads a credential's merged entry.
func (v *Inventory) Get(ctx context.Context, tokenID string) (inventory.Entry, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, max(v.s.opts.Timeout, time.Second))
	defer cancel()
	k := v.key(tokenID)
	var h *redis.MapStringStringCmd
	var l *redis.StringSliceCmd
	_, err := v.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, k)
		l = p.LRange(ctx, k+"h", 0, -1)
		return nil
	})
	if err != nil {
		return inventory.Entry{}, false, fmt.Errorf("redisstore: inventory: %w", err)
	}
	if len(h.Val()) == 0 {
		return inventory.Entry{}, false, nil
	}
	e, err := decodeEntry(tokenID, h.Val(), l.Val())
	return e, true, err
}

// Each reads every stored entry: a SCAN of each node, then the entries
// found in pipelined batches. Entries added during the scan may be
// missed; none is read twice.
func (v *Inventory) Each(ctx context.Context, fn func(*inventory.Entry) error) error {
	match := globEscape(v.s.opts.Prefix) + "{*}:inv"
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, 512).Result()
			if err != nil {
				return fmt.Errorf("redisstore: inventory: scanning: %w", err)
			}
			if err := v.read(ctx, c, keys, fn); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := v.s.rdb.(*redis.ClusterClient); ok {
		// Masters are scanned concurrently; fn is called by one at a time.
		var mu sync.Mutex
		serial := fn
		fn = func(e *inventory.Entry) error {
			mu.Lock()
			defer mu.Unlock()
			return serial(e)
		}
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, v.s.rdb)
}

func (v *Inventory) read(ctx context.Context, c redis.UniversalClient, keys []string, fn func(*inventory.Entry) error) error {
	if len(keys) == 0 {
		return nil
	}
	hs := make([]*redis.MapStringStringCmd, len(keys))
	ls := make([]*redis.StringSliceCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			hs[i] = p.HGetAll(ctx, k)
			ls[i] = p.LRange(ctx, k+"h", 0, -1)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: inventory: reading: %w", err)
	}
	var errs []error
	for i, k := range keys {
		if len(hs[i].Val()) == 0 {
			continue // expired since the scan
		}
		id := strings.TrimSuffix(strings.TrimPrefix(k, v.s.opts.Prefix+"{"), "}:inv")
		e, err := decodeEntry(id, hs[i].Val(), ls[i].Val())
		if err != nil {
			errs = append(errs, err) // the rest of the entry is still reported
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// decodeEntry turns a stored hash and history into an entry. A field that
// does not parse is left out and named in the error; the rest is kept.
func decodeEntry(tokenID string, h map[string]string, hist []string) (inventory.Entry, error) {
	e := inventory.Entry{TokenID: tokenID}
	var errs []error
	bad := func(f string, err error) { errs = append(errs, fmt.Errorf("field %q: %w", f, err)) }
	u := func(f string, dst *uint64) {
		if s, ok := h[f]; ok {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				bad(f, err)
			}
			*dst = n
		}
	}
	t := func(f string, dst *time.Time) {
		if s, ok := h[f]; ok {
			n, err := strconv.ParseInt(s, 10, 64)
			switch {
			case err != nil:
				bad(f, err)
			case n != 0:
				*dst = time.UnixMicro(n).UTC()
			}
		}
	}
	fl := func(f string, dst *float64) {
		if s, ok := h[f]; ok {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				bad(f, err)
			}
			*dst = x
		}
	}
	t("first", &e.FirstSeen)
	t("last", &e.LastSeen)
	u("n", &e.Requests)
	u("d0", &e.Decisions.Allow)
	u("d1", &e.Decisions.Throttle)
	u("d2", &e.Decisions.StepUp)
	u("d3", &e.Decisions.Block)
	u("bu", &e.Binding.Unbound)
	u("bd", &e.Binding.DPoP)
	u("bm", &e.Binding.MTLS)
	u("bf", &e.Binding.Failures)
	e.Binding.LastFailure = h["lf"]
	t("lfa", &e.Binding.LastFailureAt)
	fl("risk", &e.Risk)
	fl("mr", &e.MaxRisk)
	t("mra", &e.MaxRiskAt)
	var level uint64
	u("level", &level)
	e.Level = policy.Level(min(level, uint64(policy.Block)))
	e.ClientID, e.Subject, e.Kind = h["client"], h["sub"], h["kind"]
	if g := h["granted"]; g != "" {
		e.Granted = strings.Fields(g)
	}
	u("oe", &e.Other.Endpoints)
	u("oa", &e.Other.ASNs)
	u("oc", &e.Other.Countries)
	u("os", &e.Other.Used)
	for f, val := range h {
		if len(f) < 2 || f[1] != '|' {
			continue
		}
		var dst *[]inventory.Count
		switch f[0] {
		case 'e':
			dst = &e.Endpoints
		case 'a':
			dst = &e.ASNs
		case 'c':
			dst = &e.Countries
		case 's':
			dst = &e.Used
		default:
			continue
		}
		c, err := decodeCount(f[2:], val)
		if err != nil {
			bad(f, err)
			continue
		}
		*dst = append(*dst, c)
	}
	for i, s := range hist {
		d, err := decodeDecision(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("history item %d: %w", i, err))
			continue
		}
		e.History = append(e.History, d)
	}
	slices.SortStableFunc(e.History, func(a, b inventory.Decision) int { return a.Time.Compare(b.Time) })
	e.Sort()
	if err := errors.Join(errs...); err != nil {
		return e, fmt.Errorf("redisstore: inventory entry %s: %w", tokenID, err)
	}
	return e, nil
}

func decodeCount(value, s string) (inventory.Count, error) {
	n, rest, ok1 := strings.Cut(s, ",")
	fi, la, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return inventory.Count{}, errors.New(`want "n,first,last"`)
	}
	c := inventory.Count{Value: value}
	var err error
	if c.Requests, err = strconv.ParseUint(n, 10, 64); err != nil {
		return c, err
	}
	f, err := strconv.ParseInt(fi, 10, 64)
	if err != nil {
		return c, err
	}
	l, err := strconv.ParseInt(la, 10, 64)
	if err != nil {
		return c, err
	}
	c.First, c.Last = time.UnixMicro(f).UTC(), time.UnixMicro(l).UTC()
	return c, nil
}

func decodeDecision(s string) (inventory.Decision, error) {
	parts := strings.SplitN(s, ",", 4)
	if len(parts) != 4 {
		return inventory.Decision{}, errors.New(`want "time,level,risk,signal"`)
	}
	at, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return inventory.Decision{}, err
	}
	level, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil || level > uint64(policy.Block) {
		return inventory.Decision{}, fmt.Errorf("level %q", parts[1])
	}
	risk, err := strconv.ParseFloat(parts[2], 64)
	if err != nil {
		return inventory.Decision{}, err
	}
	return inventory.Decision{Time: time.UnixMicro(at).UTC(), Level: policy.Level(level), Risk: risk, Signal: parts[3]}, nil
}

// globEscape escapes SCAN MATCH's special characters.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
