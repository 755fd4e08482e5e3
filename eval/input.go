package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/simulate"
)

// Errors of the label join, wrapped in a *LineError.
var (
	// ErrNoLabel: an event's request_id has no label.
	ErrNoLabel = errors.New("no label for this request_id")
	// ErrUnknownRequest: a label's request_id matches no event.
	ErrUnknownRequest = errors.New("request_id matches no event")
	// ErrDuplicate: a request_id is labeled, or used by events, twice.
	ErrDuplicate = errors.New("duplicate request_id")
)

// LineError is an error about one line of an input file.
type LineError struct {
	File string // the name given in Files: "events", "labels", a path
	Line int    // 1-based
	Err  error
}

func (e *LineError) Error() string {
	return e.File + " line " + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}
func (e *LineError) Unwrap() error { return e.Err }

// Files is labeled traffic in two JSON-lines streams, joined on
// request_id.
type Files struct {
	// Events in the event contract (docs/events.md), in the order they
	// are judged. An event without request_id is known as "line-N", N its
	// line number, as vigil replay names it. Every event must be valid
	// and labeled: the evaluation stops at the first that is not.
	Events     io.Reader
	EventsName string // in errors; "" means "events"
	// Labels, one per event, in any order:
	// {"request_id": …, "label": "owner"|"attacker", "scenario": …,
	// "token_id": …}; token_id is optional (the event's is used).
	Labels     io.Reader
	LabelsName string // in errors; "" means "labels"
	// Fingerprinter turns raw tokens into token ids; nil rejects events
	// that carry one.
	Fingerprinter *event.Fingerprinter
}

// labelJSON is one line of a labels file.
type labelJSON struct {
	RequestID *string `json:"request_id"`
	Label     string  `json:"label"`
	Scenario  string  `json:"scenario"`
	TokenID   string  `json:"token_id"`
}

type labelAt struct {
	Label
	line int
	used bool
}

// ReadFiles evaluates the traffic in f: it reads every label, then streams
// the events through the deciders.
func ReadFiles(f Files, opts Options) (*Report, error) {
	if f.Events == nil || f.Labels == nil {
		return nil, errors.New("eval: Events and Labels are required")
	}
	if f.EventsName == "" {
		f.EventsName = "events"
	}
	if f.LabelsName == "" {
		f.LabelsName = "labels"
	}
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	labels, err := readLabels(f.Labels, f.LabelsName)
	if err != nil {
		return nil, err
	}
	dec := event.NewDecoder(f.Fingerprinter)
	var ev event.Event
	err = eachLine(f.Events, f.EventsName, func(n int, line []byte) error {
		if err := dec.Decode(line, &ev); err != nil {
			return err
		}
		id := ev.RequestID
		if ev.Has&event.HasRequestID == 0 {
			id = "line-" + strconv.Itoa(n)
		}
		l := labels[id]
		switch {
		case l == nil:
			return fmt.Errorf("request_id %q: %w", id, ErrNoLabel)
		case l.used:
			return fmt.Errorf("request_id %q: %w (labeled on %s line %d)", id, ErrDuplicate, f.LabelsName, l.line)
		}
		l.used = true
		return e.Add(&ev, l.Label)
	})
	if err != nil {
		return nil, err
	}
	// The first label (in file order) that no event used.
	var first *labelAt
	for _, l := range labels {
		if !l.used && (first == nil || l.line < first.line) {
			first = l
		}
	}
	if first != nil {
		return nil, &LineError{File: f.LabelsName, Line: first.line, Err: fmt.Errorf("request_id %q: %w", first.RequestID, ErrUnknownRequest)}
	}
	return e.Report(), nil
}

func readLabels(r io.Reader, name string) (map[string]*labelAt, error) {
	labels := make(map[string]*labelAt)
	err := eachLine(r, name, func(n int, line []byte) error {
		var j labelJSON
		if err := json.Unmarshal(line, &j); err != nil {
			return err
		}
		if j.RequestID == nil {
			return errors.New(`field "request_id": missing`)
		}
		l := &labelAt{Label: Label{RequestID: *j.RequestID, Scenario: j.Scenario, TokenID: j.TokenID}, line: n}
		switch j.Label {
		case "owner":
			l.Role = simulate.Owner
		case "attacker":
			l.Role = simulate.Attacker
		default:
			return fmt.Errorf(`field "label": %q, want "owner" or "attacker"`, j.Label)
		}
		if prev := labels[l.RequestID]; prev != nil {
			return fmt.Errorf("request_id %q: %w (first on line %d)", l.RequestID, ErrDuplicate, prev.line)
		}
		labels[l.RequestID] = l
		return nil
	})
	return labels, err
}

// eachLine calls fn with every non-blank line of r and its 1-based number,
// wrapping fn's error in a *LineError.
func eachLine(r io.Reader, name string, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), event.MaxLineBytes+2)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return &LineError{File: name, Line: n, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &LineError{File: name, Line: n + 1, Err: fmt.Errorf("too long (more than %d bytes)", event.MaxLineBytes)}
		}
		return fmt.Errorf("eval: %s: %w", name, err)
	}
	return nil
}
