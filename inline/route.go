package inline

import "strings"

// appendRoute appends the route template of path to dst: the path without
// its query, with every segment that looks like an object id replaced by
// {id}. Route templates are what profiles learn as endpoints; raw paths
// with ids feed the enumeration signal. A gateway that knows its routes
// passes them (gate.Request.Route) and this is not used.
//
// Hand-written: it runs on every inline request and must not allocate
// beyond dst.
func appendRoute(dst []byte, path string) []byte {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return append(dst, '/')
	}
	for len(path) > 0 {
		seg := path
		rest := ""
		if i := strings.IndexByte(path[1:], '/'); i >= 0 {
			seg, rest = path[:i+1], path[i+1:]
		}
		// seg starts with '/' unless the path was relative.
		body := strings.TrimPrefix(seg, "/")
		if len(seg) > len(body) {
			dst = append(dst, '/')
		}
		if isID(body) {
			dst = append(dst, "{id}"...)
		} else {
			dst = append(dst, body...)
		}
		path = rest
	}
	return dst
}

// isID reports whether a path segment is an object id rather than a name:
// all digits; a UUID; or 16 or more characters of letters, digits, '-' and
// '_' with at least one digit (hex ids, Mongo ObjectIds, ULIDs, base64url
// ids). Names such as "accounts" or "v1" are not ids.
func isID(s string) bool {
	if s == "" {
		return false
	}
	digits, other := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
			other++
		default:
			return false
		}
	}
	if other == 0 {
		return true
	}
	return len(s) >= 16 && digits > 0
}
