package event_test

import (
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
)

var rfc3339Tests = []struct {
	in   string
	want time.Time // zero: rejected
}{
	{"2026-03-14T09:26:53Z", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)},
	{"2026-03-14T09:26:53.5Z", time.Date(2026, 3, 14, 9, 26, 53, 5e8, time.UTC)},
	{"2026-03-14T09:26:53.123456789Z", time.Date(2026, 3, 14, 9, 26, 53, 123456789, time.UTC)},
	{"2026-03-14T09:26:53.1234567891234Z", time.Date(2026, 3, 14, 9, 26, 53, 123456789, time.UTC)},
	{"2026-03-14T09:26:53.000Z", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)},
	{"2026-03-14T09:26:53+00:00", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)},
	{"2026-03-14T09:26:53-00:00", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)},
	{"2026-03-14T09:26:53+05:30", time.Date(2026, 3, 14, 3, 56, 53, 0, time.UTC)},
	{"2026-03-14T00:10:00+23:59", time.Date(2026, 3, 13, 0, 11, 0, 0, time.UTC)},
	{"2026-03-14T23:59:59-23:59", time.Date(2026, 3, 15, 23, 58, 59, 0, time.UTC)},
	{"2026-01-01T00:00:00.25-01:00", time.Date(2026, 1, 1, 1, 0, 0, 25e7, time.UTC)},
	{"2024-02-29T12:00:00Z", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
	{"2000-02-29T12:00:00Z", time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC)},
	{"1970-01-01T00:00:00Z", time.Unix(0, 0)},
	{"1969-12-31T23:59:59.999999999Z", time.Unix(-1, 999999999)},
	{"1700-01-01T00:00:00Z", time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)},
	{"2262-01-01T00:00:00Z", time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)},
	// Accepted on purpose, unlike time.Parse: RFC 3339 section 5.6 allows
	// a lower-case t and z, and a space in place of the T.
	{"2026-03-14t09:26:53z", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)},
	{"2026-03-14 09:26:53Z", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)},

	{"", time.Time{}},
	{"2026-03-14", time.Time{}},
	{"2026-03-14T09:26:53", time.Time{}},
	{"2026-03-14T09:26:53.Z", time.Time{}},
	{"2026-03-14T09:26:53,5Z", time.Time{}}, // time.Parse accepts a comma
	{"2026-03-14T9:26:53Z", time.Time{}},    // time.Parse accepts one hour digit
	{"2026-03-14T09:26:53+24:00", time.Time{}},
	{"2026-03-14T09:26:53+02:60", time.Time{}},
	{"2026-03-14T09:26:53+0200", time.Time{}},
	{"2026-03-14T09:26:53+02", time.Time{}},
	{"2026-03-14T09:26:53+02:00 ", time.Time{}},
	{"2026-03-14T09:26:53ZZ", time.Time{}},
	{"2026-03-14T09:26:53UTC", time.Time{}},
	{" 2026-03-14T09:26:53Z", time.Time{}},
	{"2026-03-14X09:26:53Z", time.Time{}},
	{"2026/03/14T09:26:53Z", time.Time{}},
	{"2026-13-14T09:26:53Z", time.Time{}},
	{"2026-00-14T09:26:53Z", time.Time{}},
	{"2026-03-00T09:26:53Z", time.Time{}},
	{"2026-04-31T09:26:53Z", time.Time{}},
	{"2026-02-29T09:26:53Z", time.Time{}},
	{"1900-02-29T09:26:53Z", time.Time{}},
	{"2026-03-14T24:00:00Z", time.Time{}},
	{"2026-03-14T09:60:00Z", time.Time{}},
	{"2016-12-31T23:59:60Z", time.Time{}}, // leap seconds: rejected, as time.Parse does
	{"+026-03-14T09:26:53Z", time.Time{}},
	{"2026-03-14T09:26:5aZ", time.Time{}},
	{"2026-03-14T09:26:53.1a", time.Time{}},
	// Outside Unix nanoseconds in an int64 (1677-09-21 to 2262-04-11).
	{"1677-01-01T00:00:00Z", time.Time{}},
	{"2263-01-01T00:00:00Z", time.Time{}},
	{"9999-12-31T23:59:59Z", time.Time{}},
	{"0000-01-01T00:00:00Z", time.Time{}},
}

