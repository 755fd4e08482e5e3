package replay

import (
	"bytes"
	"errors"
	"io"

	"github.com/vigil-sec/vigil/event"
)

const (
	// readBlock is the most the reader asks of Input at once.
	readBlock = 1 << 20
	// The read buffer starts at firstBuf and grows to maxBuf, enough for
	// a line of MaxLineBytes and a block after it.
	firstBuf = 64 << 10
	maxBuf   = event.MaxLineBytes + readBlock
	// maxBatchBytes closes a batch early when its lines are long, so a
	// batch's buffer stays a few MiB whatever Options.Batch says.
	maxBatchBytes = 4 << 20
)

// read cuts Input into batches of lines and hands them on. It owns the
// batch being filled until it sends it.
func (p *pipeline) read() {
	defer close(p.engineQ)
	defer close(p.decodeQ)

	// buf holds at most one incomplete line (≤ MaxLineBytes, or the reader
	// is skipping it) followed by one block just read. It starts small, for
	// short inputs, and grows as reads fill it.
	buf := make([]byte, firstBuf)
	var (
		start, end int  // unconsumed input: buf[start:end]
		lineNo     int  // lines completed so far
		skipping   bool // inside a line longer than MaxLineBytes
		eof        bool
		filled     bool // the last read filled the space it was offered
		cur        *batch
	)
	add := func(line []byte, tooLong bool) bool {
		if !tooLong && blank(line) {
			return true
		}
		if cur == nil {
			if cur = p.acquire(); cur == nil {
				return false
			}
		}
		cur.add(lineNo, line, tooLong)
		if len(cur.lines) >= p.opts.Batch || len(cur.data) >= maxBatchBytes {
			p.send(cur)
			cur = nil
		}
		return true
	}
	for {
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			line := buf[start : start+i]
			start += i + 1
			lineNo++
			tooLong := skipping || len(line) > event.MaxLineBytes
			skipping = false
			if !add(line, tooLong) {
				return
			}
		}
		if p.opts.Live && !filled && cur != nil {
			// A short read of a growing input: judge what came now.
			p.send(cur)
			cur = nil
		}
		if !skipping && end-start > event.MaxLineBytes {
			skipping = true // stream past the rest of the line
		}
		if skipping {
			start = end
		}
		if eof {
			// An incomplete last line counts, unless a read error cut it.
			if skipping || (start < end && p.readErr == nil) {
				lineNo++
				if !add(buf[start:end], skipping) {
					return
				}
			}
			break
		}
		end = copy(buf, buf[start:end])
		start = 0
		if len(buf) < maxBuf && (filled || end > len(buf)/2) {
			grown := make([]byte, min(2*len(buf), maxBuf))
			copy(grown, buf[:end])
			buf = grown
		}
		space := buf[end:min(end+readBlock, len(buf))]
		n, err := p.opts.Input.Read(space)
		filled = n == len(space)
		end += n
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// Keep the lines before the failure.
				p.readErr = err
			}
			eof = true
		}
		select {
		case <-p.ctx.Done():
			p.aborted.Store(true)
			return
		case <-p.stopRead:
			return
		default:
		}
	}
	if cur != nil {
		p.send(cur)
	}
}

// acquire returns an empty batch, or nil if the run is stopping.
func (p *pipeline) acquire() *batch {
	select {
	case b := <-p.free:
		b.reset()
		return b
	default:
	}
	if p.unallocated > 0 {
		p.unallocated--
		return newBatch(p.opts.Batch)
	}
	select {
	case b := <-p.free:
		b.reset()
		return b
	case <-p.ctx.Done():
		p.aborted.Store(true)
		return nil
	case <-p.stopRead:
		return nil
	}
}

// send hands a full batch to the workers and, in order, to the engine.
func (p *pipeline) send(b *batch) {
	p.decodeQ <- b
	p.engineQ <- b
}

// blank reports whether line holds nothing but JSON whitespace.
func blank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
