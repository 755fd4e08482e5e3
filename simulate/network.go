package simulate

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// NetKind is the kind of network a request comes from.
type NetKind uint8

const (
	Residential NetKind = iota // home broadband
	Mobile                     // mobile carrier behind carrier-grade NAT
	Hosting                    // cloud and hosting providers, VPN exits
	Corporate                  // company offices
)

var netKindNames = [...]string{"residential", "mobile", "hosting", "corporate"}

func (k NetKind) String() string {
	if int(k) < len(netKindNames) {
		return netKindNames[k]
	}
	return "unknown"
}

// Network is an example network: one operator's presence in one place.
//
// Prefixes are either documentation ranges (RFC 5737, RFC 3849; the
// corporate offices, with documentation ASNs from RFC 5398) or plausible
// public ranges of the named operator. They are illustrations for
// simulated traffic, not a geolocation database.
type Network struct {
	Name     string
	Kind     NetKind
	ASN      uint32
	Country  string // ISO 3166-1 alpha-2
	City     string
	Lat, Lon float64
	Prefixes []netip.Prefix
	// Lease is how long a subscriber keeps one address (residential lines
	// that reconnect daily); 0 means for the whole simulation.
	Lease time.Duration
}

// Label names the network for reports: "Deutsche Telekom AS3320 DE".
func (n *Network) Label() string {
	return n.Name + " AS" + itoa(int(n.ASN)) + " " + n.Country
}

// Addr draws an address inside one of the network's prefixes, avoiding the
// network and broadcast addresses of each /24.
func (n *Network) Addr(r *rand.Rand) netip.Addr {
	p := n.Prefixes[r.IntN(len(n.Prefixes))]
	b := p.Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	// Randomize the host bits.
	var rnd [16]byte
	binary.BigEndian.PutUint64(rnd[0:], r.Uint64())
	binary.BigEndian.PutUint64(rnd[8:], r.Uint64())
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		bits := min(host, 8)
		mask := byte(1<<bits - 1)
		b[i] = b[i]&^mask | rnd[i]&mask
		host -= bits
	}
	if len(b) == 4 {
		// Avoid the first and last address of the /24, or of a smaller
		// prefix: network and broadcast addresses are never clients.
		bits := min(32-p.Bits(), 8)
		mask := byte(1<<bits - 1)
		if h := b[3] & mask; h == 0 || h == mask {
			b[3] = b[3]&^mask | byte(1+r.IntN(int(mask)-1))
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Geo returns the location a geolocation database would give addr: the
// network's city, shifted by a few kilometres that depend only on the
// address.
func (n *Network) Geo(addr netip.Addr) (lat, lon float64) {
	b := addr.As16()
	h := binary.BigEndian.Uint64(b[8:]) ^ binary.BigEndian.Uint64(b[:8])*0x9e3779b97f4a7c15
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	dlat := (float64(h&0xffff)/0xffff - 0.5) * 0.08
	dlon := (float64(h>>16&0xffff)/0xffff - 0.5) * 0.12
	return round4(clamp(n.Lat+dlat, -90, 90)), round4(clamp(n.Lon+dlon, -180, 180))
}

func clamp(x, lo, hi float64) float64 { return max(lo, min(hi, x)) }

// Networks returns a copy of the built-in table of example networks.
func Networks() []Network {
	out := make([]Network, len(networkTable))
	for i, n := range networkTable {
		out[i] = n
		out[i].Prefixes = slices.Clone(n.Prefixes)
	}
	return out
}

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		out[i] = netip.MustParsePrefix(v)
	}
	return out
}

// networkTable is read-only: Networks hands out copies and the generator
// only reads it. It is the first table followed by the networks the
// evaluation archetypes added; the first three attacks draw only from the
// first table (netIndex.base), so that their traffic, and the demo's, stay
// what they were.
var networkTable = slices.Concat(coreNetworks, moreNetworks)

