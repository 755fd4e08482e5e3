package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigil-sec/vigil/internal/redistest"
	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/inventory/inventorytest"
	"github.com/vigil-sec/vigil/store/redisstore"
)

// TestInventoryReplicas: three replicas merging their uses into Redis, in
// whatever order their merges land, make the entries one in-memory
// inventory makes of all the uses (standalone and cluster).
func TestInventoryReplicas(t *testing.T) {
	uses := inventorytest.Uses(6000, 2)
	want := inventorytest.Reference(t, uses)
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprint("cluster=", cluster), func(t *testing.T) {
			var addrs []string
			var prefix string
			if cluster {
				c := redistest.Cluster(t)
				addrs, prefix = c.Addrs(), c.Prefix()
			} else {
				srv := redistest.Standalone(t)
				addrs, prefix = []string{srv.Addr()}, srv.Prefix()
			}
			s := newStore(t, redisstore.Options{Addrs: addrs, Cluster: cluster, Prefix: prefix + "inv:"})
			defer s.Close()
			sink := s.Inventory(0)
			inventorytest.Replicas(t, sink, 3, 101, uses)
			got, err := inventory.Collect(context.Background(), &readOnly{sink})
			if err != nil {
				t.Fatal(err)
			}
			inventorytest.Equal(t, want, got)
			e, ok, err := sink.Get(context.Background(), "tk_07")
			if err != nil || !ok || e.Requests == 0 {
				t.Errorf("Get = %+v, %v, %v", e, ok, err)
			}
			if _, ok, err := sink.Get(context.Background(), "tk_nope"); ok || err != nil {
				t.Errorf("Get of an unknown credential = %v, %v", ok, err)
			}
		})
	}
}

// readOnly makes a Sink an Inventory for Collect.
type readOnly struct{ inventory.Sink }

func (readOnly) Observe(*inventory.Use)      {}
func (readOnly) Flush(context.Context) error { return nil }
func (readOnly) Stats() inventory.Stats      { return inventory.Stats{} }
func (readOnly) Close() error                { return nil }

// TestInventoryRetentionAndDamage: entries expire Retention after their
// last merge; a batch merged again is skipped; a damaged value is named in
// the error of a read, and the next merge replaces it.
func TestInventoryRetentionAndDamage(t *testing.T) {
	srv := redistest.Standalone(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix()})
	defer s.Close()
	sink := s.Inventory(time.Hour)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	m, _ := inventory.NewMemory(inventory.Options{})
	m.Observe(&inventory.Use{TokenID: "tk_a", Time: at.UnixNano(), Endpoint: "GET /x", Risk: 9, Level: 2, Signal: "new_network"})
	es, _ := inventory.Collect(context.Background(), m)
	for range 2 {
		if err := sink.Merge(context.Background(), "test-1", []*inventory.Entry{&es[0]}); err != nil {
			t.Fatal(err)
		}
	}
	if e, _, _ := sink.Get(context.Background(), "tk_a"); e.Requests != 1 || len(e.History) != 1 || !e.LastSeen.Equal(at) {
		t.Errorf("a batch merged twice: %+v", e)
	}
	if err := sink.Merge(context.Background(), "test", []*inventory.Entry{&es[0]}); err == nil {
		t.Error("a batch name without a number was taken")
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	key := srv.Prefix() + "{tk_a}:inv"
	if ttl := rdb.PTTL(context.Background(), key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("TTL %v, want about 1h", ttl)
	}
	rdb.Set(context.Background(), key, "0000000000000009{not json", 0)
	if _, _, err := sink.Get(context.Background(), "tk_a"); err == nil || !strings.Contains(err.Error(), "inventory entry tk_a") {
		t.Errorf("Get of a damaged entry: %v", err)
	}
	if err := (&readOnly{sink}).Each(context.Background(), func(*inventory.Entry) error { return nil }); err == nil {
		t.Error("Each hid a damaged entry")
	}
	if err := sink.Merge(context.Background(), "test-2", []*inventory.Entry{&es[0]}); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := sink.Get(context.Background(), "tk_a"); !ok || err != nil || e.Requests != 1 {
		t.Errorf("after a merge over damage: %+v %v %v", e, ok, err)
	}
}

// BenchmarkInventoryMerge: one merge interval's worth of a replica's
// uses (full: 4 uses per credential, 5,000 credentials; each credential's
// entry already in Redis) merged in batches of 512.
func BenchmarkInventoryMerge(b *testing.B) {
	srv := redistest.Standalone(b)
	s := newStore(b, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix()})
	defer s.Close()
	sink := s.Inventory(0)
	uses := inventorytest.Uses(20_000, 3)
	for i := range uses {
		uses[i].TokenID = fmt.Sprintf("tk_%05d", i%5000)
	}
	m, _ := inventory.NewMemory(inventory.Options{})
	for i := range uses {
		m.Observe(&uses[i])
	}
	es, _ := inventory.Collect(context.Background(), m)
	ptrs := make([]*inventory.Entry, len(es))
	for i := range es {
		if os.Getenv("NOHIST") != "" {
			es[i].History = nil
		}
		ptrs[i] = &es[i]
	}
	seq := 0
	merge := func() {
		for i := 0; i < len(ptrs); i += 512 {
			seq++
			if err := sink.Merge(context.Background(), "bench-"+strconv.FormatInt(int64(seq), 36), ptrs[i:min(i+512, len(ptrs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	merge()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	rdb.ConfigResetStat(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		merge()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ptrs))/1e3, "µs/entry")
	stats := rdb.Info(context.Background(), "commandstats").Val()
	for _, line := range strings.Split(stats, "\n") {
		if os.Getenv("CMDSTATS") != "" {
			b.Log(line)
		}
		if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_get:") {
			_, rest, _ := strings.Cut(line, "usec_per_call=")
			us, _, _ := strings.Cut(rest, ",")
			var x float64
			fmt.Sscan(us, &x)
			b.ReportMetric(x, "redis-µs/"+strings.TrimPrefix(line[:strings.IndexByte(line, ':')], "cmdstat_"))
		}
	}
}
