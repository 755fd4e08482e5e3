// Package geoip enriches events with the country, autonomous system and
// location of their source address, from MaxMind-format databases:
// GeoLite2-City and GeoLite2-ASN, or DB-IP's Lite City and ASN databases,
// which use the same field names.
//
// # What is read
//
// A City (or Country) database gives country.iso_code and
// location.latitude/longitude; an ASN database gives
// autonomous_system_number and autonomous_system_organization. Nothing
// else is decoded. In particular registered_country is not used when
// country is missing (anycast and some satellite networks): an unknown
// country stays unknown rather than becoming the registrant's.
//
// # Cost
//
// The files are memory-mapped. A lookup decodes only the fields above
// into small structs; the country code is interned through a constant
// table, so Enrich allocates nothing. Lookup's ASOrg comes from the
// reader's string cache and allocates only on a cache miss.
//
// # Updating databases
//
// A DB is not reloaded in place. To pick up a new release, Open the new
// files, swap the *DB the callers use (an atomic.Pointer), and Close the
// old one once no lookup can still be using it.
package geoip
