package geoip

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/geoip/geoiptest"
)

var (
	testCity = []geoiptest.CityNet{
		{CIDR: "81.2.69.0/24", Country: "GB", Lat: 51.5142, Lon: -0.0931},
		{CIDR: "89.160.20.112/28", Country: "SE", Lat: 58.4167, Lon: 15.6167},
		{CIDR: "2a02:cf40::/32", Country: "de", Lat: 52.52, Lon: 13.405}, // lower case in the database
		{CIDR: "67.43.156.0/24", Country: "BT", NoLocation: true},
		{CIDR: "175.16.199.0/24", Lat: 43.88, Lon: 125.3228}, // location, no country
		{CIDR: "217.65.48.0/29", Country: "GI", Lat: 0, Lon: 0},
	}
	testASN = []geoiptest.ASNNet{
		{CIDR: "81.2.69.0/24", ASN: 20712, Org: "Andrews & Arnold Ltd"},
		{CIDR: "2a02:cf40::/32", ASN: 24940, Org: "Hetzner Online GmbH"},
		{CIDR: "67.43.156.0/24", ASN: 35908},
	}
)

func openTest(t testing.TB) *DB {
	t.Helper()
	city, asn := geoiptest.Write(t, t.TempDir(), testCity, testASN)
	db, err := Open(Options{CityPath: city, ASNPath: asn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func TestLookup(t *testing.T) {
	db := openTest(t)
	for _, tc := range []struct {
		ip   string
		want Result
	}{
		{"81.2.69.142", Result{Country: "GB", ASN: 20712, ASOrg: "Andrews & Arnold Ltd", Lat: 51.5142, Lon: -0.0931, HasGeo: true}},
		{"::ffff:81.2.69.142", Result{Country: "GB", ASN: 20712, ASOrg: "Andrews & Arnold Ltd", Lat: 51.5142, Lon: -0.0931, HasGeo: true}},
		{"89.160.20.113", Result{Country: "SE", Lat: 58.4167, Lon: 15.6167, HasGeo: true}},
		{"2a02:cf40:1::7", Result{Country: "DE", ASN: 24940, ASOrg: "Hetzner Online GmbH", Lat: 52.52, Lon: 13.405, HasGeo: true}},
		{"67.43.156.1", Result{Country: "BT", ASN: 35908}},
		{"175.16.199.3", Result{Lat: 43.88, Lon: 125.3228, HasGeo: true}},
		{"217.65.48.1", Result{Country: "GI", HasGeo: true}}, // (0, 0) is a location
		{"8.8.8.8", Result{}}, // not in the databases
		{"10.1.2.3", Result{}},
		{"127.0.0.1", Result{}},
		{"::1", Result{}},
		{"fe80::1", Result{}},
		{"0.0.0.0", Result{}},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			if got := db.Lookup(netip.MustParseAddr(tc.ip)); got != tc.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tc.ip, got, tc.want)
			}
		})
	}
	if got := db.Lookup(netip.Addr{}); got != (Result{}) {
		t.Errorf("Lookup(invalid) = %+v", got)
	}
}

