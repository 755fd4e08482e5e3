// Package decision is vigil's decision contract (docs/decisions.md): one
// JSON object per event with the risk, the graduated decision and the
// reasons behind every point of the risk.
package decision

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/score"
)

// Decision is the decoded form of a decision line, for consumers.
type Decision struct {
	RequestID string       `json:"request_id"`
	TokenID   string       `json:"token_id"`
	Timestamp time.Time    `json:"timestamp"`
	Risk      float64      `json:"risk"`
	Decision  policy.Level `json:"decision"`
	Reasons   []Reason     `json:"reasons"`
}

// Reason is one signal's contribution, explained.
type Reason struct {
	Signal       string  `json:"signal"`
	Contribution float64 `json:"contribution"`
	Detail       string  `json:"detail"`
}

// Encoder writes decisions in the contract's JSON form. It allocates
// nothing per decision once its buffers have grown. It is not safe for
// concurrent use.
type Encoder struct {
	model   *score.Model
	scratch []byte
}

// NewEncoder returns an Encoder that explains reasons with m.
func NewEncoder(m *score.Model) *Encoder { return &Encoder{model: m} }

// Append appends the decision for ev and v as one JSON object (no newline).
// requestID is ev.RequestID or the id assigned to the event. The timestamp
// is the event's own, in UTC. Numbers are rounded to two decimals.
func (enc *Encoder) Append(dst []byte, requestID string, ev *event.Event, v *engine.Verdict) []byte {
	dst = append(dst, `{"request_id":`...)
	dst = AppendString(dst, requestID)
	dst = append(dst, `,"token_id":`...)
	dst = AppendString(dst, ev.TokenID)
	dst = append(dst, `,"timestamp":"`...)
	dst = time.Unix(0, ev.Time).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","risk":`...)
	dst = appendRounded(dst, v.Risk)
	dst = append(dst, `,"decision":"`...)
	dst = append(dst, v.Level.String()...)
	dst = append(dst, `","reasons":[`...)
	for i := 0; i < v.N; i++ {
		r := &v.Reasons[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"signal":"`...)
		dst = append(dst, enc.model.SignalName(r)...)
		dst = append(dst, `","contribution":`...)
		dst = appendRounded(dst, r.Contribution)
		dst = append(dst, `,"detail":`...)
		enc.scratch = enc.model.AppendDetail(enc.scratch[:0], ev, r)
		dst = AppendString(dst, unsafe.String(unsafe.SliceData(enc.scratch), len(enc.scratch)))
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendRounded(dst []byte, x float64) []byte {
	x = math.Round(x*100) / 100
	if x == 0 {
		x = 0 // no "-0"
	}
	return strconv.AppendFloat(dst, x, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal, escaping what JSON
// requires and replacing invalid UTF-8 with U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
