package ingest

import (
	"fmt"
	"strings"

	"github.com/vigil-sec/vigil/event"
)

// Format names a kind of log that ingest reads.
type Format string

// The formats. docs/ingest.md documents each: the log configuration, a
// sample line and the mapping of its fields to the event.
const (
	Vigil         Format = "vigil"      // vigil's own JSON events (docs/events.md)
	NginxCombined Format = "nginx"      // nginx's and Apache's "combined" (and "common") access log
	NginxJSON     Format = "nginx-json" // nginx access log in the log_format of docs/ingest.md
	Envoy         Format = "envoy"      // Envoy JSON access log (json_format)
	APIGateway    Format = "apigateway" // AWS API Gateway JSON access log, REST or HTTP API
	CloudTrail    Format = "cloudtrail" // AWS CloudTrail records
	GitHub        Format = "github"     // GitHub audit-log events (API request events)
)

// Formats returns every format, in the order of the documentation.
func Formats() []Format {
	return []Format{Vigil, NginxCombined, NginxJSON, Envoy, APIGateway, CloudTrail, GitHub}
}

// formatList is "vigil, nginx, …" for messages.
func formatList() string {
	var b strings.Builder
	for i, f := range Formats() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(f))
	}
	return b.String()
}

// ParseFormat returns the format named s. Its error lists the formats.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown log format %q: give one of %s", s, formatList())
}

// Decoder decodes one line of a log into an event, which it resets first.
// It has the shape of replay.Decoder.
//
// The event's strings point into memory the decoder owns and never
// overwrites, so an event stays valid after its line is reused. Decode may
// change line: it wipes a credential that turns out to be a raw secret.
// Errors are *event.FieldError (naming the field at fault, in the log's
// own words) or *event.SyntaxError, and never quote a value of the line.
//
// A Decoder is not safe for concurrent use: give each goroutine its own.
type Decoder interface {
	Decode(line []byte, ev *event.Event) error
}

// NewDecoder returns a Decoder for f. fp fingerprints credentials that
// turn out to be raw secrets (and vigil's own `token` field); it may be
// nil, and then such a line is an error.
func NewDecoder(f Format, fp *event.Fingerprinter) (Decoder, error) {
	b := base{fp: fp}
	switch f {
	case Vigil:
		return event.NewDecoder(fp), nil
	case NginxCombined:
		return &nginxDecoder{base: b}, nil
	case NginxJSON:
		return &nginxJSONDecoder{base: b}, nil
	case Envoy:
		return &envoyDecoder{base: b}, nil
	case APIGateway:
		return &apiGatewayDecoder{base: b}, nil
	case CloudTrail:
		return &cloudTrailDecoder{base: b}, nil
	case GitHub:
		return &gitHubDecoder{base: b}, nil
	}
	return nil, fmt.Errorf("unknown log format %q: give one of %s", f, formatList())
}

// Interface guards.
var (
	_ Decoder = (*event.Decoder)(nil)
	_ Decoder = (*nginxDecoder)(nil)
	_ Decoder = (*nginxJSONDecoder)(nil)
	_ Decoder = (*envoyDecoder)(nil)
	_ Decoder = (*apiGatewayDecoder)(nil)
	_ Decoder = (*cloudTrailDecoder)(nil)
	_ Decoder = (*gitHubDecoder)(nil)
)
