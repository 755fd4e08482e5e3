package profile

import (
	"math"
	"testing"
)

func TestLog1p(t *testing.T) {
	for _, x := range []float64{0, 1e-300, 1e-9, 0.5, 1, 2, 3, 7, 41.5, 100, 1e3, 65535, 1e6, 123456789, 1e12, 1e18, 1e300} {
		got, want := log1p(x), math.Log1p(x)
		if d := math.Abs(got - want); d > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("log1p(%g) = %.15g, want %.15g (diff %g)", x, got, want, d)
		}
	}
	for x := 0.0; x < 1e7; x = x*1.37 + 1 {
		got, want := log1p(x), math.Log1p(x)
		if d := math.Abs(got - want); d > 1e-9*math.Max(1, want) {
			t.Fatalf("log1p(%g) = %.15g, want %.15g", x, got, want)
		}
	}
	if !math.IsNaN(log1p(math.NaN())) || !math.IsInf(log1p(math.Inf(1)), 1) {
		t.Error("log1p of NaN or +Inf does not follow math.Log1p")
	}
}

var sink float64

func BenchmarkLog1p(b *testing.B) {
	for _, f := range []struct {
		name string
		fn   func(float64) float64
	}{{"series", log1p}, {"math.Log1p", math.Log1p}, {"math.Log", func(x float64) float64 { return math.Log(1 + x) }}} {
		b.Run(f.name, func(b *testing.B) {
			var s float64
			for i := 0; i < b.N; i++ {
				s += f.fn(float64(i & 0xffff))
			}
			sink = s
		})
	}
}
