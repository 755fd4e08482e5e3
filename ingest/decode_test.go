package ingest_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/ingest"
)

// render writes the fields of an event that are set, for comparison.
func render(ev *event.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %q %d", ev.Timestamp().Format("2006-01-02T15:04:05.999Z"), ev.TokenID, ev.SourceIP, ev.Endpoint, ev.Status)
	opt := []struct {
		bit  event.Field
		name string
		v    any
	}{
		{event.HasMethod, "method", ev.Method},
		{event.HasPath, "path", ev.Path},
		{event.HasRequestID, "id", ev.RequestID},
		{event.HasUserAgent, "ua", ev.UserAgent},
		{event.HasClientID, "client", ev.ClientID},
		{event.HasScope, "scope", ev.Scope},
		{event.HasCountry, "country", ev.Country},
		{event.HasPayloadBytes, "sent", ev.PayloadBytes},
		{event.HasRequestBytes, "received", ev.RequestBytes},
		{event.HasLatency, "ms", ev.LatencyMS},
	}
	for _, o := range opt {
		if ev.Has&o.bit != 0 {
			fmt.Fprintf(&b, " %s=%v", o.name, o.v)
		}
	}
	return b.String()
}

var decodeTests = []struct {
	format ingest.Format
	name   string
	line   string
	want   string
}{
	{ingest.NginxCombined, "anonymous", `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /v1/accounts/12345/orders?limit=10 HTTP/1.1" 200 2326 "http://example.com/start" "Mozilla/5.0 (X11; Linux x86_64)"`,
		`2000-10-10T20:55:36Z ip:203.0.113.9 203.0.113.9 "/v1/accounts/{id}/orders" 200 method=GET path=/v1/accounts/12345/orders ua=Mozilla/5.0 (X11; Linux x86_64) sent=2326`},
	{ingest.NginxCombined, "user, no bytes, no agent", `2001:db8:85a3::8a2e:370:7334 - alice [29/Feb/2024:00:00:00 +0000] "DELETE /v1/keys/0b5e6c2a-1f3d-4c8e-9a7b-123456789abc HTTP/2.0" 204 - "-" "-"`,
		`2024-02-29T00:00:00Z user:alice 2001:db8:85a3::8a2e:370:7334 "/v1/keys/{id}" 204 method=DELETE path=/v1/keys/0b5e6c2a-1f3d-4c8e-9a7b-123456789abc`},
	{ingest.NginxCombined, "IPv6 anonymous is the /64, common format", `2001:db8:85a3::8a2e:370:7334 - - [01/Jan/2026:10:00:00 +0100] "POST http://api.example.com/v1/login HTTP/1.1" 401 12`,
		`2026-01-01T09:00:00Z ip:2001:db8:85a3::/64 2001:db8:85a3::8a2e:370:7334 "/v1/login" 401 method=POST path=http://api.example.com/v1/login sent=12`},
	{ingest.NginxCombined, "main format, trailing field, CRLF", `198.51.100.7 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 304 0 "-" "curl/8.5.0" "10.0.0.1"` + "\r",
		`2015-05-17T10:05:03Z ip:198.51.100.7 198.51.100.7 "/" 304 method=GET path=/ ua=curl/8.5.0 sent=0`},
	{ingest.NginxCombined, "escaped quote in agent", `198.51.100.7 - - [17/May/2015:10:05:03 +0000] "GET /a HTTP/1.1" 200 5 "-" "x \"y\" z"`,
		`2015-05-17T10:05:03Z ip:198.51.100.7 198.51.100.7 "/a" 200 method=GET path=/a ua=x \"y\" z sent=5`},

	{ingest.NginxJSON, "full", `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","method":"GET","uri":"/v1/orders/981","status":"200","body_bytes_sent":"512","request_length":"230","request_time":"0.012","http_user_agent":"okhttp/4.12.0","request_id":"7f3a","token_id":"tk_47ea362748d103150f3ce2c99c79a105","client_id":"mobile","scope":"orders:read","authorization":"Bearer sk_live_nope"}`,
		`2026-03-04T01:56:48Z tk_47ea362748d103150f3ce2c99c79a105 198.51.100.7 "/v1/orders/{id}" 200 method=GET path=/v1/orders/981 id=7f3a ua=okhttp/4.12.0 client=mobile scope=orders:read sent=512 received=230 ms=12`},
	{ingest.NginxJSON, "no token: anonymous; numbers unquoted; request_uri", `{"time_iso8601":"2026-03-04T01:56:48.250-02:00","remote_addr":"198.51.100.7","request_method":"POST","request_uri":"/v1/login?next=%2F","status":401,"body_bytes_sent":0,"token_id":"","client_id":"","scope":"-"}`,
		`2026-03-04T03:56:48.25Z ip:198.51.100.7 198.51.100.7 "/v1/login" 401 method=POST path=/v1/login sent=0`},
	{ingest.NginxJSON, "msec", `{"msec":"1772589408.123","remote_addr":"::ffff:198.51.100.7","uri":"/","status":"204"}`,
		`2026-03-04T01:56:48.123Z ip:198.51.100.7 198.51.100.7 "/" 204 path=/`},

	{ingest.Envoy, "recommended", `{"start_time":"2026-03-04T01:56:48.123Z","method":"GET","path":"/v1/accounts/42?expand=1","response_code":200,"bytes_sent":1024,"bytes_received":0,"duration":15,"downstream_remote_address":"198.51.100.7","x_forwarded_for":"203.0.113.1","user_agent":"Go-http-client/2.0","request_id":"b6a0d4c2","authority":"api.example.com","token_id":"tk_47ea362748d103150f3ce2c99c79a105","route_name":"accounts"}`,
		`2026-03-04T01:56:48.123Z tk_47ea362748d103150f3ce2c99c79a105 198.51.100.7 "/v1/accounts/{id}" 200 method=GET path=/v1/accounts/42 id=b6a0d4c2 ua=Go-http-client/2.0 sent=1024 received=0 ms=15`},
	{ingest.Envoy, "Envoy Gateway keys, address with port, strings", `{"start_time":"2026-03-04T01:56:48.123Z","method":"PUT","x-envoy-origin-path":"/v1/me","response_code":"403","bytes_sent":"-","duration":"3","downstream_remote_address":"[2001:db8::7]:51234","user-agent":"curl/8.5.0","x-request-id":"r-1","token_id":"-"}`,
		`2026-03-04T01:56:48.123Z ip:2001:db8::/64 2001:db8::7 "/v1/me" 403 method=PUT path=/v1/me id=r-1 ua=curl/8.5.0 ms=3`},

	{ingest.APIGateway, "REST, api key", `{"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","ip":"198.51.100.7","requestTime":"04/Mar/2026:01:56:48 +0000","httpMethod":"GET","resourcePath":"/pets/{petId}","path":"/pets/12","status":"200","responseLength":"58","userAgent":"python-requests/2.31.0","apiKeyId":"a1b2c3d4e5","clientId":"-","principalId":"-","responseLatency":"41"}`,
		`2026-03-04T01:56:48Z apikey:a1b2c3d4e5 198.51.100.7 "/pets/{petId}" 200 method=GET path=/pets/12 id=c6af9ac6-7b61-11e6-9a41-93e8deadbeef ua=python-requests/2.31.0 sent=58 ms=41`},
	{ingest.APIGateway, "HTTP API v2, epoch, principal", `{"requestId":"JxQ4bi2DoAMEVbw=","ip":"198.51.100.7","requestTimeEpoch":1772589408250,"routeKey":"DELETE /items/{id}","status":"204","responseLength":"0","principalId":"user-17","clientId":"app-3"}`,
		`2026-03-04T01:56:48.25Z principal:user-17 198.51.100.7 "/items/{id}" 204 method=DELETE id=JxQ4bi2DoAMEVbw= client=app-3 sent=0`},
	{ingest.APIGateway, "nested, client id from claims, $default route", `{"requestId":"r2","requestTime":"04/Mar/2026:01:56:48 +0000","routeKey":"$default","http":{"method":"GET","path":"/v2/users/123456"},"identity":{"sourceIp":"198.51.100.7","userAgent":"okhttp/4.12.0"},"authorizer":{"claims":{"client_id":"3n9fa8","scope":"users/read"}},"status":200}`,
		`2026-03-04T01:56:48Z client:3n9fa8 198.51.100.7 "/v2/users/{id}" 200 method=GET path=/v2/users/123456 id=r2 ua=okhttp/4.12.0 client=3n9fa8 scope=users/read`},

	{ingest.CloudTrail, "GetObject by a role session", `{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:build","arn":"arn:aws:sts::111122223333:assumed-role/deploy/build","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE000000001","sessionContext":{"sessionIssuer":{"type":"Role","userName":"deploy"},"attributes":{"mfaAuthenticated":"false"}}},"eventTime":"2026-03-04T01:56:48Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.30","requestParameters":{"bucketName":"b","key":"k"},"responseElements":null,"eventID":"e-1"}`,
		`2026-03-04T01:56:48Z ASIAEXAMPLE000000001 198.51.100.7 "s3.amazonaws.com GetObject" 200 method=GetObject id=e-1 ua=aws-cli/2.15.30 client=deploy`},
	{ingest.CloudTrail, "AccessDenied by a user key", `{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob","accessKeyId":"AKIAEXAMPLE000000002","userName":"bob"},"eventTime":"2026-03-04T01:56:48Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","sourceIPAddress":"203.0.113.9","errorCode":"AccessDenied","errorMessage":"User: arn:aws:iam::111122223333:user/bob is not authorized"}`,
		`2026-03-04T01:56:48Z AKIAEXAMPLE000000002 203.0.113.9 "iam.amazonaws.com CreateUser" 403 method=CreateUser client=bob`},
	{ingest.CloudTrail, "failed ConsoleLogin: the ARN", `{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice"},"eventTime":"2026-03-04T01:56:48Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","sourceIPAddress":"192.0.2.10","responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication"}`,
		`2026-03-04T01:56:48Z arn:aws:iam::111122223333:user/alice 192.0.2.10 "signin.amazonaws.com ConsoleLogin" 401 method=ConsoleLogin client=alice`},
	{ingest.CloudTrail, "a service, no credential", `{"userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com"},"@timestamp":"2026-03-04T01:56:48Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","sourceIPAddress":"ec2.amazonaws.com","userAgent":"ec2.amazonaws.com"}`,
		`2026-03-04T01:56:48Z aws:ec2.amazonaws.com 0.0.0.0 "sts.amazonaws.com AssumeRole" 200 method=AssumeRole ua=ec2.amazonaws.com`},
	{ingest.CloudTrail, "EC2 UnauthorizedOperation, anonymous", `{"eventTime":"2026-03-04T01:56:48Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","sourceIPAddress":"198.51.100.7","errorCode":"Client.UnauthorizedOperation"}`,
		`2026-03-04T01:56:48Z ip:198.51.100.7 198.51.100.7 "ec2.amazonaws.com RunInstances" 403 method=RunInstances`},
	{ingest.CloudTrail, "throttled", `{"eventTime":"2026-03-04T01:56:48Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","sourceIPAddress":"AWS Internal","errorCode":"RequestLimitExceeded","userIdentity":{"accessKeyId":"AKIAEXAMPLE000000003"}}`,
		`2026-03-04T01:56:48Z AKIAEXAMPLE000000003 0.0.0.0 "ec2.amazonaws.com DescribeInstances" 429 method=DescribeInstances`},

	{ingest.GitHub, "API request", `{"@timestamp":1772589408123,"action":"api.request","actor":"mona","actor_ip":"198.51.100.7","actor_location":{"country_code":"de"},"hashed_token":"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=","token_id":102938,"programmatic_access_type":"personal access token (classic)","request_method":"GET","route":"/repos/{owner}/{repo}","url_path":"/repos/octo-org/api","status_code":200,"user_agent":"GitHub-CLI/2.45.0","request_id":"53D1:7E8A"}`,
		`2026-03-04T01:56:48.123Z gh:102938 198.51.100.7 "/repos/{owner}/{repo}" 200 method=GET path=/repos/octo-org/api id=53D1:7E8A ua=GitHub-CLI/2.45.0 country=DE`},
	{ingest.GitHub, "hashed token only, url_path only", `{"created_at":1772589408123,"actor_ip":"198.51.100.7","hashed_token":"n4bQgYhM=","request_method":"POST","url_path":"/repos/octo-org/api/issues/77/comments","status_code":201,"_document_id":"doc-1"}`,
		`2026-03-04T01:56:48.123Z ghh:n4bQgYhM= 198.51.100.7 "/repos/octo-org/api/issues/{id}/comments" 201 method=POST path=/repos/octo-org/api/issues/77/comments id=doc-1`},
	{ingest.GitHub, "not a request: the action", `{"@timestamp":"2026-03-04T01:56:48Z","action":"repo.download_zip","actor":"hubot","actor_ip":"198.51.100.7","actor_location":{"country_code":"XX1"}}`,
		`2026-03-04T01:56:48Z actor:hubot 198.51.100.7 "repo.download_zip" 200`},
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(string(tt.format)+"/"+tt.name, func(t *testing.T) {
			d := newDecoder(t, tt.format)
			var ev event.Event
			line := []byte(tt.line)
			if err := d.Decode(line, &ev); err != nil {
				t.Fatal(err)
			}
			clear(line) // the event must not point into its line
			if got := render(&ev); got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
			checkEvent(t, &ev)
		})
	}
}

