package replay_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/internal/app"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/replay")

// testKey is the fingerprint key of every test, so token ids are stable.
const testKey = "vigil-test-fingerprint-key-0001"

func testEnv(name string) (string, bool) {
	if name == "VIGIL_FINGERPRINT_KEY" {
		return testKey, true
	}
	return "", false
}

// testParts builds the default configuration with testKey.
func testParts(tb testing.TB) *app.Parts {
	tb.Helper()
	parts, err := app.Build(config.Default(), testEnv)
	if err != nil {
		tb.Fatal(err)
	}
	return parts
}

// golden compares got with the golden file at path, or rewrites it with
// -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./replay -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./replay -update rewrites it):\n%s", filepath.Base(path), firstDiff(got, want))
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(same lines, different bytes)"
}

// negative finds a negative number in text.
var negative = regexp.MustCompile(`(^|[^\w.])-\d`)

// checkDecisions parses every decision line and checks that it is sane:
// valid JSON in the contract's shape, finite non-negative numbers, a
// timestamp, reasons that add up to the risk.
func checkDecisions(t *testing.T, out []byte) []decision.Decision {
	t.Helper()
	var ds []decision.Decision
	for i, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		if len(out) == 0 {
			break
		}
		var d decision.Decision
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("decision %d: %v: %s", i+1, err, line)
		}
		if d.RequestID == "" || d.TokenID == "" || d.Timestamp.IsZero() {
			t.Errorf("decision %d lacks an id or time: %s", i+1, line)
		}
		sum := 0.0
		for _, r := range d.Reasons {
			if !(r.Contribution > 0) || math.IsInf(r.Contribution, 0) || r.Signal == "" || r.Detail == "" {
				t.Errorf("decision %d: bad reason %+v", i+1, r)
			}
			if strings.Contains(r.Detail, "NaN") || strings.Contains(r.Detail, "Inf") || negative.MatchString(r.Detail) {
				t.Errorf("decision %d: detail with NaN, Inf or a negative number: %q", i+1, r.Detail)
			}
			sum += r.Contribution
		}
		if d.Risk < 0 || math.IsNaN(d.Risk) || math.IsInf(d.Risk, 0) || math.Abs(sum-d.Risk) > 0.01*float64(len(d.Reasons))+1e-9 {
			t.Errorf("decision %d: risk %v, reasons add up to %v", i+1, d.Risk, sum)
		}
		ds = append(ds, d)
	}
	return ds
}

// noLeaks fails if goroutines started during the test are still running.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}
