package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/replay"
	"github.com/vigil-sec/vigil/replay/replaytest"
)

// run replays in with opts' Workers, Batch and Strict, and the test key.
func run(t *testing.T, in io.Reader, opts replay.Options) (out, errs []byte, sum replay.Summary, err error) {
	t.Helper()
	var o, e bytes.Buffer
	opts.Input, opts.Output, opts.Errors = in, &o, &e
	if opts.Parts == nil {
		opts.Parts = testParts(t)
	}
	sum, err = replay.Run(context.Background(), opts)
	return o.Bytes(), e.Bytes(), sum, err
}

func count(b []byte) int { return bytes.Count(b, []byte("\n")) }

// TestGolden replays the hand-written streams in ../testdata/replay and
// compares decisions and error lines with the golden files, with several
// worker and batch settings.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("../testdata/replay/*.jsonl")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, path := range inputs {
		base := strings.TrimSuffix(path, ".jsonl")
		t.Run(filepath.Base(base), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, set := range []struct{ workers, batch int }{{1, 1024}, {4, 1}, {2, 3}, {2, replay.MaxBatch}} {
				out, errs, sum, err := run(t, bytes.NewReader(in), replay.Options{Workers: set.workers, Batch: set.batch})
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					golden(t, base+".decisions.golden", out)
					golden(t, base+".errors.golden", errs)
				} else if want, _ := os.ReadFile(base + ".decisions.golden"); !*update && !bytes.Equal(out, want) {
					t.Errorf("workers=%d batch=%d: decisions differ from the golden file:\n%s", set.workers, set.batch, firstDiff(out, want))
				}
				if sum.Events != count(out) || sum.BadLines != count(errs) {
					t.Errorf("summary says %d events and %d bad lines; wrote %d and %d", sum.Events, sum.BadLines, count(out), count(errs))
				}
				total := 0
				for _, n := range sum.Decisions {
					total += n
				}
				if total != sum.Events {
					t.Errorf("decisions per level add up to %d, want %d", total, sum.Events)
				}
				checkDecisions(t, out)
			}
		})
	}
}

