package ingest

import (
	"encoding/binary"
	"math/bits"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/jsonstr"
)

// maxDepth bounds the nesting of objects and arrays, the record included,
// as vigil's own decoder does.
const maxDepth = 64

// kind is what a scalar value was.
type kind uint8

const (
	kNone   kind = iota // absent, or null
	kString             // b holds the unescaped content
	kNumber             // b holds the number as written
	kBool               // b holds "true" or "false"
)

// val is one scalar value of the record being read. b points into the
// line, or into the scanner's hold for strings with escapes; both stay
// unchanged until the next record.
type val struct {
	b   []byte
	raw []byte // strings: the bytes between the quotes, as written
	k   kind
}

// set reports whether the value is given: not absent, not null, and not
// one of the placeholders logs write for "no value" ("" and "-").
func (v val) set() bool {
	switch {
	case v.k == kNone:
		return false
	case v.k == kString && (len(v.b) == 0 || len(v.b) == 1 && v.b[0] == '-'):
		return false
	}
	return true
}

// scanner reads one JSON object at a time. Decoders drive it member by
// member (open, member, then scalar or skip or a nested open for each
// value), so each format's reader is a plain switch on key names.
type scanner struct {
	b    []byte
	i    int
	hold []byte // unescaped strings of the current record, appended
	key  []byte // the current key when it has escapes
}

func (s *scanner) reset(line []byte) {
	s.b, s.i, s.hold = line, 0, s.hold[:0]
}

func (s *scanner) syntax(reason string) error {
	return &event.SyntaxError{Offset: s.i, Reason: reason}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// open consumes the '{' of an object.
func (s *scanner) open() error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return s.syntax("expected '{' at the start of an object")
	}
	s.i++
	return nil
}

// member moves to the next member of the object opened last: it returns
// its key, with the cursor on its value, or ok false after the closing
// '}'. first is true for the first call on an object and set false by it.
// The key is valid until the next call.
func (s *scanner) member(first *bool) (key []byte, ok bool, err error) {
	s.ws()
	if *first {
		*first = false
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil, false, nil
		}
	} else {
		switch {
		case s.i < len(s.b) && s.b[s.i] == ',':
			s.i++
			s.ws()
		case s.i < len(s.b) && s.b[s.i] == '}':
			s.i++
			return nil, false, nil
		default:
			return nil, false, s.syntax("expected ',' or '}' after object value")
		}
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.syntax("expected a string as object key")
	}
	key, _, err = s.str(true)
	if err != nil {
		return nil, false, err
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false, s.syntax("expected ':' after object key")
	}
	s.i++
	s.ws()
	return key, true, nil
}

// members reads the object at the cursor member by member, for every
// decoder: pick says where a key's value goes — a field, with the name its
// errors give it — or reads the value itself (a nested object) and says so
// (read); any other value is skipped. depth counts the objects open around
// the members. With top the value must be an object (the record);
// otherwise a null is absent and anything but an object is skipped.
func (s *scanner) members(top bool, depth int, pick func(key []byte) (f *field, name string, read bool, err error)) error {
	if top {
		if err := s.open(); err != nil {
			return err
		}
	} else if obj, null := s.isObject(); !obj {
		if null {
			return nil
		}
		return s.skip(depth - 1)
	} else {
		s.i++
	}
	for first := true; ; {
		key, ok, err := s.member(&first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		f, name, read, err := pick(key)
		switch {
		case err != nil:
			return err
		case f != nil:
			err = s.read(f, name)
		case !read:
			err = s.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}

// end checks that nothing but whitespace follows the record.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return s.syntax("unexpected data after the object")
	}
	return nil
}

// isObject reports whether the value at the cursor is an object; a null
// there is consumed and reported as absent.
func (s *scanner) isObject() (obj, null bool) {
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '{':
			return true, false
		case 'n':
			if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
				s.i += 4
				return false, true
			}
		}
	}
	return false, false
}

// scalar reads a string, number, boolean or null at the cursor. An object
// or array is an error naming the field.
func (s *scanner) scalar(field string) (val, error) {
	if s.i >= len(s.b) {
		return val{}, s.syntax("unexpected end of input")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		start := s.i + 1
		b, _, err := s.str(false)
		if err != nil {
			return val{}, err
		}
		return val{b: b, raw: s.b[start : s.i-1], k: kString}, nil
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		if !s.number() {
			return val{}, s.syntax("malformed number")
		}
		return val{b: s.b[start:s.i], k: kNumber}, nil
	case c == 't':
		return val{b: s.b[s.i : s.i+min(4, len(s.b)-s.i)], k: kBool}, s.literal("true")
	case c == 'f':
		return val{b: s.b[s.i : s.i+min(5, len(s.b)-s.i)], k: kBool}, s.literal("false")
	case c == 'n':
		return val{}, s.literal("null")
	case c == '{':
		return val{}, &event.FieldError{Field: field, Reason: "expected a string or a number, got an object"}
	case c == '[':
		return val{}, &event.FieldError{Field: field, Reason: "expected a string or a number, got an array"}
	}
	return val{}, s.syntax("invalid value")
}

