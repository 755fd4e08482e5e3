package event

import (
	"math/rand/v2"
	"testing"
)

func naivePlainRun(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(b)
}

// TestPlainRun checks the eight-bytes-at-a-time scan against the obvious
// loop. plainRun may stop before the last eight bytes; the caller's byte
// loop finishes from there, so it must never run past a special byte.
func TestPlainRun(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []byte{'a', 'Z', '0', ' ', '"', '\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0x9f, 0xa2, 0xdc, 0xff, '/'}
	for range 200_000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(6) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte(r.IntN(256))
			}
		}
		got, want := plainRun(b), naivePlainRun(b)
		if got > want || (want-got >= 8 && got+8 <= len(b)) {
			t.Fatalf("plainRun(%q) = %d, first special byte at %d", b, got, want)
		}
		if want < len(b) && len(b)-got >= 8 && got != want && got+8 <= want {
			t.Fatalf("plainRun(%q) = %d stopped early, first special byte at %d", b, got, want)
		}
	}
}
