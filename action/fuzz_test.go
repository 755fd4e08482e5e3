package action

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func FuzzIntrospection(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"scope":"a b","client_id":"c","aud":["x","y"],"exp":1700000000,"iat":1.5,"nbf":0,"cnf":{"jkt":"k","x5t#S256":"t"}}`,
		`{"active":false,"scope":"a"}`, `{"active":true,"aud":"x"}`, `{"active":null}`, `[]`, `null`, `{"active":true,"exp":1e400}`,
		`{"active":true,"scope":"\u0000 \t"}`, `{"active":true,"cnf":{"jkt":null}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeIntrospection(b)
		if err != nil {
			if in.Active || in.Scope != nil {
				t.Fatalf("error with a result: %+v", in)
			}
			return
		}
		if !in.Active && (in.Scope != nil || in.Subject != "" || in.ClientID != "" || in.Audience != nil || !in.Expiry.IsZero()) {
			t.Fatalf("inactive result reports %+v", in)
		}
		for _, s := range in.Scope {
			if s == "" || strings.ContainsAny(s, " \t\n\r") {
				t.Fatalf("scope %q", in.Scope)
			}
		}
		for _, tm := range []time.Time{in.Expiry, in.IssuedAt, in.NotBefore} {
			if !tm.IsZero() && (tm.Unix() < 0 || tm.Unix() > maxNumericDate) {
				t.Fatalf("time %v", tm)
			}
		}
	})
}

func FuzzReadAudit(f *testing.F) {
	good := `{"time":"2026-05-01T00:00:00Z","id":"a","step":"revoke","outcome":"requested","token_id":"tk"}`
	f.Add([]byte(good + "\n" + good))
	f.Add([]byte(good + "\n{\"id\":\n\n" + good[:40]))
	f.Add([]byte("\n\n\r\n"))
	f.Add([]byte(`{"time":"2026-05-01T00:00:00Z","id":"a","step":"webhook","outcome":"retrying","token_id":"tk","attempt":3,"next_attempt":"2026-05-01T00:00:05Z","until":"2027-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines := bytes.Count(b, []byte{'\n'}) + 1
		var recs []Record
		err := ReadAudit(bytes.NewReader(b), func(r Record) error {
			if err := r.validate(); err != nil {
				t.Fatalf("invalid record passed on: %v", err)
			}
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var le *LineError
				if !errors.As(e, &le) || le.Line < 1 || le.Line > lines {
					t.Fatalf("error %v (of %d lines)", e, lines)
				}
			}
		}
		// What was read writes back and reads again the same.
		var out bytes.Buffer
		for _, r := range recs {
			j, err := json.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(append(j, '\n'))
		}
		n := 0
		if err := ReadAudit(&out, func(Record) error { n++; return nil }); err != nil || n != len(recs) {
			t.Fatalf("re-read %d of %d: %v", n, len(recs), err)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	secret := []byte("0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	f.Add(Sign(secret, now, []byte("{}")), []byte("{}"))
	f.Add("t=1,v1=zz,v1=", []byte(""))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := VerifySignature(secret, header, body, now, time.Minute)
		if err == nil {
			// Accepted: a v1 is the true MAC for the header's timestamp.
			ts := ""
			for part := range strings.SplitSeq(header, ",") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
					ts = v
				}
			}
			if !strings.Contains(strings.ToLower(header), hex.EncodeToString(mac(secret, ts, body))) {
				t.Fatalf("accepted %q", header)
			}
		}
		if err != nil && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrStaleSignature) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