var coreNetworks = []Network{
	// Residential broadband.
	{Name: "Deutsche Telekom", Kind: Residential, ASN: 3320, Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405,
		Prefixes: pfx("79.192.0.0/10", "91.32.0.0/11", "217.224.0.0/11"), Lease: 24 * time.Hour},
	{Name: "Vodafone Kabel", Kind: Residential, ASN: 3209, Country: "DE", City: "Munich", Lat: 48.137, Lon: 11.575,
		Prefixes: pfx("88.64.0.0/12", "2a02:8070::/32")},
	{Name: "Comcast", Kind: Residential, ASN: 7922, Country: "US", City: "Philadelphia", Lat: 39.952, Lon: -75.165,
		Prefixes: pfx("73.0.0.0/8", "98.192.0.0/10")},
	{Name: "Charter Spectrum", Kind: Residential, ASN: 20115, Country: "US", City: "New York", Lat: 40.713, Lon: -74.006,
		Prefixes: pfx("66.108.0.0/15", "72.229.0.0/16")},
	{Name: "BT", Kind: Residential, ASN: 2856, Country: "GB", City: "London", Lat: 51.507, Lon: -0.128,
		Prefixes: pfx("86.128.0.0/10", "81.128.0.0/12")},
	{Name: "Orange", Kind: Residential, ASN: 3215, Country: "FR", City: "Paris", Lat: 48.857, Lon: 2.352,
		Prefixes: pfx("90.0.0.0/9", "86.192.0.0/11")},
	{Name: "Movistar", Kind: Residential, ASN: 3352, Country: "ES", City: "Madrid", Lat: 40.417, Lon: -3.704,
		Prefixes: pfx("83.32.0.0/11")},
	{Name: "Ziggo", Kind: Residential, ASN: 33915, Country: "NL", City: "Utrecht", Lat: 52.091, Lon: 5.122,
		Prefixes: pfx("84.24.0.0/13")},
	{Name: "Rogers", Kind: Residential, ASN: 812, Country: "CA", City: "Toronto", Lat: 43.653, Lon: -79.383,
		Prefixes: pfx("99.224.0.0/11")},
	{Name: "Vivo", Kind: Residential, ASN: 26599, Country: "BR", City: "São Paulo", Lat: -23.551, Lon: -46.633,
		Prefixes: pfx("177.32.0.0/12", "189.96.0.0/13")},
	{Name: "Turk Telekom", Kind: Residential, ASN: 9121, Country: "TR", City: "Istanbul", Lat: 41.008, Lon: 28.978,
		Prefixes: pfx("85.96.0.0/12")},
	{Name: "VNPT", Kind: Residential, ASN: 45899, Country: "VN", City: "Hanoi", Lat: 21.028, Lon: 105.854,
		Prefixes: pfx("113.160.0.0/11")},
	{Name: "Telkom Indonesia", Kind: Residential, ASN: 7713, Country: "ID", City: "Jakarta", Lat: -6.2, Lon: 106.817,
		Prefixes: pfx("36.64.0.0/11")},
	{Name: "PLDT", Kind: Residential, ASN: 9299, Country: "PH", City: "Manila", Lat: 14.599, Lon: 120.984,
		Prefixes: pfx("112.198.0.0/16", "122.2.0.0/15")},
	{Name: "Telstra", Kind: Residential, ASN: 1221, Country: "AU", City: "Sydney", Lat: -33.869, Lon: 151.209,
		Prefixes: pfx("58.160.0.0/12")},
	{Name: "JioFiber", Kind: Residential, ASN: 55836, Country: "IN", City: "Mumbai", Lat: 19.076, Lon: 72.878,
		Prefixes: pfx("49.32.0.0/11")},

	// Mobile carriers: large carrier-grade NAT pools, a new public
	// address (often a new prefix) for each session.
	{Name: "T-Mobile US", Kind: Mobile, ASN: 21928, Country: "US", City: "Bellevue", Lat: 47.61, Lon: -122.2,
		Prefixes: pfx("172.56.0.0/14", "2607:fb90::/32")},
	{Name: "Verizon Wireless", Kind: Mobile, ASN: 6167, Country: "US", City: "Basking Ridge", Lat: 40.706, Lon: -74.549,
		Prefixes: pfx("174.192.0.0/10", "2600:1000::/28")},
	{Name: "Telefónica O2", Kind: Mobile, ASN: 6805, Country: "DE", City: "Hamburg", Lat: 53.551, Lon: 9.994,
		Prefixes: pfx("176.0.0.0/13", "2a02:3030::/32")},
	{Name: "EE", Kind: Mobile, ASN: 12576, Country: "GB", City: "Birmingham", Lat: 52.486, Lon: -1.89,
		Prefixes: pfx("31.94.0.0/15", "2a01:4c8::/32")},

	// Cloud, hosting and VPN exits.
	{Name: "AWS us-east-1", Kind: Hosting, ASN: 16509, Country: "US", City: "Ashburn", Lat: 39.044, Lon: -77.487,
		Prefixes: pfx("3.80.0.0/12", "54.144.0.0/14")},
	{Name: "AWS eu-central-1", Kind: Hosting, ASN: 16509, Country: "DE", City: "Frankfurt", Lat: 50.11, Lon: 8.682,
		Prefixes: pfx("3.120.0.0/14", "18.184.0.0/15")},
	{Name: "AWS eu-west-2", Kind: Hosting, ASN: 16509, Country: "GB", City: "London", Lat: 51.507, Lon: -0.128,
		Prefixes: pfx("3.8.0.0/14", "18.130.0.0/16")},
	{Name: "DigitalOcean AMS3", Kind: Hosting, ASN: 14061, Country: "NL", City: "Amsterdam", Lat: 52.37, Lon: 4.895,
		Prefixes: pfx("188.166.0.0/17", "178.62.0.0/18")},
	{Name: "DigitalOcean SGP1", Kind: Hosting, ASN: 14061, Country: "SG", City: "Singapore", Lat: 1.29, Lon: 103.85,
		Prefixes: pfx("128.199.0.0/17", "139.59.224.0/19")},
	{Name: "DigitalOcean NYC3", Kind: Hosting, ASN: 14061, Country: "US", City: "New York", Lat: 40.713, Lon: -74.006,
		Prefixes: pfx("159.203.0.0/16", "104.131.0.0/16")},
	{Name: "OVH", Kind: Hosting, ASN: 16276, Country: "FR", City: "Roubaix", Lat: 50.69, Lon: 3.174,
		Prefixes: pfx("51.38.0.0/16", "54.36.0.0/16")},
	{Name: "Hetzner", Kind: Hosting, ASN: 24940, Country: "DE", City: "Falkenstein", Lat: 50.478, Lon: 12.371,
		Prefixes: pfx("88.198.0.0/16", "5.9.0.0/16")},
	{Name: "M247 VPN exit", Kind: Hosting, ASN: 9009, Country: "US", City: "New York", Lat: 40.713, Lon: -74.006,
		Prefixes: pfx("146.70.171.0/24", "146.70.172.0/24")},
	{Name: "M247 VPN exit", Kind: Hosting, ASN: 9009, Country: "DE", City: "Frankfurt", Lat: 50.11, Lon: 8.682,
		Prefixes: pfx("146.70.107.0/24", "146.70.108.0/24")},
	{Name: "M247 VPN exit", Kind: Hosting, ASN: 9009, Country: "GB", City: "London", Lat: 51.507, Lon: -0.128,
		Prefixes: pfx("146.70.83.0/24", "146.70.84.0/24")},

	// Company offices: documentation prefixes and ASNs.
	{Name: "Example Corp Berlin", Kind: Corporate, ASN: 64500, Country: "DE", City: "Berlin", Lat: 52.507, Lon: 13.39,
		Prefixes: pfx("203.0.113.0/26")},
	{Name: "Example Corp New York", Kind: Corporate, ASN: 64501, Country: "US", City: "New York", Lat: 40.741, Lon: -73.99,
		Prefixes: pfx("198.51.100.0/26")},
	{Name: "Example Corp London", Kind: Corporate, ASN: 64502, Country: "GB", City: "London", Lat: 51.515, Lon: -0.09,
		Prefixes: pfx("192.0.2.0/26")},
}

