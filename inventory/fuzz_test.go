package inventory

import (
	"bytes"
	"context"
	"testing"
)

// FuzzRead: any file content loads without panicking, within the bounds,
// and what loads saves and loads again to the same entries.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"token_id":"tk_a","requests":3,"asns":[{"value":"16509","requests":3}]}` + "\n"))
	f.Add([]byte("{\"token_id\":\"tk_b\",\"history\":[{\"level\":\"block\"}]}\nnot json\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _ := NewMemory(Options{MaxEntries: 64})
		_ = Read(bytes.NewReader(b), func(e *Entry) error {
			if len(e.Endpoints) > MaxValues || len(e.History) > MaxHistory || len(e.Granted) > MaxGranted {
				t.Fatalf("bounds not enforced: %+v", e)
			}
			m.merge(e)
			return nil
		})
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, m); err != nil {
			t.Fatal(err)
		}
		if err := Read(&buf, func(*Entry) error { return nil }); err != nil {
			t.Fatalf("saved inventory does not load: %v", err)
		}
	})
}
