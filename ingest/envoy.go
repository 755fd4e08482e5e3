package ingest

import "github.com/vigil-sec/vigil/event"

// envoyDecoder reads Envoy access logs written with the json_format of
// docs/ingest.md. The keys of Envoy Gateway's and Istio's default JSON
// formats are accepted as well where they differ ("x-envoy-origin-path",
// "user-agent", "x-request-id").
type envoyDecoder struct {
	base
	s scanner
	r envoyRecord
}

type envoyRecord struct {
	time, addr, method, path, status, sent, received, duration,
	ua, reqID, tokenID, clientID, scope field
}

func (d *envoyDecoder) Decode(line []byte, ev *event.Event) error {
	s, r := &d.s, &d.r
	*r = envoyRecord{}
	if err := s.start(line, ev); err != nil {
		return err
	}
	err := s.members(true, 1, func(key []byte) (*field, string, bool, error) {
		switch string(key) {
		case "start_time":
			return &r.time, "start_time", false, nil
		case "downstream_remote_address":
			return &r.addr, "downstream_remote_address", false, nil
		case "method":
			return &r.method, "method", false, nil
		case ":method":
			return &r.method, ":method", false, nil
		case "path":
			return &r.path, "path", false, nil
		case "x-envoy-origin-path":
			return &r.path, "x-envoy-origin-path", false, nil
		case ":path":
			return &r.path, ":path", false, nil
		case "response_code":
			return &r.status, "response_code", false, nil
		case "bytes_sent":
			return &r.sent, "bytes_sent", false, nil
		case "bytes_received":
			return &r.received, "bytes_received", false, nil
		case "duration":
			return &r.duration, "duration", false, nil
		case "user_agent":
			return &r.ua, "user_agent", false, nil
		case "user-agent":
			return &r.ua, "user-agent", false, nil
		case "request_id":
			return &r.reqID, "request_id", false, nil
		case "x-request-id":
			return &r.reqID, "x-request-id", false, nil
		case "token_id":
			return &r.tokenID, "token_id", false, nil
		case "x-vigil-token-id":
			return &r.tokenID, "x-vigil-token-id", false, nil
		case "client_id":
			return &r.clientID, "client_id", false, nil
		case "scope":
			return &r.scope, "scope", false, nil
		default:
			// x_forwarded_for, authority, route_name and the rest.
			return nil, "", false, nil
		}
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if err := eventTime("start_time", r.time.val, ev); err != nil {
		return err
	}
	if err := addr("downstream_remote_address", r.addr.val, ev); err != nil {
		return err
	}
	if err := status("response_code", r.status.val, ev); err != nil {
		return err
	}
	if !r.path.set() {
		return missing("path")
	}
	if err := d.pathField(r.path, ev); err != nil {
		return err
	}
	if err := d.method(r.method.name, r.method.val, ev); err != nil {
		return err
	}
	if err := size("bytes_sent", r.sent.val, &ev.PayloadBytes, event.HasPayloadBytes, ev); err != nil {
		return err
	}
	if err := size("bytes_received", r.received.val, &ev.RequestBytes, event.HasRequestBytes, ev); err != nil {
		return err
	}
	if err := latency("duration", r.duration.val, 1, ev); err != nil {
		return err
	}
	if err := d.optional(ev, r.ua, r.reqID, r.clientID, r.scope); err != nil {
		return err
	}
	if r.tokenID.set() {
		return d.tokenID(r.tokenID.name, "", r.tokenID.val, ev)
	}
	d.anonymous(ev)
	return nil
}