// TestGoldenContent checks what the golden files must show, so that an
// -update cannot quietly bless a wrong answer.
func TestGoldenContent(t *testing.T) {
	in, err := os.ReadFile("../testdata/replay/attack.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	out, errs, sum, err := run(t, bytes.NewReader(in), replay.Options{})
	if err != nil || len(errs) != 0 {
		t.Fatalf("err %v, errors %q", err, errs)
	}
	ds := checkDecisions(t, out)
	byID := map[string]int{}
	for i, d := range ds {
		byID[d.RequestID] = i
	}
	// The replayed token is contained while the owner's own requests
	// before it were allowed.
	if d := ds[byID["a-010"]]; d.Decision.String() != "allow" {
		t.Errorf("owner's request: %s, want allow", d.Decision)
	}
	if d := ds[byID["x-3"]]; d.Decision.String() == "allow" || len(d.Reasons) == 0 {
		t.Errorf("replayed token from another network: %s with %d reasons, want a contained decision", d.Decision, len(d.Reasons))
	}
	// Events without a request id get the line's number.
	lines := strings.Split(string(in), "\n")
	for i, l := range lines {
		if l != "" && !strings.Contains(l, `"request_id":"`) {
			if _, ok := byID[fmt.Sprintf("line-%d", i+1)]; !ok {
				t.Errorf("no decision with request_id line-%d", i+1)
			}
		}
	}
	// The raw token is fingerprinted the same way every time.
	var bob []string
	for _, d := range ds {
		if strings.HasPrefix(d.RequestID, "b-") {
			bob = append(bob, d.TokenID)
		}
	}
	if len(bob) != 3 || bob[0] != bob[1] || bob[1] != bob[2] || !strings.HasPrefix(bob[0], event.FingerprintPrefix) {
		t.Errorf("token ids of one raw token: %q", bob)
	}
	if bytes.Contains(out, []byte("sk_live_golden_bob")) {
		t.Error("raw token in the output")
	}
	if sum.Credentials != 3 { // alice, bob (from his raw token), carol
		t.Errorf("credentials %d, want 3", sum.Credentials)
	}
}

// TestDeterministic replays a large generated stream with every mix of
// workers and batch size and wants byte-identical output.
func TestDeterministic(t *testing.T) {
	n := 50_000
	if testing.Short() || raceEnabled {
		n = 5_000
	}
	var in bytes.Buffer
	st, err := replaytest.Write(&in, replaytest.Options{
		Events: n, Credentials: 300, Seed: 7, BadEvery: 997, BlankEvery: 501, RawTokenEvery: 13,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOut, wantErrs, wantSum, err := run(t, bytes.NewReader(in.Bytes()), replay.Options{Workers: 1, Batch: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if wantSum.Events != st.Events || wantSum.BadLines != st.Bad || count(wantOut) != st.Events {
		t.Fatalf("summary %+v, generated %+v", wantSum, st)
	}
	if wantSum.Decisions[0] == wantSum.Events {
		t.Fatalf("every decision is allow: the stream does not exercise the policy (%v)", wantSum.Decisions)
	}
	if bytes.Contains(wantOut, []byte("NaN")) || bytes.Contains(wantOut, []byte(":-")) {
		t.Error("NaN or a negative number in the output")
	}
	for _, workers := range []int{1, 2, 4} {
		for _, batch := range []int{1, 7, 1024} {
			if workers == 1 && batch == 1024 {
				continue
			}
			t.Run(fmt.Sprintf("workers=%d/batch=%d", workers, batch), func(t *testing.T) {
				// Small reads move line boundaries across blocks too.
				var r io.Reader = bytes.NewReader(in.Bytes())
				if batch == 7 {
					r = &chunkReader{data: in.Bytes(), rng: rand.New(rand.NewPCG(uint64(workers), 1))}
				}
				out, errs, sum, err := run(t, r, replay.Options{Workers: workers, Batch: batch})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out, wantOut) {
					t.Errorf("decisions differ from workers=1 batch=1024:\n%s", firstDiff(out, wantOut))
				}
				if !bytes.Equal(errs, wantErrs) {
					t.Errorf("error lines differ:\n%s", firstDiff(errs, wantErrs))
				}
				sum.Elapsed, sum.EventsPerSec = 0, 0
				wantSum.Elapsed, wantSum.EventsPerSec = 0, 0
				if sum != wantSum {
					t.Errorf("summary %+v, want %+v", sum, wantSum)
				}
			})
		}
	}
}

// chunkReader returns data in reads of random size up to 64 KiB.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), 1+r.rng.IntN(64<<10))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

const (
	good1 = `{"timestamp":"2026-11-02T09:00:00Z","token_id":"tk_1","source_ip":"203.0.113.9","endpoint":"/v1/me","status_code":200,"request_id":"r1"}`
	good2 = `{"timestamp":"2026-11-02T09:00:01Z","token_id":"tk_1","source_ip":"203.0.113.9","endpoint":"/v1/me","status_code":200}`
	bad   = `{"timestamp":"2026-11-02T09:00:02Z","token_id":"tk_1","source_ip":"203.0.113.9","endpoint":"/v1/me","status_code":"200"}`
)

// TestLines covers how input is cut into lines: line numbers, blank lines,
// CRLF, a missing final newline, and reads of one byte.
func TestLines(t *testing.T) {
	tests := []struct {
		name, in string
		ids      []string // request ids decided, in order
		errs     string
	}{
		{"empty", "", nil, ""},
		{"blank lines only", "\n \n\t\r\n\n", nil, ""},
		{"no final newline", good1 + "\n" + good2, []string{"r1", "line-2"}, ""},
		{"blank lines count", "\n\n" + good2 + "\n  \n" + good2 + "\n", []string{"line-3", "line-5"}, ""},
		{"crlf", good1 + "\r\n" + good2 + "\r\n", []string{"r1", "line-2"}, ""},
		{"bad line numbered", good1 + "\n\n" + bad + "\n" + good2 + "\n", []string{"r1", "line-4"},
			"line 3: field \"status_code\": expected a number, got a string\n"},
		{"bad last line without newline", good1 + "\n" + `{"timestamp"`, []string{"r1"},
			"line 2: invalid JSON at byte 12: expected ':' after object key\n"},
		{"nul byte", "\x00\n" + good1, []string{"r1"},
			"line 1: invalid JSON at byte 0: expected '{' at the start of an object\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				out, errs, sum, err := run(t, r, replay.Options{Workers: 2, Batch: 1})
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, d := range checkDecisions(t, out) {
					ids = append(ids, d.RequestID)
				}
				if fmt.Sprint(ids) != fmt.Sprint(tt.ids) {
					t.Errorf("request ids %q, want %q", ids, tt.ids)
				}
				if string(errs) != tt.errs {
					t.Errorf("errors %q, want %q", errs, tt.errs)
				}
				if sum.Events != len(tt.ids) || sum.BadLines != count([]byte(tt.errs)) {
					t.Errorf("summary %+v", sum)
				}
			}
		})
	}
}

// longLine returns a valid event line of exactly n bytes, padded with an
// unknown field.
func longLine(n int) []byte {
	head := `{"timestamp":"2026-11-02T09:00:03Z","token_id":"tk_1","source_ip":"203.0.113.9","endpoint":"/v1/me","status_code":200,"pad":"`
	b := append([]byte(head), bytes.Repeat([]byte("x"), n-len(head)-2)...)
	return append(b, `"}`...)
}

// TestLongLines: a line of MaxLineBytes is an event; a longer one is
// reported and skipped, wherever it falls, and the lines after it work.
func TestLongLines(t *testing.T) {
	max := event.MaxLineBytes
	var in bytes.Buffer
	in.WriteString(good1 + "\n")
	in.Write(longLine(max))
	in.WriteString("\n")
	in.Write(longLine(max + 1))
	in.WriteString("\n" + good2 + "\n")
	in.Write(longLine(3 * max)) // spans several reads
	in.WriteString("\n" + good2 + "\n")
	in.Write(longLine(max + 10)) // last, without a newline
	for _, workers := range []int{1, 3} {
		r := &chunkReader{data: bytes.Clone(in.Bytes()), rng: rand.New(rand.NewPCG(9, uint64(workers)))}
		out, errs, sum, err := run(t, r, replay.Options{Workers: workers, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range checkDecisions(t, out) {
			ids = append(ids, d.RequestID)
		}
		if want := "[r1 line-2 line-4 line-6]"; fmt.Sprint(ids) != want {
			t.Errorf("request ids %v, want %s", ids, want)
		}
		want := "line 3: too long (more than 1048576 bytes)\nline 5: too long (more than 1048576 bytes)\nline 7: too long (more than 1048576 bytes)\n"
		if string(errs) != want {
			t.Errorf("errors:\n%s\nwant:\n%s", errs, want)
		}
		if sum.BadLines != 3 {
			t.Errorf("summary %+v", sum)
		}
	}
}

// endless yields one long line of n bytes without ever holding it.
type endless struct {
	n     int
	block []byte
}

func (r *endless) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	if r.block == nil {
		r.block = bytes.Repeat([]byte("x"), 64<<10)
	}
	k := copy(p[:min(len(p), r.n)], r.block)
	r.n -= k
	return k, nil
}

// TestLongLineStreamed: replay streams past an overlong line instead of
// buffering it.
func TestLongLineStreamed(t *testing.T) {
	const size = 256 << 20
	in := io.MultiReader(strings.NewReader(good1+"\n"), &endless{n: size}, strings.NewReader("\n"+good2+"\n"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, errs, _, err := run(t, in, replay.Options{Workers: 1})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if count(out) != 2 || string(errs) != "line 2: too long (more than 1048576 bytes)\n" {
		t.Errorf("out %q, errors %q", out, errs)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("allocated %d MiB for a %d MiB line", alloc>>20, size>>20)
	}
}

// TestStrict: the first bad line stops the replay after the decisions of
// every earlier line are written, and nothing after it is.
func TestStrict(t *testing.T) {
	var in bytes.Buffer
	for i := range 40 {
		fmt.Fprintf(&in, `{"timestamp":"2026-11-02T09:%02d:00Z","token_id":"tk_%d","source_ip":"203.0.113.9","endpoint":"/v1/me","status_code":200}`+"\n", i, i%3)
	}
	in.WriteString(bad + "\n")
	for range 40 {
		in.WriteString(good2 + "\n")
	}
	in.WriteString("not json\n")
	full, _, _, err := run(t, bytes.NewReader(in.Bytes()), replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join(bytes.SplitAfter(full, []byte("\n"))[:40], nil)
	for _, set := range []struct{ workers, batch int }{{1, 1}, {4, 1}, {2, 3}, {2, 40}, {1, 41}, {4, 1024}} {
		t.Run(fmt.Sprintf("workers=%d/batch=%d", set.workers, set.batch), func(t *testing.T) {
			noLeaks(t)
			out, errs, sum, err := run(t, bytes.NewReader(in.Bytes()), replay.Options{Workers: set.workers, Batch: set.batch, Strict: true})
			var le *replay.LineError
			if !errors.As(err, &le) || le.Line != 41 {
				t.Fatalf("error %v, want a LineError for line 41", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("wrote %d decisions, want the 40 before the bad line", count(out))
			}
			if string(errs) != "line 41: field \"status_code\": expected a number, got a string\n" {
				t.Errorf("errors %q", errs)
			}
			if sum.Events != 40 || sum.BadLines != 1 {
				t.Errorf("summary %+v", sum)
			}
		})
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct {
	n   int
	err error
}

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, w.err
	}
	w.n -= len(p)
	return len(p), nil
}

func generated(t *testing.T, events int) []byte {
	t.Helper()
	var in bytes.Buffer
	if _, err := replaytest.Write(&in, replaytest.Options{Events: events, Credentials: 50, Seed: 3, BadEvery: 100}); err != nil {
		t.Fatal(err)
	}
	return in.Bytes()
}

// TestWriteError: a failing output (a closed pipe) stops the replay with
// the write's error and leaves no goroutine behind.
func TestWriteError(t *testing.T) {
	in := generated(t, 20_000)
	for _, where := range []string{"output", "errors"} {
		t.Run(where, func(t *testing.T) {
			noLeaks(t)
			fw := &failWriter{n: 100 << 10, err: syscall.EPIPE}
			opts := replay.Options{Input: bytes.NewReader(in), Output: io.Discard, Errors: io.Discard, Parts: testParts(t), Batch: 16}
			if where == "output" {
				opts.Output = fw
			} else {
				fw.n = 200
				opts.Errors = fw
			}
			sum, err := replay.Run(context.Background(), opts)
			if !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("error %v, want EPIPE", err)
			}
			if sum.Events >= 20_000 {
				t.Errorf("replay went on after the write failed: %+v", sum)
			}
		})
	}
}

// TestReadError: the lines before a read error are decided, and the error
// is returned.
func TestReadError(t *testing.T) {
	noLeaks(t)
	boom := errors.New("disk on fire")
	in := io.MultiReader(strings.NewReader(good1+"\n"+good2+"\n"+`{"timestamp":"20`), iotest.ErrReader(boom))
	out, _, sum, err := run(t, in, replay.Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if count(out) != 2 || sum.Events != 2 || sum.BadLines != 0 {
		t.Errorf("out %q, summary %+v", out, sum)
	}
}

// forever repeats one line without end.
type forever struct {
	line []byte
	off  int
}

func (r *forever) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.line[r.off:])
		n += k
		r.off = (r.off + k) % len(r.line)
	}
	return n, nil
}

// TestCancel: cancelling the context stops an endless replay, returns the
// context's error and leaves no goroutine behind.
func TestCancel(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			noLeaks(t)
			ctx, cancel := context.WithCancel(context.Background())
			out := &cancelAfter{n: 1000, cancel: cancel}
			done := make(chan error, 1)
			go func() {
				_, err := replay.Run(ctx, replay.Options{
					Input: &forever{line: []byte(good2 + "\n")}, Output: out, Parts: testParts(t), Workers: workers, Batch: 8,
				})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v, want context.Canceled", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
}

// cancelAfter cancels once it has seen n lines.
type cancelAfter struct {
	n      int
	cancel func()
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	if w.n -= count(p); w.n <= 0 {
		w.cancel()
	}
	return len(p), nil
}

// TestOptions: missing or invalid options are errors, not panics.
func TestOptions(t *testing.T) {
	parts := testParts(t)
	for _, opts := range []replay.Options{
		{Output: io.Discard, Parts: parts},
		{Input: strings.NewReader(""), Parts: parts},
		{Input: strings.NewReader(""), Output: io.Discard},
		{Input: strings.NewReader(""), Output: io.Discard, Parts: parts, Workers: -1},
		{Input: strings.NewReader(""), Output: io.Discard, Parts: parts, Batch: replay.MaxBatch + 1},
	} {
		if _, err := replay.Run(context.Background(), opts); err == nil {
			t.Errorf("%+v: no error", opts)
		}
	}
}
