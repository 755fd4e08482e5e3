package investigate

import (
	"hash/maphash"
	"testing"

	"github.com/vigil-sec/vigil/policy"
)

// TestSeries: the downsampled series stays within its limit, accounts for
// every event, and keeps the riskiest.
func TestSeries(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 100, 1000, 12345} {
		s := series{limit: 8}
		for i := range n {
			risk := float32(i % 5)
			if i == n/2 {
				risk = 99 // a spike is never averaged away
			}
			s.add(sample{t: int64(i), risk: risk, level: policy.Allow})
		}
		var total int64
		spike := false
		for i, p := range s.pts {
			total += s.events(i)
			spike = spike || p.risk == 99
		}
		if len(s.pts) > 8 || total != int64(n) || !spike {
			t.Errorf("%d events: %d points for %d events, spike kept %v", n, len(s.pts), total, spike)
		}
		for i := 1; i < len(s.pts); i++ {
			if s.pts[i].t <= s.pts[i-1].t {
				t.Errorf("%d events: points out of order", n)
			}
		}
	}
}

// TestTallyNovelty: values beyond the bound are remembered well enough
// that "new" is never claimed for one seen before.
func TestTallyNovelty(t *testing.T) {
	seed := maphash.MakeSeed()
	var before tally[uint32]
	for v := range uint32(500) {
		before.count(v, 0, 16, true, seed)
	}
	if len(before.items) != 16 || before.other != 500-16 {
		t.Fatalf("%d values kept, %d others", len(before.items), before.other)
	}
	var during tally[uint32]
	for v := range uint32(600) {
		during.countNew(v, 1000, &before, seed)
	}
	fresh := 0
	for _, it := range during.items {
		if it.fresh && it.key < 500 {
			t.Fatalf("value %d seen before is called new", it.key)
		}
		if it.fresh {
			fresh++
		}
	}
	if fresh == 0 {
		t.Error("no value called new")
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"/v1/orders", 0, "/v1/orders"},
		{"/v1/orders", 10, "/v1/orders"},
		{"/v1/orders/x", 10, "/v1/order…"},
		{"a\x1b[2Jb", 0, `a\x1b[2Jb`},
		{"tab\there", 0, `tab\there`},
		{"bad\xffutf8", 0, `bad\xffutf8`},
		{"rtl\u202eevil", 0, `rtl\u202eevil`},
		{"日本語のパス", 4, "日本語…"},
		{"ok\u00e9", 3, "ok\u00e9"},
	} {
		if got := clean(tc.in, tc.max); got != tc.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtCount(0), "0"}, {fmtCount(999), "999"}, {fmtCount(1000), "1,000"}, {fmtCount(-1234567), "-1,234,567"},
		{fmtBytes(999), "999 B"}, {fmtBytes(1500), "1.5 kB"}, {fmtBytes(105_200_000), "105.2 MB"},
		{fmtRisk(6.499999), "6.5"}, {fmtRisk(4), "4"}, {fmtRisk(-0.001), "0"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
