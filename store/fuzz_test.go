package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/storetest"
)

// FuzzDenylistFile: whatever denylist.json holds, opening the store either
// fails with an error naming the file, or gives a store whose every
// denial is valid; it never panics.
func FuzzDenylistFile(f *testing.F) {
	f.Add([]byte(`[{"token_id":"tk_1","reason":"leaked","at":"2026-11-23T12:00:00Z"}]`))
	f.Add([]byte(`[{"token_id":"tk_1","at":"2026-11-23T12:00:00Z","until":"2026-11-24T12:00:00Z"}]`))
	f.Add([]byte(`[{"token_id":"","at":"2026-11-23T12:00:00Z"}]`))
	f.Add([]byte(`{"token_id":"x"}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`[]`))
	opts := storetest.EngineOptions(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		name := filepath.Join(dir, "denylist.json")
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		e, err := engine.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.NewLocal(e, store.LocalOptions{Dir: dir})
		if err != nil {
			e.Close()
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer s.Close()
		ds, err := s.Denials(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if err := d.Validate(); err != nil {
				t.Fatalf("store holds an invalid denial %+v: %v", d, err)
			}
		}
	})
}
