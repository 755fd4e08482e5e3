package event

import "net/netip"

// Keys and endpoints of requests that do not bring their own: the inline
// checker (package inline) and the log readers (package ingest) build them
// here, the same way, so that live traffic and a replayed log of it give
// the same credentials and endpoints.

// AppendRoute appends the route template of path to dst: the path without
// its query or fragment, with every segment that looks like an object id
// (IsIDSegment) replaced by {id}. Route templates are what profiles learn
// as endpoints; raw paths with ids feed the enumeration signal. An empty
// path is "/".
//
// Hand-written, for strings and byte slices alike: it runs on every inline
// request and every log line, and must not allocate beyond dst.
func AppendRoute[S ~string | ~[]byte](dst []byte, path S) []byte {
	for i := 0; i < len(path); i++ {
		if path[i] == '?' || path[i] == '#' {
			path = path[:i]
			break
		}
	}
	if len(path) == 0 {
		return append(dst, '/')
	}
	for len(path) > 0 {
		if path[0] == '/' {
			dst = append(dst, '/')
			path = path[1:]
		}
		n := 0
		for n < len(path) && path[n] != '/' {
			n++
		}
		if seg := path[:n]; IsIDSegment(seg) {
			dst = append(dst, "{id}"...)
		} else {
			dst = append(dst, seg...)
		}
		path = path[n:]
	}
	return dst
}

// IsIDSegment reports whether a path segment is an object id rather than a
// name: all digits; or 16 characters or more of letters, digits, '-' and
// '_' with at least one digit (UUIDs, hex ids, Mongo ObjectIds, ULIDs,
// base64url ids). Names such as "accounts" or "v1" are not ids.
func IsIDSegment[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
		default:
			return false
		}
	}
	return digits == len(s) || digits > 0 && len(s) >= 16
}

// AppendAnonymousKey appends the key that requests without a credential
// are scored under: "ip:" and the client's IPv4 address, or its IPv6 /64
// (one host holds a whole /64, and keying on single IPv6 addresses would
// let it make up a fresh profile, and a fresh rate limit, per request);
// "ip:unknown" without an address.
func AppendAnonymousKey(dst []byte, ip netip.Addr) []byte {
	dst = append(dst, "ip:"...)
	switch {
	case !ip.IsValid():
		return append(dst, "unknown"...)
	case ip.Is4() || ip.Is4In6():
		return ip.Unmap().AppendTo(dst)
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.AppendTo(dst)
}
