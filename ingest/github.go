package ingest

import "github.com/vigil-sec/vigil/event"

// gitHubDecoder reads GitHub audit-log events as the audit-log REST API
// and audit-log streaming deliver them, one JSON object a line. API
// request events carry the request (request_method, route or url_path,
// status_code); other events are taken as the action they record.
type gitHubDecoder struct {
	base
	s scanner
	r gitHubRecord
}

type gitHubRecord struct {
	timestamp, createdAt, action, actor, ip, country, hashedToken, tokenID,
	method, route, urlPath, status, ua, reqID, docID field
}

func (d *gitHubDecoder) Decode(line []byte, ev *event.Event) error {
	s, r := &d.s, &d.r
	*r = gitHubRecord{}
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
		case "@timestamp":
			err = s.read(&r.timestamp, "@timestamp")
		case "created_at":
			err = s.read(&r.createdAt, "created_at")
		case "action":
			err = s.read(&r.action, "action")
		case "actor":
			err = s.read(&r.actor, "actor")
		case "actor_ip":
			err = s.read(&r.ip, "actor_ip")
		case "hashed_token":
			err = s.read(&r.hashedToken, "hashed_token")
		case "token_id":
			err = s.read(&r.tokenID, "token_id")
		case "request_method":
			err = s.read(&r.method, "request_method")
		case "route":
			err = s.read(&r.route, "route")
		case "url_path":
			err = s.read(&r.urlPath, "url_path")
		case "status_code":
			err = s.read(&r.status, "status_code")
		case "user_agent":
			err = s.read(&r.ua, "user_agent")
		case "request_id":
			err = s.read(&r.reqID, "request_id")
		case "_document_id":
			err = s.read(&r.docID, "_document_id")
		case "actor_location":
			err = d.location()
		default:
			err = s.skip(1)
		}
		if err != nil {
			return err
		}
	}
	if err := s.end(); err != nil {
		return err
	}
	var err error
	if r.timestamp.set() || !r.createdAt.set() {
		err = eventTime("@timestamp", r.timestamp.val, ev)
	} else {
		err = eventTime("created_at", r.createdAt.val, ev)
	}
	if err != nil {
		return err
	}
	if err := addr("actor_ip", r.ip.val, ev); err != nil {
		return err
	}
	request := r.route.set() || r.urlPath.set()
	switch {
	case r.status.set() || request:
		if err := status("status_code", r.status.val, ev); err != nil {
			return err
		}
	default:
		ev.Status = 200 // an event that records what was done
	}
	if r.urlPath.set() {
		if err := d.pathField(r.urlPath, ev); err != nil {
			return err
		}
	}
	switch {
	case r.route.set():
		if err := d.template("route", r.route.val, ev); err != nil {
			return err
		}
	case r.urlPath.set():
		// The endpoint is already the template of the path.
	case r.action.set():
		if err := d.template("action", r.action.val, ev); err != nil {
			return err
		}
	default:
		return missing("action")
	}
	if err := d.method("request_method", r.method.val, ev); err != nil {
		return err
	}
	reqID := r.reqID
	if !reqID.set() {
		reqID = r.docID
	}
	if err := d.optional(ev, r.ua, reqID, field{}, field{}); err != nil {
		return err
	}
	d.country(r.country.val, ev)
	switch {
	case r.tokenID.set():
		return d.tokenID("token_id", "gh:", r.tokenID.val, ev)
	case r.hashedToken.set():
		return d.tokenID("hashed_token", "ghh:", r.hashedToken.val, ev)
	case r.actor.set():
		return d.tokenID("actor", "actor:", r.actor.val, ev)
	}
	d.anonymous(ev)
	return nil
}

// location reads actor_location's country_code.
func (d *gitHubDecoder) location() error {
	s := &d.s
	if obj, null := s.isObject(); !obj {
		if null {
			return nil
		}
		return s.skip(1)
	}
	s.i++
	for first := true; ; {
		key, ok, err := s.member(&first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if string(key) == "country_code" {
			err = s.read(&d.r.country, "actor_location.country_code")
		} else {
			err = s.skip(2)
		}
		if err != nil {
			return err
		}
	}
}