var decodeErrorTests = []struct {
	format ingest.Format
	line   string
	want   string
}{
	{ingest.NginxCombined, `not-an-ip - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1`, `field "remote_addr": not an IP address`},
	{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36] "GET / HTTP/1.1" 200 1`, `field "time_local": not a time like [10/Oct/2000:13:55:36 -0700]`},
	{ingest.NginxCombined, `198.51.100.7 - - [31/Feb/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "x"`, `field "time_local": not a time like [10/Oct/2000:13:55:36 -0700]`},
	{ingest.NginxCombined, `198.51.100.7 - - 10/Oct/2000:13:55:36 -0700 "GET / HTTP/1.1" 200 1`, `field "time_local": expected '[' at byte 17`},
	{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "-" 400 0 "-" "-"`, `field "request": not a request line (METHOD TARGET PROTOCOL)`},
	{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01" 400 0 "-" "-"`, `field "request": not a request line (METHOD TARGET PROTOCOL)`},
	{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 2000 1`, `field "status": not an HTTP status code`},
	{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1k`, `field "body_bytes_sent": expected a number`},
	{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "Mozilla`, `field "http_user_agent": unterminated quoted string at byte 73`},
	{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200`, `field "body_bytes_sent": missing required field`},
	{ingest.NginxCombined, ``, `field "remote_addr": missing required field`},

	{ingest.NginxJSON, `{"remote_addr":"198.51.100.7","uri":"/","status":"200"}`, `field "time": missing required field`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","uri":"/","status":"200"}`, `field "remote_addr": missing required field`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","status":"200"}`, `field "uri": missing required field`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","uri":"/"}`, `field "status": missing required field`},
	{ingest.NginxJSON, `{"time":"yesterday","remote_addr":"198.51.100.7","uri":"/","status":"200"}`, `field "time": not a time in a known format (RFC 3339, common log format or Unix time)`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","uri":"/","status":"ok"}`, `field "status": expected a number`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","uri":"/","status":"99"}`, `field "status": must be between 100 and 599`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","uri":"/","status":"200","request_time":"-1"}`, `field "request_time": must not be negative`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","remote_addr":{"ip":"x"}}`, `field "remote_addr": expected a string or a number, got an object`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00" "remote_addr":"198.51.100.7"}`, `invalid JSON at byte 36: expected ',' or '}' after object value`},
	{ingest.NginxJSON, `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","uri":"/","status":"200"} x`, `invalid JSON at byte 91: unexpected data after the object`},
	{ingest.NginxJSON, `[1]`, `invalid JSON at byte 0: expected '{' at the start of an object`},

	{ingest.Envoy, `{"start_time":"2026-03-04T01:56:48.123Z","path":"/","response_code":0,"downstream_remote_address":"198.51.100.7:443"}`, `field "response_code": must be between 100 and 599`},
	{ingest.Envoy, `{"start_time":"2026-03-04T01:56:48.123Z","path":"/","response_code":200}`, `field "downstream_remote_address": missing required field`},
	{ingest.Envoy, `{"start_time":"2026-03-04T01:56:48.123Z","response_code":200,"downstream_remote_address":"198.51.100.7"}`, `field "path": missing required field`},

	{ingest.APIGateway, `{"requestTime":"04/Mar/2026:01:56:48 +0000","ip":"198.51.100.7","status":"200"}`, `field "resourcePath": missing required field`},
	{ingest.APIGateway, `{"ip":"198.51.100.7","resourcePath":"/","status":"200"}`, `field "requestTime": missing required field`},
	{ingest.APIGateway, `{"requestTimeEpoch":"soon","ip":"198.51.100.7","resourcePath":"/","status":"200"}`, `field "requestTimeEpoch": not a time in a known format (RFC 3339, common log format or Unix time)`},
	{ingest.APIGateway, `{"requestTime":"04/Mar/2026:01:56:48 +0000","identity":{"sourceIp":"test-invoke-source-ip"},"resourcePath":"/","status":"200"}`, `field "identity.sourceIp": not an IP address`},

	{ingest.CloudTrail, `{"eventTime":"2026-03-04T01:56:48Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}`, `field "sourceIPAddress": missing required field`},
	{ingest.CloudTrail, `{"eventTime":"2026-03-04T01:56:48Z","eventName":"GetObject","sourceIPAddress":"198.51.100.7"}`, `field "eventSource": missing required field`},
	{ingest.CloudTrail, `{"eventSource":"s3.amazonaws.com","eventName":"GetObject","sourceIPAddress":"198.51.100.7"}`, `field "eventTime": missing required field`},
	{ingest.CloudTrail, `{"eventTime":"2026-03-04T01:56:48Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","sourceIPAddress":"198.51.100.7","userIdentity":{"accessKeyId":["AKIA"]}}`, `field "userIdentity.accessKeyId": expected a string or a number, got an array`},
	{ingest.CloudTrail, `{"Records":[]}`, `field "eventTime": missing required field`},

	{ingest.GitHub, `{"@timestamp":1772589408123,"action":"api.request","actor":"mona","url_path":"/x","status_code":200}`, `field "actor_ip": missing required field`},
	{ingest.GitHub, `{"@timestamp":1772589408123,"actor_ip":"198.51.100.7","url_path":"/x","token_id":1}`, `field "status_code": missing required field`},
	{ingest.GitHub, `{"@timestamp":1772589408123,"actor_ip":"198.51.100.7","token_id":1}`, `field "action": missing required field`},
	{ingest.GitHub, `{"@timestamp":99999999999999999999,"actor_ip":"198.51.100.7","action":"x"}`, `field "@timestamp": not a time in a known format (RFC 3339, common log format or Unix time)`},
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range decodeErrorTests {
		t.Run(string(tt.format), func(t *testing.T) {
			d := newDecoder(t, tt.format)
			var ev event.Event
			err := d.Decode([]byte(tt.line), &ev)
			if err == nil {
				t.Fatalf("%s: no error, event %s", tt.line, render(&ev))
			}
			if err.Error() != tt.want {
				t.Errorf("%s:\n got %v\nwant %s", tt.line, err, tt.want)
			}
			var fe *event.FieldError
			var se *event.SyntaxError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Errorf("error of type %T", err)
			}
		})
	}
}

