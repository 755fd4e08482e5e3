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
	if err := s.open(); err != nil {
		return err
	}
	for first := true; ; {
		key, ok, err := s.member(&first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "start_time":
			err = s.read(&r.time, "start_time")
		case "downstream_remote_address":
			err = s.read(&r.addr, "downstream_remote_address")
		case "method":
			err = s.read(&r.method, "method")
		case ":method":
			err = s.read(&r.method, ":method")
		case "path":
			err = s.read(&r.path, "path")
		case "x-envoy-origin-path":
			err = s.read(&r.path, "x-envoy-origin-path")
		case ":path":
			err = s.read(&r.path, ":path")
		case "response_code":
			err = s.read(&r.status, "response_code")
		case "bytes_sent":
			err = s.read(&r.sent, "bytes_sent")
		case "bytes_received":
			err = s.read(&r.received, "bytes_received")
		case "duration":
			err = s.read(&r.duration, "duration")
		case "user_agent":
			err = s.read(&r.ua, "user_agent")
		case "user-agent":
			err = s.read(&r.ua, "user-agent")
		case "request_id":
			err = s.read(&r.reqID, "request_id")
		case "x-request-id":
			err = s.read(&r.reqID, "x-request-id")
		case "token_id":
			err = s.read(&r.tokenID, "token_id")
		case "x-vigil-token-id":
			err = s.read(&r.tokenID, "x-vigil-token-id")
		case "client_id":
			err = s.read(&r.clientID, "client_id")
		case "scope":
			err = s.read(&r.scope, "scope")
		default:
			// x_forwarded_for, authority, route_name and the rest.
			err = s.skip(1)
		}
		if err != nil {
			return err
		}
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
