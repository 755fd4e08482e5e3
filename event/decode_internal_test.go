package event

import (
	"bytes"
	"testing"
)

// TestTokenNotRetained checks that no raw token survives in the Decoder's
// own memory (scratch space for unescaping, arena for kept strings), after
// success and after failure.
func TestTokenNotRetained(t *testing.T) {
	fp, err := NewFingerprinter([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	const req = `"timestamp":"2026-03-14T09:26:53Z","source_ip":"203.0.113.42","endpoint":"/v1/x","status_code":200`
	for _, tok := range []string{
		`"s3cr3t-plain"`,
		`"s3cr3t\u002descaped"`,
		`"s3cr3t\/escaped\/and\/longer\/than\/any\/string\/before\/it\/so\/scratch\/grows\/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"`,
		`"s3cr3t\u002dbad\q"`,
		"\"s3cr3t\\u002dctl\x01\"",
		`"s3cr3t\u002dunterminated`,
	} {
		d := NewDecoder(fp)
		var ev Event
		// An escaped user agent before the token puts bytes into scratch.
		line := []byte(`{` + req + `,"user_agent":"a\tb","token":` + tok + `,"method":"GET"}`)
		_ = d.Decode(line, &ev)
		for name, mem := range map[string][]byte{
			"line":    line,
			"scratch": d.scratch[:cap(d.scratch)],
			"arena":   d.arena[:cap(d.arena)],
		} {
			if bytes.Contains(mem, []byte("s3cr3t")) {
				t.Errorf("token %s: %s still holds it", tok, name)
			}
		}
	}
}
