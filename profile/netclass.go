package profile

// IsHostingASN reports whether asn belongs to a large hosting or cloud
// provider: where stolen tokens are replayed from (rented servers, VPN exits
// run in data centres), and where a person's own browser or phone never is.
// The list is short on purpose — the providers that dominate abuse reports
// and cloud egress — and a miss only means the smaller, unweighted novelty
// score. Integrations that really run in a cloud establish its ASN like any
// other network and are then judged against it.
func IsHostingASN(asn uint32) bool {
	switch asn {
	case 16509, 14618, 8987, // Amazon (AWS)
		15169, 396982, 19527, // Google, Google Cloud
		8075, 8068, 8069, // Microsoft (Azure)
		31898,         // Oracle Cloud
		14061,         // DigitalOcean
		16276,         // OVH
		24940, 213230, // Hetzner
		63949,        // Akamai (Linode)
		20473,        // Vultr (Choopa)
		51167,        // Contabo
		12876,        // Scaleway
		60781, 16265, // Leaseweb
		9009,         // M247 (VPN exits)
		45102, 37963, // Alibaba Cloud
		132203,                // Tencent Cloud
		13335,                 // Cloudflare (WARP, Workers)
		62240,                 // Clouvider
		36352,                 // ColoCrossing
		53667,                 // FranTech (BuyVM)
		40021,                 // Contabo US / Nubes
		212238, 60068, 202425, // Datacamp (CDN77), IP Volume
		47583: // Hostinger
		return true
	}
	return false
}
