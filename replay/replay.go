package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/policy"
)

// DefaultBatch is the number of lines per batch when Options.Batch is 0,
// the default of the configuration's replay.batch.
const DefaultBatch = 1024

// MaxBatch is the largest batch size accepted.
const MaxBatch = 1 << 16

// maxInFlight bounds the events held in batches at once.
const maxInFlight = 1 << 16

// ErrLineTooLong reports a line longer than event.MaxLineBytes. Such a line
// is skipped without being read into memory whole.
var ErrLineTooLong = errors.New("too long (more than " + strconv.Itoa(event.MaxLineBytes) + " bytes)")

// Options configure Run. Input, Output and Parts are required.
type Options struct {
	// Input holds the events, one JSON object per line.
	Input io.Reader
	// Output receives one decision line per usable input line, in input
	// order. Run writes it through its own buffer, in large writes.
	Output io.Writer
	// Errors receives one line per unusable input line, such as
	// `line 17: field "status_code": expected a number, got a string`.
	// nil discards them.
	Errors io.Writer
	// Parts are the configured components; Run builds its engine with
	// Parts.NewEngine and decodes raw tokens with clones of
	// Parts.Fingerprinter.
	Parts *app.Parts
	// Workers is the number of goroutines that decode and encode; 0 means
	// runtime.GOMAXPROCS(0). It does not change the output.
	Workers int
	// Batch is the number of input lines per batch; 0 means DefaultBatch.
	// It does not change the output.
	Batch int
	// Strict stops at the first unusable line: the decisions of all
	// earlier lines are written, the line is reported on Errors, and Run
	// returns a *LineError.
	Strict bool
	// Logger receives Run's own diagnostics; nil discards them. Run logs
	// only before its goroutines start and after they have ended, never
	// while it writes Errors.
	Logger *slog.Logger
	// OnRawToken, if set, is called at most once, with the line number of
	// the first decoded event that carried a raw `token` (rather than a
	// token_id). It is called on the goroutine that writes Errors, before
	// that line's batch is written, so it may write to Errors itself.
	OnRawToken func(line int)
	// NewDecoder makes each worker's decoder of input lines, given its
	// clone of Parts.Fingerprinter (nil without a key); nil means vigil's
	// own JSON events (event.NewDecoder). Package ingest has decoders
	// for gateway and cloud logs.
	NewDecoder func(fp *event.Fingerprinter) Decoder
	// Enrich, if set, adds what decoded events lack (GeoIP) before they
	// are judged; it is called concurrently by the workers.
	Enrich Enricher
	// Live is for an Input that grows (vigil follow): lines read are
	// judged and their decisions written as soon as a read comes back
	// short, not when a batch is full.
	Live bool
	// Observe, if set, is called with every judged event and its verdict,
	// in input order, on the engine's goroutine: it must be quick. The
	// event's strings are valid only during the call.
	Observe func(ev *event.Event, v *engine.Verdict)
}

// Decoder decodes one input line into an event; not safe for concurrent
// use (each worker has its own). Its errors must name what was wrong (a
// field) and never quote a raw credential.
type Decoder interface {
	Decode(line []byte, ev *event.Event) error
}

// Enricher adds fields an event lacks; safe for concurrent use.
type Enricher interface {
	Enrich(ev *event.Event)
}

// Summary describes a replay.
type Summary struct {
	Events      int // events decided: decision lines written
	BadLines    int // unusable lines reported
	Credentials int // distinct credentials the engine has seen
	// Decisions counts decisions per level.
	Decisions    [policy.NumLevels]int
	Elapsed      time.Duration
	EventsPerSec float64
}

// LineError is returned by Run in strict mode for the first unusable line.
type LineError struct {
	Line int   // 1-based input line number
	Err  error // the decoder's error, or ErrLineTooLong
}

func (e *LineError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }
func (e *LineError) Unwrap() error { return e.Err }

