// Package policy turns a risk score into a graduated decision: allow,
// throttle, step-up authentication or block, with hysteresis so that a
// credential does not flap between levels from one request to the next.
package policy

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Level is a decision, ordered by severity.
type Level uint8

const (
	Allow Level = iota
	Throttle
	StepUp
	Block
	NumLevels
)

var levelNames = [NumLevels]string{"allow", "throttle", "step_up_auth", "block"}

// String returns the level's name in the decision contract.
func (l Level) String() string {
	if l < NumLevels {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) {
	if l >= NumLevels {
		return nil, fmt.Errorf("invalid level %d", uint8(l))
	}
	return []byte(levelNames[l]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	*l = v
	return err
}

// ParseLevel parses a level name.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return Allow, fmt.Errorf("unknown decision %q (want allow, throttle, step_up_auth or block)", s)
}

// Ladder maps risk to levels. A level is entered as soon as risk reaches its
// threshold. It is left only when risk has fallen below the threshold by
// Margin, and not before Hold has passed since risk last reached it, so a
// credential under attack stays contained while its score wobbles.
type Ladder struct {
	Throttle, StepUp, Block float64
	Margin                  float64
	Hold                    time.Duration
}

// Validate checks that thresholds rise and the hysteresis is sane.
func (l Ladder) Validate() error {
	var errs []error
	if !(l.Throttle > 0 && l.Throttle < l.StepUp && l.StepUp < l.Block) {
		errs = append(errs, fmt.Errorf("thresholds must rise: 0 < throttle (%g) < step_up_auth (%g) < block (%g)", l.Throttle, l.StepUp, l.Block))
	}
	if l.Margin < 0 || l.Margin >= l.Throttle {
		errs = append(errs, fmt.Errorf("hysteresis margin %g: must be at least 0 and below the throttle threshold", l.Margin))
	}
	if l.Hold < 0 {
		errs = append(errs, errors.New("hysteresis hold must not be negative"))
	}
	return errors.Join(errs...)
}

// Level returns the level risk reaches without hysteresis.
func (l *Ladder) Level(risk float64) Level {
	switch {
	case risk >= l.Block:
		return Block
	case risk >= l.StepUp:
		return StepUp
	case risk >= l.Throttle:
		return Throttle
	}
	return Allow
}

// State is the per-credential memory the ladder needs, eight bytes. The
// zero value is a credential at allow.
type State struct {
	Level Level
	Since uint32 // Unix seconds when risk last reached Level
}

// Decide returns the level for risk at time now (Unix ns, never earlier than
// an earlier call's for the same State) and updates s.
func (l *Ladder) Decide(s *State, risk float64, now int64) Level {
	sec := unixSec(now)
	raw := l.Level(risk)
	if raw >= s.Level {
		s.Level, s.Since = raw, sec
		return raw
	}
	if int64(sec)-int64(s.Since) < int64(l.Hold/time.Second) {
		return s.Level
	}
	if lowered := l.Level(risk + l.Margin); lowered < s.Level {
		s.Level, s.Since = lowered, sec
	}
	return s.Level
}

func unixSec(ns int64) uint32 {
	switch s := ns / 1e9; {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	default:
		return uint32(s)
	}
}
