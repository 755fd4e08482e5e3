package inventory

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vigil-sec/vigil/internal/atomicfile"
)

// Inventory is what the admin API and the lifecycle reports read, and
// what the request path feeds. Observe is called on every request: it must
// be cheap and never block on I/O. All methods are safe for concurrent use.
type Inventory interface {
	Observe(u *Use)
	// Get returns a copy of a credential's entry; ok is false when the
	// inventory holds none.
	Get(ctx context.Context, tokenID string) (e Entry, ok bool, err error)
	// Each calls fn with a copy of every entry, in no particular order and
	// never concurrently, until fn returns an error (which Each returns).
	Each(ctx context.Context, fn func(*Entry) error) error
	// Flush makes what was observed durable or shared (a data directory's
	// file, a shared store); a no-op for an in-memory inventory.
	Flush(ctx context.Context) error
	Stats() Stats
	Close() error
}

// Stats counts an inventory's work.
type Stats struct {
	Entries uint64
	// Evicted entries were dropped to keep MaxEntries.
	Evicted uint64
	// FlushErrors counts failed merges into a shared store.
	FlushErrors uint64
	// Lost counts entries of failed merges dropped, past the bound on
	// what waits for a retry.
	Lost uint64
}

// Options configure a Memory inventory.
type Options struct {
	// MaxEntries bounds the credentials kept; 0 means DefaultMaxEntries.
	MaxEntries int
	// Path, when set, is the file the inventory is loaded from by
	// NewMemory and saved to by Flush (JSON lines, one entry each).
	Path string
}

// DefaultMaxEntries is the default bound: an entry takes 1–4 kB.
const DefaultMaxEntries = 200_000

const shards = 64

// Memory is an inventory in this process.
type Memory struct {
	opts     Options
	seed     maphash.Seed
	perShard int
	shard    [shards]shard
	evicted  atomic.Uint64
	count    atomic.Int64
	saveMu   sync.Mutex
}

type shard struct {
	mu sync.Mutex
	m  map[string]*Entry
	// list holds the entries too, each at its slot, to sample from.
	list []*Entry
	_    [16]byte // keep shards' locks on their own cache lines
}

// remove deletes e from s (locked).
func (s *shard) remove(e *Entry) {
	last := s.list[len(s.list)-1]
	s.list[e.slot], last.slot = last, e.slot
	s.list[len(s.list)-1] = nil
	s.list = s.list[:len(s.list)-1]
	delete(s.m, e.TokenID)
}

var _ Inventory = (*Memory)(nil)

