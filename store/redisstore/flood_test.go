package redisstore_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/redistest"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/redisstore"
)

// TestFloodKeepsEstablished: an attacker sends made-up credentials to a
// Redis capped with maxmemory and the volatile-ttl policy the package
// recommends. Redis stays under its cap by evicting keys nearest expiry:
// the flood's (a new credential's record lives NewTTL), not the
// established credentials' (IdleTTL), whose baselines survive whole.
func TestFloodKeepsEstablished(t *testing.T) {
	const maxmemory = 24 << 20
	srv := redistest.Standalone(t, redistest.Args("--maxmemory", strconv.Itoa(maxmemory), "--maxmemory-policy", "volatile-ttl"))
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix(), Timeout: time.Second})
	defer s.Close()
	const established, events = 500, 25
	flood := 200_000
	if raceEnabled {
		flood = 80_000
	}
	t0 := time.Now().Add(-time.Hour).UnixNano()
	const batch = 512
	evs := make([]event.Event, 0, batch)
	vs := make([]store.Verdict, batch)
	judge := func() {
		t.Helper()
		if err := s.Judge(t.Context(), evs, vs[:len(evs)]); err != nil {
			t.Fatal(err)
		}
		evs = evs[:0]
	}
	at := t0
	add := func(tok string) {
		at += int64(time.Millisecond)
		evs = append(evs, event.Event{Time: at, TokenID: tok, Endpoint: "/v1/items", Status: 200})
		if len(evs) == batch {
			judge()
		}
	}
	for range events {
		for c := range established {
			add(fmt.Sprintf("tk_est_%d", c))
		}
	}
	judge()
	r := rand.New(rand.NewPCG(7, 7))
	for range flood {
		add(fmt.Sprintf("tk_flood_%016x", r.Uint64()))
	}
	judge()

	info, _ := srv.Do(t, "INFO", "memory").(string)
	used := infoField(info, "used_memory")
	stats, _ := srv.Do(t, "INFO", "stats").(string)
	evicted := infoField(stats, "evicted_keys")
	keys, _ := srv.Do(t, "DBSIZE").(int64)
	if evicted == 0 {
		t.Fatalf("no key was evicted: the flood (%d credentials) did not reach maxmemory, the test proves nothing", flood)
	}
	if used > maxmemory*11/10 {
		t.Fatalf("used_memory %d over maxmemory %d", used, maxmemory)
	}
	for c := range established {
		tok := fmt.Sprintf("tk_est_%d", c)
		sn, ok, err := s.Inspect(t.Context(), tok)
		if err != nil || !ok || sn.Events != events {
			t.Fatalf("%s after the flood: %d events (want %d), known %v, %v", tok, sn.Events, events, ok, err)
		}
	}
	if st := s.Stats(); st.Errors != 0 || s.Lost() != 0 {
		t.Fatalf("store errors %d, lost writes %d", st.Errors, s.Lost())
	}
	t.Logf("flood credentials %d: Redis holds %d keys in %d MiB (maxmemory %d MiB), evicted %d; all %d established credentials kept their %d events",
		flood, keys, used>>20, maxmemory>>20, evicted, established, events)
}

func infoField(info, name string) int64 {
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}
