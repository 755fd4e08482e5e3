package ingest

// appendRoute appends the route template of a raw request target to dst:
// the path without query or fragment (and without scheme and host for an
// absolute URL), with each segment that looks like an object id replaced
// by {id}. It behaves like vigil's inline checker (inline/route.go), so a
// replayed log and live traffic learn the same endpoints.
func appendRoute(dst, path []byte) []byte {
	for i, c := range path {
		if c == '?' || c == '#' {
			path = path[:i]
			break
		}
	}
	if p, ok := stripOrigin(path); ok {
		path = p
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
		if seg := path[:n]; isID(seg) {
			dst = append(dst, "{id}"...)
		} else {
			dst = append(dst, seg...)
		}
		path = path[n:]
	}
	return dst
}

// stripOrigin returns the path of an absolute URL ("http://host/x" → "/x").
func stripOrigin(b []byte) ([]byte, bool) {
	var rest []byte
	switch {
	case len(b) >= 7 && equalFold(b[:7], "http://"):
		rest = b[7:]
	case len(b) >= 8 && equalFold(b[:8], "https://"):
		rest = b[8:]
	default:
		return nil, false
	}
	for i, c := range rest {
		if c == '/' {
			return rest[i:], true
		}
	}
	return nil, true
}

// isID reports whether a path segment names an object rather than a
// resource: only digits; or 16 characters or more of letters, digits, '-'
// and '_' with at least one digit (UUIDs, hex ids, ObjectIds, ULIDs).
func isID(seg []byte) bool {
	if len(seg) == 0 {
		return false
	}
	digits := 0
	for _, c := range seg {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
		default:
			return false
		}
	}
	return digits == len(seg) || digits > 0 && len(seg) >= 16
}
