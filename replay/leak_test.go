package replay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/replay"
)

// TestRawTokenNeverLeaks feeds events with distinctive random raw tokens,
// well and badly formed, and looks for any of them in everything replay
// writes: decisions, error lines and log records. A token that is used
// must map to the same token_id every time, whatever the worker.
func TestRawTokenNeverLeaks(t *testing.T) {
	secret := func() string { return "sk_live_" + rand.Text() }
	const tail = `"source_ip":"198.51.100.4","endpoint":"/v1/me","status_code":200`
	type line struct {
		text   string
		token  string // what must not appear; empty for none
		usable bool
	}
	var lines []line
	good := map[string]bool{} // tokens of usable lines
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = secret()
	}
	ts := func(i int) string { return fmt.Sprintf(`"timestamp":"2026-11-02T09:%02d:%02dZ"`, i/60%60, i%60) }
	for i := range 400 {
		tok := tokens[(i/10)%len(tokens)]
		var l line
		switch i % 10 {
		case 0, 1, 2: // a plain raw token, reused across lines
			l = line{fmt.Sprintf(`{%s,"token":%q,%s}`, ts(i), tok, tail), tok, true}
			good[tok] = true
		case 3: // a token with escapes: the decoder works on a copy
			esc := `\u0041\/` + tok[:10] + `\"` + tok[10:]
			l = line{fmt.Sprintf(`{%s,"token":"%s",%s}`, ts(i), esc, tail), tok[10:], true}
		case 4: // a token with an invalid escape
			l = line{fmt.Sprintf(`{%s,"token":"%s\q%s",%s}`, ts(i), tok[:12], tok[12:], tail), tok[12:], false}
		case 5: // a token in a line that is otherwise invalid, after and before the fault
			l = line{fmt.Sprintf(`{%s,"token":%q,"status_code":"x","source_ip":"198.51.100.4","endpoint":"/v1/me"}`, ts(i), tok), tok, false}
		case 6:
			l = line{fmt.Sprintf(`{%s,"status_code":tru,"token":%q,%s}`, ts(i), tok, tail), tok, false}
		case 7: // a token as a number, and a token beside a token_id
			var b [8]byte
			rand.Read(b[:])
			num := fmt.Sprintf("9%017d", binary.LittleEndian.Uint64(b[:])%1e17)
			l = line{fmt.Sprintf(`{%s,"token":%s,%s}`, ts(i), num, tail), num, false}
		case 8:
			l = line{fmt.Sprintf(`{%s,"token_id":"tk_x","token":%q,%s}`, ts(i), tok, tail), tok, false}
		case 9: // a token with a raw control character, and one never closed
			if i%20 == 9 {
				l = line{fmt.Sprintf(`{%s,"token":"%s`+"\t"+`%s",%s}`, ts(i), tok[:15], tok[15:], tail), tok[15:], false}
			} else {
				l = line{fmt.Sprintf(`{%s,%s,"token":"%s`, ts(i), tail, tok), tok, false}
			}
		}
		lines = append(lines, l)
	}
	// Unknown fields and keys that hold secrets are skipped unread.
	hidden := secret()
	lines = append(lines, line{fmt.Sprintf(`{%s,"token_id":"tk_y","headers":{"authorization":"Bearer %s"},%q:1,%s}`, ts(1), hidden, hidden+"k", tail), hidden, true})
	var in bytes.Buffer
	for _, l := range lines {
		in.WriteString(l.text + "\n")
	}
	input := in.Bytes()

	for _, set := range []struct{ workers, batch int }{{1, 1024}, {4, 1}, {3, 7}} {
		t.Run(fmt.Sprintf("workers=%d/batch=%d", set.workers, set.batch), func(t *testing.T) {
			var out, errs, logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var warned []int
			sum, err := replay.Run(context.Background(), replay.Options{
				Input: bytes.NewReader(bytes.Clone(input)), Output: &out, Errors: &errs, Logger: log,
				Parts: testParts(t), Workers: set.workers, Batch: set.batch,
				OnRawToken: func(line int) { warned = append(warned, line) },
			})
			if err != nil {
				t.Fatal(err)
			}
			usable := 0
			for _, l := range lines {
				if l.usable {
					usable++
				}
			}
			if sum.Events != usable || sum.BadLines != len(lines)-usable {
				t.Fatalf("summary %+v, want %d events and %d bad lines:\n%s", sum, usable, len(lines)-usable, errs.Bytes())
			}
			all := out.String() + errs.String() + logs.String()
			if logs.Len() == 0 {
				t.Error("no log records to check")
			}
			for _, l := range lines {
				// Look for a distinctive part of the secret too, in case
				// of truncation.
				if l.token != "" && (strings.Contains(all, l.token) || strings.Contains(all, l.token[len(l.token)-12:])) {
					t.Errorf("token leaked from line %s", l.text[:40])
				}
			}
			if fmt.Sprint(warned) != "[1]" {
				t.Errorf("OnRawToken called for lines %v, want [1]", warned)
			}

			// One token, one id; different tokens, different ids.
			idOf := map[string]string{}
			tokOf := map[string]string{}
			decisions := strings.Split(strings.TrimSpace(out.String()), "\n")
			k := 0
			for _, l := range lines {
				if !l.usable {
					continue
				}
				var d struct {
					TokenID string `json:"token_id"`
				}
				if err := json.Unmarshal([]byte(decisions[k]), &d); err != nil {
					t.Fatal(err)
				}
				k++
				if !good[l.token] {
					continue
				}
				if !strings.HasPrefix(d.TokenID, event.FingerprintPrefix) {
					t.Errorf("token id %q is not a fingerprint", d.TokenID)
				}
				if id, ok := idOf[l.token]; ok && id != d.TokenID {
					t.Errorf("one token, two ids: %s and %s", id, d.TokenID)
				}
				if tok, ok := tokOf[d.TokenID]; ok && tok != l.token {
					t.Errorf("two tokens, one id %s", d.TokenID)
				}
				idOf[l.token], tokOf[d.TokenID] = d.TokenID, l.token
			}
			if len(idOf) != len(tokens) {
				t.Errorf("%d tokens got ids, want %d", len(idOf), len(tokens))
			}
		})
	}
}
