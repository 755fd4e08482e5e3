package ingest

import "github.com/vigil-sec/vigil/event"

// appendRoute appends the route template of a raw request target to dst:
// the path without query or fragment (and without scheme and host for an
// absolute URL), with each segment that looks like an object id replaced
// by {id}. It behaves like vigil's inline checker (inline/route.go), so a
// replayed log and live traffic learn the same endpoints.
func appendRoute(dst, path []byte) []byte {
	if p, ok := stripOrigin(path); ok {
		path = p
	}
	return event.AppendRoute(dst, path)
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