// moreNetworks are the networks of the evaluation archetypes: more cloud
// regions (a service in three continents, CI runner pools, uptime probes),
// another VPN provider, and broadband where travellers stay.
var moreNetworks = []Network{
	{Name: "AWS eu-west-1", Kind: Hosting, ASN: 16509, Country: "IE", City: "Dublin", Lat: 53.35, Lon: -6.26,
		Prefixes: pfx("34.240.0.0/13", "52.208.0.0/13")},
	{Name: "AWS ap-southeast-1", Kind: Hosting, ASN: 16509, Country: "SG", City: "Singapore", Lat: 1.352, Lon: 103.82,
		Prefixes: pfx("13.228.0.0/15", "18.136.0.0/16")},
	{Name: "Azure East US", Kind: Hosting, ASN: 8075, Country: "US", City: "Boydton", Lat: 36.668, Lon: -78.388,
		Prefixes: pfx("20.42.0.0/16", "40.76.0.0/14", "52.224.0.0/14")},
	{Name: "Azure West US 2", Kind: Hosting, ASN: 8075, Country: "US", City: "Quincy", Lat: 47.234, Lon: -119.852,
		Prefixes: pfx("20.57.0.0/16", "52.175.192.0/18", "4.155.0.0/16")},
	{Name: "Azure Central US", Kind: Hosting, ASN: 8075, Country: "US", City: "Des Moines", Lat: 41.586, Lon: -93.625,
		Prefixes: pfx("52.176.0.0/14", "13.89.0.0/16")},
	{Name: "Google Cloud us-central1", Kind: Hosting, ASN: 396982, Country: "US", City: "Council Bluffs", Lat: 41.262, Lon: -95.861,
		Prefixes: pfx("34.16.0.0/12", "35.184.0.0/13")},
	{Name: "Datacamp VPN exit", Kind: Hosting, ASN: 60068, Country: "NL", City: "Amsterdam", Lat: 52.37, Lon: 4.895,
		Prefixes: pfx("185.153.176.0/22", "84.17.46.0/24")},
	{Name: "Datacamp VPN exit", Kind: Hosting, ASN: 60068, Country: "CH", City: "Zurich", Lat: 47.377, Lon: 8.542,
		Prefixes: pfx("84.17.53.0/24", "156.146.62.0/24")},
	{Name: "Singtel", Kind: Residential, ASN: 7473, Country: "SG", City: "Singapore", Lat: 1.3, Lon: 103.84,
		Prefixes: pfx("116.14.0.0/15", "220.255.0.0/17")},
	{Name: "NTT OCN", Kind: Residential, ASN: 4713, Country: "JP", City: "Tokyo", Lat: 35.69, Lon: 139.69,
		Prefixes: pfx("153.128.0.0/10", "114.148.0.0/14")},
	{Name: "Virgin Media", Kind: Residential, ASN: 5089, Country: "GB", City: "Manchester", Lat: 53.48, Lon: -2.245,
		Prefixes: pfx("82.0.0.0/12", "86.0.0.0/12")},
	{Name: "Free", Kind: Residential, ASN: 12322, Country: "FR", City: "Paris", Lat: 48.857, Lon: 2.352,
		Prefixes: pfx("82.64.0.0/10")},
}

