// Package geoiptest builds small MaxMind-format databases for tests: a
// City database and an ASN database with the field names GeoLite2 and
// DB-IP Lite use, written with github.com/maxmind/mmdbwriter.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// CityNet is one network of a City database.
type CityNet struct {
	// CIDR is the network, e.g. "81.2.69.0/24" or "2a02:cf40::/32".
	CIDR string
	// Country is the ISO 3166-1 alpha-2 code; "" writes no country.
	Country string
	// Lat and Lon are written as location.latitude and
	// location.longitude unless NoLocation is set.
	Lat, Lon   float64
	NoLocation bool
}

// ASNNet is one network of an ASN database.
type ASNNet struct {
	CIDR string
	ASN  uint32
	Org  string
}

// Write writes a GeoLite2-City database of city and a GeoLite2-ASN
// database of asn into dir and returns their paths. A nil slice writes no
// database and returns "" for its path. Errors fail t.
func Write(t testing.TB, dir string, city []CityNet, asn []ASNNet) (cityPath, asnPath string) {
	t.Helper()
	if city != nil {
		cityPath = filepath.Join(dir, "city.mmdb")
		WriteCity(t, cityPath, "GeoLite2-City", city)
	}
	if asn != nil {
		asnPath = filepath.Join(dir, "asn.mmdb")
		WriteASN(t, asnPath, "GeoLite2-ASN", asn)
	}
	return cityPath, asnPath
}

// WriteCity writes a City-shaped database of type dbType (e.g.
// "GeoLite2-City", "DBIP-City-Lite") to path.
func WriteCity(t testing.TB, path, dbType string, nets []CityNet) {
	t.Helper()
	tree := newTree(t, dbType)
	for _, n := range nets {
		rec := mmdbtype.Map{}
		if n.Country != "" {
			rec["country"] = mmdbtype.Map{
				"iso_code":   mmdbtype.String(n.Country),
				"geoname_id": mmdbtype.Uint32(2921044),
				"names":      mmdbtype.Map{"en": mmdbtype.String("Country " + n.Country)},
			}
		}
		if !n.NoLocation {
			rec["location"] = mmdbtype.Map{
				"accuracy_radius": mmdbtype.Uint16(100),
				"latitude":        mmdbtype.Float64(n.Lat),
				"longitude":       mmdbtype.Float64(n.Lon),
				"time_zone":       mmdbtype.String("Europe/Berlin"),
			}
		}
		rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Somewhere")}}
		insert(t, tree, n.CIDR, rec)
	}
	write(t, tree, path)
}

// WriteASN writes an ASN-shaped database of type dbType (e.g.
// "GeoLite2-ASN", "DBIP-ASN-Lite") to path.
func WriteASN(t testing.TB, path, dbType string, nets []ASNNet) {
	t.Helper()
	tree := newTree(t, dbType)
	for _, n := range nets {
		insert(t, tree, n.CIDR, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n.ASN),
			"autonomous_system_organization": mmdbtype.String(n.Org),
		})
	}
	write(t, tree, path)
}

func newTree(t testing.TB, dbType string) *mmdbwriter.Tree {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		RecordSize:   24,
		// Tests may use documentation and private ranges.
		IncludeReservedNetworks: true,
	})
	if err != nil {
		t.Fatalf("geoiptest: new %s tree: %v", dbType, err)
	}
	return tree
}

func insert(t testing.TB, tree *mmdbwriter.Tree, cidr string, rec mmdbtype.Map) {
	t.Helper()
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
	if err := tree.Insert(n, rec); err != nil {
		t.Fatalf("geoiptest: insert %s: %v", cidr, err)
	}
}

func write(t testing.TB, tree *mmdbwriter.Tree, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		_ = f.Close()
		t.Fatalf("geoiptest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
}
