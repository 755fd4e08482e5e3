// Package score turns an observation of one request into a composite risk
// score: the sum of independent signals, each of which returns its own
// contribution and can explain it in words.
//
// Signals record numbers, not text, on the hot path (Reason.Args); the text
// is rendered only when a decision is written (Model.AppendDetail), so
// scoring allocates nothing.
package score

import (
	"fmt"
	"math"
	"strconv"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/profile"
)

// MaxReasons bounds the reasons one assessment carries.
const MaxReasons = 16

// Args carries a signal's measurements from Eval to Explain. float32 keeps
// a Reason small; explanations need three significant digits.
type Args [4]float32

// Signal is one independent piece of evidence.
//
// Eval must be a pure function of its arguments: it may not keep them or
// change them, and it is called concurrently for different credentials.
type Signal interface {
	// Name is the signal's name in decisions and configuration.
	Name() string
	// Eval returns the signal's contribution to risk (0 when it does not
	// fire) and records in args what Explain needs.
	Eval(o *profile.Observation, ev *event.Event, args *Args) float64
	// Explain appends, in words an analyst understands, why the signal
	// contributed. ev is the event Eval saw.
	Explain(dst []byte, ev *event.Event, args *Args) []byte
}

// Scope says what a signal's evidence is about.
type Scope uint8

const (
	// ScopeCredential evidence is about the credential as a whole (its
	// rate, its volume, its failures, how many networks use it): it is
	// there whichever context the current request comes from.
	ScopeCredential Scope = iota
	// ScopeRequest evidence is about this request's own context (a network
	// or client the credential never used, a jump in location, a first use
	// after months).
	ScopeRequest
)

// Scoped is implemented by signals whose evidence is about the request;
// signals that do not implement it are credential-wide.
type Scoped interface{ Scope() Scope }

// set stores up to four measurements.
func (a *Args) set(v ...float64) {
	for i, x := range v {
		a[i] = float32(x)
	}
}

// f returns measurement i as a float64.
func (a *Args) f(i int) float64 { return float64(a[i]) }

// Reason is one signal's contribution to an assessment.
type Reason struct {
	Signal       uint8 // index into Model.Signals
	Contribution float64
	Args         Args
}

// Assessment is a scored request.
type Assessment struct {
	Risk float64
	N    int // reasons used
	// CredentialRisk is the part of Risk from credential-wide signals.
	CredentialRisk float64
	scratch        Args // a signal's args until it fires: one cache line with Risk and N
	Reasons        [MaxReasons]Reason
}

// KeepRequestScope drops the credential-wide reasons, leaving the risk of
// the request's own context.
func (a *Assessment) KeepRequestScope(m *Model) {
	n := 0
	a.Risk = 0
	for i := 0; i < a.N; i++ {
		if m.scopes[a.Reasons[i].Signal] == ScopeRequest {
			a.Reasons[n] = a.Reasons[i]
			a.Risk += a.Reasons[i].Contribution
			n++
		}
	}
	a.N, a.CredentialRisk = n, 0
	if m.Round2 {
		a.Risk = round2(a.Risk)
	}
}

// Model is a scoring profile: a set of weighted signals.
type Model struct {
	Name    string
	Signals []Signal
	Weights []float64 // per signal; multiplies its contribution
	// Round2 rounds the risk to two decimals, as the seed engine does.
	Round2 bool
	// Contextual models judge a request from the credential's established
	// context by its request-scope evidence (see engine); the seed model
	// is not contextual.
	Contextual bool
	scopes     []Scope
}

// NewModel returns a model of signals with weight 1 each.
func NewModel(name string, signals ...Signal) (*Model, error) {
	if len(signals) > MaxReasons {
		return nil, fmt.Errorf("model %s: %d signals, at most %d", name, len(signals), MaxReasons)
	}
	w := make([]float64, len(signals))
	sc := make([]Scope, len(signals))
	for i, s := range signals {
		w[i] = 1
		if x, ok := s.(Scoped); ok {
			sc[i] = x.Scope()
		}
	}
	return &Model{Name: name, Signals: signals, Weights: w, scopes: sc}, nil
}

// SetWeight sets the weight of the named signal.
func (m *Model) SetWeight(name string, w float64) error {
	if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
		return fmt.Errorf("weight of %s: %v is not a finite number ≥ 0", name, w)
	}
	for i, s := range m.Signals {
		if s.Name() == name {
			m.Weights[i] = w
			return nil
		}
	}
	return fmt.Errorf("scoring profile %s has no signal %q (it has %s)", m.Name, name, m.signalList())
}

func (m *Model) signalList() string {
	var b []byte
	for i, s := range m.Signals {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s.Name()...)
	}
	return string(b)
}

// Assess scores one observation into a.
func (m *Model) Assess(o *profile.Observation, ev *event.Event, a *Assessment) {
	a.Risk, a.N, a.CredentialRisk = 0, 0, 0
	for i, s := range m.Signals {
		a.scratch = Args{}
		c := s.Eval(o, ev, &a.scratch) * m.Weights[i]
		if !(c > 0) { // also drops NaN
			continue
		}
		a.Reasons[a.N] = Reason{Signal: uint8(i), Contribution: c, Args: a.scratch}
		a.Risk += c
		if m.scopes[i] == ScopeCredential {
			a.CredentialRisk += c
		}
		a.N++
	}
	if m.Round2 {
		a.Risk = round2(a.Risk)
	}
}

// SignalScope returns the scope of r's signal.
func (m *Model) SignalScope(r *Reason) Scope { return m.scopes[r.Signal] }

// SignalName returns the name of r's signal.
func (m *Model) SignalName(r *Reason) string { return m.Signals[r.Signal].Name() }

// AppendDetail appends the explanation of r.
func (m *Model) AppendDetail(dst []byte, ev *event.Event, r *Reason) []byte {
	return m.Signals[r.Signal].Explain(dst, ev, &r.Args)
}

// round2 rounds to two decimals the way Python's round(x, 2) does: to the
// nearest representable decimal, ties to even.
func round2(x float64) float64 {
	// Away from a tie, rounding x·100 is exact enough; near one, let
	// strconv decide on the exact decimal value.
	y := x * 100
	if f := y - math.Floor(y); math.Abs(f-0.5) > 1e-6 && !math.IsInf(y, 0) && !math.IsNaN(y) {
		return math.Round(y) / 100
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], x, 'f', 2, 64)
	r, _ := strconv.ParseFloat(string(b), 64)
	return r
}

// ramp maps x linearly from [lo, hi] onto [0, 1], clamped.
func ramp(x, lo, hi float64) float64 {
	switch {
	case x <= lo:
		return 0
	case x >= hi:
		return 1
	}
	return (x - lo) / (hi - lo)
}
