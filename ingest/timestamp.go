package ingest

import (
	"github.com/vigil-sec/vigil/event"
)

// Unix seconds that vigil's int64 nanoseconds can hold, with a margin.
const (
	minUnix = -9_200_000_000
	maxUnix = 9_200_000_000
)

// eventTime reads a timestamp in any of the forms these logs use:
//   - RFC 3339 ("2026-03-04T01:56:48Z", nginx's $time_iso8601), also with
//     an offset without colon ("+0000");
//   - the common log format ("10/Oct/2000:13:55:36 -0700": nginx's
//     $time_local, API Gateway's $context.requestTime);
//   - a Unix time as a number or a string of digits, with an optional
//     fraction: seconds, or milliseconds, microseconds or nanoseconds
//     when it is too large to be seconds (from 10^11, 10^14, 10^17 on).
func eventTime(field string, v val, ev *event.Event) error {
	if !v.set() {
		return missing(field)
	}
	var t int64
	var ok bool
	switch {
	case v.k == kNumber || v.k == kString && len(v.b) > 0 && v.b[0] >= '0' && v.b[0] <= '9' && numeric(v.b):
		t, ok = parseEpoch(v.b)
	case v.k == kString && len(v.b) >= 20 && v.b[4] == '-':
		t, ok = parseISO(v.b)
	case v.k == kString:
		t, ok = parseCLF(v.b)
	}
	if !ok {
		return &event.FieldError{Field: field, Reason: "not a time in a known format (RFC 3339, common log format or Unix time)"}
	}
	ev.Time = t
	return nil
}

func parseISO(b []byte) (int64, bool) {
	if t, ok := event.ParseRFC3339(b); ok {
		return t, true
	}
	// "+hhmm": add the colon.
	n := len(b)
	if n < 25 || n > 64 || (b[n-5] != '+' && b[n-5] != '-') {
		return 0, false
	}
	var buf [65]byte
	c := copy(buf[:], b[:n-2])
	buf[c] = ':'
	copy(buf[c+1:], b[n-2:])
	return event.ParseRFC3339(buf[:n+1])
}

// parseCLF parses "dd/Mon/yyyy:HH:MM:SS ±hhmm".
func parseCLF(b []byte) (int64, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' ||
		b[20] != ' ' || (b[21] != '+' && b[21] != '-') {
		return 0, false
	}
	day, ok1 := digits2(b[0:])
	year1, ok2 := digits2(b[7:])
	year2, ok3 := digits2(b[9:])
	hour, ok4 := digits2(b[12:])
	minute, ok5 := digits2(b[15:])
	sec, ok6 := digits2(b[18:])
	oh, ok7 := digits2(b[22:])
	om, ok8 := digits2(b[24:])
	month := monthOf(b[3:6])
	year := year1*100 + year2
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) || month == 0 ||
		day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 59 || oh > 23 || om > 59 {
		return 0, false
	}
	offset := int64(oh*3600 + om*60)
	if b[21] == '-' {
		offset = -offset
	}
	secs := days(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	if secs < minUnix || secs > maxUnix {
		return 0, false
	}
	return secs * 1e9, true
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

func monthOf(b []byte) int {
	switch string(b) {
	case "Jan":
		return 1
	case "Feb":
		return 2
	case "Mar":
		return 3
	case "Apr":
		return 4
	case "May":
		return 5
	case "Jun":
		return 6
	case "Jul":
		return 7
	case "Aug":
		return 8
	case "Sep":
		return 9
	case "Oct":
		return 10
	case "Nov":
		return 11
	case "Dec":
		return 12
	}
	return 0
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// days returns the number of days from 1970-01-01 to a date of the
// proleptic Gregorian calendar, for years 0 to 9999.
func days(year, month, day int) int64 {
	// Count from 1 March of year 0, so that the leap day ends a year.
	y := year
	if month <= 2 {
		y--
	}
	m := (month + 9) % 12 // March = 0
	doy := (153*m+2)/5 + day - 1
	n := int64(y)*365 + int64(floorDiv(y, 4)-floorDiv(y, 100)+floorDiv(y, 400)) + int64(doy)
	return n - 719468 // 1970-01-01 counted the same way
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// parseEpoch reads a non-negative Unix time with an optional fraction.
func parseEpoch(b []byte) (int64, bool) {
	var whole int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if whole >= 9e17 {
			return 0, false
		}
		whole = whole*10 + int64(b[i]-'0')
	}
	if i == 0 {
		return 0, false
	}
	// The fraction, to nanoseconds of the unit.
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		scale := int64(1e8)
		j := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			frac += int64(b[i]-'0') * scale
			scale /= 10
		}
		if i == j {
			return 0, false
		}
	}
	if i != len(b) {
		return 0, false // an exponent or a sign
	}
	var ns int64
	switch {
	case whole < 1e11: // seconds
		if whole > maxUnix {
			return 0, false
		}
		ns = whole*1e9 + frac
	case whole < 1e14: // milliseconds
		if whole > maxUnix*1e3 {
			return 0, false
		}
		ns = whole*1e6 + frac/1e3
	case whole < 1e17: // microseconds
		if whole > maxUnix*1e6 {
			return 0, false
		}
		ns = whole*1e3 + frac/1e6
	default: // nanoseconds
		ns = whole
	}
	return ns, true
}
