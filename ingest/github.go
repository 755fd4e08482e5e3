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
	err := s.members(true, 1, func(key []byte) (*field, string, bool, error) {
		switch string(key) {
		case "@timestamp":
			return &r.timestamp, "@timestamp", false, nil
		case "created_at":
			return &r.createdAt, "created_at", false, nil
		case "action":
			return &r.action, "action", false, nil
		case "actor":
			return &r.actor, "actor", false, nil
		case "actor_ip":
			return &r.ip, "actor_ip", false, nil
		case "hashed_token":
			return &r.hashedToken, "hashed_token", false, nil
		case "token_id":
			return &r.tokenID, "token_id", false, nil
		case "request_method":
			return &r.method, "request_method", false, nil
		case "route":
			return &r.route, "route", false, nil
		case "url_path":
			return &r.urlPath, "url_path", false, nil
		case "status_code":
			return &r.status, "status_code", false, nil
		case "user_agent":
			return &r.ua, "user_agent", false, nil
		case "request_id":
			return &r.reqID, "request_id", false, nil
		case "_document_id":
			return &r.docID, "_document_id", false, nil
		case "actor_location":
			return nil, "", true, d.location()
		default:
			return nil, "", false, nil
		}
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
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
	return d.s.members(false, 2, func(key []byte) (*field, string, bool, error) {
		if string(key) == "country_code" {
			return &d.r.country, "actor_location.country_code", false, nil
		}
		return nil, "", false, nil
	})
}