// NewMemory returns an in-memory inventory, loaded from o.Path when that
// file exists. A malformed line of the file is skipped and reported in the
// returned error (errors.Join of one error per bad line, naming it) along
// with the inventory: one bad line loses one entry, not the rest.
func NewMemory(o Options) (*Memory, error) {
	if o.MaxEntries < 0 {
		return nil, fmt.Errorf("inventory: max entries %d: must not be negative", o.MaxEntries)
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	m := &Memory{opts: o, seed: maphash.MakeSeed(), perShard: max(1, (o.MaxEntries+shards-1)/shards)}
	for i := range m.shard {
		m.shard[i].m = make(map[string]*Entry)
	}
	if o.Path == "" {
		return m, nil
	}
	f, err := os.Open(o.Path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	err = Read(f, func(e *Entry) error {
		m.merge(e)
		return nil
	})
	if err != nil {
		err = fmt.Errorf("inventory: %s: %w", o.Path, err)
	}
	return m, err
}

func (m *Memory) shardOf(id string) *shard {
	return &m.shard[maphash.String(m.seed, id)%shards]
}

// Observe adds a request to its credential's entry.
func (m *Memory) Observe(u *Use) {
	if u.TokenID == "" {
		return
	}
	s := m.shardOf(u.TokenID)
	s.mu.Lock()
	e := s.m[u.TokenID]
	if e == nil {
		e = m.insert(s, u.TokenID)
	}
	e.observe(u)
	s.mu.Unlock()
}

// insert adds an empty entry for id to s (locked), dropping another when s
// is full: the one with the fewest requests of eight sampled at random, so a
// flood of one-off credentials replaces its own kind, not established ones.
func (m *Memory) insert(s *shard, id string) *Entry {
	if len(s.list) >= m.perShard {
		var victim *Entry
		for range 8 {
			e := s.list[rand.IntN(len(s.list))]
			if victim == nil || e.Requests < victim.Requests {
				victim = e
			}
		}
		s.remove(victim)
		m.evicted.Add(1)
		m.count.Add(-1)
	}
	e := &Entry{TokenID: strings.Clone(id), slot: len(s.list)}
	s.m[e.TokenID] = e
	s.list = append(s.list, e)
	m.count.Add(1)
	return e
}

// merge adds e (a saved or shared entry) to the inventory.
func (m *Memory) merge(e *Entry) {
	s := m.shardOf(e.TokenID)
	s.mu.Lock()
	have := s.m[e.TokenID]
	if have == nil {
		have = m.insert(s, e.TokenID)
	}
	have.Merge(e)
	s.mu.Unlock()
}

// Get returns a copy of a credential's entry.
func (m *Memory) Get(_ context.Context, tokenID string) (Entry, bool, error) {
	s := m.shardOf(tokenID)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[tokenID]
	if e == nil {
		return Entry{}, false, nil
	}
	return e.Clone(), true, nil
}

// Each calls fn with a copy of every entry.
func (m *Memory) Each(ctx context.Context, fn func(*Entry) error) error {
	var batch []Entry
	for i := range m.shard {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := &m.shard[i]
		batch = batch[:0]
		s.mu.Lock()
		for _, e := range s.m {
			batch = append(batch, e.Clone())
		}
		s.mu.Unlock()
		for j := range batch {
			if err := fn(&batch[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush saves the inventory to Options.Path, atomically (a crash leaves
// the previous file); a no-op without a path.
func (m *Memory) Flush(ctx context.Context) error {
	if m.opts.Path == "" {
		return nil
	}
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	// Streamed to the file: an inventory of 200,000 entries is hundreds
	// of megabytes of JSON, not to be held in memory at once.
	err := atomicfile.WriteFunc(m.opts.Path, func(w io.Writer) error { return Write(ctx, w, m) })
	if err != nil {
		return fmt.Errorf("inventory: saving: %w", err)
	}
	return nil
}

// Stats reports the entries held and dropped.
func (m *Memory) Stats() Stats {
	return Stats{Entries: uint64(max(0, m.count.Load())), Evicted: m.evicted.Load()}
}

// Close saves the inventory (with a path).
func (m *Memory) Close() error { return m.Flush(context.Background()) }

// Write writes every entry of inv to w as JSON lines.
func Write(ctx context.Context, w io.Writer, inv Inventory) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	err := inv.Each(ctx, func(e *Entry) error { return enc.Encode(e) })
	if err != nil {
		return fmt.Errorf("inventory: writing: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("inventory: writing: %w", err)
	}
	return nil
}

// maxLine bounds one line of an inventory file.
const maxLine = 1 << 20

// Read reads JSON lines of entries from r, calling fn for each. A
// malformed line (bad JSON, no token_id, too long) is skipped; the
// returned error joins one error per bad line, naming its number. An
// error of fn stops the read.
func Read(r io.Reader, fn func(*Entry) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var errs []error
	for line := 1; ; line++ {
		b, long, err := readLine(br)
		if long {
			errs = append(errs, fmt.Errorf("line %d: longer than %d bytes", line, maxLine))
		} else if len(bytes.TrimSpace(b)) > 0 {
			var e Entry
			switch derr := json.Unmarshal(b, &e); {
			case derr != nil:
				errs = append(errs, fmt.Errorf("line %d: %w", line, derr))
			case e.TokenID == "":
				errs = append(errs, fmt.Errorf("line %d: no token_id", line))
			default:
				e.Clamp()
				if ferr := fn(&e); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return errors.Join(errs...)
		}
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("line %d: %w", line, err))...)
		}
	}
}

// readLine returns the next line without its newline; a line longer than
// maxLine is consumed and reported as long.
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !long && len(line)+len(chunk) > maxLine {
			long, line = true, nil
		}
		if !long {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), long, err
	}
}

// Clamp enforces an entry's bounds on one read from a file or a store.
func (e *Entry) Clamp() {
	if len(e.Granted) > MaxGranted {
		e.Granted = e.Granted[:MaxGranted]
	}
	for _, cs := range [...]*[]Count{&e.Used, &e.Endpoints, &e.ASNs, &e.Countries} {
		if len(*cs) > MaxValues {
			*cs = (*cs)[:MaxValues]
		}
	}
	if len(e.History) > MaxHistory {
		e.History = e.History[len(e.History)-MaxHistory:]
	}
	if e.Level > 3 {
		e.Level = 3
	}
	for i := range e.History {
		e.History[i].Level = min(e.History[i].Level, 3)
	}
}

// Merge adds entries (other views of credentials) to the inventory: a
// Memory is a Sink too, e.g. for a replica reading its peers' files. It
// never fails, so it needs no batch name.
func (m *Memory) Merge(_ context.Context, _ string, entries []*Entry) error {
	for _, e := range entries {
		if e.TokenID != "" {
			m.merge(e)
		}
	}
	return nil
}

var _ Sink = (*Memory)(nil)
