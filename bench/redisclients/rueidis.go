package redisclients

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/rueidis"
)

// RueidisStore implements the pattern with rueidis: one DoMulti of built
// commands per round trip; writes are B().Evalsha() with the script's SHA-1
// (computed client-side by rueidis.NewLuaScript semantics, loaded once with
// SCRIPT LOAD) and a DoMulti of B().Eval() for the entries that answered
// NOSCRIPT. Against a cluster the same code works: every built command
// carries its slot and clusterClient.DoMulti groups the commands by the
// node owning each slot, one pipelined write per node, in parallel,
// following MOVED/ASK.
//
// With ExecMulti set, writes go through rueidis.Lua.ExecMulti instead; that
// helper issues SCRIPT LOAD to every node on *each* call, i.e. one extra
// round trip per batch (measured separately as BenchmarkRueidisLuaExecMulti).
type RueidisStore struct {
	c         rueidis.Client
	lua       *rueidis.Lua
	script    string
	sha       string
	ExecMulti bool
}

// NewRueidisStore wraps c. If load, the script is SCRIPT LOADed once now on
// every node (as go-redis ClusterClient.ScriptLoad does on every shard).
func NewRueidisStore(ctx context.Context, c rueidis.Client, script string, load bool) (*RueidisStore, error) {
	s := &RueidisStore{c: c, lua: rueidis.NewLuaScript(script), script: script}
	// Same SHA-1 as the one rueidis.NewLuaScript computes client-side.
	s.sha = sha1Hex(script)
	if load {
		// Load on every node (a cluster client routes a bare SCRIPT LOAD to
		// one random node); EVAL covers nodes that join or restart later.
		for addr, n := range c.Nodes() {
			sha, err := n.Do(ctx, n.B().ScriptLoad().Script(script).Build()).ToString()
			if err != nil {
				return nil, fmt.Errorf("script load on %s: %w", addr, err)
			}
			if sha != s.sha {
				return nil, fmt.Errorf("script load on %s: sha %s, want %s", addr, sha, s.sha)
			}
		}
	}
	return s, nil
}

func (s *RueidisStore) Name() string {
	if s.ExecMulti {
		return "rueidis-execmulti"
	}
	return "rueidis"
}

func (s *RueidisStore) NewBatcher() Batcher { return &rueidisBatcher{s: s} }

type rueidisBatcher struct {
	s     *RueidisStore
	cmds  rueidis.Commands
	execs []rueidis.LuaExec
	retry []int
}

func (b *rueidisBatcher) Read(ctx context.Context, reqs []ReadReq, dst []Read) error {
	c := b.s.c
	cmds := b.cmds[:0]
	for _, r := range reqs {
		if r.DKey != "" {
			cmds = append(cmds, c.B().Mget().Key(r.RKey, r.DKey).Build())
		} else {
			cmds = append(cmds, c.B().Mget().Key(r.RKey).Build())
		}
	}
	resps := c.DoMulti(ctx, cmds...)
	clear(cmds) // built commands are recycled by rueidis after DoMulti; drop our references
	b.cmds = cmds[:0]
	for i, resp := range resps {
		arr, err := resp.ToArray()
		if err != nil {
			return fmt.Errorf("MGET %s: %w", reqs[i].RKey, err)
		}
		var rd Read
		if !arr[0].IsNil() {
			if rd.Rec, err = arr[0].ToString(); err != nil {
				return fmt.Errorf("MGET %s: %w", reqs[i].RKey, err)
			}
			rd.Found = true
		}
		rd.Denied = len(arr) > 1 && !arr[1].IsNil()
		dst[i] = rd
	}
	return nil
}

func (b *rueidisBatcher) Write(ctx context.Context, ws []Write, res []WriteResult) error {
	c := b.s.c
	var resps []rueidis.RedisResult
	if b.s.ExecMulti {
		execs := b.execs[:0]
		for _, w := range ws {
			execs = append(execs, rueidis.LuaExec{
				Keys: []string{w.Key},
				Args: []string{w.Expect, rueidis.BinaryString(w.Value), RecordTTLms},
			})
		}
		resps = b.s.lua.ExecMulti(ctx, c, execs...)
		clear(execs)
		b.execs = execs[:0]
	} else {
		cmds := b.cmds[:0]
		for _, w := range ws {
			cmds = append(cmds, c.B().Evalsha().Sha1(b.s.sha).Numkeys(1).Key(w.Key).
				Arg(w.Expect, rueidis.BinaryString(w.Value), RecordTTLms).Build())
		}
		resps = c.DoMulti(ctx, cmds...)
		clear(cmds)
		b.cmds = cmds[:0]
	}
	retry := b.retry[:0]
	for i, resp := range resps {
		noScript, err := classifyRueidis(resp, &res[i])
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
	cmds := b.cmds[:0]
	for _, i := range retry {
		w := ws[i]
		cmds = append(cmds, c.B().Eval().Script(b.s.script).Numkeys(1).Key(w.Key).
			Arg(w.Expect, rueidis.BinaryString(w.Value), RecordTTLms).Build())
	}
	resps = c.DoMulti(ctx, cmds...)
	clear(cmds)
	b.cmds = cmds[:0]
	for j, resp := range resps {
		i := retry[j]
		if noScript, err := classifyRueidis(resp, &res[i]); err != nil || noScript {
			return fmt.Errorf("EVAL %s: %v (noscript=%v)", ws[i].Key, err, noScript)
		}
	}
	return nil
}

// classifyRueidis maps one CAS reply (RESP3: Lua false arrives as boolean false).
func classifyRueidis(resp rueidis.RedisResult, r *WriteResult) (noScript bool, err error) {
	msg, err := resp.ToMessage()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			*r = WriteResult{Outcome: Vanished}
			return false, nil
		}
		if re, ok := rueidis.IsRedisErr(err); ok && re.IsNoScript() {
			return true, nil
		}
		return false, err
	}
	switch {
	case msg.IsInt64():
		if v, _ := msg.ToInt64(); v != 1 {
			return false, fmt.Errorf("unexpected integer reply %d", v)
		}
		*r = WriteResult{Outcome: OK}
	case msg.IsString():
		cur, _ := msg.ToString()
		*r = WriteResult{Outcome: Conflict, Cur: cur}
	case msg.IsBool():
		if v, _ := msg.ToBool(); v {
			return false, errors.New("unexpected reply true")
		}
		*r = WriteResult{Outcome: Vanished}
	default:
		return false, fmt.Errorf("unexpected reply %s", msg.String())
	}
	return false, nil
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
