package ingest

import (
	"net/netip"

	"github.com/vigil-sec/vigil/event"
)

// NoAddress is the source address of a CloudTrail record whose
// sourceIPAddress is not an address but an AWS service principal
// ("ec2.amazonaws.com") or "AWS Internal": the unspecified address, which
// no client has.
var NoAddress = netip.IPv4Unspecified()

// cloudTrailDecoder reads AWS CloudTrail records, one JSON object a line
// (as Lines streams them out of CloudTrail's {"Records":[…]} files).
type cloudTrailDecoder struct {
	base
	s scanner
	r cloudTrailRecord
}

type cloudTrailRecord struct {
	time, timestamp, source, name, ip, ua, errorCode, eventID,
	accessKeyID, arn, userName, issuerName, consoleLogin field
}

func (d *cloudTrailDecoder) Decode(line []byte, ev *event.Event) error {
	s, r := &d.s, &d.r
	*r = cloudTrailRecord{}
	if err := s.start(line, ev); err != nil {
		return err
	}
	if err := d.object(ctTop, 1); err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	var err error
	if r.time.set() || !r.timestamp.set() {
		err = eventTime("eventTime", r.time.val, ev)
	} else {
		err = eventTime("@timestamp", r.timestamp.val, ev)
	}
	if err != nil {
		return err
	}
	if !r.ip.set() {
		return missing("sourceIPAddress")
	}
	if r.ip.k != kString {
		return &event.FieldError{Field: "sourceIPAddress", Reason: "expected a string"}
	}
	service := false
	if a, ok := parseAddr(r.ip.b); ok {
		ev.SourceIP = a
	} else {
		ev.SourceIP, service = NoAddress, true
	}
	for _, f := range [...]struct {
		f    *field
		name string
	}{{&r.source, "eventSource"}, {&r.name, "eventName"}} {
		if !f.f.set() {
			return missing(f.name)
		}
		if f.f.k != kString {
			return &event.FieldError{Field: f.name, Reason: "expected a string"}
		}
	}
	if len(r.source.b)+1+len(r.name.b) > event.MaxStringLen {
		return &event.FieldError{Field: "eventName", Reason: "longer than 8 KiB"}
	}
	d.buf = append(append(append(d.buf[:0], r.source.b...), ' '), r.name.b...)
	ev.Endpoint = d.keep("", d.buf)
	ev.Method, ev.Has = ev.Endpoint[len(r.source.b)+1:], ev.Has|event.HasMethod
	ev.Status = 200
	if r.errorCode.set() {
		if r.errorCode.k != kString {
			return &event.FieldError{Field: "errorCode", Reason: "expected a string"}
		}
		ev.Status = errorStatus(r.errorCode.b)
	} else if r.consoleLogin.k == kString && string(r.consoleLogin.b) == "Failure" {
		ev.Status = 401
	}
	client := r.issuerName
	if !client.set() {
		client = r.userName
	}
	if err := d.optional(ev, r.ua, r.eventID, client, field{}); err != nil {
		return err
	}
	switch {
	case r.accessKeyID.set():
		return d.tokenID("userIdentity.accessKeyId", "", r.accessKeyID.val, ev)
	case r.arn.set():
		return d.tokenID("userIdentity.arn", "", r.arn.val, ev)
	case service:
		// No credential, and a service rather than a client: key the
		// request on the service.
		if len(r.ip.b) > maxTokenIDLen-4 {
			return &event.FieldError{Field: "sourceIPAddress", Reason: "longer than 508 bytes"}
		}
		ev.TokenID = d.keep("aws:", r.ip.b)
		return nil
	}
	d.anonymous(ev)
	return nil
}

// errorStatus maps a CloudTrail errorCode to the HTTP status the call
// most likely had: 403 for authorization failures, 401 for credentials
// that are invalid or expired, 429 for throttling, 400 for the rest.
func errorStatus(code []byte) int {
	switch string(code) {
	case "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
		"ExpiredTokenException", "AuthFailure", "InvalidToken", "UnrecognizedClientException", "NotAuthorizedException":
		return 401
	case "ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException", "SlowDown":
		return 429
	}
	if hasPrefix(code, "AccessDenied") || hasPrefix(code, "Unauthorized") || hasSuffix(code, "UnauthorizedOperation") {
		return 403
	}
	return 400
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }
func hasSuffix(b []byte, p string) bool { return len(b) >= len(p) && string(b[len(b)-len(p):]) == p }

// The objects of a CloudTrail record whose keys are read.
const (
	ctTop = iota
	ctIdentity
	ctSession
	ctIssuer
	ctResponse
)

// object reads the object at the cursor, of kind which; anything but an
// object there is skipped.
func (d *cloudTrailDecoder) object(which, depth int) error {
	r := &d.r
	return d.s.members(which == ctTop, depth, func(key []byte) (*field, string, bool, error) {
		switch which {
		case ctTop:
			switch string(key) {
			case "eventTime":
				return &r.time, "eventTime", false, nil
			case "@timestamp":
				return &r.timestamp, "@timestamp", false, nil
			case "eventSource":
				return &r.source, "eventSource", false, nil
			case "eventName":
				return &r.name, "eventName", false, nil
			case "sourceIPAddress":
				return &r.ip, "sourceIPAddress", false, nil
			case "userAgent":
				return &r.ua, "userAgent", false, nil
			case "errorCode":
				return &r.errorCode, "errorCode", false, nil
			case "eventID":
				return &r.eventID, "eventID", false, nil
			case "userIdentity":
				return nil, "", true, d.object(ctIdentity, depth+1)
			case "responseElements":
				return nil, "", true, d.object(ctResponse, depth+1)
			}
		case ctIdentity:
			switch string(key) {
			case "accessKeyId":
				return &r.accessKeyID, "userIdentity.accessKeyId", false, nil
			case "arn":
				return &r.arn, "userIdentity.arn", false, nil
			case "userName":
				return &r.userName, "userIdentity.userName", false, nil
			case "sessionContext":
				return nil, "", true, d.object(ctSession, depth+1)
			}
		case ctSession:
			if string(key) == "sessionIssuer" {
				return nil, "", true, d.object(ctIssuer, depth+1)
			}
		case ctIssuer:
			if string(key) == "userName" {
				return &r.issuerName, "userIdentity.sessionContext.sessionIssuer.userName", false, nil
			}
		case ctResponse:
			if string(key) == "ConsoleLogin" {
				return &r.consoleLogin, "responseElements.ConsoleLogin", false, nil
			}
		}
		return nil, "", false, nil
	})
}
