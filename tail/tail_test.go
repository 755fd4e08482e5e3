package tail_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/tail"
)

// writePieces writes s to f in pieces of random sizes, so lines arrive in
// parts.
func writePieces(t *testing.T, f *os.File, s string, rng *rand.Rand) {
	t.Helper()
	for len(s) > 0 {
		n := min(len(s), 1+rng.IntN(300))
		if _, err := f.WriteString(s[:n]); err != nil {
			t.Fatal(err)
		}
		s = s[n:]
	}
}

func openAppend(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func stats(c *collector) tail.FileStats { return c.r.Stats().Total() }

// TestBursts: lines appended in bursts, in pieces, are read whole and in
// order; what the file held before Follow is not read.
func TestBursts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "before-1\nbefore-2\n")
	c, _ := follow(t, []string{path}, testOptions())
	f := openAppend(t, path)
	rng := rand.New(rand.NewPCG(1, 2))
	want := ""
	for burst := range 8 {
		s := numbered(fmt.Sprint("burst", burst), 0, 50+burst*100)
		writePieces(t, f, s, rng)
		want += s
		if burst%2 == 0 {
			waitLines(t, c, strings.Count(want, "\n"))
		}
	}
	waitLines(t, c, strings.Count(want, "\n"))
	if got := c.text(); got != want {
		t.Errorf("read %d bytes, want %d; first lines %q", len(got), len(want), c.lines()[:2])
	}
	c.check(t)
	st := stats(c)
	if st.Lines != int64(strings.Count(want, "\n")) || st.Bytes != int64(len(want)) {
		t.Errorf("stats %+v, want %d lines, %d bytes", st, strings.Count(want, "\n"), len(want))
	}
}

// TestFromStart reads existing content; without it, following starts at
// the start of an unfinished last line, so that line is read whole.
func TestFromStart(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendTo(t, a, "one\ntwo\n")
	appendTo(t, b, "one\ntwo\nthr")
	o := testOptions()
	o.FromStart = true
	ca, _ := follow(t, []string{a}, o)
	cb, _ := follow(t, []string{b}, testOptions())
	appendTo(t, a, "three\n")
	appendTo(t, b, "ee\n")
	waitLines(t, ca, 3)
	waitLines(t, cb, 1)
	if got := ca.text(); got != "one\ntwo\nthree\n" {
		t.Errorf("FromStart read %q", got)
	}
	if got := cb.text(); got != "three\n" {
		t.Errorf("from the end read %q, want the unfinished last line whole", got)
	}
}

// TestRenameRotation rotates like logrotate's create while lines are
// written: rename, more lines into the renamed file, the new file created,
// more lines into the old one, then the writer reopens. Every line is read
// once, in order.
func TestRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, "")
	c, _ := follow(t, []string{path}, testOptions())
	rng := rand.New(rand.NewPCG(3, 4))
	var want strings.Builder
	seq := 0
	write := func(f *os.File, n int) {
		s := numbered("L", seq, seq+n)
		seq += n
		writePieces(t, f, s, rng)
		want.WriteString(s)
	}
	const rotations = 5
	w := openAppend(t, path)
	for k := 1; k <= rotations; k++ {
		write(w, 400)
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, k)); err != nil {
			t.Fatal(err)
		}
		write(w, 7) // the writer does not know yet
		nw := openAppend(t, path)
		write(w, 3) // nor after logrotate created the new file
		w.Close()
		w = nw // the writer reopens
		write(w, 1)
		// Rotations faster than the poll could skip a file: wait until
		// the new one is open.
		waitFor(t, fmt.Sprintf("rotation %d", k), func() bool { return c.count(tail.Rotated) >= k })
	}
	write(w, 400)
	waitLines(t, c, seq)
	if got := c.text(); got != want.String() {
		t.Errorf("read %d lines (%d bytes), want %d (%d bytes)", len(c.lines()), len(got), seq, want.Len())
		seen := map[string]int{}
		for _, l := range c.lines() {
			seen[l]++
		}
		for _, l := range strings.SplitAfter(want.String(), "\n") {
			if l != "" && seen[l] != 1 {
				t.Errorf("%q read %d times", l, seen[l])
				break
			}
		}
	}
	c.check(t)
	if st := stats(c); st.Rotations != rotations || st.Truncations != 0 || st.Unterminated != 0 {
		t.Errorf("stats %+v, want %d rotations", st, rotations)
	}
}

