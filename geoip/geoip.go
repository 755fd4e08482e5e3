package geoip

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"

	"github.com/vigil-sec/vigil/event"
)

// ErrWrongType is wrapped by Open's error when a database is of the wrong
// kind for its slot (an ASN database given as the city database, say).
var ErrWrongType = errors.New("wrong database type")

// Options name the databases to open. Either path may be empty, not both.
type Options struct {
	// CityPath is a City or Country database: GeoLite2-City, GeoIP2-City,
	// GeoLite2-Country, DBIP-City-Lite, DBIP-Country-Lite.
	CityPath string
	// ASNPath is an ASN database: GeoLite2-ASN, DBIP-ASN-Lite.
	ASNPath string
}

func (o Options) validate() error {
	if o.CityPath == "" && o.ASNPath == "" {
		return errors.New("geoip: no database: set a city path, an ASN path or both")
	}
	return nil
}

// DB looks addresses up in a City database, an ASN database or both.
//
// Lookup and Enrich are safe for concurrent use. Close is not: call it
// once every lookup has returned (the files are memory-mapped, and a
// lookup in a closed database finds nothing).
type DB struct {
	city, asn *maxminddb.Reader
	// scratch holds *records: a record passed to the decoder (an any)
	// escapes, and the pool keeps lookups from allocating one each.
	scratch sync.Pool
}

// records is the decoding space of one lookup.
type records struct {
	city cityRecord
	asn  asnRecord
}

func (db *DB) records() *records {
	if r, ok := db.scratch.Get().(*records); ok {
		*r = records{}
		return r
	}
	return new(records)
}

// Result is what the databases know of an address.
type Result struct {
	// Country is the ISO 3166-1 alpha-2 code, upper case; "" when unknown.
	Country string
	// ASN is the autonomous system number; 0 when unknown.
	ASN   uint32
	ASOrg string
	// Lat and Lon are the location's coordinates when HasGeo.
	Lat, Lon float64
	HasGeo   bool
}

// slot is one of the two databases a DB holds.
type slot struct {
	name  string   // for messages: "city", "ASN"
	types []string // accepted database_type substrings
	want  string   // what to say when the type is wrong
}

var (
	citySlot = slot{"city", []string{"City", "Country"}, "a City or Country database (GeoLite2-City, DBIP-City-Lite)"}
	asnSlot  = slot{"ASN", []string{"ASN"}, "an ASN database (GeoLite2-ASN, DBIP-ASN-Lite)"}
)

// Open opens the databases o names. Errors name the file and what is
// wrong with it: missing or unreadable (wrapping the fs error, so
// errors.Is(err, fs.ErrNotExist) holds), not a MaxMind DB, or a database
// of the wrong type (wrapping ErrWrongType).
func Open(o Options) (*DB, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	open := func(s slot, path string) (*maxminddb.Reader, error) {
		if path == "" {
			return nil, nil
		}
		r, err := maxminddb.Open(path)
		if err != nil {
			if pe, ok := errors.AsType[*fs.PathError](err); ok {
				return nil, fmt.Errorf("geoip: %s database %s: %w", s.name, path, pe.Err)
			}
			return nil, fmt.Errorf("geoip: %s database %s is not a MaxMind DB: %w", s.name, path, err)
		}
		if err := s.check(r, path); err != nil {
			_ = r.Close()
			return nil, err
		}
		return r, nil
	}
	return openBoth(func() (*maxminddb.Reader, error) { return open(citySlot, o.CityPath) },
		func() (*maxminddb.Reader, error) { return open(asnSlot, o.ASNPath) })
}

