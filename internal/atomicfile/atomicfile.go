// Package atomicfile replaces small files whole: a reader, or a restart
// after a crash, finds the old content or the new, never a mix.
package atomicfile

import (
	"fmt"
	"os"
)

// Write writes b to name.tmp with mode 0600, flushes it to the device,
// and renames it over name.
func Write(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
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
