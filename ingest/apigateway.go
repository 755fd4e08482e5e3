package ingest

import "github.com/vigil-sec/vigil/event"

// apiGatewayDecoder reads AWS API Gateway access logs in JSON, of REST
// APIs ($context.resourcePath) and HTTP APIs ($context.routeKey) alike,
// with the keys of docs/ingest.md or of the layouts the console proposes.
// Keys may also be nested as the $context variables are
// ("identity": {"sourceIp": …}, "http": {"method": …},
// "authorizer": {"principalId": …, "claims": {"client_id": …}}).
type apiGatewayDecoder struct {
	base
	s scanner
	r apiGatewayRecord
}

type apiGatewayRecord struct {
	requestTime, epoch, ip, method, resourcePath, routeKey, path, status,
	length, latency, ua, reqID, apiKeyID, principalID, clientID, scope field
}

func (d *apiGatewayDecoder) Decode(line []byte, ev *event.Event) error {
	s, r := &d.s, &d.r
	*r = apiGatewayRecord{}
	if err := s.start(line, ev); err != nil {
		return err
	}
	if err := d.object(agTop, 1); err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	var err error
	if r.epoch.set() {
		err = eventTime(r.epoch.name, r.epoch.val, ev)
	} else {
		err = eventTime(or(r.requestTime.name, "requestTime"), r.requestTime.val, ev)
	}
	if err != nil {
		return err
	}
	if err := addr(or(r.ip.name, "ip"), r.ip.val, ev); err != nil {
		return err
	}
	if err := status("status", r.status.val, ev); err != nil {
		return err
	}
	if err := d.method(r.method.name, r.method.val, ev); err != nil {
		return err
	}
	if r.path.set() {
		if err := d.pathField(r.path, ev); err != nil {
			return err
		}
	}
	switch route := r.routeKey; {
	case r.resourcePath.set():
		if err := d.template(r.resourcePath.name, r.resourcePath.val, ev); err != nil {
			return err
		}
	case route.set() && route.k == kString && string(route.b) != "$default":
		// "GET /items/{id}": the method, then the route.
		for i, c := range route.b {
			if c == ' ' {
				if ev.Has&event.HasMethod == 0 && i > 0 {
					ev.Method, ev.Has = d.methodString(route.b[:i]), ev.Has|event.HasMethod
				}
				route.b = route.b[i+1:]
				break
			}
		}
		if len(route.b) == 0 {
			return &event.FieldError{Field: route.name, Reason: "has no route"}
		}
		if err := d.template(route.name, route.val, ev); err != nil {
			return err
		}
	case r.path.set():
		// The endpoint is already the template of the path.
	default:
		return missing("resourcePath")
	}
	if err := size("responseLength", r.length.val, &ev.PayloadBytes, event.HasPayloadBytes, ev); err != nil {
		return err
	}
	if err := latency("responseLatency", r.latency.val, 1, ev); err != nil {
		return err
	}
	if err := d.optional(ev, r.ua, r.reqID, r.clientID, r.scope); err != nil {
		return err
	}
	switch {
	case r.apiKeyID.set():
		return d.tokenID(r.apiKeyID.name, "apikey:", r.apiKeyID.val, ev)
	case r.principalID.set():
		return d.tokenID(r.principalID.name, "principal:", r.principalID.val, ev)
	case r.clientID.set():
		return d.tokenID(r.clientID.name, "client:", r.clientID.val, ev)
	}
	d.anonymous(ev)
	return nil
}

// The objects of an API Gateway record whose keys are read.
const (
	agTop = iota
	agIdentity
	agHTTP
	agAuthorizer
	agClaims
)

// object reads the object at the cursor, of kind which; anything but an
// object there is skipped. depth counts the objects around its members.
func (d *apiGatewayDecoder) object(which, depth int) error {
	s, r := &d.s, &d.r
	if which == agTop {
		if err := s.open(); err != nil {
			return err
		}
	} else if obj, null := s.isObject(); !obj {
		if null {
			return nil
		}
		return s.skip(depth)
	} else {
		s.i++
	}
	for first := true; ; {
		key, ok, err := s.member(&first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		var f *field
		var name string
		nested := false
		switch which {
		case agTop:
			switch string(key) {
			case "requestTime":
				f, name = &r.requestTime, "requestTime"
			case "requestTimeEpoch":
				f, name = &r.epoch, "requestTimeEpoch"
			case "ip":
				f, name = &r.ip, "ip"
			case "sourceIp":
				f, name = &r.ip, "sourceIp"
			case "httpMethod":
				f, name = &r.method, "httpMethod"
			case "method":
				f, name = &r.method, "method"
			case "resourcePath":
				f, name = &r.resourcePath, "resourcePath"
			case "routeKey":
				f, name = &r.routeKey, "routeKey"
			case "path":
				f, name = &r.path, "path"
			case "status":
				f, name = &r.status, "status"
			case "responseLength":
				f, name = &r.length, "responseLength"
			case "responseLatency":
				f, name = &r.latency, "responseLatency"
			case "userAgent":
				f, name = &r.ua, "userAgent"
			case "requestId":
				f, name = &r.reqID, "requestId"
			case "apiKeyId":
				f, name = &r.apiKeyID, "apiKeyId"
			case "principalId":
				f, name = &r.principalID, "principalId"
			case "clientId":
				f, name = &r.clientID, "clientId"
			case "scope":
				f, name = &r.scope, "scope"
			case "identity":
				err, nested = d.object(agIdentity, depth+1), true
			case "http":
				err, nested = d.object(agHTTP, depth+1), true
			case "authorizer":
				err, nested = d.object(agAuthorizer, depth+1), true
			}
		case agIdentity:
			switch string(key) {
			case "sourceIp":
				f, name = &r.ip, "identity.sourceIp"
			case "userAgent":
				f, name = &r.ua, "identity.userAgent"
			case "apiKeyId":
				f, name = &r.apiKeyID, "identity.apiKeyId"
			}
		case agHTTP:
			switch string(key) {
			case "method":
				f, name = &r.method, "http.method"
			case "path":
				f, name = &r.path, "http.path"
			case "sourceIp":
				f, name = &r.ip, "http.sourceIp"
			case "userAgent":
				f, name = &r.ua, "http.userAgent"
			}
		case agAuthorizer:
			switch string(key) {
			case "principalId":
				f, name = &r.principalID, "authorizer.principalId"
			case "clientId":
				f, name = &r.clientID, "authorizer.clientId"
			case "claims":
				err, nested = d.object(agClaims, depth+1), true
			}
		case agClaims:
			switch string(key) {
			case "client_id":
				f, name = &r.clientID, "authorizer.claims.client_id"
			case "scope":
				f, name = &r.scope, "authorizer.claims.scope"
			}
		}
		switch {
		case err != nil:
			return err
		case f != nil:
			err = s.read(f, name)
		case !nested:
			err = s.skip(depth)
		}
		if err != nil {
			return err
		}
	}
}
