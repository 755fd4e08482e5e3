package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 999_999, 1 << 40, 1<<63 + 12345} {
		i := bucket(v)
		if up := upper(i); up < v || (i > 0 && upper(i-1) >= v) {
			t.Errorf("value %d in bucket %d whose range ends at %d (previous %d)", v, i, up, upper(i-1))
		}
		if v >= 128 && float64(upper(i)-v) > float64(v)/128 {
			t.Errorf("value %d: bucket bound %d is more than 1/128 away", v, upper(i))
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Microsecond, 0.99: 990 * time.Microsecond, 1: time.Millisecond} {
		got := h.quantile(q)
		if got < want || float64(got-want) > float64(want)/128 {
			t.Errorf("quantile %v = %v, want %v (within 1/128 above)", q, got, want)
		}
	}
}

// TestSelf runs the load against the in-process trivial server briefly.
func TestSelf(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"-self", "-c", "4", "-conns", "2", "-d", "300ms", "-warmup", "50ms", "-tokens", "20"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"calls/s", "allowed", "errors     0 ", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