func (o *Options) check() error {
	var errs []error
	if o.Input == nil {
		errs = append(errs, errors.New("Input is required"))
	}
	if o.Output == nil {
		errs = append(errs, errors.New("Output is required"))
	}
	if o.Parts == nil {
		errs = append(errs, errors.New("Parts is required"))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("Workers %d must not be negative", o.Workers))
	}
	if o.Batch < 0 || o.Batch > MaxBatch {
		errs = append(errs, fmt.Errorf("Batch %d must be between 1 and %d (0 for the default)", o.Batch, MaxBatch))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if o.Errors == nil {
		o.Errors = io.Discard
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run replays opts.Input. It returns when the input is exhausted, ctx is
// cancelled, a write fails, or (with Strict) at the first unusable line;
// in every case all of its goroutines have ended. The Summary counts what
// was written. If ctx is cancelled while a Read of Input blocks, Run
// returns when that Read does.
//
// The error is a *LineError in strict mode, ctx's cause if ctx was
// cancelled, and otherwise wraps the failed read or write.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if err := opts.check(); err != nil {
		return Summary{}, err
	}
	eng, err := opts.Parts.NewEngine()
	if err != nil {
		return Summary{}, fmt.Errorf("replay: %w", err)
	}
	defer eng.Close()
	log := opts.Logger
	log.Debug("replay starting", "workers", opts.Workers, "batch", opts.Batch, "strict", opts.Strict)

	start := time.Now()
	p := newPipeline(ctx, &opts, eng)
	p.run()
	sum := p.sum
	sum.Credentials = eng.Credentials()
	sum.Elapsed = time.Since(start)
	if s := sum.Elapsed.Seconds(); s > 0 {
		sum.EventsPerSec = float64(sum.Events) / s
	}

	switch {
	case p.writeErr != nil:
		err = p.writeErr
	case p.aborted.Load():
		err = context.Cause(ctx)
	case p.stopErr != nil:
		err = p.stopErr
	case p.readErr != nil:
		err = fmt.Errorf("reading input: %w", p.readErr)
	}
	log.Info("replay done", "events", sum.Events, "bad_lines", sum.BadLines,
		"credentials", sum.Credentials, "elapsed", sum.Elapsed, "error", err)
	return sum, err
}

// pipeline is one run's goroutines and the queues between them.
type pipeline struct {
	opts   *Options
	eng    *engine.Engine
	ctx    context.Context
	cancel context.CancelCauseFunc

	// decodeQ and encodeQ hand batches to any worker; engineQ and writeQ
	// carry the same batches in input order to the one engine goroutine
	// and the writer. Every queue can hold every batch, so sending never
	// blocks; the free list alone limits how much is in flight.
	decodeQ, encodeQ chan *batch
	engineQ, writeQ  chan *batch
	free             chan *batch
	unallocated      int // batches the reader may still create
	// stopRead is closed by the engine goroutine after a strict-mode stop.
	stopRead chan struct{}

	aborted  atomic.Bool // a stage stopped early because ctx was cancelled
	readErr  error       // set by the reader before it closes its queues
	writeErr error       // set by the writer
	stopErr  *LineError  // set by the writer once the stop line's batch is written
	sum      Summary     // written by the writer
}

