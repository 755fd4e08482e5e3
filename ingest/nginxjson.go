package ingest

import "github.com/vigil-sec/vigil/event"

// nginxJSONDecoder reads nginx access logs written with the JSON
// log_format of docs/ingest.md.
type nginxJSONDecoder struct {
	base
	s scanner
	r nginxJSONRecord
}

type nginxJSONRecord struct {
	time, addr, method, uri, requestURI, status, sent, reqLen, reqTime,
	ua, reqID, tokenID, clientID, scope field
}

func (d *nginxJSONDecoder) Decode(line []byte, ev *event.Event) error {
	s, r := &d.s, &d.r
	*r = nginxJSONRecord{}
	if err := s.start(line, ev); err != nil {
		return err
	}
	err := s.members(true, 1, func(key []byte) (*field, string, bool, error) {
		switch string(key) {
		case "time":
			return &r.time, "time", false, nil
		case "time_iso8601":
			return &r.time, "time_iso8601", false, nil
		case "time_local":
			return &r.time, "time_local", false, nil
		case "msec":
			return &r.time, "msec", false, nil
		case "remote_addr":
			return &r.addr, "remote_addr", false, nil
		case "method":
			return &r.method, "method", false, nil
		case "request_method":
			return &r.method, "request_method", false, nil
		case "uri":
			return &r.uri, "uri", false, nil
		case "request_uri":
			return &r.requestURI, "request_uri", false, nil
		case "status":
			return &r.status, "status", false, nil
		case "body_bytes_sent":
			return &r.sent, "body_bytes_sent", false, nil
		case "request_length":
			return &r.reqLen, "request_length", false, nil
		case "request_time":
			return &r.reqTime, "request_time", false, nil
		case "http_user_agent":
			return &r.ua, "http_user_agent", false, nil
		case "user_agent":
			return &r.ua, "user_agent", false, nil
		case "request_id":
			return &r.reqID, "request_id", false, nil
		case "token_id":
			return &r.tokenID, "token_id", false, nil
		case "client_id":
			return &r.clientID, "client_id", false, nil
		case "scope":
			return &r.scope, "scope", false, nil
		default:
			// Everything else, an "authorization" logged by mistake
			// included, is skipped unread.
			return nil, "", false, nil
		}
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if err := eventTime(or(r.time.name, "time"), r.time.val, ev); err != nil {
		return err
	}
	if err := addr("remote_addr", r.addr.val, ev); err != nil {
		return err
	}
	if err := status("status", r.status.val, ev); err != nil {
		return err
	}
	switch {
	case r.uri.set():
		if err := d.pathField(r.uri, ev); err != nil {
			return err
		}
	case r.requestURI.set():
		if err := d.pathField(r.requestURI, ev); err != nil {
			return err
		}
	default:
		return missing("uri")
	}
	if err := d.method(r.method.name, r.method.val, ev); err != nil {
		return err
	}
	if err := size("body_bytes_sent", r.sent.val, &ev.PayloadBytes, event.HasPayloadBytes, ev); err != nil {
		return err
	}
	if err := size("request_length", r.reqLen.val, &ev.RequestBytes, event.HasRequestBytes, ev); err != nil {
		return err
	}
	if err := latency("request_time", r.reqTime.val, 1000, ev); err != nil { // seconds
		return err
	}
	if err := d.optional(ev, r.ua, r.reqID, r.clientID, r.scope); err != nil {
		return err
	}
	if r.tokenID.set() {
		return d.tokenID("token_id", "", r.tokenID.val, ev)
	}
	d.anonymous(ev)
	return nil
}

// pathField sets the endpoint and path from a field holding a raw path.
func (d *base) pathField(f field, ev *event.Event) error {
	if f.k != kString {
		return &event.FieldError{Field: f.name, Reason: "expected a string"}
	}
	return d.path(f.name, f.b, ev)
}

// optional sets the optional strings most formats share: user agent,
// request id, client id and scope.
func (d *base) optional(ev *event.Event, ua, reqID, clientID, scope field) error {
	if err := d.str(ua.name, ua.val, &ev.UserAgent, event.HasUserAgent, ev); err != nil {
		return err
	}
	if reqID.set() && reqID.k == kNumber {
		reqID.k = kString // a numeric id is an id all the same
	}
	if err := d.str(reqID.name, reqID.val, &ev.RequestID, event.HasRequestID, ev); err != nil {
		return err
	}
	if clientID.set() && clientID.k == kNumber {
		clientID.k = kString
	}
	if err := d.str(clientID.name, clientID.val, &ev.ClientID, event.HasClientID, ev); err != nil {
		return err
	}
	return d.str(scope.name, scope.val, &ev.Scope, event.HasScope, ev)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