// TestDecodeResets: a decoder reused after an error or for a shorter
// record carries nothing over.
func TestDecodeResets(t *testing.T) {
	d := newDecoder(t, ingest.GitHub)
	var ev event.Event
	full := decodeTests[len(decodeTests)-3].line
	if err := d.Decode([]byte(full), &ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(`{"@timestamp":1,"actor_ip":"198.51.100.7","token_id":{`), &ev); err == nil {
		t.Fatal("no error")
	}
	min := `{"@timestamp":"2026-03-04T01:56:48Z","action":"a","actor_ip":"198.51.100.7"}`
	if err := d.Decode([]byte(min), &ev); err != nil {
		t.Fatal(err)
	}
	if got, want := render(&ev), `2026-03-04T01:56:48Z ip:198.51.100.7 198.51.100.7 "a" 200`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestEventsOutliveLines: events keep their strings while the decoder goes
// on with other lines in the same buffer, as in replay's batches.
func TestEventsOutliveLines(t *testing.T) {
	for _, sf := range sampleFiles {
		t.Run(string(sf.format), func(t *testing.T) {
			lines := readLines(t, sf.file, sf.format)
			d := newDecoder(t, sf.format)
			want := make([]string, len(lines))
			evs := make([]event.Event, len(lines))
			buf := make([]byte, 0, event.MaxLineBytes)
			for i, l := range lines {
				var ev event.Event
				if err := d.Decode(bytes.Clone(l), &ev); err != nil {
					t.Fatal(err)
				}
				want[i] = render(&ev)
				buf = append(buf[:0], l...)
				if err := d.Decode(buf, &evs[i]); err != nil {
					t.Fatal(err)
				}
				for j := range buf {
					buf[j] = 'X'
				}
			}
			for i := range evs {
				if got := render(&evs[i]); got != want[i] {
					t.Fatalf("line %d changed:\n got %s\nwant %s", i+1, got, want[i])
				}
			}
		})
	}
}

func TestFormats(t *testing.T) {
	for _, f := range ingest.Formats() {
		got, err := ingest.ParseFormat(string(f))
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
		if _, err := ingest.NewDecoder(f, nil); err != nil {
			t.Errorf("NewDecoder(%q): %v", f, err)
		}
	}
	_, err := ingest.ParseFormat("apache")
	want := `unknown log format "apache": give one of vigil, nginx, nginx-json, envoy, apigateway, cloudtrail, github`
	if err == nil || err.Error() != want {
		t.Errorf("ParseFormat(apache): %v, want %s", err, want)
	}
	if _, err := ingest.NewDecoder("apache", nil); err == nil {
		t.Error("NewDecoder(apache): no error")
	}
}
