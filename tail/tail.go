package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultPoll       = 250 * time.Millisecond
	DefaultMaxLine    = 1 << 20
	DefaultRotateWait = time.Second
)

// readChunk is the most read from one file at a time: the buffer of a file
// holds at most its unfinished line (≤ MaxLine) and one chunk.
const readChunk = 128 << 10

// Options configure Follow. The zero value means the defaults.
type Options struct {
	// Poll is how often idle files are checked for new data, rotation
	// and truncation; 0 means DefaultPoll.
	Poll time.Duration
	// FromStart reads the files that exist when Follow is called from
	// their beginning. By default they are followed from their end, like
	// tail -F (from the start of their last line if it is unfinished).
	// Files that appear later are always read whole.
	FromStart bool
	// MaxLine is the longest line passed on, in bytes without its '\n';
	// longer lines are skipped without being held whole and counted in
	// FileStats.Skipped. 0 means DefaultMaxLine.
	MaxLine int
	// RotateWait is how long a file that was renamed or deleted must give
	// no new data before it is left, when no non-empty file has replaced
	// it yet (a writer may still append to it until it reopens its log).
	// 0 means DefaultRotateWait.
	RotateWait time.Duration
	// Log receives notices (at Info) and problems (at Warn); nil discards.
	Log *slog.Logger
	// OnEvent, if set, is told about rotations, truncations and files
	// that are missing or back. It is called on the goroutine that calls
	// Follow or Read, never concurrently; it must not call Read.
	OnEvent func(Event)
}

