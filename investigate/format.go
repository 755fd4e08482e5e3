package investigate

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Formatting shared by the text and HTML reports.

// fmtCount writes n with thousands separators: 1,234,567.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtBytes writes a byte count in SI units: "512 B", "4.2 MB".
func fmtBytes(n int64) string {
	const units = "kMGTPE"
	if n < 1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	x, i := float64(n), -1
	for x >= 1000 && i < len(units)-1 {
		x /= 1000
		i++
	}
	return strconv.FormatFloat(x, 'f', 1, 64) + " " + units[i:i+1] + "B"
}

// fmtRisk writes a risk as decisions do: two decimals at most, "4", "6.5".
func fmtRisk(x float64) string {
	x = math.Round(x*100) / 100
	if x == 0 {
		x = 0 // no "-0"
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

const timeLayout = "2006-01-02 15:04:05"

// fmtTime writes a UTC time to the second.
func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// fmtSpan writes a duration roughly: "4 days 2 h", "3 h 20 min", "45 s".
func fmtSpan(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		days, h := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
		if h == 0 {
			return itoa(int64(days)) + " days"
		}
		return itoa(int64(days)) + " days " + itoa(int64(h)) + " h"
	case d >= time.Hour:
		h, m := d/time.Hour, (d%time.Hour)/time.Minute
		if m == 0 {
			return itoa(int64(h)) + " h"
		}
		return itoa(int64(h)) + " h " + itoa(int64(m)) + " min"
	case d >= time.Minute:
		return itoa(int64(d/time.Minute)) + " min"
	}
	return itoa(int64(d/time.Second)) + " s"
}

// clean makes a string from a log safe to show and at most max runes long
// (0: no limit): control characters (a terminal's escape sequences),
// bidirectional overrides and invalid UTF-8 are written as escapes, and a
// long string is cut with "…".
func clean(s string, max int) string {
	ok := true
	n := 0
	for _, r := range s {
		n++
		if r == utf8.RuneError || unsafeRune(r) {
			ok = false
			break
		}
	}
	if ok && (max <= 0 || n <= max) {
		return s
	}
	var b strings.Builder
	units := 0
	for i := 0; i < len(s); units++ {
		r, size := utf8.DecodeRuneInString(s[i:])
		if max > 0 && units == max-1 && i+size < len(s) {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unsafeRune reports runes that could change how a terminal or a page
// shows the text around them.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 ||
		r == 0x2028 || r == 0x2029
}
