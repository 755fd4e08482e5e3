// Package event defines vigil's telemetry record: one Event per API request,
// keyed on the credential that made it, and its JSON decoder.
//
// The raw credential never lives in an Event. When a record carries the raw
// `token`, the decoder fingerprints it with a keyed HMAC-SHA256 while it is
// still a byte range of the input, wipes those bytes, and keeps only the
// fingerprint in TokenID. See docs/events.md for the contract.
package event

import (
	"net/netip"
	"time"
	"unsafe"
)

// Field is a bit set naming the optional fields an Event carries.
type Field uint16

// Optional fields. Required fields (timestamp, source_ip, endpoint,
// status_code, token_id or token) are always present in a decoded Event.
const (
	HasRequestID Field = 1 << iota
	HasMethod
	HasPath
	HasScope
	HasLatency
	HasPayloadBytes
	HasRequestBytes
	HasUserAgent
	HasClientID
	HasCountry
	HasASN
	HasGeo // both lat and lon
)

// Event is one API request as vigil sees it.
//
// Strings may point into memory owned by the Decoder that produced them;
// consumers that keep an Event beyond the batch it came in must copy them.
// The engine never keeps strings: profiles store hashes.
type Event struct {
	// The fields the engine reads for every event come first, so that
	// they share one cache line.
	Time         int64 // Unix nanoseconds, UTC
	PayloadBytes int64 // response body size
	LatencyMS    float64
	Status       int
	// Keys are hashes of the event's values as profiles store them. The
	// decode stage fills them (profile.Keyer) so that the one sequential
	// stage, the engine, need not; the engine fills them if it must.
	Keys Keys
	Has  Field

	TokenID   string
	SourceIP  netip.Addr
	Endpoint  string // route template, e.g. /v1/accounts/{id}
	RequestID string
	Method    string
	Path      string // raw path with object ids
	Scope     string
	UserAgent string
	ClientID  string
	Country   string // ISO 3166-1 alpha-2, upper case
	// RequestBytes is the request body size.
	RequestBytes int64
	ASN          uint32
	Lat, Lon     float64
}

// Keys holds one 32-bit hash per profile dimension (0: no value).
type Keys struct {
	V   [6]uint32
	Set bool
	// Hosting: the source ASN belongs to a hosting or cloud provider.
	Hosting bool
	// PathBit is 1 + a 6-bit hash of the request path, 0 without a path.
	PathBit uint8
	// Browser: the user agent is a browser's (a person, not a service).
	Browser bool
}

// Timestamp returns the event time as a time.Time in UTC.
func (e *Event) Timestamp() time.Time { return time.Unix(0, e.Time).UTC() }

// IsAuthFailure reports whether the request was refused for authentication
// or authorization (401 or 403).
func (e *Event) IsAuthFailure() bool { return e.Status == 401 || e.Status == 403 }

// Detach copies the event's strings to the end of arena and points the
// event at the copies, so that it no longer refers to the memory of
// whoever filled it (an inline server's request buffers, which are
// reused once the request is answered). It returns the grown arena.
func (e *Event) Detach(arena []byte) []byte {
	for _, s := range [...]*string{&e.TokenID, &e.Endpoint, &e.RequestID, &e.Method, &e.Path, &e.Scope, &e.UserAgent, &e.ClientID, &e.Country} {
		if len(*s) == 0 {
			continue
		}
		if cap(arena)-len(arena) < len(*s) {
			// A new block: strings already copied keep the old one alive.
			arena = make([]byte, 0, max(4096, 2*cap(arena), len(*s)))
		}
		start := len(arena)
		arena = append(arena, *s...)
		*s = unsafe.String(&arena[start], len(*s))
	}
	return arena
}
