package simulate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/vigil-sec/vigil/event"
)

// eventJSON is the event contract (docs/events.md, event/decode.go): the
// field names vigil reads; absent optional fields are left out.
type eventJSON struct {
	Timestamp    string   `json:"timestamp"`
	RequestID    string   `json:"request_id,omitempty"`
	TokenID      string   `json:"token_id"`
	SourceIP     string   `json:"source_ip"`
	Method       string   `json:"method,omitempty"`
	Endpoint     string   `json:"endpoint"`
	Path         string   `json:"path,omitempty"`
	Status       int      `json:"status_code"`
	LatencyMS    *float64 `json:"latency_ms,omitempty"`
	PayloadBytes *int64   `json:"payload_bytes,omitempty"`
	RequestBytes *int64   `json:"request_bytes,omitempty"`
	Scope        string   `json:"scope_used,omitempty"`
	UserAgent    string   `json:"user_agent,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	Country      string   `json:"country,omitempty"`
	ASN          uint32   `json:"asn,omitempty"`
	Lat          *float64 `json:"lat,omitempty"`
	Lon          *float64 `json:"lon,omitempty"`
}

func toJSON(ev *event.Event) *eventJSON {
	j := &eventJSON{
		Timestamp: time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano),
		TokenID:   ev.TokenID,
		SourceIP:  ev.SourceIP.String(),
		Endpoint:  ev.Endpoint,
		Status:    ev.Status,
	}
	has := func(f event.Field) bool { return ev.Has&f != 0 }
	if has(event.HasRequestID) {
		j.RequestID = ev.RequestID
	}
	if has(event.HasMethod) {
		j.Method = ev.Method
	}
	if has(event.HasPath) {
		j.Path = ev.Path
	}
	if has(event.HasLatency) {
		j.LatencyMS = &ev.LatencyMS
	}
	if has(event.HasPayloadBytes) {
		j.PayloadBytes = &ev.PayloadBytes
	}
	if has(event.HasRequestBytes) {
		j.RequestBytes = &ev.RequestBytes
	}
	if has(event.HasScope) {
		j.Scope = ev.Scope
	}
	if has(event.HasUserAgent) {
		j.UserAgent = ev.UserAgent
	}
	if has(event.HasClientID) {
		j.ClientID = ev.ClientID
	}
	if has(event.HasCountry) {
		j.Country = ev.Country
	}
	if has(event.HasASN) {
		j.ASN = ev.ASN
	}
	if has(event.HasGeo) {
		j.Lat, j.Lon = &ev.Lat, &ev.Lon
	}
	return j
}

type labelJSON struct {
	RequestID string `json:"request_id"`
	Label     string `json:"label"`
	Scenario  string `json:"scenario"`
	TokenID   string `json:"token_id"`
}

// WriteEvents writes the items' events as JSON lines in vigil's event
// contract, in order.
func WriteEvents(w io.Writer, items []Item) error {
	return writeLines(w, items, func(it *Item) any { return toJSON(&it.Event) })
}

// WriteLabels writes the items' labels as JSON lines, in order, one per
// event: {"request_id": …, "label": "owner"|"attacker", "scenario": …,
// "token_id": …}.
func WriteLabels(w io.Writer, items []Item) error {
	return writeLines(w, items, func(it *Item) any {
		return &labelJSON{RequestID: it.Label.RequestID, Label: it.Label.Role.String(), Scenario: it.Label.Scenario,
			TokenID: it.Event.TokenID}
	})
}

func writeLines(w io.Writer, items []Item, conv func(*Item) any) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range items {
		if err := enc.Encode(conv(&items[i])); err != nil {
			return fmt.Errorf("simulate: item %d: %w", i+1, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}
