package ingest_test

import (
	"testing"

	"github.com/vigil-sec/vigil/event"
)

// TestSampleFiles decodes every line of each format's sample file: all are
// events that vigil's contract accepts.
func TestSampleFiles(t *testing.T) {
	for _, sf := range sampleFiles {
		t.Run(string(sf.format), func(t *testing.T) {
			lines := readLines(t, sf.file, sf.format)
			if len(lines) != sf.events {
				t.Fatalf("%d lines, want %d", len(lines), sf.events)
			}
			d := newDecoder(t, sf.format)
			evs := make([]event.Event, len(lines))
			for i, l := range lines {
				if err := d.Decode(l, &evs[i]); err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				clear(l) // the event must not depend on its line
			}
			for i := range evs {
				checkEvent(t, &evs[i])
			}
			t.Logf("first: %+v", evs[0])
		})
	}
}