// TestRotationUnterminated: the last line of a rotated file, without its
// '\n', is passed on with one once the file is left.
func TestRotationUnterminated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, "")
	c, _ := follow(t, []string{path}, testOptions())
	appendTo(t, path, "first\nlast")
	waitFor(t, "the unfinished line", func() bool { return stats(c).Pending == 4 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "next\n")
	waitLines(t, c, 3)
	if got := c.text(); got != "first\nlast\nnext\n" {
		t.Errorf("read %q", got)
	}
	if st := stats(c); st.Unterminated != 1 || st.Rotations != 1 || st.Lines != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestCopyTruncate: the file is copied and truncated in place; reading
// restarts at its start.
func TestCopyTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "")
	c, _ := follow(t, []string{path}, testOptions())
	w := openAppend(t, path)
	before := numbered("before", 0, 200)
	w.WriteString(before)
	waitLines(t, c, 200)
	// logrotate copytruncate: copy, then truncate; the writer appends on.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path+".1", data, 0o644)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	after := numbered("after", 0, 20) // shorter than what was read
	w.WriteString(after)
	waitLines(t, c, 220)
	if got := c.text(); got != before+after {
		t.Errorf("read %d lines, want 220; last %q", len(c.lines()), c.lines()[len(c.lines())-1])
	}
	if n := c.count(tail.Truncated); n != 1 {
		t.Errorf("%d truncation events, want 1", n)
	}
	if st := stats(c); st.Truncations != 1 || st.Rotations != 0 {
		t.Errorf("stats %+v", st)
	}
	c.check(t)
}

// TestMissing: a path that does not exist is reported once and waited for;
// once created it is read from its start. Deleted and created again, it
// is read again.
func TestMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	c, _ := follow(t, []string{path}, testOptions())
	if n := c.count(tail.Missing); n != 1 {
		t.Fatalf("%d missing events at start, want 1", n)
	}
	appendTo(t, path, "a\nb\n")
	waitLines(t, c, 2)
	if n := c.count(tail.Reopened); n != 1 {
		t.Errorf("%d reopened events, want 1", n)
	}
	if n := c.count(tail.Missing); n != 1 {
		t.Errorf("%d missing events, want 1 (reported once)", n)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "c\n")
	waitLines(t, c, 3)
	if got := c.text(); got != "a\nb\nc\n" {
		t.Errorf("read %q", got)
	}
	c.check(t)
}

// TestDeleted: a deleted file is left once it has been quiet for
// RotateWait, reported missing, and read again when it is back.
func TestDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "")
	o := testOptions()
	o.RotateWait = 20 * time.Millisecond
	c, _ := follow(t, []string{path}, o)
	appendTo(t, path, "a\n")
	waitLines(t, c, 1)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a missing event", func() bool { return c.count(tail.Missing) == 1 })
	appendTo(t, path, "b\n")
	waitLines(t, c, 2)
	if got := c.text(); got != "a\nb\n" {
		t.Errorf("read %q", got)
	}
	if n := c.count(tail.Reopened); n != 1 {
		t.Errorf("%d reopened events, want 1", n)
	}
	if st := stats(c); st.Rotations != 1 {
		t.Errorf("stats %+v, want the deleted file counted as left", st)
	}
}

// TestTwoFiles: two files written at once; each file's lines arrive whole
// and in order, and all of them arrive.
func TestTwoFiles(t *testing.T) {
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")}
	c, _ := follow(t, paths, testOptions())
	const n = 3000
	done := make(chan string, 2)
	for i, p := range paths {
		go func() {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				done <- err.Error()
				return
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			prefix := string(rune('a' + i))
			for from := 0; from < n; from += 100 {
				s := numbered(prefix, from, from+100)
				for len(s) > 0 {
					k := min(len(s), 1+rng.IntN(500))
					if _, err := f.WriteString(s[:k]); err != nil {
						done <- err.Error()
						return
					}
					s = s[k:]
				}
			}
			done <- ""
		}()
	}
	for range paths {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
	waitLines(t, c, 2*n)
	var got [2]strings.Builder
	for _, l := range c.lines() {
		switch l[0] {
		case 'a':
			got[0].WriteString(l)
		case 'b':
			got[1].WriteString(l)
		default:
			t.Fatalf("torn line %q", l)
		}
	}
	for i, prefix := range []string{"a", "b"} {
		if g, w := got[i].String(), numbered(prefix, 0, n); g != w {
			k := 0
			for k < min(len(g), len(w)) && g[k] == w[k] {
				k++
			}
			t.Errorf("lines of %s differ at byte %d: %.60q, want %.60q", paths[i], k, g[max(0, k-20):], w[max(0, k-20):])
		}
	}
	for i, fs := range c.r.Stats().Files {
		if fs.Path != paths[i] || fs.Lines != n {
			t.Errorf("stats %+v, want %d lines of %s", fs, n, paths[i])
		}
	}
	c.check(t)
}

// TestPartialLine: an unfinished line is held, not passed on, until its
// '\n' arrives.
func TestPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "")
	c, _ := follow(t, []string{path}, testOptions())
	appendTo(t, path, "one\ntw")
	waitFor(t, "the unfinished line to be read", func() bool { st := stats(c); return st.Lines == 1 && st.Pending == 2 })
	waitLines(t, c, 1)
	if got := c.text(); got != "one\n" {
		t.Fatalf("read %q before the line was finished", got)
	}
	appendTo(t, path, "o\nthree\n")
	waitLines(t, c, 3)
	if got := c.text(); got != "one\ntwo\nthree\n" {
		t.Errorf("read %q", got)
	}
	if st := stats(c); st.Pending != 0 || st.Lines != 3 {
		t.Errorf("stats %+v", st)
	}
	c.check(t)
}

