package geoip

import (
	"net/netip"
	"os"
	"testing"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/geoip/geoiptest"
)

// FuzzOpenBytes feeds arbitrary bytes to OpenBytes, as a city and as an
// ASN database, and looks addresses up in whatever opens: nothing may
// panic, and the country is always "" or two upper-case letters.
func FuzzOpenBytes(f *testing.F) {
	dir := f.TempDir()
	cityPath, asnPath := geoiptest.Write(f, dir, testCity, testASN)
	for _, p := range []string{cityPath, asnPath} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\xab\xcd\xefMaxMind.com"))
	f.Add([]byte{})
	ips := []netip.Addr{
		netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("2a02:cf40::1"),
		netip.MustParseAddr("67.43.156.1"), netip.MustParseAddr("1.1.1.1"),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, open := range []func() (*DB, error){
			func() (*DB, error) { return OpenBytes(data, nil) },
			func() (*DB, error) { return OpenBytes(nil, data) },
		} {
			db, err := open()
			if err != nil {
				continue
			}
			for _, ip := range ips {
				r := db.Lookup(ip)
				if c := r.Country; c != "" && (len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z') {
					t.Fatalf("country %q", c)
				}
				ev := event.Event{SourceIP: ip}
				db.Enrich(&ev)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
