// Package atomicfile replaces small files whole: a reader, or a restart
// after a crash, finds the old content or the new, never a mix.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// Write writes b to name.tmp with mode 0600, flushes it to the device,
// and renames it over name.
func Write(name string, b []byte) error {
	return WriteFunc(name, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// WriteFunc is Write for content too large to hold in memory at once: fn
// writes it (buffered) to name.tmp, which is then flushed to the device
// and renamed over name. If fn fails, name is left as it was.
func WriteFunc(name string, fn func(io.Writer) error) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	err = fn(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
