package replay

import (
	"bytes"
	"strconv"
	"strings"
	"unsafe"

	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
)

// lineRef is one non-blank input line of a batch.
type lineRef struct {
	start, end int32 // range in batch.data
	tooLong    bool  // skipped by the reader; no bytes kept
	line       int   // 1-based input line number
}

// batch is the unit of work passed along the pipeline. Its slices are
// reused from run to run of the free list; only the stage that holds the
// batch touches it, and the decoded/encoded signals hand it on.
type batch struct {
	// Filled by the reader.
	data  []byte
	lines []lineRef

	// Filled by the decoding worker.
	evs      []event.Event
	evLine   []int // input line of evs[i]
	n        int   // valid events: evs[:n]
	nBad     int
	errs     []byte     // error lines, rendered
	stop     *LineError // strict mode: the line that stops the replay
	rawToken int        // line of the first event decoded from a raw token

	// Filled by the engine goroutine.
	vs     []engine.Verdict
	levels [policy.NumLevels]int

	// Filled by the encoding worker.
	out []byte

	decoded, encoded chan struct{} // each signalled once per pass
}

func newBatch(size int) *batch {
	return &batch{
		lines:   make([]lineRef, 0, size),
		decoded: make(chan struct{}, 1),
		encoded: make(chan struct{}, 1),
	}
}

func (b *batch) reset() {
	b.data, b.lines = b.data[:0], b.lines[:0]
	b.n, b.nBad, b.errs, b.stop, b.rawToken = 0, 0, b.errs[:0], nil, 0
	b.levels = [policy.NumLevels]int{}
	b.out = b.out[:0]
}

func (b *batch) add(lineNo int, line []byte, tooLong bool) {
	ref := lineRef{line: lineNo, tooLong: tooLong}
	if !tooLong {
		ref.start = int32(len(b.data))
		b.data = append(b.data, line...)
		ref.end = int32(len(b.data))
	}
	b.lines = append(b.lines, ref)
}

// worker is one decoding and encoding goroutine's state.
type worker struct {
	dec      Decoder
	enrich   Enricher
	keyer    profile.Keyer
	enc      *decision.Encoder
	strict   bool
	rawCheck bool
	id       []byte // scratch for assigned request ids
}

func newWorker(opts *Options, eng *engine.Engine) *worker {
	fp := opts.Parts.Fingerprinter
	if fp != nil {
		fp = fp.Clone()
	}
	var dec Decoder = event.NewDecoder(fp)
	if opts.NewDecoder != nil {
		dec = opts.NewDecoder(fp)
	}
	return &worker{
		dec:      dec,
		enrich:   opts.Enrich,
		enc:      decision.NewEncoder(eng.Model()),
		strict:   opts.Strict,
		rawCheck: opts.OnRawToken != nil,
	}
}

// decode decodes the batch's lines into its events and error lines. In
// strict mode it stops at the first unusable line.
func (w *worker) decode(b *batch) {
	if cap(b.evs) < len(b.lines) {
		b.evs = make([]event.Event, len(b.lines))
		b.evLine = make([]int, len(b.lines))
		b.vs = make([]engine.Verdict, len(b.lines))
	}
	b.evs, b.evLine, b.vs = b.evs[:len(b.lines)], b.evLine[:len(b.lines)], b.vs[:len(b.lines)]
	for _, l := range b.lines {
		err := ErrLineTooLong
		if !l.tooLong {
			ev := &b.evs[b.n]
			line := b.data[l.start:l.end]
			if err = w.dec.Decode(line, ev); err == nil {
				// A fingerprint from a raw token: the decoder has wiped
				// the token, but its key is still in the line.
				if w.rawCheck && b.rawToken == 0 && strings.HasPrefix(ev.TokenID, event.FingerprintPrefix) &&
					bytes.Contains(line, []byte(`"token"`)) {
					b.rawToken = l.line
				}
				if w.enrich != nil {
					w.enrich.Enrich(ev)
				}
				w.keyer.Fill(ev)
				b.evLine[b.n] = l.line
				b.n++
				continue
			}
		}
		b.nBad++
		b.errs = appendLineError(b.errs, l.line, err)
		if w.strict {
			b.stop = &LineError{Line: l.line, Err: err}
			return
		}
	}
}

// encode renders the batch's decisions, one line each.
func (w *worker) encode(b *batch) {
	out := b.out[:0]
	for i := range b.n {
		ev := &b.evs[i]
		id := ev.RequestID
		if ev.Has&event.HasRequestID == 0 {
			w.id = strconv.AppendInt(append(w.id[:0], "line-"...), int64(b.evLine[i]), 10)
			// Append copies id before w.id changes again.
			id = unsafe.String(unsafe.SliceData(w.id), len(w.id))
		}
		out = w.enc.Append(out, id, ev, &b.vs[i])
		out = append(out, '\n')
	}
	b.out = out
}

func appendLineError(dst []byte, line int, err error) []byte {
	dst = append(dst, "line "...)
	dst = strconv.AppendInt(dst, int64(line), 10)
	dst = append(dst, ": "...)
	dst = append(dst, err.Error()...)
	return append(dst, '\n')
}