// OpenBytes is Open for databases held in memory; nil means absent. The
// DB keeps the slices: do not modify them while it is in use.
func OpenBytes(city, asn []byte) (*DB, error) {
	if city == nil && asn == nil {
		return nil, Options{}.validate()
	}
	open := func(s slot, b []byte) (*maxminddb.Reader, error) {
		if b == nil {
			return nil, nil
		}
		const where = "(in memory)"
		r, err := maxminddb.OpenBytes(b)
		if err != nil {
			return nil, fmt.Errorf("geoip: %s database %s is not a MaxMind DB: %w", s.name, where, err)
		}
		if err := s.check(r, where); err != nil {
			_ = r.Close()
			return nil, err
		}
		return r, nil
	}
	return openBoth(func() (*maxminddb.Reader, error) { return open(citySlot, city) },
		func() (*maxminddb.Reader, error) { return open(asnSlot, asn) })
}

func openBoth(city, asn func() (*maxminddb.Reader, error)) (*DB, error) {
	c, err := city()
	if err != nil {
		return nil, err
	}
	a, err := asn()
	if err != nil {
		if c != nil {
			_ = c.Close()
		}
		return nil, err
	}
	return &DB{city: c, asn: a}, nil
}

func (s slot) check(r *maxminddb.Reader, path string) error {
	t := r.Metadata.DatabaseType
	for _, want := range s.types {
		if strings.Contains(t, want) {
			return nil
		}
	}
	return fmt.Errorf("geoip: %s database %s: %w: %q is not %s", s.name, path, ErrWrongType, t, s.want)
}