// TestCancel: after ctx is cancelled, what the files held is read (but not
// an unfinished line), then Read returns io.EOF; a blocked Read returns.
func TestCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "")
	c, cancel := follow(t, []string{path}, testOptions())
	appendTo(t, path, "a\n")
	waitLines(t, c, 1) // the reader now blocks for more
	appendTo(t, path, "b\nc\nunfinished")
	cancel()
	select {
	case <-c.done:
	case <-time.After(deadline):
		t.Fatal("Read did not return after cancel")
	}
	if !errors.Is(c.err, io.EOF) {
		t.Errorf("Read returned %v, want io.EOF", c.err)
	}
	if got := c.text(); got != "a\nb\nc\n" {
		t.Errorf("read %q", got)
	}
	if st := stats(c); st.Pending != len("unfinished") {
		t.Errorf("Pending %d, want %d", st.Pending, len("unfinished"))
	}
	// And it stays at its end.
	if n, err := c.r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read after the end: %d, %v", n, err)
	}
}

// TestCancelled: a Reader whose ctx is already done reads what there is.
func TestCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "x\ny\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := tail.Follow(ctx, []string{path}, tail.Options{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "x\ny\n" {
		t.Errorf("ReadAll: %q, %v", got, err)
	}
}

// TestLongLine: a 2 MiB line is skipped, without being held whole, and
// counted; a long line at the end of a file Follow starts at is skipped.
func TestLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, "")
	c, _ := follow(t, []string{path}, testOptions())
	w := openAppend(t, path)
	w.WriteString("a\n")
	chunk := strings.Repeat("x", 256<<10)
	for range 8 {
		w.WriteString(chunk)
	}
	w.WriteString("\nb\n")
	waitLines(t, c, 2)
	if got := c.text(); got != "a\nb\n" {
		t.Errorf("read %.40q…", got)
	}
	if st := stats(c); st.Skipped != 1 || st.Lines != 2 {
		t.Errorf("stats %+v, want 1 skipped", st)
	}
	c.check(t)

	// With a small MaxLine, long lines amid others in one read.
	o := testOptions()
	o.MaxLine = 5
	path2 := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path2, "0123456789") // unfinished and already too long
	c2, _ := follow(t, []string{path2}, o)
	appendTo(t, path2, "\nok\n123456\n12345\nlong line\nend\n")
	waitLines(t, c2, 3)
	if got := c2.text(); got != "ok\n12345\nend\n" {
		t.Errorf("read %q", got)
	}
	if st := stats(c2); st.Skipped != 3 {
		t.Errorf("stats %+v, want 3 skipped", st)
	}
}

// TestSmallReads: lines come out intact through reads of a few bytes.
func TestSmallReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	want := numbered("s", 0, 50)
	appendTo(t, path, want)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := testOptions()
	o.FromStart = true
	r, err := tail.Follow(ctx, []string{path}, o)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	p := make([]byte, 7)
	for len(got) < len(want) {
		n, err := r.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p[:n]...)
		if n == len(p) {
			// A full read promises more at hand.
			more, err := r.Read(p[:1])
			if more != 1 || err != nil {
				t.Fatalf("after a full read: %d, %v", more, err)
			}
			got = append(got, p[0])
		}
	}
	if string(got) != want {
		t.Errorf("read %q", got)
	}
}

func TestFollowErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendTo(t, path, "")
	for _, tc := range []struct {
		name  string
		paths []string
		o     tail.Options
		want  string
	}{
		{"no paths", nil, tail.Options{}, "no file"},
		{"twice", []string{path, path}, tail.Options{}, "given twice"},
		{"directory", []string{dir}, tail.Options{}, "is a directory"},
		{"negative poll", []string{path}, tail.Options{Poll: -1}, "Poll"},
		{"negative max line", []string{path}, tail.Options{MaxLine: -1}, "MaxLine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tail.Follow(context.Background(), tc.paths, tc.o)
			if err == nil {
				r.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestEventString(t *testing.T) {
	ev := tail.Event{Path: "/var/log/a.log", Kind: tail.Rotated}
	if got := ev.String(); got != "/var/log/a.log: rotated" {
		t.Errorf("got %q", got)
	}
	if got := tail.EventKind(99).String(); got != "EventKind(99)" {
		t.Errorf("got %q", got)
	}
}