// str reads the string at the cursor (on its '"'). Without escapes the
// result is a range of the line; with escapes it is the unescaped bytes,
// appended to hold (or, for keys, written to key). escaped tells which.
func (s *scanner) str(isKey bool) (b []byte, escaped bool, err error) {
	s.i++ // the opening quote
	start := s.i
	s.i += plain(s.b[s.i:])
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], false, nil
		case c == '\\':
			return s.unescape(start, isKey)
		case c < 0x20:
			return nil, false, s.syntax(jsonstr.ControlCharacter)
		}
		s.i++
	}
	return nil, false, s.syntax("unterminated string")
}

func (s *scanner) unescape(start int, isKey bool) ([]byte, bool, error) {
	dst := s.hold
	if isKey {
		dst = s.key[:0]
	}
	from := len(dst)
	dst = append(dst, s.b[start:s.i]...)
	dst, n, closed, problem := jsonstr.Unescape(dst, s.b[s.i:])
	s.i += n
	if isKey {
		s.key = dst
	} else {
		s.hold = dst
	}
	switch {
	case problem != "":
		return nil, true, s.syntax(problem)
	case !closed:
		return nil, true, s.syntax("unterminated string")
	}
	// Earlier values keep pointing at the old array if append moved
	// hold: it is never written again during this record.
	return dst[from:len(dst):len(dst)], true, nil
}

// plain returns the length of the prefix of b with no '"', no '\\' and no
// control character, looking at eight bytes a step.
func plain(b []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	n := 0
	for ; n+8 <= len(b); n += 8 {
		w := binary.LittleEndian.Uint64(b[n:])
		quote := w ^ (lo * '"')
		slash := w ^ (lo * '\\')
		// High bit set in a byte of hit where that byte of w is a quote,
		// a backslash or below 0x20 (the lowest such byte is exact).
		hit := (quote - lo) &^ quote
		hit |= (slash - lo) &^ slash
		hit |= (w - lo*0x20) &^ w
		if hit &= hi; hit != 0 {
			return n + bits.TrailingZeros64(hit)>>3
		}
	}
	return n
}

// number advances over a JSON number.
func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	s.i = i
	return true
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return nil
	}
	return s.syntax("invalid literal")
}

// skip advances over any value, checking its syntax. depth counts the
// objects and arrays around it.
func (s *scanner) skip(depth int) error {
	if s.i >= len(s.b) {
		return s.syntax("unexpected end of input")
	}
	c := s.b[s.i]
	if c != '{' && c != '[' {
		if c == '"' {
			// Skipping needs no unescaping: only the end of the string.
			return s.skipString()
		}
		_, err := s.scalar("")
		return err
	}
	if depth >= maxDepth {
		return s.syntax("nesting deeper than 64 levels")
	}
	closer := byte('}')
	if c == '[' {
		closer = ']'
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == closer {
		s.i++
		return nil
	}
	for {
		s.ws()
		if c == '{' {
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return s.syntax("expected a string as object key")
			}
			if err := s.skipString(); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return s.syntax("expected ':' after object key")
			}
			s.i++
			s.ws()
		}
		if err := s.skip(depth + 1); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.b) {
			switch s.b[s.i] {
			case ',':
				s.i++
				continue
			case closer:
				s.i++
				return nil
			}
		}
		return s.syntax("expected ',' or '" + string(closer) + "'")
	}
}

// skipString advances over the string at the cursor, checking its escapes
// without decoding them.
func (s *scanner) skipString() error {
	s.i++
	for {
		s.i += plain(s.b[s.i:])
		if s.i >= len(s.b) {
			return s.syntax("unterminated string")
		}
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return nil
		case c < 0x20:
			return s.syntax(jsonstr.ControlCharacter)
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return s.syntax("unterminated string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if !hex4(s.b[s.i+2:]) {
					s.i += 2
					return s.syntax(jsonstr.MalformedUnicode)
				}
				s.i += 6
			default:
				s.i += 2
				return s.syntax(jsonstr.InvalidEscape)
			}
		default:
			s.i++ // a byte plain stopped short of at the end of b
		}
	}
}

func hex4(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// field is a value of the record being read and the name the log gave
// its key, for errors.
type field struct {
	val
	name string
}

// read reads the scalar at the cursor into f. A later duplicate key
// replaces an earlier one; null removes it.
func (s *scanner) read(f *field, name string) error {
	v, err := s.scalar(name)
	f.val, f.name = v, name
	return err
}

// start resets the event and the scanner for a new line, with the cursor
// on the line's first byte that is not whitespace.
func (s *scanner) start(line []byte, ev *event.Event) error {
	*ev = event.Event{}
	if len(line) > event.MaxLineBytes {
		return &event.SyntaxError{Offset: event.MaxLineBytes, Reason: "line longer than 1 MiB"}
	}
	s.reset(line)
	s.ws()
	return nil
}
