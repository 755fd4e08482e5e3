package policy

import (
	"strings"
	"testing"
	"time"
)

const sec = int64(time.Second)

func TestLadderLevel(t *testing.T) {
	l := Ladder{Throttle: 4, StepUp: 7, Block: 10}
	for _, c := range []struct {
		risk float64
		want Level
	}{{0, Allow}, {3.99, Allow}, {4, Throttle}, {6.99, Throttle}, {7, StepUp}, {9.99, StepUp}, {10, Block}, {1e9, Block}} {
		if got := l.Level(c.risk); got != c.want {
			t.Errorf("Level(%g) = %v, want %v", c.risk, got, c.want)
		}
	}
}

func TestDecideHysteresis(t *testing.T) {
	l := Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 1, Hold: 5 * time.Minute}
	type step struct {
		at   int64 // seconds
		risk float64
		want Level
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"first event of a credential", []step{{0, 0, Allow}}},
		{"escalation is immediate", []step{{0, 1, Allow}, {1, 10.5, Block}}},
		{"no step down within hold", []step{{0, 8, StepUp}, {60, 0, StepUp}, {299, 0, StepUp}}},
		{"step down after hold", []step{{0, 8, StepUp}, {300, 0, Allow}}},
		{"inside margin stays", []step{{0, 8, StepUp}, {400, 6.5, StepUp}, {800, 6.01, StepUp}}},
		{"below margin steps to the level risk+margin reaches", []step{{0, 8, StepUp}, {400, 5.9, Throttle}}},
		{"confirmation restarts the hold", []step{{0, 8, StepUp}, {200, 7.5, StepUp}, {400, 0, StepUp}, {500, 0, Allow}}},
		{"re-escalation", []step{{0, 4, Throttle}, {400, 0, Allow}, {401, 12, Block}, {402, 0, Block}}},
		{"wobbling score does not flap", []step{{0, 4.2, Throttle}, {1, 3.8, Throttle}, {2, 4.1, Throttle}, {3, 3.9, Throttle}, {400, 3.5, Throttle}, {800, 2.9, Allow}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s State
			for i, st := range c.steps {
				if got := l.Decide(&s, st.risk, st.at*sec); got != st.want {
					t.Fatalf("step %d (t=%ds, risk %g): got %v, want %v", i, st.at, st.risk, got, st.want)
				}
			}
		})
	}
}

func TestDecideWithoutHysteresisIsMemoryless(t *testing.T) {
	l := Ladder{Throttle: 3.5, StepUp: 6, Block: 9}
	var s State
	for i, r := range []float64{9, 0, 6, 3.5, 3.49, 12, 5.99} {
		if got, want := l.Decide(&s, r, int64(i)*sec), l.Level(r); got != want {
			t.Errorf("risk %g: got %v, want %v", r, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		l    Ladder
		want string
	}{
		{Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 1, Hold: time.Minute}, ""},
		{Ladder{Throttle: 7, StepUp: 4, Block: 10}, "thresholds must rise"},
		{Ladder{Throttle: 0, StepUp: 4, Block: 10}, "thresholds must rise"},
		{Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: -1}, "margin"},
		{Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 4}, "margin"},
		{Ladder{Throttle: 4, StepUp: 7, Block: 10, Hold: -time.Second}, "hold"},
	} {
		err := c.l.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", c.l, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.l, err, c.want)
		}
	}
}

func TestLevelText(t *testing.T) {
	for l := Allow; l < NumLevels; l++ {
		b, err := l.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Errorf("round trip of %v: %v, %v", l, back, err)
		}
	}
	if _, err := ParseLevel("deny"); err == nil {
		t.Error("ParseLevel(deny) succeeded")
	}
	if _, err := Level(9).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid level succeeded")
	}
}
