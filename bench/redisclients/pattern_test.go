package redisclients

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// TestPattern checks that both stores implement the same semantics:
// a judged batch bumps each record's version by one and the written record
// round-trips byte-exact (through a third client and through the store's
// own reader); the CAS script's three replies are classified alike; NOSCRIPT
// falls back to EVAL; the denylist key is seen; the peer record is CASed.
func TestPattern(t *testing.T) {
	e := setup(t)
	for _, st := range []Store{e.grS, e.ruS, e.ruExec} {
		t.Run(st.Name(), func(t *testing.T) { testPattern(t, e, st) })
	}
}

func testPattern(t *testing.T, e *env, st Store) {
	ctx := context.Background()
	const n = 8
	nonce := NewRunID() // fresh keys and script per call, even with a reused VIGIL_BENCH_RUNID
	ks := &Keyspace{RunID: e.ks.RunID}
	old := make([][]byte, n)
	for i := range n {
		fp := FP(e.ks.RunID, "test-"+nonce+st.Name(), i)
		ks.FPs = append(ks.FPs, fp)
		ks.RKeys = append(ks.RKeys, RecordKey(fp))
		ks.DKeys = append(ks.DKeys, DenyKey(fp))
		e.addKeys(RecordKey(fp), DenyKey(fp))
		if i == n-1 {
			continue // credential 7 has no record yet: must be created with Expect ""
		}
		old[i] = InitialRecord(7000 + i)
		old[i][VersionLen+100] = 0x00 // make sure NULs and high bytes survive
		old[i][VersionLen+101] = 0xff
		old[i][VersionLen+102] = '\r'
		old[i][VersionLen+103] = '\n'
		binary.BigEndian.PutUint64(old[i], uint64(41+i)<<40|0xff) // a version with all byte values in play
		if err := e.admin.Set(ctx, ks.RKeys[i], old[i], time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.admin.Set(ctx, ks.DKeys[3], "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}

	bt := st.NewBatcher()
	peer := PeerKey(e.ks.RunID + "-test-" + nonce + st.Name())
	e.addKeys(peer)
	w := NewWorker(ks, n, 1, peer)
	ids := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	counts := []uint32{1, 2, 3, 4, 5, 6, 7, 8}
	if err := w.Run(ctx, bt, ids, counts); err != nil {
		t.Fatal(err)
	}
	if w.Conflicts != 0 || w.Vanished != 0 || w.Denied != 1 || w.Events != 36 || w.Creds != n {
		t.Fatalf("tallies: %+v", w)
	}
	want := make([][]byte, n)
	for i := range n {
		want[i] = make([]byte, RecordLen)
		cur := ""
		if old[i] != nil {
			cur = string(old[i])
		}
		Judge(want[i], cur, counts[i], i == 3)
		got, err := e.admin.Get(ctx, ks.RKeys[i]).Bytes()
		if err != nil {
			t.Fatalf("cred %d: %v", i, err)
		}
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("cred %d: record not byte-exact:\n got %x\nwant %x", i, got, want[i])
		}
		var oldVer uint64
		if old[i] != nil {
			oldVer = binary.BigEndian.Uint64(old[i])
		}
		if v := binary.BigEndian.Uint64(got); v != oldVer+1 {
			t.Fatalf("cred %d: version %d, want %d", i, v, oldVer+1)
		}
		if !bytes.Equal(got[VersionLen+16:], want[i][VersionLen+16:]) || (old[i] != nil && !bytes.Equal(got[VersionLen+16:], old[i][VersionLen+16:])) {
			t.Fatalf("cred %d: state not carried over", i)
		}
		if ttl := e.admin.PTTL(ctx, ks.RKeys[i]).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("cred %d: pttl %v", i, ttl)
		}
	}
	// The store's own reader returns the same bytes.
	reqs := make([]ReadReq, n)
	reads := make([]Read, n)
	for i := range n {
		reqs[i] = ReadReq{RKey: ks.RKeys[i], DKey: ks.DKeys[i]}
	}
	if err := bt.Read(ctx, reqs, reads); err != nil {
		t.Fatal(err)
	}
	for i, rd := range reads {
		if !rd.Found || rd.Rec != string(want[i]) || rd.Denied != (i == 3) {
			t.Fatalf("cred %d: store read found=%v denied=%v equal=%v", i, rd.Found, rd.Denied, rd.Rec == string(want[i]))
		}
	}
	// A second batch bumps again; the peer record now has version 2.
	if err := w.Run(ctx, bt, ids[:2], counts[:2]); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		got, _ := e.admin.Get(ctx, ks.RKeys[i]).Bytes()
		if v := binary.BigEndian.Uint64(got); v != binary.BigEndian.Uint64(old[i])+2 {
			t.Fatalf("cred %d: version %d after 2 batches", i, v)
		}
	}
	pr, err := e.admin.Get(ctx, peer).Bytes()
	if err != nil || binary.BigEndian.Uint64(pr) != 2 || binary.LittleEndian.Uint64(pr[VersionLen:]) != 36+3 {
		t.Fatalf("peer record: err=%v %x", err, pr[:16])
	}

	// CAS replies.
	cur0, _ := e.admin.Get(ctx, ks.RKeys[0]).Result()
	val := make([]byte, RecordLen)
	Judge(val, cur0, 1, false)
	missing := RecordKey(FP(e.ks.RunID, "missing-"+nonce+st.Name(), 0))
	e.addKeys(missing)
	cases := []struct {
		name string
		w    Write
		want Outcome
		cur  string
	}{
		{"stale version", Write{Key: ks.RKeys[0], Expect: string(old[0][:VersionLen]), Value: val}, Conflict, cur0},
		{"must not exist", Write{Key: ks.RKeys[0], Expect: "", Value: val}, Conflict, cur0},
		{"vanished", Write{Key: missing, Expect: cur0[:VersionLen], Value: val}, Vanished, ""},
		{"current version", Write{Key: ks.RKeys[0], Expect: cur0[:VersionLen], Value: val}, OK, ""},
		{"create", Write{Key: missing, Expect: "", Value: val}, OK, ""},
	}
	for _, c := range cases {
		res := make([]WriteResult, 1)
		if err := bt.Write(ctx, []Write{c.w}, res); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res[0].Outcome != c.want || res[0].Cur != c.cur {
			t.Fatalf("%s: got %v (cur %d bytes), want %v (cur %d bytes)", c.name, res[0].Outcome, len(res[0].Cur), c.want, len(c.cur))
		}
	}
	for _, k := range []string{ks.RKeys[0], missing} {
		if got, _ := e.admin.Get(ctx, k).Bytes(); !bytes.Equal(got, val) {
			t.Fatalf("%s not written byte-exact", k)
		}
	}

	// NOSCRIPT: a script this server has never seen; the batch must go
	// through via the EVAL fallback and the server then knows the script.
	src := CASScript + "-- " + e.ks.RunID + " " + nonce + " " + st.Name() + "\n"
	if e.admin.ScriptExists(ctx, sha1Hex(src)).Val()[0] {
		t.Fatal("fresh script already known")
	}
	var fresh Store
	var err2 error
	switch s := st.(type) {
	case *GoRedisStore:
		fresh, err2 = NewGoRedisStore(ctx, e.gr, src, false)
	case *RueidisStore:
		var rs *RueidisStore
		rs, err2 = NewRueidisStore(ctx, e.ru, src, false)
		if rs != nil {
			rs.ExecMulti = s.ExecMulti
		}
		fresh = rs
	}
	if err2 != nil {
		t.Fatal(err2)
	}
	if err := w.Run(ctx, fresh.NewBatcher(), ids, counts); err != nil {
		t.Fatalf("NOSCRIPT fallback: %v", err)
	}
	if w.Conflicts != 0 || w.Vanished != 0 {
		t.Fatalf("tallies after fallback: %+v", w)
	}
	if !e.admin.ScriptExists(ctx, sha1Hex(src)).Val()[0] {
		t.Fatal("script unknown after EVAL fallback")
	}
}
