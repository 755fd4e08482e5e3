package cli

import (
	"fmt"
	stdio "io"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/ingest"
	"github.com/vigil-sec/vigil/replay"
)

// The log commands (replay, investigate, follow) read the same formats:
// this file is where a --format becomes an input and its decoders.

// logInput is an opened log: what to read, in which format, by which name.
type logInput struct {
	r      stdio.Reader
	format ingest.Format
	name   string
	close  func() error
}

// openLog opens path ("" or "-": stdin) with gzip read transparently, and
// decides its format: format if given, else detected from its first
// 64 KiB (which stay in the reader). CloudTrail Records files come out as
// one record per line.
func openLog(cio IO, path string, format ingest.Format) (*logInput, error) {
	in := &logInput{name: "standard input", close: func() error { return nil }}
	if path != "" && path != "-" {
		f, err := ingest.Open(path)
		if err != nil {
			return nil, err
		}
		in.r, in.name, in.close = f, path, f.Close
	} else {
		r, err := ingest.NewReader(cio.Stdin)
		if err != nil {
			return nil, err
		}
		in.r = r
	}
	r, f, err := detectFormat(in.r, format)
	if err != nil {
		in.close()
		return nil, fmt.Errorf("%s: %w", in.name, err)
	}
	in.r, in.format = ingest.Lines(r, f), f
	return in, nil
}

// parseFormatFlag reads --format: "auto" (or "") means detect.
func parseFormatFlag(s string) (ingest.Format, error) {
	if s == "auto" || s == "" {
		return "", nil
	}
	return ingest.ParseFormat(s)
}

// decoders returns replay.Options.NewDecoder for a format (nil: vigil's
// own events, replay's default).
func decoders(f ingest.Format) func(fp *event.Fingerprinter) replay.Decoder {
	if f == ingest.Vigil || f == "" {
		return nil
	}
	return func(fp *event.Fingerprinter) replay.Decoder {
		d, _ := ingest.NewDecoder(f, fp) // f is a parsed or detected format: no error
		return d
	}
}