func (o *Options) validate() error {
	var errs []error
	if o.Poll < 0 {
		errs = append(errs, fmt.Errorf("Poll %v must not be negative", o.Poll))
	}
	if o.MaxLine < 0 {
		errs = append(errs, fmt.Errorf("MaxLine %d must not be negative", o.MaxLine))
	}
	if o.RotateWait < 0 {
		errs = append(errs, fmt.Errorf("RotateWait %v must not be negative", o.RotateWait))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.MaxLine == 0 {
		o.MaxLine = DefaultMaxLine
	}
	if o.RotateWait == 0 {
		o.RotateWait = DefaultRotateWait
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// EventKind says what happened to a followed path.
type EventKind uint8

const (
	// Missing: the path does not exist (or cannot be opened, see
	// Event.Err), at Follow or once a deleted file has been left.
	// Reported once, until the path is back.
	Missing EventKind = iota + 1
	// Reopened: a missing path exists again (or for the first time) and
	// is read from its start.
	Reopened
	// Rotated: the path names a new file; the old one was read to its
	// end, and the new one is read from its start.
	Rotated
	// Truncated: the file became shorter than what was read of it
	// (copytruncate); it is read again from its start.
	Truncated
)

var kindNames = [...]string{Missing: "missing", Reopened: "reopened", Rotated: "rotated", Truncated: "truncated"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a notice about one followed path.
type Event struct {
	Path string
	Kind EventKind
	// Err is why a Missing path could not be opened, when that is not
	// simply that it does not exist; nil otherwise.
	Err error
}

func (e Event) String() string {
	if e.Err != nil {
		return e.Path + ": " + e.Kind.String() + ": " + e.Err.Error()
	}
	return e.Path + ": " + e.Kind.String()
}

// FileStats counts what was read of one path, across rotations.
type FileStats struct {
	Path  string
	Lines int64 // lines passed on, each ending in '\n'
	Bytes int64 // bytes of those lines
	// Rotations counts files left because the path was renamed or
	// deleted; Truncations counts restarts from offset 0.
	Rotations, Truncations int
	// Skipped counts lines longer than MaxLine.
	Skipped int
	// Unterminated counts last lines of left (rotated or deleted) files
	// that lacked their '\n': they are passed on with one added.
	Unterminated int
	// Pending is the size of the unfinished line held now; after Read
	// returned io.EOF, of the unfinished line that was not passed on.
	Pending int
}

// Stats is a snapshot of a Reader's counters, one entry per path in the
// order given to Follow.
type Stats struct {
	Files []FileStats
}

// Total sums the counters of every file (its Path is empty).
func (s Stats) Total() FileStats {
	var t FileStats
	for _, f := range s.Files {
		t.Lines += f.Lines
		t.Bytes += f.Bytes
		t.Rotations += f.Rotations
		t.Truncations += f.Truncations
		t.Skipped += f.Skipped
		t.Unterminated += f.Unterminated
		t.Pending += f.Pending
	}
	return t
}

// Reader yields the complete lines of every followed file. Read must not be
// called concurrently with itself or Close; Stats may be called at any time
// from any goroutine.
type Reader struct {
	ctx   context.Context
	o     Options
	files []*follower
	next  int       // the file the next pass starts with
	out   *follower // the file whose ready lines Read hands out
	timer *time.Timer
	// stopping: ctx is done; files are read up to their size at that
	// moment and nothing is reopened. done: that is over.
	stopping, done bool

	mu sync.Mutex // guards every follower's stats
}

var _ io.Reader = (*Reader)(nil)

// follower is one followed path and the file open under it.
type follower struct {
	path string
	file *os.File    // nil while the path is missing
	id   os.FileInfo // the open file's identity
	off  int64       // the next offset of file to read
	// limit is the offset not to read beyond while stopping.
	limit int64

	// buf[start:ready] holds complete lines not yet handed out,
	// buf[ready:end] the unfinished line (unless skipping it).
	buf               []byte
	start, ready, end int
	skipping          bool // inside a line longer than MaxLine

	rotating   bool      // the path names another file, or none: draining file
	quietSince time.Time // since when file gave nothing (while rotating)
	missing    bool      // Missing was reported and the path is not back
	checked    time.Time // the last check of the path and the file's size

	stats FileStats // guarded by Reader.mu
}

// Follow starts following paths and returns the Reader of their lines. It
// fails if the options are invalid, no path or a path twice is given, or a
// path exists but cannot be followed (a directory, no permission); a path
// that does not exist yet is waited for (reported as Missing).
//
// Read returns io.EOF once ctx is done and every file was read up to its
// size at that moment. The files are closed then, or by Close.
func Follow(ctx context.Context, paths []string, o Options) (*Reader, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	if len(paths) == 0 {
		return nil, errors.New("tail: no file to follow")
	}
	r := &Reader{ctx: ctx, o: o, timer: time.NewTimer(time.Hour)}
	r.timer.Stop()
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			r.Close()
			return nil, fmt.Errorf("tail: %s is given twice", p)
		}
		seen[p] = true
		f := &follower{path: p, stats: FileStats{Path: p}}
		r.files = append(r.files, f)
		err := r.open(f, !o.FromStart)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f.missing = true
			r.report(Event{Path: p, Kind: Missing})
		case err != nil:
			r.Close()
			return nil, fmt.Errorf("tail: %w", err)
		}
	}
	return r, nil
}

// Read reads complete lines, of one file or several, never part of a line
// of one file mixed with another's. It blocks until some line is complete
// or ctx is done. Read returns len(p) only if more is already at hand, so
// a caller that waits for a short read to act on what it has never waits
// on a blocking Read.
//
// A line is passed on once its '\n' was read, with one exception: the
// unfinished last line of a file that was rotated away or deleted and has
// been left, which gets a '\n' added (FileStats.Unterminated). The
// unfinished line of a file at shutdown is not passed on: its writer may
// be in the middle of it (FileStats.Pending says how much was held).
//
// Read returns an error other than io.EOF only when reading a file fails;
// a path that disappears is not an error.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	var last *follower
	for n < len(p) {
		if f := r.out; f != nil {
			k := copy(p[n:], f.buf[f.start:f.ready])
			f.start += k
			n += k
			last = f
			if f.start == f.ready {
				r.out = nil
			}
			continue
		}
		if r.done {
			break
		}
		if !r.stopping && r.ctx.Err() != nil {
			r.beginStop()
		}
		f, err := r.pass(time.Now())
		if err != nil {
			return n, err
		}
		if f != nil {
			r.out = f
			continue
		}
		if n > 0 {
			break
		}
		if r.stopping {
			r.finish()
			continue
		}
		r.wait()
	}
	if n == len(p) && n > 1 && r.out == nil {
		// Keep the last byte back: the next Read returns at once.
		last.start--
		r.out = last
		n--
	}
	if n == 0 {
		return 0, io.EOF // done
	}
	return n, nil
}

// wait sleeps for one poll interval or until ctx is done.
func (r *Reader) wait() {
	r.timer.Reset(r.o.Poll)
	select {
	case <-r.timer.C:
	case <-r.ctx.Done():
		r.timer.Stop()
		r.beginStop()
	}
}

