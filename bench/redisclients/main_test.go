package redisclients

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// NumCreds is the number of preloaded credentials (env VIGIL_BENCH_CREDS overrides).
var NumCreds = 100_000

type env struct {
	addr   string
	admin  *redis.Client // preload, verification, cleanup
	ks     *Keyspace
	gr     *redis.Client
	ru     rueidis.Client
	grS    *GoRedisStore
	ruS    *RueidisStore
	ruExec *RueidisStore

	mu    sync.Mutex
	extra []string // keys outside ks to delete at the end
}

var (
	envOnce sync.Once
	theEnv  *env
	envErr  error
)

// setup connects both clients and preloads the keyspace once per process.
// It skips the test/benchmark if Redis is unreachable.
func setup(tb testing.TB) *env {
	tb.Helper()
	envOnce.Do(func() { theEnv, envErr = newEnv() })
	if envErr != nil {
		tb.Skipf("redis: %v", envErr)
	}
	return theEnv
}

func newEnv() (*env, error) {
	ctx := context.Background()
	e := &env{addr: os.Getenv("REDIS_ADDR")}
	if e.addr == "" {
		e.addr = "127.0.0.1:6379"
	}
	if s := os.Getenv("VIGIL_BENCH_CREDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("VIGIL_BENCH_CREDS=%q", s)
		}
		NumCreds = n
	}
	e.admin = redis.NewClient(&redis.Options{Addr: e.addr})
	if err := e.admin.Ping(ctx).Err(); err != nil {
		e.admin.Close()
		return nil, fmt.Errorf("%s unreachable: %w", e.addr, err)
	}
	runID := os.Getenv("VIGIL_BENCH_RUNID")
	if runID == "" {
		runID = NewRunID()
	} else if len(runID) != 6 {
		return nil, fmt.Errorf("VIGIL_BENCH_RUNID=%q: want 6 base64url chars", runID)
	}
	e.ks = NewKeyspace(runID, NumCreds)
	// With a given run id (run.sh: several processes share one keyspace) the
	// preload is skipped when an earlier process already did it.
	n, err := e.admin.Exists(ctx, e.ks.RKeys[0], e.ks.RKeys[NumCreds-1], e.ks.DKeys[0]).Result()
	if err != nil {
		return e, err
	}
	if n != 3 {
		if err := e.preload(ctx); err != nil {
			return e, err
		}
	}

	// The clients under test, with their defaults (go-redis: PoolSize
	// 10*GOMAXPROCS plus the dedicated pipeline pool; rueidis: auto
	// pipelining, client-side caching off since it cannot help a
	// read-then-CAS pattern whose every read is followed by a write).
	e.gr = redis.NewClient(&redis.Options{Addr: e.addr})
	e.ru, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{e.addr}, DisableCache: true})
	if err != nil {
		return e, fmt.Errorf("rueidis: %w", err)
	}
	if e.grS, err = NewGoRedisStore(ctx, e.gr, CASScript, true); err != nil {
		return e, err
	}
	if e.ruS, err = NewRueidisStore(ctx, e.ru, CASScript, true); err != nil {
		return e, err
	}
	if e.ruExec, err = NewRueidisStore(ctx, e.ru, CASScript, true); err != nil {
		return e, err
	}
	e.ruExec.ExecMulti = true
	return e, nil
}

func (e *env) preload(ctx context.Context) error {
	const chunk = 1000
	for lo := 0; lo < len(e.ks.RKeys); lo += chunk {
		hi := min(lo+chunk, len(e.ks.RKeys))
		_, err := e.admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < hi; i++ {
				p.Set(ctx, e.ks.RKeys[i], InitialRecord(i), time.Hour)
				if i%100 == 0 { // 1% of credentials carry a denylist entry
					p.Set(ctx, e.ks.DKeys[i], "1", time.Hour)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
	}
	return nil
}

// addKeys registers keys outside the keyspace for deletion at exit.
func (e *env) addKeys(keys ...string) {
	e.mu.Lock()
	e.extra = append(e.extra, keys...)
	e.mu.Unlock()
}

func (e *env) cleanup() error {
	ctx := context.Background()
	keys := append(append(append([]string{}, e.ks.RKeys...), e.ks.DKeys...), e.extra...)
	var firstErr error
	for lo := 0; lo < len(keys); lo += 1000 {
		hi := min(lo+1000, len(keys))
		if err := e.admin.Unlink(ctx, keys[lo:hi]...).Err(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	// Nothing of this run may be left: every key's hash tag starts with the
	// run id (peer keys: "client:" + run id). Keys of earlier processes of the
	// same run (run.sh) are found here.
	for _, pat := range []string{"vigil:{" + e.ks.RunID + "*", "vigil:{client:" + e.ks.RunID + "*"} {
		var cursor uint64
		for {
			ks, next, err := e.admin.Scan(ctx, cursor, pat, 1000).Result()
			if err != nil {
				return err
			}
			if len(ks) > 0 {
				if err := e.admin.Unlink(ctx, ks...).Err(); err != nil && firstErr == nil {
					firstErr = err
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return firstErr
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theEnv != nil && theEnv.admin != nil {
		// VIGIL_BENCH_KEEP=1 keeps the keyspace for a later process of the same
		// VIGIL_BENCH_RUNID (run.sh); keys expire after an hour in any case.
		if os.Getenv("VIGIL_BENCH_KEEP") == "1" {
			fmt.Fprintf(os.Stderr, "keeping keyspace of run %s\n", theEnv.ks.RunID)
		} else if err := theEnv.cleanup(); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
			if code == 0 {
				code = 1
			}
		}
		if theEnv.gr != nil {
			theEnv.gr.Close()
		}
		if theEnv.ru != nil {
			theEnv.ru.Close()
		}
		theEnv.admin.Close()
	}
	os.Exit(code)
}
