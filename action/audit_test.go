package action

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuditAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := OpenAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			r := Record{Time: at, ID: fmt.Sprint("act_", i), Step: StepNameWebhook, Outcome: OutcomeRetrying, TokenID: "tk_1",
				Attempt: 2, Error: "HTTP 503", NextAttempt: at.Add(time.Second)}
			if err := a.Append(r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := a.Append(Record{ID: "x", Step: "delete", Outcome: OutcomeFailed, TokenID: "t"}); err == nil {
		t.Fatal("unknown step appended")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(Record{ID: "x", Step: StepNameRevoke, Outcome: OutcomeFailed, TokenID: "t"}); !errors.Is(err, ErrAuditClosed) {
		t.Fatalf("append after close: %v", err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if lines := strings.Count(string(b), "\n"); lines != 20 {
		t.Fatalf("%d lines", lines)
	}
	if strings.Contains(string(b), "client_id") || !strings.Contains(string(b), `"next_attempt":"2026-05-01T00:00:01Z"`) {
		t.Fatalf("omitempty: %s", strings.SplitN(string(b), "\n", 2)[0])
	}
	f, _ := os.Open(path)
	defer f.Close()
	seen := map[string]bool{}
	if err := ReadAudit(f, func(r Record) error {
		if r.Attempt != 2 || !r.Time.Equal(at) {
			return fmt.Errorf("record %+v", r)
		}
		seen[r.ID] = true
		return nil
	}); err != nil || len(seen) != 20 {
		t.Fatalf("%d records, %v", len(seen), err)
	}
}

func TestReadAuditBadLines(t *testing.T) {
	good := `{"time":"2026-05-01T00:00:00Z","id":"a","step":"revoke","outcome":"requested","token_id":"tk"}`
	in := strings.Join([]string{
		good,
		`{"id":`, // 2: malformed
		``,       // 3: blank, skipped
		`{"time":"2026-05-01T00:00:00Z","id":"b","step":"revoke","outcome":"exploded","token_id":"tk"}`,             // 4
		`{"time":"2026-05-01T00:00:00Z","id":"c","step":"revoke","outcome":"failed","token_id":"tk","attempt":"1"}`, // 5
		strings.Repeat("x", MaxRecord+10), // 6: too long
		good,
		`{"time":"2026-05-01T00:00:00Z","id":"d","step":"rev`, // 8: crash mid-write
	}, "\n")
	var n int
	err := ReadAudit(strings.NewReader(in), func(Record) error { n++; return nil })
	if n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
	var lines []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("not a line error: %v", e)
		}
		lines = append(lines, le.Line)
	}
	if fmt.Sprint(lines) != "[2 4 5 6 8]" {
		t.Fatalf("bad lines %v: %v", lines, err)
	}
	for _, want := range []string{"audit line 2: invalid JSON", `unknown outcome "exploded"`, `field "attempt"`, "longer than", "audit line 8: partial last line"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not in %v", want, err)
		}
	}
	// fn's error stops reading.
	stop := errors.New("stop")
	if err := ReadAudit(strings.NewReader(good+"\n"+good+"\n"), func(Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn error: %v", err)
	}
}

func TestAuditPartialLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	good := `{"time":"2026-05-01T00:00:00Z","id":"a","step":"revoke","outcome":"requested","token_id":"tk"}` + "\n"
	if err := os.WriteFile(path, []byte(good+`{"time":"2026-05-01T00:00:00Z","id":"b","st`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := OpenAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Append(Record{Time: time.Now(), ID: "c", Step: StepNameDenylist, Outcome: OutcomeSucceeded, TokenID: "tk"}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	f, _ := os.Open(path)
	defer f.Close()
	var ids []string
	err = ReadAudit(f, func(r Record) error { ids = append(ids, r.ID); return nil })
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || fmt.Sprint(ids) != "[a c]" {
		t.Fatalf("ids %v, err %v", ids, err)
	}
}
