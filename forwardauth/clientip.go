package forwardauth

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds the X-Forwarded-For walk. Only the entries added
// by trusted proxies and the first untrusted one are ever read, so a longer
// walk means a trusted range sends absurd chains; it stops there.
const maxForwardedHops = 32

// maxAddrLen bounds one address as written in a forwarding header: the
// longest IPv6 address with an IPv4 tail, brackets and a port is 53 bytes;
// zones make room for a little more.
const maxAddrLen = 80

// DefaultTrustedProxies returns the proxies trusted when
// Options.TrustedProxies is empty: loopback only, 127.0.0.0/8 and ::1/128.
// A forward-auth server is normally reached by a gateway on the same host or
// in the same pod; anything wider is a deployment decision, because every
// address in a trusted range may assert any client address and any original
// request.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}
}

// PeerAddr returns the address of r's connection peer (r.RemoteAddr),
// IPv4-mapped IPv6 addresses unmapped and any zone removed. It is invalid
// when RemoteAddr is not an IP address (a Unix socket): such a peer is never
// trusted.
func PeerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return normalize(ap.Addr())
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return normalize(a)
	}
	return netip.Addr{}
}

// ClientIP returns the address of the client that sent r. When the
// connection's peer is not in trusted, it is the peer itself and every
// forwarding header is ignored: anyone can write them. When the peer is
// trusted, X-Forwarded-For is walked from the right (its last entry was
// added by the proxy closest to us), skipping trusted addresses, and the
// first untrusted address is the client; a chain made only of trusted
// addresses gives its leftmost one, and a malformed entry ends the walk at
// the last address read before it. Without X-Forwarded-For the peer is the
// client. trusted is used as given: nil trusts nobody.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	a, _ := ForwardedFor(PeerAddr(r), r.Header.Values("X-Forwarded-For"), trusted)
	return a
}

// ForwardedFor is ClientIP for adapters that have the peer address and the
// X-Forwarded-For header lines (all of them, in order) but no
// *http.Request, such as Envoy's gRPC CheckRequest. ok is false when a
// malformed entry (not an IP address, or beyond the hop limit) ended the
// walk early.
func ForwardedFor(peer netip.Addr, xff []string, trusted []netip.Prefix) (client netip.Addr, ok bool) {
	w := walkForwardedFor(peer, xff, trusted)
	return w.addr, !w.malformed
}

// walk is the result of walking X-Forwarded-For.
type walk struct {
	addr netip.Addr
	// hops is how many entries were read; 0 means the answer is the peer.
	hops      int
	malformed bool
}

func walkForwardedFor(peer netip.Addr, xff []string, trusted []netip.Prefix) walk {
	w := walk{addr: normalize(peer)}
	if !isTrusted(w.addr, trusted) {
		return w
	}
	for i := len(xff) - 1; i >= 0; i-- {
		rest := xff[i]
		for rest != "" {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				entry, rest = rest, ""
			}
			entry = strings.Trim(entry, " \t")
			if entry == "" {
				continue // an empty list element, legal in HTTP lists
			}
			if w.hops == maxForwardedHops {
				w.malformed = true
				return w
			}
			a, ok := parseForwardedAddr(entry)
			if !ok {
				w.malformed = true
				return w
			}
			w.addr, w.hops = a, w.hops+1
			if !isTrusted(a, trusted) {
				return w
			}
		}
	}
	return w
}

// parseForwardedAddr parses one address as forwarding headers write it:
// "192.0.2.1", "2001:db8::1", "[2001:db8::1]", or any of them with a port
// ("192.0.2.1:443", "[2001:db8::1]:443"), as some proxies add.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if s == "" || len(s) > maxAddrLen {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return normalize(a), true
		}
	}
	return netip.Addr{}, false
}

// normalize unmaps IPv4-mapped IPv6 addresses and drops zones, so that
// "::ffff:127.0.0.1" and "fe80::1%eth0" match the prefixes they belong to.
func normalize(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