func TestParseRFC3339(t *testing.T) {
	for _, tt := range rfc3339Tests {
		got, ok := event.ParseRFC3339([]byte(tt.in))
		switch {
		case tt.want.IsZero() && ok:
			t.Errorf("ParseRFC3339(%q) = %v, want rejected", tt.in, time.Unix(0, got).UTC())
		case !tt.want.IsZero() && !ok:
			t.Errorf("ParseRFC3339(%q) rejected, want %v", tt.in, tt.want)
		case !tt.want.IsZero() && got != tt.want.UnixNano():
			t.Errorf("ParseRFC3339(%q) = %v, want %v", tt.in, time.Unix(0, got).UTC(), tt.want)
		}
	}
}

// strictRFC3339 is the RFC 3339 date-time grammar that ParseRFC3339 and
// time.Parse both handle. time.Parse also accepts some inputs outside it
// (one-digit hours, a comma before the fraction, zone offsets of 24:00 or
// xx:60), which ParseRFC3339 rejects on purpose.
var strictRFC3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// Unix seconds ParseRFC3339 accepts; outside, it rejects what time.Parse
// can represent but UnixNano cannot.
const (
	minUnixSec = math.MinInt64/int64(time.Second) + 1
	maxUnixSec = math.MaxInt64/int64(time.Second) - 1
)

// FuzzParseRFC3339 compares ParseRFC3339 with time.Parse(time.RFC3339Nano).
// The intended differences:
//   - a lower-case t or z and a space separator are accepted (RFC 3339
//     section 5.6 allows them): the input is normalized before time.Parse;
//   - inputs outside strictRFC3339 that time.Parse tolerates are rejected;
//   - dates outside int64 Unix nanoseconds are rejected;
//   - seconds = 60 are rejected, as by time.Parse, although RFC 3339 allows
//     leap seconds: they do not exist in Unix time.
func FuzzParseRFC3339(f *testing.F) {
	for _, tt := range rfc3339Tests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := event.ParseRFC3339([]byte(s))
		norm := []byte(s)
		if len(norm) > 10 && (norm[10] == 't' || norm[10] == ' ') {
			norm[10] = 'T'
		}
		if n := len(norm); n > 0 && norm[n-1] == 'z' {
			norm[n-1] = 'Z'
		}
		ref, err := time.Parse(time.RFC3339Nano, string(norm))
		if ok {
			if err != nil {
				t.Fatalf("ParseRFC3339(%q) = %v, but time.Parse(%q): %v", s, time.Unix(0, got).UTC(), norm, err)
			}
			if !strictRFC3339.Match(norm) {
				t.Fatalf("ParseRFC3339(%q) accepts input outside the RFC 3339 grammar", s)
			}
			if want := ref.UnixNano(); got != want {
				t.Fatalf("ParseRFC3339(%q) = %d (%v), time.Parse = %d (%v)", s, got, time.Unix(0, got).UTC(), want, ref.UTC())
			}
			return
		}
		if err == nil && strictRFC3339.Match(norm) {
			if sec := ref.Unix(); sec > minUnixSec && sec < maxUnixSec {
				t.Fatalf("ParseRFC3339(%q) rejected, time.Parse = %v", s, ref.UTC())
			}
		}
	})
}

func BenchmarkParseRFC3339(b *testing.B) {
	for _, s := range []string{"2026-03-14T09:26:53.589Z", "2026-03-14T11:26:53.589+02:00"} {
		in := []byte(s)
		b.Run("vigil/"+s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := event.ParseRFC3339(in); !ok {
					b.Fatal("rejected")
				}
			}
		})
		b.Run("time.Parse/"+s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := time.Parse(time.RFC3339Nano, string(in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