// netIndex finds networks of the table by name and country.
type netIndex struct {
	all  []*Network
	base *netIndex // the first table only
}

func newNetIndex() *netIndex {
	x := &netIndex{base: &netIndex{}}
	for i := range networkTable {
		x.all = append(x.all, &networkTable[i])
	}
	x.base.all = x.all[:len(coreNetworks)]
	return x
}

// get returns the network of that name in that country; it panics on a
// name missing from the table, which is a bug in this package caught by
// its tests.
func (x *netIndex) get(name, country string) *Network {
	for _, n := range x.all {
		if n.Name == name && n.Country == country {
			return n
		}
	}
	panic("simulate: no network " + name + " in " + country)
}

// filter returns the networks for which keep is true, in table order.
func (x *netIndex) filter(keep func(*Network) bool) []*Network {
	var out []*Network
	for _, n := range x.all {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

// Locale is where a credential's owner lives and works: a time zone and
// the networks available there.
type Locale struct {
	Country     string
	City        string
	Zone        *time.Location
	Residential []*Network
	Mobile      []*Network
	Office      *Network
	Cloud       *Network // the nearest cloud region
}

func locales(x *netIndex) []*Locale {
	return []*Locale{
		{Country: "DE", City: "Berlin", Zone: time.FixedZone("CET", 3600),
			Residential: []*Network{x.get("Deutsche Telekom", "DE"), x.get("Vodafone Kabel", "DE")},
			Mobile:      []*Network{x.get("Telefónica O2", "DE")},
			Office:      x.get("Example Corp Berlin", "DE"),
			Cloud:       x.get("AWS eu-central-1", "DE")},
		{Country: "US", City: "New York", Zone: time.FixedZone("EST", -5*3600),
			Residential: []*Network{x.get("Charter Spectrum", "US"), x.get("Comcast", "US")},
			Mobile:      []*Network{x.get("T-Mobile US", "US"), x.get("Verizon Wireless", "US")},
			Office:      x.get("Example Corp New York", "US"),
			Cloud:       x.get("AWS us-east-1", "US")},
		{Country: "GB", City: "London", Zone: time.FixedZone("GMT", 0),
			Residential: []*Network{x.get("BT", "GB")},
			Mobile:      []*Network{x.get("EE", "GB")},
			Office:      x.get("Example Corp London", "GB"),
			Cloud:       x.get("AWS eu-west-2", "GB")},
	}
}
