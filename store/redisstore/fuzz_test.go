package redisstore

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/store/storetest"
)

// FuzzRecordValue: whatever bytes a Redis key holds (another program's
// value, a corrupted one), decoding it and judging events on it never
// panics, and a value of the wrong size is refused.
func FuzzRecordValue(f *testing.F) {
	j, err := engine.NewJudge(storetest.EngineOptions(f))
	if err != nil {
		f.Fatal(err)
	}
	// A real record, judged a few times.
	var r engine.Record
	var v engine.Verdict
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 30 {
		ev := event.Event{Time: t0 + int64(i)*int64(time.Minute), TokenID: "tk", Endpoint: "/v1/x", Status: 200, SourceIP: netip.MustParseAddr("192.0.2.1")}
		j.Judge(&r, nil, &ev, &v)
	}
	seed := binary.BigEndian.AppendUint64(nil, 7)
	seed = append(seed, r.Bytes()...)
	f.Add(seed)
	f.Add(make([]byte, versionLen+engine.RecordSize))
	f.Add([]byte("not a record"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r, peer engine.Record
		ver, err := decode(b, &r)
		if len(b) != versionLen+engine.RecordSize {
			if err == nil {
				t.Fatalf("%d bytes decoded", len(b))
			}
			return
		}
		if err != nil || ver != binary.BigEndian.Uint64(b) {
			t.Fatalf("decode: %v, version %d", err, ver)
		}
		_ = peer.SetBytes(b[versionLen:])
		var v engine.Verdict
		for i := range 3 {
			ev := event.Event{Time: t0 + int64(i)*int64(time.Hour), TokenID: "tk", ClientID: "c", Endpoint: "/v1/y", Status: 500,
				SourceIP: netip.MustParseAddr("198.51.100.7"), PayloadBytes: 1 << 20, Country: "FR", ASN: 64500}
			j.Judge(&r, &peer, &ev, &v)
			j.Complete(&r, v.Now, profile.Outcome{Status: 200, ResponseBytes: 10, HasBytes: true}, v.Trust)
			_ = r.Snapshot()
		}
	})
}

// FuzzInventoryEntry: whatever a stored inventory value holds (written by
// another program, damaged), decoding never panics and keeps the entry's
// bounds, and merging a batch into it gives a value that decodes.
func FuzzInventoryEntry(f *testing.F) {
	f.Add([]byte(`0000000000000001{"token_id":"tk_x","requests":3,"endpoints":[{"value":"GET /x","requests":3}],"applied":{"r":2}}`))
	f.Add([]byte(`000000000000000z{"history":[{"level":"block"}]}`))
	f.Add([]byte(`short`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, st, err := decodeStored("tk_x", b)
		if err == nil {
			if st.TokenID != "tk_x" || st.Level > 3 || len(st.Endpoints) > inventory.MaxValues || len(st.History) > inventory.MaxHistory {
				t.Fatalf("bounds not kept: %+v", st.Entry)
			}
			for _, d := range st.History {
				if d.Level > 3 {
					t.Fatalf("history level %d", d.Level)
				}
			}
		}
		e := inventory.Entry{TokenID: "tk_x", Requests: 1, FirstSeen: time.Unix(1, 0), LastSeen: time.Unix(2, 0)}
		next, _ := merge("tk_x", b, &e, "r", 7)
		if next != nil {
			if _, st2, err := decodeStored("tk_x", next); err != nil || st2.Applied["r"] != 7 {
				t.Fatalf("merged value: %v %+v", err, st2.Applied)
			}
		}
	})
}