func newPipeline(ctx context.Context, opts *Options, eng *engine.Engine) *pipeline {
	// Enough batches for every stage to have one in hand and every worker
	// one more, but not more than about 64k events in flight (some 90 MB,
	// most of it verdicts) however large the batches or many the workers.
	n := min(2*opts.Workers+4, max(4, maxInFlight/opts.Batch))
	p := &pipeline{
		opts:        opts,
		eng:         eng,
		decodeQ:     make(chan *batch, n),
		encodeQ:     make(chan *batch, n),
		engineQ:     make(chan *batch, n),
		writeQ:      make(chan *batch, n),
		free:        make(chan *batch, n),
		unallocated: n,
		stopRead:    make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	return p
}

func (p *pipeline) run() {
	defer p.cancel(nil)
	var wg sync.WaitGroup
	wg.Go(p.read)
	wg.Go(p.runEngine)
	wg.Go(p.write)
	for range p.opts.Workers {
		w := newWorker(p.opts, p.eng)
		wg.Go(func() { p.work(w) })
	}
	wg.Wait()
}

// fail records a write error and stops every stage.
func (p *pipeline) fail(what string, err error) {
	p.writeErr = fmt.Errorf("writing %s: %w", what, err)
	p.cancel(p.writeErr)
}

// runEngine applies the decoded batches to the engine strictly in input
// order. It is the only goroutine that touches the engine.
func (p *pipeline) runEngine() {
	defer close(p.writeQ)
	defer close(p.encodeQ)
	for b := range p.engineQ {
		select {
		case <-b.decoded:
		case <-p.ctx.Done():
			p.aborted.Store(true)
			return
		}
		evs, vs := b.evs[:b.n], b.vs[:b.n]
		p.eng.ProcessBatch(evs, vs)
		for i := range vs {
			b.levels[vs[i].Level]++
		}
		if obs := p.opts.Observe; obs != nil {
			for i := range vs {
				obs(&evs[i], &vs[i])
			}
		}
		stop := b.stop != nil // b belongs to the next stages once sent
		p.encodeQ <- b
		p.writeQ <- b
		if stop {
			close(p.stopRead)
			return
		}
	}
}

// work decodes and encodes batches until both of its queues are closed.
func (p *pipeline) work(w *worker) {
	decodeQ, encodeQ := p.decodeQ, p.encodeQ
	for decodeQ != nil || encodeQ != nil {
		// Encoding first: it moves batches on towards the writer, which
		// returns them to the reader.
		select {
		case b, ok := <-encodeQ:
			if !ok {
				encodeQ = nil
				continue
			}
			w.encode(b)
			b.encoded <- struct{}{}
			continue
		default:
		}
		select {
		case b, ok := <-encodeQ:
			if !ok {
				encodeQ = nil
				continue
			}
			w.encode(b)
			b.encoded <- struct{}{}
		case b, ok := <-decodeQ:
			if !ok {
				decodeQ = nil
				continue
			}
			w.decode(b)
			b.decoded <- struct{}{}
		case <-p.ctx.Done():
			// The engine and the writer notice too, and tell if a batch
			// was left undone.
			return
		}
	}
}

// write writes the batches' decisions and error lines in input order.
func (p *pipeline) write() {
	// A batch's decisions (about 170 KiB for 1024 events) are mostly
	// written straight through; the buffer gathers small batches.
	out := bufio.NewWriterSize(p.opts.Output, 64<<10)
	warned := p.opts.OnRawToken == nil
	for b := range p.writeQ {
		select {
		case <-b.encoded:
		default:
			// Nothing ready: hand what is buffered to the output while
			// the workers catch up.
			if err := out.Flush(); err != nil {
				p.fail("decisions", err)
				return
			}
			select {
			case <-b.encoded:
			case <-p.ctx.Done():
				p.aborted.Store(true)
				return
			}
		}
		if !warned && b.rawToken > 0 {
			warned = true
			p.opts.OnRawToken(b.rawToken)
		}
		if _, err := out.Write(b.out); err != nil {
			p.fail("decisions", err)
			return
		}
		if len(b.errs) > 0 {
			// Decisions of earlier lines go out before the errors of
			// later ones.
			if err := out.Flush(); err != nil {
				p.fail("decisions", err)
				return
			}
			if _, err := p.opts.Errors.Write(b.errs); err != nil {
				p.fail("errors", err)
				return
			}
		}
		p.sum.Events += b.n
		p.sum.BadLines += b.nBad
		for l, n := range b.levels {
			p.sum.Decisions[l] += n
		}
		if b.stop != nil {
			p.stopErr = b.stop
		}
		p.free <- b
		if p.opts.Live && len(p.writeQ) == 0 {
			if err := out.Flush(); err != nil {
				p.fail("decisions", err)
				return
			}
		}
	}
	if err := out.Flush(); err != nil {
		p.fail("decisions", err)
	}
}
