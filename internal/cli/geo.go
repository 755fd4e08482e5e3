package cli

import (
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/replay"
)

// enricher opens the configuration's GeoIP databases (geoip.city_db,
// geoip.asn_db) for the log commands, which then give events without
// geography a country, a location and an ASN. It returns nil and a no-op
// close when none is configured.
func enricher(parts *app.Parts) (replay.Enricher, func(), error) {
	db, err := parts.OpenGeoIP()
	if err != nil || db == nil {
		return nil, func() {}, err
	}
	return db, func() { db.Close() }, nil
}
