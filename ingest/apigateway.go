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
	r := &d.r
	return d.s.members(which == agTop, depth, func(key []byte) (*field, string, bool, error) {
		switch which {
		case agTop:
			switch string(key) {
			case "requestTime":
				return &r.requestTime, "requestTime", false, nil
			case "requestTimeEpoch":
				return &r.epoch, "requestTimeEpoch", false, nil
			case "ip":
				return &r.ip, "ip", false, nil
			case "sourceIp":
				return &r.ip, "sourceIp", false, nil
			case "httpMethod":
				return &r.method, "httpMethod", false, nil
			case "method":
				return &r.method, "method", false, nil
			case "resourcePath":
				return &r.resourcePath, "resourcePath", false, nil
			case "routeKey":
				return &r.routeKey, "routeKey", false, nil
			case "path":
				return &r.path, "path", false, nil
			case "status":
				return &r.status, "status", false, nil
			case "responseLength":
				return &r.length, "responseLength", false, nil
			case "responseLatency":
				return &r.latency, "responseLatency", false, nil
			case "userAgent":
				return &r.ua, "userAgent", false, nil
			case "requestId":
				return &r.reqID, "requestId", false, nil
			case "apiKeyId":
				return &r.apiKeyID, "apiKeyId", false, nil
			case "principalId":
				return &r.principalID, "principalId", false, nil
			case "clientId":
				return &r.clientID, "clientId", false, nil
			case "scope":
				return &r.scope, "scope", false, nil
			case "identity":
				return nil, "", true, d.object(agIdentity, depth+1)
			case "http":
				return nil, "", true, d.object(agHTTP, depth+1)
			case "authorizer":
				return nil, "", true, d.object(agAuthorizer, depth+1)
			}
		case agIdentity:
			switch string(key) {
			case "sourceIp":
				return &r.ip, "identity.sourceIp", false, nil
			case "userAgent":
				return &r.ua, "identity.userAgent", false, nil
			case "apiKeyId":
				return &r.apiKeyID, "identity.apiKeyId", false, nil
			}
		case agHTTP:
			switch string(key) {
			case "method":
				return &r.method, "http.method", false, nil
			case "path":
				return &r.path, "http.path", false, nil
			case "sourceIp":
				return &r.ip, "http.sourceIp", false, nil
			case "userAgent":
				return &r.ua, "http.userAgent", false, nil
			}
		case agAuthorizer:
			switch string(key) {
			case "principalId":
				return &r.principalID, "authorizer.principalId", false, nil
			case "clientId":
				return &r.clientID, "authorizer.clientId", false, nil
			case "claims":
				return nil, "", true, d.object(agClaims, depth+1)
			}
		case agClaims:
			switch string(key) {
			case "client_id":
				return &r.clientID, "authorizer.claims.client_id", false, nil
			case "scope":
				return &r.scope, "authorizer.claims.scope", false, nil
			}
		}
		return nil, "", false, nil
	})
}
