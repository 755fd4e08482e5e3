package ingest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vigil-sec/vigil/event"
)

// ErrUnknownFormat is what Detect's errors wrap.
var ErrUnknownFormat = errors.New("cannot detect the log format")

// detectLines is how many lines Detect tries before it gives up.
const detectLines = 5

// Detect tells the format of a log from a sample of its start (after
// decompression): the first non-blank lines, of which it needs one to be
// recognized. A CloudTrail file is recognized by its {"Records": wrapper,
// a JSON format by the keys of its first object, and the combined format
// by a line that decodes as one. The sample may end in the middle of a
// line.
func Detect(sample []byte) (Format, error) {
	tried := 0
	for off := 0; off < len(sample) && tried < detectLines; {
		start, end := off, len(sample)
		if i := bytes.IndexByte(sample[off:], '\n'); i >= 0 {
			end = off + i
		}
		off = end + 1
		line := bytes.TrimLeft(sample[start:end], " \t\r\ufeff")
		if len(bytes.TrimRight(line, " \t\r")) == 0 {
			continue
		}
		tried++
		if line[0] == '{' {
			// A JSON document may span lines (an indented CloudTrail
			// file): look at it from its start on.
			if f, ok := detectJSON(sample[end-len(line):]); ok {
				return f, nil
			}
			continue
		}
		var ev event.Event
		if err := (&nginxDecoder{}).Decode(bytes.Clone(line), &ev); err == nil {
			return NginxCombined, nil
		}
	}
	if tried == 0 {
		return "", fmt.Errorf("%w: the input is empty", ErrUnknownFormat)
	}
	return "", fmt.Errorf("%w from its first lines: give one of %s", ErrUnknownFormat, formatList())
}

// Keys that tell the JSON formats apart.
const (
	kTimestamp = 1 << iota
	kTokenID
	kToken
	kSourceIP
	kEndpoint
	kEventVersion
	kEventSource
	kEventName
	kUserIdentity
	kAction
	kActor
	kActorIP
	kHashedToken
	kRequestID
	kHTTPMethod
	kResourcePath
	kRouteKey
	kRequestTime
	kStartTime
	kResponseCode
	kDownstream
	kOriginPath
	kRemoteAddr
	kURI
	kBodyBytesSent
	kRequestTimeNginx
	kRecords
	kStatusCode
)

var detectKeys = map[string]int{
	"timestamp":   kTimestamp,
	"token_id":    kTokenID,
	"token":       kToken,
	"source_ip":   kSourceIP,
	"endpoint":    kEndpoint,
	"status_code": kStatusCode,

	"eventVersion": kEventVersion,
	"eventSource":  kEventSource,
	"eventName":    kEventName,
	"userIdentity": kUserIdentity,
	"Records":      kRecords,

	"action":       kAction,
	"actor":        kActor,
	"actor_ip":     kActorIP,
	"hashed_token": kHashedToken,

	"requestId":        kRequestID,
	"httpMethod":       kHTTPMethod,
	"resourcePath":     kResourcePath,
	"routeKey":         kRouteKey,
	"requestTime":      kRequestTime,
	"requestTimeEpoch": kRequestTime,

	"start_time":                kStartTime,
	"response_code":             kResponseCode,
	"downstream_remote_address": kDownstream,
	"x-envoy-origin-path":       kOriginPath,

	"remote_addr":     kRemoteAddr,
	"uri":             kURI,
	"request_uri":     kURI,
	"body_bytes_sent": kBodyBytesSent,
	"request_time":    kRequestTimeNginx,
}

// detectJSON tells a JSON format by the top-level keys of the object at
// the start of b, as far as b holds it.
func detectJSON(b []byte) (Format, bool) {
	s := scanner{b: b}
	if s.open() != nil {
		return "", false
	}
	keys := 0
	for first := true; ; {
		key, ok, err := s.member(&first)
		if err != nil || !ok {
			break
		}
		k := detectKeys[string(key)]
		if k == kRecords && first == false && keys == 0 {
			s.ws()
			if s.i < len(s.b) && s.b[s.i] == '[' {
				return CloudTrail, true
			}
		}
		keys |= k
		if s.skip(1) != nil {
			break
		}
	}
	hasAll := func(all int) bool { return keys&all == all }
	hasAny := func(some int) bool { return keys&some != 0 }
	switch {
	case hasAll(kTimestamp|kEndpoint) && hasAny(kTokenID|kToken) || hasAll(kTimestamp|kSourceIP|kStatusCode) && hasAny(kTokenID|kToken):
		return Vigil, true
	case hasAny(kEventVersion|kUserIdentity) || hasAll(kEventSource|kEventName):
		return CloudTrail, true
	case hasAny(kAction) && hasAny(kActor|kActorIP|kHashedToken):
		return GitHub, true
	case hasAny(kResourcePath|kRouteKey) || hasAll(kRequestID) && hasAny(kHTTPMethod|kRequestTime):
		return APIGateway, true
	case hasAny(kStartTime | kResponseCode | kDownstream | kOriginPath):
		return Envoy, true
	case hasAny(kRemoteAddr) && hasAny(kURI|kBodyBytesSent|kRequestTimeNginx):
		return NginxJSON, true
	}
	return "", false
}
