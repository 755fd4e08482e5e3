// Package jsonstr decodes the escapes of JSON strings (RFC 8259 §7) for
// vigil's hand-written JSON readers: the event decoder (package event) and
// the JWT claim reader (package credential). One implementation, so that
// both read a string the same way as encoding/json does.
package jsonstr

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Problems Unescape reports, in the words of the readers' errors.
const (
	ControlCharacter = "control character in string"
	MalformedUnicode = "malformed \\u escape"
	InvalidEscape    = "invalid escape in string"
)

// Unescape appends to dst the string content at the start of src, with its
// escapes decoded, up to the first unescaped '"' or the end of src. It
// returns dst, how many bytes of src it read (the closing quote included),
// whether it met the closing quote, and a problem ("" for none) with dst
// as far as it got. A \u escape of a lone UTF-16 surrogate becomes U+FFFD,
// as in encoding/json; bytes that are not escapes are copied as they are.
func Unescape(dst, src []byte) (out []byte, n int, closed bool, problem string) {
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"':
			return dst, i + 1, true, ""
		case c < 0x20:
			return dst, i, false, ControlCharacter
		case c != '\\':
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(src) {
			return dst, i, false, ""
		}
		e := src[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(src[i:])
			if !ok {
				return dst, i, false, MalformedUnicode
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if len(src)-i >= 6 && src[i] == '\\' && src[i+1] == 'u' {
					r2, ok := hex4(src[i+2:])
					if !ok {
						return dst, i + 2, false, MalformedUnicode
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError // the next escape, if any, is read on its own
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, i, false, InvalidEscape
		}
	}
	return dst, i, false, ""
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
