package redisstore

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
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

// FuzzInventoryEntry: whatever a stored inventory hash and history hold
// (written by another program, damaged), decoding never panics, keeps
// the entry's bounds on history levels, and names a bad field.
func FuzzInventoryEntry(f *testing.F) {
	f.Add("n", "12", "e|GET /x", "3,1700000000000000,1700000100000000", "1700000000000000,2,8.5,new_network")
	f.Add("level", "9", "a|16509", "x,y", "bad")
	f.Add("first", "-1", "s|", ",,", "1,1,1,")
	f.Fuzz(func(t *testing.T, f1, v1, f2, v2, hist string) {
		e, err := decodeEntry("tk_x", map[string]string{f1: v1, f2: v2}, []string{hist})
		if e.TokenID != "tk_x" {
			t.Fatal("token id lost")
		}
		if e.Level > 3 {
			t.Fatalf("level %d out of range", e.Level)
		}
		for _, d := range e.History {
			if d.Level > 3 {
				t.Fatalf("history level %d out of range", d.Level)
			}
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
