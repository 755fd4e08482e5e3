package ingest

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// bufSize is the read buffer of Open, NewReader and Lines: large enough
// for Detect's sample, so that a caller's bufio.NewReaderSize of at most
// this size reuses it.
const bufSize = 64 << 10

// Open opens a log file, or standard input for "-". Content compressed
// with gzip (recognized by its magic bytes, whatever the file's name) is
// decompressed as it is read, also when several gzip streams follow each
// other (cat a.gz b.gz).
func Open(path string) (io.ReadCloser, error) {
	if path == "-" {
		r, err := NewReader(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("standard input: %w", err)
		}
		return readCloser{r, nil}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return readCloser{r, f}, nil
}

type readCloser struct {
	io.Reader
	c io.Closer // nil for standard input, which stays open
}

func (r readCloser) Close() error {
	if r.c == nil {
		return nil
	}
	return r.c.Close()
}

// NewReader returns a reader of r's content: r's bytes, or their
// decompression when they start with gzip's magic bytes. Its error
// reports a gzip header that is not valid.
func NewReader(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, bufSize)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil
	}
	z, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("reading gzip: %w", err)
	}
	return bufio.NewReaderSize(z, bufSize), nil
}

// Lines returns the lines of a log in format f. For CloudTrail, a document
// {"Records":[…]} (CloudTrail's files, however they are indented, and
// several of them one after the other) is streamed out as one record a
// line; other input, such as records already one a line, passes through
// unchanged, as does the input of every other format.
//
// Records are never held whole: each is copied through as it is read, its
// whitespace outside strings dropped, so memory stays bounded however
// large a record or a file is. A record longer than event.MaxLineBytes
// comes out as a line that long, which a reader such as replay reports as
// too long. Line numbers of the result count records.
func Lines(r io.Reader, f Format) io.Reader {
	if f != CloudTrail {
		return r
	}
	return &records{br: bufio.NewReaderSize(r, bufSize)}
}

// The states of records.
const (
	stStart     = iota // before a document: is it {"Records":[ ?
	stPass             // not a Records document: the rest passes through
	stElemStart        // before a record or the array's end
	stElem             // in a record
	stNewline          // after a record: write its '\n'
	stAfterElem        // after a record and its '\n': ',' or ']'
	stTail             // after the array, until the document's '}'
)

// records streams CloudTrail's {"Records":[…]} documents as JSON lines.
type records struct {
	br    *bufio.Reader
	state int
	depth int  // objects and arrays open in the record (in the document, in stTail)
	str   bool // inside a string
	esc   bool // after a backslash inside a string
}

func (r *records) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch r.state {
		case stStart:
			if err := r.begin(); err != nil {
				if n > 0 {
					return n, nil
				}
				return 0, err
			}
			continue
		case stPass:
			if n > 0 {
				return n, nil
			}
			return r.br.Read(p)
		}
		in, err := r.br.Peek(max(1, r.br.Buffered()))
		if len(in) == 0 {
			if n > 0 {
				return n, nil
			}
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, err
		}
		used, wrote := r.step(in, p[n:])
		_, _ = r.br.Discard(used)
		n += wrote
	}
	return n, nil
}

// begin looks at the start of a document, after any whitespace.
func (r *records) begin() error {
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			return err
		}
		if !isSpace(b[0]) {
			break
		}
		_, _ = r.br.Discard(1)
	}
	// The opening of the wrapper, with room for indentation.
	b, _ := r.br.Peek(256)
	if k := recordsStart(b); k > 0 {
		_, _ = r.br.Discard(k)
		r.state, r.depth, r.str, r.esc = stElemStart, 0, false, false
		return nil
	}
	r.state = stPass
	return nil
}

// recordsStart returns the length of b's prefix `{"Records":[` (with
// whitespace between its tokens), or 0.
func recordsStart(b []byte) int {
	i := 0
	ws := func() {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
	}
	for _, tok := range [...]string{"{", `"Records"`, ":", "["} {
		ws()
		if len(b)-i < len(tok) || string(b[i:i+len(tok)]) != tok {
			return 0
		}
		i += len(tok)
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// step moves what it can of in to out and returns how much of each it
// used.
func (r *records) step(in, out []byte) (used, wrote int) {
	i, o := 0, 0
	for i < len(in) && o < len(out) {
		c := in[i]
		switch r.state {
		case stElemStart:
			switch {
			case isSpace(c):
				i++
			case c == ']':
				i++
				r.state, r.depth = stTail, 1
			default:
				r.state, r.depth, r.str, r.esc = stElem, 0, false, false
			}
		case stElem:
			if r.str {
				if r.esc {
					r.esc = false
				} else if k := plain(in[i:]); k > 0 {
					k = copy(out[o:], in[i:i+k])
					i, o = i+k, o+k
					continue
				} else {
					switch c {
					case '\\':
						r.esc = true
					case '"':
						r.str = false
					}
				}
				out[o] = c
				i, o = i+1, o+1
				continue
			}
			switch c {
			case ' ', '\t', '\n', '\r':
				i++
				continue
			case '"':
				r.str = true
			case '{', '[':
				r.depth++
			case '}', ']', ',':
				if r.depth == 0 {
					// The end of a record that is not an object (or a
					// stray bracket): the decoder reports it.
					r.state = stNewline
					continue
				}
				if c != ',' {
					r.depth--
					if r.depth == 0 {
						r.state = stNewline
					}
				}
			}
			out[o] = c
			i, o = i+1, o+1
		case stNewline:
			out[o] = '\n'
			o++
			r.state = stAfterElem
		case stAfterElem:
			switch {
			case isSpace(c):
				i++
			case c == ',':
				i++
				r.state = stElemStart
			case c == ']':
				i++
				r.state, r.depth = stTail, 1
			default:
				// Not an array of records after all: pass the rest on
				// for the decoder to report.
				r.state = stPass
				return i, o
			}
		case stTail:
			i++
			switch {
			case r.str && r.esc:
				r.esc = false
			case r.str:
				r.esc = c == '\\'
				r.str = c != '"'
			case c == '"':
				r.str = true
			case c == '{' || c == '[':
				r.depth++
			case c == '}' || c == ']':
				r.depth--
				if r.depth == 0 {
					r.state = stStart
					return i, o
				}
			}
		default:
			return i, o
		}
	}
	return i, o
}