// Close closes the files. It is not needed after Read returned io.EOF,
// and must not be called concurrently with Read.
func (r *Reader) Close() error {
	r.done = true
	r.out = nil
	var errs []error
	for _, f := range r.files {
		if f.file != nil {
			errs = append(errs, f.file.Close())
			f.file = nil
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters of every file.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Files: make([]FileStats, len(r.files))}
	for i, f := range r.files {
		s.Files[i] = f.stats
	}
	return s
}

// report logs ev and passes it to OnEvent.
func (r *Reader) report(ev Event) {
	if ev.Err != nil {
		r.o.Log.Warn("tail: "+ev.Kind.String(), "path", ev.Path, "error", ev.Err)
	} else {
		r.o.Log.Info("tail: "+ev.Kind.String(), "path", ev.Path)
	}
	if r.o.OnEvent != nil {
		r.o.OnEvent(ev)
	}
}

// beginStop fixes how far each file is still read: to its size now.
func (r *Reader) beginStop() {
	r.stopping = true
	for _, f := range r.files {
		f.limit = f.off
		if f.file == nil {
			continue
		}
		if fi, err := f.file.Stat(); err == nil && fi.Size() > f.off {
			f.limit = fi.Size()
		}
	}
}

// finish ends a stop: every file has been read as far as it will be.
func (r *Reader) finish() {
	r.mu.Lock()
	for _, f := range r.files {
		f.stats.Pending = 0
		if !f.skipping {
			f.stats.Pending = f.end - f.ready
		}
		if f.stats.Pending > 0 {
			r.o.Log.Warn("tail: an unfinished last line is left", "path", f.path, "bytes", f.stats.Pending)
		}
	}
	r.mu.Unlock()
	r.Close()
}

// pass polls every file once, starting with r.next, and returns the first
// that has lines ready, or nil.
func (r *Reader) pass(now time.Time) (*follower, error) {
	for k := range len(r.files) {
		i := (r.next + k) % len(r.files)
		f := r.files[i]
		ok, err := r.poll(f, now)
		if err != nil {
			return nil, err
		}
		if ok {
			r.next = i + 1
			return f, nil
		}
	}
	return nil, nil
}

// poll reads what f's file has now and reports whether f has lines ready.
// At the end of the file it checks, at most twice per poll interval, for
// truncation and rotation.
func (r *Reader) poll(f *follower, now time.Time) (bool, error) {
	if f.ready > f.start {
		return true, nil
	}
	due := now.Sub(f.checked) >= r.o.Poll/2
	if f.file == nil {
		if r.stopping || !due {
			return false, nil
		}
		f.checked = now
		r.reopen(f, Reopened)
		if f.file == nil {
			return false, nil
		}
	}
	from, n, err := f.read(r.stopping)
	if err != nil {
		return false, fmt.Errorf("tail: reading %s: %w", f.path, err)
	}
	if n > 0 {
		f.quietSince = time.Time{}
		r.scan(f, from)
		return f.ready > f.start, nil
	}
	if r.stopping {
		return false, nil
	}
	if f.rotating && f.quietSince.IsZero() {
		f.quietSince = now
	}
	if !due {
		return false, nil
	}
	f.checked = now
	return r.check(f, now), nil
}

// read reads the next chunk of f's file after what f holds, and returns
// where the new bytes start in f.buf and how many there are.
func (f *follower) read(stopping bool) (from, n int, err error) {
	if f.start == f.ready && f.start > 0 {
		// Everything handed out: move the unfinished line to the front.
		f.end = copy(f.buf, f.buf[f.start:f.end])
		f.start, f.ready = 0, 0
	}
	if len(f.buf)-f.end < readChunk {
		grown := make([]byte, f.end+readChunk)
		copy(grown, f.buf[:f.end])
		f.buf = grown
	}
	space := f.buf[f.end:]
	if stopping {
		space = space[:min(int64(len(space)), max(0, f.limit-f.off))]
		if len(space) == 0 {
			return f.end, 0, nil
		}
	}
	n, err = f.file.ReadAt(space, f.off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	from = f.end
	f.off += int64(n)
	f.end += n
	return from, n, err
}

// scan finds the lines completed by the bytes read into f.buf[from:end]:
// it drops those longer than MaxLine and makes the others ready.
func (r *Reader) scan(f *follower, from int) {
	maxLine := r.o.MaxLine
	var lines, nbytes int64
	skipped := 0
	lineStart, i := f.ready, from
	for {
		j := bytes.IndexByte(f.buf[i:f.end], '\n')
		if j < 0 {
			break
		}
		nl := i + j
		if f.skipping || nl-lineStart > maxLine {
			// Cut the line out.
			f.end = lineStart + copy(f.buf[lineStart:], f.buf[nl+1:f.end])
			f.skipping = false
			skipped++
			i = lineStart
			continue
		}
		lines++
		nbytes += int64(nl + 1 - lineStart)
		i = nl + 1
		lineStart = i
	}
	f.ready = lineStart
	if !f.skipping && f.end-f.ready > maxLine {
		f.skipping = true
	}
	if f.skipping {
		f.end = f.ready // stream past the rest of the long line
	}
	r.mu.Lock()
	f.stats.Lines += lines
	f.stats.Bytes += nbytes
	f.stats.Skipped += skipped
	f.stats.Pending = f.end - f.ready
	r.mu.Unlock()
}

// check looks, at the end of f's file, for truncation and for another file
// (or none) at f's path, and leaves the file when it is done. It reports
// whether f has lines ready.
func (r *Reader) check(f *follower, now time.Time) bool {
	if !f.rotating {
		if fi, err := f.file.Stat(); err == nil && fi.Size() < f.off {
			f.off = 0
			f.end = f.ready // the unfinished line is gone with the old content
			f.skipping = false
			r.mu.Lock()
			f.stats.Truncations++
			f.stats.Pending = 0
			r.mu.Unlock()
			r.report(Event{Path: f.path, Kind: Truncated})
			return false
		}
	}
	pi, err := os.Stat(f.path)
	if err == nil && os.SameFile(pi, f.id) {
		f.rotating = false // never moved, or moved back
		return false
	}
	if !f.rotating {
		f.rotating = true
		f.quietSince = now
		r.o.Log.Debug("tail: file moved or deleted, draining it", "path", f.path)
	}
	// A replacement with data means the writer has reopened its log: the
	// old file is done once read to its end after that was seen. Otherwise
	// wait until the old file has been quiet for RotateWait.
	if (err != nil || pi.Size() == 0) && now.Sub(f.quietSince) < r.o.RotateWait {
		return false
	}
	if err == nil && pi.Size() > 0 {
		// The writer may have appended to the old file between our last
		// read of it and writing to the new one: read it once more now that
		// the new one has data, and leave it only when that finds nothing.
		if from, n, rerr := f.read(false); rerr == nil && n > 0 {
			f.quietSince = time.Time{}
			r.scan(f, from)
			return f.ready > f.start
		}
	}
	r.leave(f)
	if err != nil {
		// Missing only now: the gap between a rename and the creation
		// of the new file is no news.
		f.missing = true
		r.report(missingEvent(f.path, err))
	} else {
		r.reopen(f, Rotated)
	}
	return f.ready > f.start
}

// leave closes f's file for good, passing on its unfinished last line.
func (r *Reader) leave(f *follower) {
	unterminated := 0
	var nbytes int64
	switch {
	case f.skipping:
		f.skipping = false
		r.mu.Lock()
		f.stats.Skipped++
		r.mu.Unlock()
	case f.end > f.ready:
		if f.end == len(f.buf) {
			f.buf = append(f.buf, 0)
		}
		f.buf[f.end] = '\n'
		f.end++
		nbytes = int64(f.end - f.ready)
		f.ready = f.end
		unterminated = 1
	}
	f.file.Close()
	f.file, f.id, f.off = nil, nil, 0
	f.rotating, f.quietSince = false, time.Time{}
	r.mu.Lock()
	f.stats.Lines += int64(unterminated)
	f.stats.Bytes += nbytes
	f.stats.Unterminated += unterminated
	f.stats.Rotations++
	f.stats.Pending = 0
	r.mu.Unlock()
}

// reopen tries to open f's path, which has no open file, from its start,
// and reports kind if it opens.
func (r *Reader) reopen(f *follower, kind EventKind) {
	if err := r.open(f, false); err != nil {
		if !f.missing {
			f.missing = true
			r.report(missingEvent(f.path, err))
		}
		return
	}
	f.missing = false
	r.report(Event{Path: f.path, Kind: kind})
}

// open opens f's path; atEnd starts at the end of the file, or at the start
// of its unfinished last line.
func (r *Reader) open(f *follower, atEnd bool) error {
	file, err := os.Open(f.path)
	if err != nil {
		return err
	}
	fi, err := file.Stat()
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("%s is a directory", f.path)
	}
	var off int64
	skipping := false
	if err == nil && atEnd {
		off, skipping, err = lastLineStart(file, fi.Size(), r.o.MaxLine)
	}
	if err != nil {
		file.Close()
		return err
	}
	f.file, f.id, f.off, f.skipping = file, fi, off, skipping
	f.checked = time.Now()
	return nil
}

// lastLineStart returns where the unfinished last line of a file of the
// given size starts: size if the file ends with '\n'. If that line is
// already longer than maxLine, it returns size and skip.
func lastLineStart(file *os.File, size int64, maxLine int) (off int64, skip bool, err error) {
	var block [8 << 10]byte
	end := size
	for end > 0 {
		if size-end > int64(maxLine) {
			return size, true, nil
		}
		n := min(end, int64(len(block)))
		b := block[:n]
		if _, err := file.ReadAt(b, end-n); err != nil {
			return 0, false, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] == '\n' {
				off = end - n + int64(i) + 1
				if size-off > int64(maxLine) {
					return size, true, nil
				}
				return off, false, nil
			}
		}
		end -= n
	}
	if size > int64(maxLine) {
		return size, true, nil
	}
	return 0, false, nil
}

// missingEvent is the Missing event for an error opening or finding path.
func missingEvent(path string, err error) Event {
	ev := Event{Path: path, Kind: Missing}
	if !errors.Is(err, fs.ErrNotExist) {
		ev.Err = err
	}
	return ev
}
