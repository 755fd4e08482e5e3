package replay_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/vigil-sec/vigil/replay"
)

// FuzzReplay checks replay's accounting on arbitrary input: every
// non-blank line gets exactly one decision or one error line, error lines
// name increasing line numbers, and the output does not depend on the
// number of workers or the batch size.
func FuzzReplay(f *testing.F) {
	inputs, _ := filepath.Glob("../testdata/replay/*.jsonl")
	for _, path := range inputs {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for _, line := range bytes.SplitAfter(b, []byte("\n"))[:8] {
			f.Add(line)
		}
	}
	f.Add([]byte("\n\r\n \t\n{}"))
	f.Add([]byte(good1 + "\r\n\n" + bad))
	parts := testParts(f)
	errLine := regexp.MustCompile(`^line ([0-9]+): .+$`)
	f.Fuzz(func(t *testing.T, in []byte) {
		nonBlank := 0
		for _, l := range bytes.Split(in, []byte("\n")) {
			if len(bytes.Trim(l, " \t\r")) > 0 {
				nonBlank++
			}
		}
		var outs [2][]byte
		for i, set := range []struct{ workers, batch int }{{1, 1024}, {3, 2}} {
			var out, errs bytes.Buffer
			sum, err := replay.Run(context.Background(), replay.Options{
				Input: bytes.NewReader(bytes.Clone(in)), Output: &out, Errors: &errs,
				Parts: parts, Workers: set.workers, Batch: set.batch,
			})
			if err != nil {
				t.Fatal(err)
			}
			if count(out.Bytes())+count(errs.Bytes()) != nonBlank || sum.Events != count(out.Bytes()) || sum.BadLines != count(errs.Bytes()) {
				t.Fatalf("%d non-blank lines, %d decisions, %d error lines, summary %+v", nonBlank, count(out.Bytes()), count(errs.Bytes()), sum)
			}
			last := 0
			for _, l := range bytes.Split(bytes.TrimSuffix(errs.Bytes(), []byte("\n")), []byte("\n")) {
				if len(l) == 0 {
					continue
				}
				m := errLine.FindSubmatch(l)
				if m == nil {
					t.Fatalf("malformed error line %q", l)
				}
				n, _ := strconv.Atoi(string(m[1]))
				if n <= last {
					t.Fatalf("error line numbers out of order: %d after %d", n, last)
				}
				last = n
			}
			outs[i] = out.Bytes()
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Fatalf("output depends on workers and batch:\n%s", firstDiff(outs[0], outs[1]))
		}
	})
}
