package action

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Step names, in Record.Step.
const (
	StepNameDenylist = "denylist"
	StepNameRevoke   = "revoke"
	StepNameWebhook  = "webhook"
)

// Outcomes, in Record.Outcome.
const (
	OutcomeRequested = "requested"
	OutcomeRetrying  = "retrying"
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed" // given up: permanent error, attempts spent, or a step that could not run
)

// Triggers, in Record.Trigger.
const (
	TriggerPolicy   = "policy"
	TriggerOperator = "operator"
	TriggerDormancy = "dormancy"
)

// MaxRecord is the longest audit line, newline included.
const MaxRecord = 64 << 10

// Record is one audit line: what happened to one step of one action.
type Record struct {
	Time    time.Time `json:"time"`
	ID      string    `json:"id"`   // action id
	Step    string    `json:"step"` // StepName*
	Outcome string    `json:"outcome"`
	TokenID string    `json:"token_id"`

	ClientID string `json:"client_id,omitempty"`
	Subject  string `json:"subject,omitempty"`
	JTI      string `json:"jti,omitempty"`
	// Event is the webhook step's event type; Until the denylist step's
	// end (zero: for good). With the fields above they let a restarted
	// executor resume the step.
	Event string    `json:"event,omitempty"`
	Until time.Time `json:"until,omitzero"`

	Trigger string `json:"trigger,omitempty"`
	Rule    string `json:"rule,omitempty"`
	By      string `json:"by,omitempty"`
	Reason  string `json:"reason,omitempty"`

	Attempt     int       `json:"attempt,omitempty"` // 1 for the first try; 0 on "requested"
	Error       string    `json:"error,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

func (r *Record) validate() error {
	switch {
	case r.ID == "":
		return errors.New("id is empty")
	case r.TokenID == "":
		return errors.New("token_id is empty")
	case r.Step != StepNameDenylist && r.Step != StepNameRevoke && r.Step != StepNameWebhook:
		return fmt.Errorf("unknown step %q", r.Step)
	case r.Outcome != OutcomeRequested && r.Outcome != OutcomeRetrying && r.Outcome != OutcomeSucceeded && r.Outcome != OutcomeFailed:
		return fmt.Errorf("unknown outcome %q", r.Outcome)
	case r.Attempt < 0:
		return errors.New("negative attempt")
	}
	return nil
}

// Audit is an append-only log of JSON lines, one Record each, written
// with one write and flushed to the device before Append returns. It is
// safe for concurrent use.
type Audit struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// ErrAuditClosed is returned by Append on a closed Audit.
var ErrAuditClosed = errors.New("action: audit log closed")

// OpenAudit opens (or creates, mode 0600) the audit log at path for
// appending. A last line cut short by a crash is ended with a newline, so
// that it stays one malformed line rather than spoiling the next record.
func OpenAudit(path string) (*Audit, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("action: audit: %w", err)
	}
	if err := endLine(path, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("action: audit: %s: %w", path, err)
	}
	return &Audit{path: path, f: f}, nil
}

func endLine(path string, w *os.File) error {
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	var last [1]byte
	if _, err := r.ReadAt(last[:], st.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := w.Write([]byte{'\n'}); err != nil {
		return err
	}
	return w.Sync()
}

// Path is the log's file name.
func (a *Audit) Path() string { return a.path }

// Append writes r as one line and flushes it.
func (a *Audit) Append(r Record) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("action: audit: %w", err)
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return fmt.Errorf("action: audit: %w", err)
	}
	b = append(b, '\n')
	if len(b) > MaxRecord {
		return fmt.Errorf("action: audit: record is %d bytes, at most %d", len(b), MaxRecord)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return ErrAuditClosed
	}
	if _, err := a.f.Write(b); err != nil {
		return fmt.Errorf("action: audit: %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("action: audit: %s: %w", a.path, err)
	}
	return nil
}

// Close closes the log.
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// LineError is an audit line that could not be read.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("audit line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReadAudit calls fn with each record of an audit log, in order. Blank
// lines are skipped. A line that is not a valid record (malformed, too
// long, or the partial last line of a crash) is skipped and reading goes
// on; the *LineErrors are returned joined at the end. An error from fn or
// from r stops reading and is returned with the line errors before it.
func ReadAudit(r io.Reader, fn func(Record) error) error {
	lineErrs, err := readAudit(r, fn)
	return errors.Join(append(lineErrs, err)...)
}

func readAudit(r io.Reader, fn func(Record) error) (lineErrs []error, err error) {
	br := bufio.NewReaderSize(r, MaxRecord)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			lineErrs = append(lineErrs, &LineError{line, fmt.Errorf("longer than %d bytes", MaxRecord)})
			if err == io.EOF {
				return lineErrs, nil
			}
			if err != nil {
				return lineErrs, fmt.Errorf("action: audit: %w", err)
			}
			continue
		}
		if err != nil && err != io.EOF {
			return lineErrs, fmt.Errorf("action: audit: %w", err)
		}
		last := err == io.EOF
		if last && len(b) == 0 {
			return lineErrs, nil
		}
		if rec, lerr := parseRecord(b); lerr != nil {
			if last {
				lerr = fmt.Errorf("partial last line: %w", lerr)
			}
			lineErrs = append(lineErrs, &LineError{line, lerr})
		} else if rec != nil {
			if err := fn(*rec); err != nil {
				return lineErrs, err
			}
		}
		if last {
			return lineErrs, nil
		}
	}
}

// parseRecord reads one line; a blank line is (nil, nil).
func parseRecord(b []byte) (*Record, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("invalid JSON at byte %d", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("field %q: wrong type", te.Field)
		}
		return nil, errors.New("not a record")
	}
	if err := rec.validate(); err != nil {
		return nil, err
	}
	return &rec, nil
}