func TestLookupOneDatabase(t *testing.T) {
	dir := t.TempDir()
	city, asn := geoiptest.Write(t, dir, testCity, testASN)
	ip := netip.MustParseAddr("81.2.69.1")
	for _, tc := range []struct {
		name string
		o    Options
		want Result
	}{
		{"city", Options{CityPath: city}, Result{Country: "GB", Lat: 51.5142, Lon: -0.0931, HasGeo: true}},
		{"asn", Options{ASNPath: asn}, Result{ASN: 20712, ASOrg: "Andrews & Arnold Ltd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.Lookup(ip); got != tc.want {
				t.Errorf("Lookup = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDBIPTypes(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "dbip-city-lite.mmdb"), filepath.Join(dir, "dbip-asn-lite.mmdb")
	geoiptest.WriteCity(t, city, "DBIP-City-Lite", testCity)
	geoiptest.WriteASN(t, asn, "DBIP-ASN-Lite", testASN)
	db, err := Open(Options{CityPath: city, ASNPath: asn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Lookup(netip.MustParseAddr("81.2.69.1")); got.Country != "GB" || got.ASN != 20712 {
		t.Errorf("Lookup = %+v", got)
	}
}

func TestEnrich(t *testing.T) {
	db := openTest(t)
	gb := netip.MustParseAddr("81.2.69.142")
	for _, tc := range []struct {
		name string
		in   event.Event
		want event.Event
	}{
		{
			name: "empty",
			in:   event.Event{SourceIP: gb},
			want: event.Event{SourceIP: gb, Country: "GB", ASN: 20712, Lat: 51.5142, Lon: -0.0931,
				Has: event.HasCountry | event.HasASN | event.HasGeo},
		},
		{
			name: "all present",
			in: event.Event{SourceIP: gb, Country: "FR", ASN: 3215, Lat: 48.85, Lon: 2.35,
				Has: event.HasCountry | event.HasASN | event.HasGeo},
			want: event.Event{SourceIP: gb, Country: "FR", ASN: 3215, Lat: 48.85, Lon: 2.35,
				Has: event.HasCountry | event.HasASN | event.HasGeo},
		},
		{
			name: "country present",
			in:   event.Event{SourceIP: gb, Country: "FR", Has: event.HasCountry | event.HasPath},
			want: event.Event{SourceIP: gb, Country: "FR", ASN: 20712, Lat: 51.5142, Lon: -0.0931,
				Has: event.HasCountry | event.HasPath | event.HasASN | event.HasGeo},
		},
		{
			name: "asn and geo present",
			in:   event.Event{SourceIP: gb, ASN: 3215, Lat: 1, Lon: 2, Has: event.HasASN | event.HasGeo},
			want: event.Event{SourceIP: gb, Country: "GB", ASN: 3215, Lat: 1, Lon: 2,
				Has: event.HasCountry | event.HasASN | event.HasGeo},
		},
		{
			name: "no location in database",
			in:   event.Event{SourceIP: netip.MustParseAddr("67.43.156.9")},
			want: event.Event{SourceIP: netip.MustParseAddr("67.43.156.9"), Country: "BT", ASN: 35908,
				Has: event.HasCountry | event.HasASN},
		},
		{
			name: "mapped",
			in:   event.Event{SourceIP: netip.MustParseAddr("::ffff:81.2.69.142")},
			want: event.Event{SourceIP: netip.MustParseAddr("::ffff:81.2.69.142"), Country: "GB", ASN: 20712,
				Lat: 51.5142, Lon: -0.0931, Has: event.HasCountry | event.HasASN | event.HasGeo},
		},
		{
			name: "unknown",
			in:   event.Event{SourceIP: netip.MustParseAddr("8.8.8.8")},
			want: event.Event{SourceIP: netip.MustParseAddr("8.8.8.8")},
		},
		{
			name: "private",
			in:   event.Event{SourceIP: netip.MustParseAddr("192.168.1.1")},
			want: event.Event{SourceIP: netip.MustParseAddr("192.168.1.1")},
		},
		{name: "no address", in: event.Event{}, want: event.Event{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.in
			db.Enrich(&ev)
			if ev != tc.want {
				t.Errorf("Enrich:\n got %+v\nwant %+v", ev, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	city, asn := geoiptest.Write(t, dir, testCity, testASN)
	missing := filepath.Join(dir, "missing.mmdb")
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("this is not a MaxMind database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mmdb")
	b, err := os.ReadFile(city)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want []string
		is   error
	}{
		{"none", Options{}, []string{"no database"}, nil},
		{"missing city", Options{CityPath: missing, ASNPath: asn}, []string{"city database", missing, "no such file"}, fs.ErrNotExist},
		{"missing asn", Options{CityPath: city, ASNPath: missing}, []string{"ASN database", missing}, fs.ErrNotExist},
		{"directory", Options{CityPath: dir}, []string{"city database", dir}, nil},
		{"garbage", Options{CityPath: garbage}, []string{"city database", garbage, "not a MaxMind DB"}, nil},
		{"empty", Options{ASNPath: empty}, []string{"ASN database", empty, "not a MaxMind DB"}, nil},
		{"truncated", Options{CityPath: truncated}, []string{"city database", truncated, "not a MaxMind DB"}, nil},
		{"asn as city", Options{CityPath: asn}, []string{"city database", asn, `"GeoLite2-ASN"`, "City or Country"}, ErrWrongType},
		{"city as asn", Options{ASNPath: city}, []string{"ASN database", city, `"GeoLite2-City"`, "an ASN database"}, ErrWrongType},
		{"swapped", Options{CityPath: asn, ASNPath: city}, []string{"city database", asn}, ErrWrongType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.o)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
		})
	}
}

func TestOpenBytes(t *testing.T) {
	dir := t.TempDir()
	cityPath, asnPath := geoiptest.Write(t, dir, testCity, testASN)
	city, err := os.ReadFile(cityPath)
	if err != nil {
		t.Fatal(err)
	}
	asn, err := os.ReadFile(asnPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenBytes(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	if got := db.Lookup(netip.MustParseAddr("2a02:cf40::1")); got.Country != "DE" || got.ASN != 24940 {
		t.Errorf("Lookup = %+v", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		city, asn []byte
		is        error
	}{
		{"none", nil, nil, nil},
		{"swapped", asn, city, ErrWrongType},
		{"garbage", []byte("garbage"), nil, nil},
	} {
		if db, err := OpenBytes(tc.city, tc.asn); err == nil {
			db.Close()
			t.Errorf("%s: OpenBytes succeeded", tc.name)
		} else if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %q is not %v", tc.name, err, tc.is)
		}
	}
}

func TestIntern(t *testing.T) {
	for i := range 26 {
		for j := range 26 {
			code := string([]byte{byte('A' + i), byte('A' + j)})
			if got := intern([]byte(code)); got != code {
				t.Fatalf("intern(%q) = %q", code, got)
			}
			if got := intern([]byte(strings.ToLower(code))); got != code {
				t.Fatalf("intern(lower %q) = %q", code, got)
			}
		}
	}
	for _, bad := range []string{"", "D", "DEU", "D1", "@A", "[A", "{a", "\xc4E", "  "} {
		if got := intern([]byte(bad)); got != "" {
			t.Errorf("intern(%q) = %q, want \"\"", bad, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = intern([]byte{'d', 'e'}) }); n != 0 {
		t.Errorf("intern allocates %v times", n)
	}
}

func TestEnrichAllocs(t *testing.T) {
	db := openTest(t)
	ev := event.Event{SourceIP: netip.MustParseAddr("2a02:cf40::1")}
	db.Enrich(&ev) // warm
	n := testing.AllocsPerRun(200, func() {
		ev.Has = 0
		db.Enrich(&ev)
	})
	if n != 0 {
		t.Errorf("Enrich allocates %v times per event", n)
	}
}

// TestConcurrent looks up and enriches from several goroutines; run with
// -race.
func TestConcurrent(t *testing.T) {
	db := openTest(t)
	ips := []netip.Addr{
		netip.MustParseAddr("81.2.69.1"), netip.MustParseAddr("2a02:cf40::9"),
		netip.MustParseAddr("67.43.156.2"), netip.MustParseAddr("8.8.4.4"),
	}
	want := make([]Result, len(ips))
	for i, ip := range ips {
		want[i] = db.Lookup(ip)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % len(ips)
				if got := db.Lookup(ips[k]); got != want[k] {
					t.Errorf("Lookup(%s) = %+v, want %+v", ips[k], got, want[k])
					return
				}
				ev := event.Event{SourceIP: ips[k]}
				db.Enrich(&ev)
				if ev.Country != want[k].Country || ev.ASN != want[k].ASN {
					t.Errorf("Enrich(%s) = %+v", ips[k], ev)
					return
				}
			}
		})
	}
	wg.Wait()
}
