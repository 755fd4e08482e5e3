package score

import (
	"math"
	"strconv"
	"time"
)

// Helpers that append human-readable numbers without allocating.

// appendNum appends x with up to one decimal, dropping a trailing ".0".
func appendNum(dst []byte, x float64) []byte {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.AppendInt(dst, int64(x), 10)
	}
	return strconv.AppendFloat(dst, x, 'f', 1, 64)
}

// appendFactor appends a ratio such as "14×" or "2.5×".
func appendFactor(dst []byte, x float64) []byte {
	if x >= 10 {
		dst = strconv.AppendFloat(dst, x, 'f', 0, 64)
	} else {
		dst = strconv.AppendFloat(dst, x, 'f', 1, 64)
	}
	return append(dst, "×"...)
}

// appendBytes appends a byte count in SI units ("4.2 MB").
func appendBytes(dst []byte, n float64) []byte {
	const units = "kMGTPE"
	if n < 1000 {
		dst = strconv.AppendInt(dst, int64(math.Round(n)), 10)
		return append(dst, " B"...)
	}
	i := -1
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	dst = strconv.AppendFloat(dst, n, 'f', 1, 64)
	return append(dst, ' ', units[i], 'B')
}

// appendDuration appends a rounded duration ("20 min", "3 h", "94 days").
func appendDuration(dst []byte, d time.Duration) []byte {
	switch {
	case d >= 48*time.Hour:
		dst = strconv.AppendInt(dst, int64(d/(24*time.Hour)), 10)
		return append(dst, " days"...)
	case d >= 2*time.Hour:
		dst = strconv.AppendInt(dst, int64(d/time.Hour), 10)
		return append(dst, " h"...)
	case d >= 2*time.Minute || (d >= time.Minute && d%time.Minute == 0):
		dst = strconv.AppendInt(dst, int64(d/time.Minute), 10)
		return append(dst, " min"...)
	}
	dst = strconv.AppendInt(dst, int64(d/time.Second), 10)
	return append(dst, " s"...)
}

// appendPlural appends "n word" or "n words".
func appendPlural(dst []byte, n float64, word string) []byte {
	dst = appendNum(dst, n)
	dst = append(dst, ' ')
	dst = append(dst, word...)
	if n != 1 {
		dst = append(dst, 's')
	}
	return dst
}
