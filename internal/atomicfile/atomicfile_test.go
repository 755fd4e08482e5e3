package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f.json")
	for _, s := range []string{"first", "second, longer"} {
		if err := atomicfile.Write(name, []byte(s)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(name)
		if err != nil || string(b) != s {
			t.Fatalf("read %q, %v; want %q", b, err, s)
		}
	}
	if _, err := os.Stat(name + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	st, _ := os.Stat(name)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	err := atomicfile.Write(filepath.Join(t.TempDir(), "missing", "f"), nil)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("write into a missing directory: %v", err)
	}
}

// TestWriteFuncFails: content that fails half-way leaves the old file.
func TestWriteFuncFails(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f.json")
	if err := atomicfile.Write(name, []byte("old")); err != nil {
		t.Fatal(err)
	}
	err := atomicfile.WriteFunc(name, func(w io.Writer) error {
		io.WriteString(w, "half of the new")
		return errors.New("disk full")
	})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteFunc = %v", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "old" {
		t.Errorf("file holds %q", b)
	}
	if _, err := os.Stat(name + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}
