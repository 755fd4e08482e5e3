package redisclients

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// GoRedisStore implements the pattern with go-redis v9: one Pipeline() per
// round trip, redis.NewScript + EvalSha in the pipeline, EVAL in a second
// pipeline for the commands that answered NOSCRIPT. It takes a
// UniversalClient, so a *redis.ClusterClient works unchanged (its
// Pipeline() splits the commands by node and sends one pipeline per node
// concurrently, following MOVED/ASK).
type GoRedisStore struct {
	c      redis.UniversalClient
	script *redis.Script
}

// NewGoRedisStore wraps c. If load, the script is SCRIPT LOADed once now
// (otherwise the first write of each server answers NOSCRIPT and falls back
// to EVAL, which also caches it server-side).
func NewGoRedisStore(ctx context.Context, c redis.UniversalClient, script string, load bool) (*GoRedisStore, error) {
	s := &GoRedisStore{c: c, script: redis.NewScript(script)}
	if load {
		if err := s.script.Load(ctx, c).Err(); err != nil {
			return nil, fmt.Errorf("script load: %w", err)
		}
	}
	return s, nil
}

func (s *GoRedisStore) Name() string { return "go-redis" }

func (s *GoRedisStore) NewBatcher() Batcher { return &goRedisBatcher{s: s, key: make([]string, 1)} }

type goRedisBatcher struct {
	s     *GoRedisStore
	key   []string // the one KEYS entry; go-redis copies it into the command's args
	mgets []*redis.SliceCmd
	evals []*redis.Cmd
	retry []int
}

func (b *goRedisBatcher) Read(ctx context.Context, reqs []ReadReq, dst []Read) error {
	pipe := b.s.c.Pipeline()
	cmds := b.mgets[:0]
	for _, r := range reqs {
		if r.DKey != "" {
			cmds = append(cmds, pipe.MGet(ctx, r.RKey, r.DKey))
		} else {
			cmds = append(cmds, pipe.MGet(ctx, r.RKey))
		}
	}
	b.mgets = cmds
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, c := range cmds {
		vals := c.Val()
		var rd Read
		if v, ok := vals[0].(string); ok {
			rd.Rec, rd.Found = v, true
		} else if vals[0] != nil {
			return fmt.Errorf("MGET %s: unexpected %T", reqs[i].RKey, vals[0])
		}
		rd.Denied = len(vals) > 1 && vals[1] != nil
		dst[i] = rd
	}
	return nil
}

func (b *goRedisBatcher) Write(ctx context.Context, ws []Write, res []WriteResult) error {
	pipe := b.s.c.Pipeline()
	cmds := b.evals[:0]
	for _, w := range ws {
		b.key[0] = w.Key
		cmds = append(cmds, b.s.script.EvalSha(ctx, pipe, b.key, w.Expect, w.Value, RecordTTLms))
	}
	b.evals = cmds
	_, _ = pipe.Exec(ctx) // per-command errors are classified below
	retry := b.retry[:0]
	for i, c := range cmds {
		noScript, err := classifyGoRedis(c, &res[i])
		if err != nil {
			return fmt.Errorf("EVALSHA %s: %w", ws[i].Key, err)
		}
		if noScript {
			retry = append(retry, i)
		}
	}
	b.retry = retry
	if len(retry) == 0 {
		return nil
	}
	pipe = b.s.c.Pipeline()
	cmds = cmds[:0]
	for _, i := range retry {
		b.key[0] = ws[i].Key
		cmds = append(cmds, b.s.script.Eval(ctx, pipe, b.key, ws[i].Expect, ws[i].Value, RecordTTLms))
	}
	_, _ = pipe.Exec(ctx)
	for j, c := range cmds {
		i := retry[j]
		if noScript, err := classifyGoRedis(c, &res[i]); err != nil || noScript {
			return fmt.Errorf("EVAL %s: %v (noscript=%v)", ws[i].Key, err, noScript)
		}
	}
	return nil
}

// classifyGoRedis maps one CAS reply. RESP3 (the default) turns Lua false
// into a boolean false; RESP2 into a nil bulk (redis.Nil).
func classifyGoRedis(c *redis.Cmd, r *WriteResult) (noScript bool, err error) {
	v, err := c.Result()
	switch {
	case err == nil:
	case errors.Is(err, redis.Nil):
		*r = WriteResult{Outcome: Vanished}
		return false, nil
	case redis.HasErrorPrefix(err, "NOSCRIPT"):
		return true, nil
	default:
		return false, err
	}
	switch v := v.(type) {
	case int64:
		if v != 1 {
			return false, fmt.Errorf("unexpected integer reply %d", v)
		}
		*r = WriteResult{Outcome: OK}
	case string:
		*r = WriteResult{Outcome: Conflict, Cur: v}
	case bool:
		if v {
			return false, errors.New("unexpected reply true")
		}
		*r = WriteResult{Outcome: Vanished}
	default:
		return false, fmt.Errorf("unexpected reply %T", v)
	}
	return false, nil
}
