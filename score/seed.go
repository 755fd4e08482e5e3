package score

import (
	"strconv"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
)

// The seed profile reproduces the "minimal behavioral risk engine" of the
// article in ../shared/seeds/beyond-the-login.txt, rule for rule, as a
// baseline to compare vigil's own profile with. Its flaws are kept on
// purpose: the address and endpoint counts never forget (a profile's tables
// never empty once filled, so "≥ 4 addresses ever" stays true as in the
// article's unbounded sets), the thresholds are fixed numbers, and nothing
// is compared with the credential's own history.
//
// Its decayed counters use the profile half-life, which defaults to the
// article's 30 minutes. Unlike the article, elapsed time is never negative
// for an out-of-order event.

// SeedLadder is the article's decision ladder, without hysteresis.
var SeedLadder = policy.Ladder{Throttle: 3.5, StepUp: 6, Block: 9}

// Seed returns the seed scoring profile.
func Seed() *Model {
	m, _ := NewModel("seed", seedFailures{}, seedIPs{}, seedEndpoints{}, seedVolume{}, seedLatency{})
	m.Round2 = true
	return m
}

type seedFailures struct{}

func (seedFailures) Name() string { return "failures" }
func (seedFailures) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	a[0] = float32(o.Fails)
	return min(o.Fails*1.5, 6.0)
}
func (seedFailures) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = strconv2(dst, a.f(0))
	return append(dst, " decayed 401/403 failures × 1.5, capped at 6"...)
}

type seedIPs struct{}

func (seedIPs) Name() string { return "ip_churn" }
func (seedIPs) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	a[0] = float32(float64(o.Distinct[profile.DimIP]))
	if o.Distinct[profile.DimIP] >= 4 {
		return 3
	}
	return 0
}
func (seedIPs) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendPlural(dst, a.f(0), "source address")
	return append(dst, " seen since the credential's first request (rule: ≥ 4)"...)
}

type seedEndpoints struct{}

func (seedEndpoints) Name() string { return "endpoint_spread" }
func (seedEndpoints) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	a[0] = float32(float64(o.Distinct[profile.DimEndpoint]))
	if o.Distinct[profile.DimEndpoint] >= 8 {
		return 2
	}
	return 0
}
func (seedEndpoints) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendPlural(dst, a.f(0), "endpoint")
	return append(dst, " used since the credential's first request (rule: ≥ 8)"...)
}

type seedVolume struct{}

func (seedVolume) Name() string { return "volume" }
func (seedVolume) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	a[0] = float32(o.Bytes)
	if o.Bytes > 5_000_000 {
		return 2.5
	}
	return 0
}
func (seedVolume) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendBytes(dst, a.f(0))
	return append(dst, " decayed response volume (rule: > 5 MB)"...)
}

type seedLatency struct{}

func (seedLatency) Name() string { return "latency" }
func (seedLatency) Eval(_ *profile.Observation, ev *event.Event, a *Args) float64 {
	a[0] = float32(ev.LatencyMS)
	if ev.LatencyMS > 2500 {
		return 0.5
	}
	return 0
}
func (seedLatency) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendNum(dst, a.f(0))
	return append(dst, " ms latency (rule: > 2500 ms)"...)
}

func strconv2(dst []byte, x float64) []byte { return strconv.AppendFloat(dst, x, 'f', 2, 64) }