// Close releases the databases. See DB for when it may be called.
func (db *DB) Close() error {
	var errs []error
	for _, r := range [...]*maxminddb.Reader{db.city, db.asn} {
		if r != nil {
			if err := r.Close(); err != nil {
				errs = append(errs, fmt.Errorf("geoip: close: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Lookup returns what the databases know of ip. An IPv4-mapped IPv6
// address is looked up as IPv4. Invalid, private, loopback, link-local,
// multicast and unspecified addresses, and addresses a database does not
// hold or cannot decode, give the zero Result (for that database).
func (db *DB) Lookup(ip netip.Addr) Result {
	var res Result
	ip = ip.Unmap()
	if !routable(ip) {
		return res
	}
	recs := db.records()
	defer db.scratch.Put(recs)
	if db.city != nil {
		rec := &recs.city
		if db.city.Lookup(ip).Decode(rec) == nil {
			res.Country = string(rec.country)
			res.Lat, res.Lon, res.HasGeo = rec.coords()
		}
	}
	if db.asn != nil {
		rec := &recs.asn
		rec.withOrg = true
		if db.asn.Lookup(ip).Decode(rec) == nil {
			res.ASN, res.ASOrg = rec.asn, rec.org
		}
	}
	return res
}

// Enrich fills the event's country, ASN and location from its SourceIP
// where the event does not carry them (per ev.Has), and sets the Has
// flags of the fields it fills. Fields the event carries are never
// overwritten. The strings it sets do not refer to the databases' memory.
func (db *DB) Enrich(ev *event.Event) {
	need := ^ev.Has & (event.HasCountry | event.HasASN | event.HasGeo)
	if need == 0 {
		return
	}
	ip := ev.SourceIP.Unmap()
	if !routable(ip) {
		return
	}
	recs := db.records()
	defer db.scratch.Put(recs)
	if db.city != nil && need&(event.HasCountry|event.HasGeo) != 0 {
		rec := &recs.city
		if db.city.Lookup(ip).Decode(rec) == nil {
			if need&event.HasCountry != 0 && rec.country != "" {
				ev.Country = string(rec.country)
				ev.Has |= event.HasCountry
			}
			if lat, lon, ok := rec.coords(); ok && need&event.HasGeo != 0 {
				ev.Lat, ev.Lon = lat, lon
				ev.Has |= event.HasGeo
			}
		}
	}
	if db.asn != nil && need&event.HasASN != 0 {
		rec := &recs.asn
		if db.asn.Lookup(ip).Decode(rec) == nil && rec.asn != 0 {
			ev.ASN = rec.asn
			ev.Has |= event.HasASN
		}
	}
}

// routable reports whether ip is worth looking up: GeoIP databases hold
// nothing for the others.
func routable(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsUnspecified() &&
		!ip.IsLinkLocalUnicast() && !ip.IsMulticast()
}

// The records decode only the fields vigil uses, by hand (a sixth faster
// than reflection over tagged structs, and without a string for the
// country): every other value (names in every language, subdivisions,
// postal codes) is skipped unread.

// cityRecord is a City database's record: country.iso_code and
// location.latitude/longitude.
type cityRecord struct {
	country  countryCode
	lat, lon coord
}

// coords returns the location when both coordinates are present and in
// range.
func (r *cityRecord) coords() (lat, lon float64, ok bool) {
	if !r.lat.ok || !r.lon.ok || !(math.Abs(r.lat.v) <= 90) || !(math.Abs(r.lon.v) <= 180) {
		return 0, 0, false
	}
	return r.lat.v, r.lon.v, true
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (r *cityRecord) UnmarshalMaxMindDBCursor(cur mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return eachField(cur, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		switch string(key) {
		case "country":
			return eachField(v, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
				if string(key) == "iso_code" {
					return r.country.UnmarshalMaxMindDBCursor(v)
				}
				return v.Skip()
			})
		case "location":
			return eachField(v, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
				switch string(key) {
				case "latitude":
					return r.lat.UnmarshalMaxMindDBCursor(v)
				case "longitude":
					return r.lon.UnmarshalMaxMindDBCursor(v)
				}
				return v.Skip()
			})
		}
		return v.Skip()
	})
}

// asnRecord is an ASN database's record. Org is read only when withOrg:
// Enrich has no use for it, and it would cost a string.
type asnRecord struct {
	withOrg bool
	asn     uint32
	org     string
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (r *asnRecord) UnmarshalMaxMindDBCursor(cur mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return eachField(cur, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		switch string(key) {
		case "autonomous_system_number":
			n, next, err := v.ReadUint()
			if err != nil {
				return mmdbdata.Cursor{}, err
			}
			if n <= math.MaxUint32 {
				r.asn = uint32(n)
			}
			return next, nil
		case "autonomous_system_organization":
			if r.withOrg {
				s, next, err := v.ReadString()
				r.org = s
				return next, err
			}
		}
		return v.Skip()
	})
}

// eachField walks the map at cur, calling f with each key and a cursor at
// its value; f returns the value's successor. It returns the map's.
func eachField(cur mmdbdata.Cursor, f func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error)) (mmdbdata.Cursor, error) {
	m, err := cur.Map()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	var next mmdbdata.Cursor
	for {
		key, v, ok := m.Next(next)
		if !ok {
			break
		}
		if next, err = f(key, v); err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return m.End()
}

// coord is a coordinate that knows whether the database had it, so that
// a missing location is not taken for (0, 0).
type coord struct {
	v  float64
	ok bool
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (c *coord) UnmarshalMaxMindDBCursor(cur mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	v, next, err := cur.ReadFloat()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	c.v, c.ok = v, true
	return next, nil
}

// countryCode is an ISO 3166-1 alpha-2 code decoded without allocating:
// it is always a substring of the constant alpha2.
type countryCode string

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler. Map keys
// and string values share one encoding, and ReadMapKey reads either as a
// view of the database rather than a copy; the code is then interned.
// Anything but two ASCII letters is taken as unknown.
func (c *countryCode) UnmarshalMaxMindDBCursor(cur mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	b, _, err := cur.ReadMapKey()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	next, err := cur.Skip()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	*c = countryCode(intern(b))
	return next, nil
}

// intern returns the upper-case code for two ASCII letters, a substring
// of alpha2, and "" for anything else.
func intern(b []byte) string {
	if len(b) != 2 {
		return ""
	}
	i, ok0 := letter(b[0])
	j, ok1 := letter(b[1])
	if !ok0 || !ok1 {
		return ""
	}
	k := 2 * (26*i + j)
	return alpha2[k : k+2]
}

func letter(c byte) (int, bool) {
	c |= 0x20 // lower case
	if c < 'a' || c > 'z' {
		return 0, false
	}
	return int(c - 'a'), true
}

// alpha2 holds every pair of upper-case letters, AA to ZZ, in order.
const alpha2 = "" +
	"AAABACADAEAFAGAHAIAJAKALAMANAOAPAQARASATAUAVAWAXAYAZ" +
	"BABBBCBDBEBFBGBHBIBJBKBLBMBNBOBPBQBRBSBTBUBVBWBXBYBZ" +
	"CACBCCCDCECFCGCHCICJCKCLCMCNCOCPCQCRCSCTCUCVCWCXCYCZ" +
	"DADBDCDDDEDFDGDHDIDJDKDLDMDNDODPDQDRDSDTDUDVDWDXDYDZ" +
	"EAEBECEDEEEFEGEHEIEJEKELEMENEOEPEQERESETEUEVEWEXEYEZ" +
	"FAFBFCFDFEFFFGFHFIFJFKFLFMFNFOFPFQFRFSFTFUFVFWFXFYFZ" +
	"GAGBGCGDGEGFGGGHGIGJGKGLGMGNGOGPGQGRGSGTGUGVGWGXGYGZ" +
	"HAHBHCHDHEHFHGHHHIHJHKHLHMHNHOHPHQHRHSHTHUHVHWHXHYHZ" +
	"IAIBICIDIEIFIGIHIIIJIKILIMINIOIPIQIRISITIUIVIWIXIYIZ" +
	"JAJBJCJDJEJFJGJHJIJJJKJLJMJNJOJPJQJRJSJTJUJVJWJXJYJZ" +
	"KAKBKCKDKEKFKGKHKIKJKKKLKMKNKOKPKQKRKSKTKUKVKWKXKYKZ" +
	"LALBLCLDLELFLGLHLILJLKLLLMLNLOLPLQLRLSLTLULVLWLXLYLZ" +
	"MAMBMCMDMEMFMGMHMIMJMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZ" +
	"NANBNCNDNENFNGNHNINJNKNLNMNNNONPNQNRNSNTNUNVNWNXNYNZ" +
	"OAOBOCODOEOFOGOHOIOJOKOLOMONOOOPOQOROSOTOUOVOWOXOYOZ" +
	"PAPBPCPDPEPFPGPHPIPJPKPLPMPNPOPPPQPRPSPTPUPVPWPXPYPZ" +
	"QAQBQCQDQEQFQGQHQIQJQKQLQMQNQOQPQQQRQSQTQUQVQWQXQYQZ" +
	"RARBRCRDRERFRGRHRIRJRKRLRMRNRORPRQRRRSRTRURVRWRXRYRZ" +
	"SASBSCSDSESFSGSHSISJSKSLSMSNSOSPSQSRSSSTSUSVSWSXSYSZ" +
	"TATBTCTDTETFTGTHTITJTKTLTMTNTOTPTQTRTSTTTUTVTWTXTYTZ" +
	"UAUBUCUDUEUFUGUHUIUJUKULUMUNUOUPUQURUSUTUUUVUWUXUYUZ" +
	"VAVBVCVDVEVFVGVHVIVJVKVLVMVNVOVPVQVRVSVTVUVVVWVXVYVZ" +
	"WAWBWCWDWEWFWGWHWIWJWKWLWMWNWOWPWQWRWSWTWUWVWWWXWYWZ" +
	"XAXBXCXDXEXFXGXHXIXJXKXLXMXNXOXPXQXRXSXTXUXVXWXXXYXZ" +
	"YAYBYCYDYEYFYGYHYIYJYKYLYMYNYOYPYQYRYSYTYUYVYWYXYYYZ" +
	"ZAZBZCZDZEZFZGZHZIZJZKZLZMZNZOZPZQZRZSZTZUZVZWZXZYZZ"
