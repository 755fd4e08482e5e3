package ingest_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/ingest"
)

// TestRawCredentialNeverLeaks puts raw secrets where each format could
// carry one by mistake (an Authorization header logged as a field, a
// credential id that is really a token, a query string with a key) and
// checks that no secret reaches an event or an error. A secret used as a
// credential id is fingerprinted, the same way every time, and wiped from
// the line.
func TestRawCredentialNeverLeaks(t *testing.T) {
	type leak struct {
		format ingest.Format
		line   string // %[1]s is the secret
		used   bool   // the secret is the credential: fingerprinted and wiped
		ok     bool   // the line decodes
	}
	const (
		ngTime = `"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7"`
		enTime = `"start_time":"2026-03-04T01:56:48.1Z","downstream_remote_address":"198.51.100.7"`
		agTime = `"requestTime":"04/Mar/2026:01:56:48 +0000","ip":"198.51.100.7"`
		ctTime = `"eventTime":"2026-03-04T01:56:48Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","sourceIPAddress":"198.51.100.7"`
		ghTime = `"@timestamp":1772589408123,"actor_ip":"198.51.100.7","action":"api.request"`
	)
	leaks := []leak{
		{ingest.NginxCombined, `198.51.100.7 - %[1]s [10/Oct/2000:13:55:36 -0700] "GET /v1/me HTTP/1.1" 200 1 "-" "curl/8"`, true, true},
		{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "GET /v1/me?api_key=%[1]s HTTP/1.1" 200 1 "-" "curl/8"`, false, true},
		{ingest.NginxCombined, `198.51.100.7 - %[1]s [10/Oct/2000:13:55:36 -0700] "GET /v1/me HTTP/1.1" 2000 1`, false, false},
		{ingest.NginxCombined, `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "GET /v1/me?token=%[1]s`, false, false},
		{ingest.NginxJSON, `{` + ngTime + `,"uri":"/v1/me","status":"200","authorization":"Bearer %[1]s","http_authorization":"%[1]s"}`, false, true},
		{ingest.NginxJSON, `{` + ngTime + `,"uri":"/v1/me","status":"200","token_id":"Bearer %[1]s"}`, true, true},
		{ingest.NginxJSON, `{` + ngTime + `,"uri":"/v1/me","status":"200","token_id":"%[1]s"}`, true, true},
		{ingest.NginxJSON, `{` + ngTime + `,"request_uri":"/v1/me?access_token=%[1]s","status":"200"}`, false, true},
		{ingest.NginxJSON, `{` + ngTime + `,"uri":"/v1/me","status":"x","token_id":"%[1]s"}`, false, false},
		{ingest.NginxJSON, `{` + ngTime + `,"uri":"/v1/me","status":"200","authorization":"%[1]s\q"}`, false, false},
		{ingest.Envoy, `{` + enTime + `,"path":"/v1/me","response_code":200,"token_id":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.%[1]s"}`, true, true},
		{ingest.Envoy, `{` + enTime + `,"path":"/v1/me?key=%[1]s","response_code":200,"x-vigil-token-id":"basic %[1]s"}`, true, true},
		{ingest.APIGateway, `{` + agTime + `,"resourcePath":"/v1/me","status":"200","principalId":"Bearer %[1]s"}`, true, true},
		{ingest.APIGateway, `{` + agTime + `,"resourcePath":"/v1/me","path":"/v1/me?api_key=%[1]s","status":"200","apiKeyId":"k1"}`, false, true},
		{ingest.CloudTrail, `{` + ctTime + `,"userIdentity":{"accessKeyId":"%[1]s"},"responseElements":{"credentials":{"sessionToken":"%[1]s"}}}`, true, true},
		{ingest.CloudTrail, `{` + ctTime + `,"userIdentity":{"arn":"%[1]s"},"requestParameters":{"password":"%[1]s"}}`, true, true},
		{ingest.GitHub, `{` + ghTime + `,"token_id":"%[1]s","url_path":"/user","status_code":200}`, true, true},
		{ingest.GitHub, `{` + ghTime + `,"actor":"%[1]s","url_path":"/user?access_token=%[1]s","status_code":200}`, true, true},
	}
	fp := newFP(t)
	for i, l := range leaks {
		t.Run(fmt.Sprintf("%s#%d", l.format, i), func(t *testing.T) {
			d, err := ingest.NewDecoder(l.format, fp.Clone())
			if err != nil {
				t.Fatal(err)
			}
			// Secrets that look like tokens of well-known kinds.
			core := strings.ReplaceAll(rand.Text(), "=", "")
			for _, secret := range []string{"sk_live_" + core, "ghp_" + core, "github_pat_" + core} {
				line := []byte(fmt.Sprintf(l.line, secret))
				var ev event.Event
				err := d.Decode(line, &ev)
				if (err == nil) != l.ok {
					t.Fatalf("error %v, want ok %v", err, l.ok)
				}
				seen := render(&ev) + fmt.Sprint(err)
				for _, part := range []string{secret, core, core[:12], core[len(core)-12:]} {
					if strings.Contains(seen, part) {
						t.Fatalf("the secret is in the event or error: %s", seen)
					}
				}
				if !l.used {
					continue
				}
				if l.ok && !strings.HasPrefix(ev.TokenID, event.FingerprintPrefix) {
					t.Errorf("token id %q is not a fingerprint", ev.TokenID)
				}
				if strings.Count(l.line, "%[1]s") == 1 && strings.Contains(string(line), core) {
					t.Errorf("the secret used as the credential is still in the line")
				}
			}
		})
	}
}

// TestRawCredentialWithoutKey: without a fingerprint key, a credential id
// that is a raw secret is an error that does not quote it.
func TestRawCredentialWithoutKey(t *testing.T) {
	d, err := ingest.NewDecoder(ingest.NginxJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := "sk_live_" + rand.Text()
	line := []byte(`{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","uri":"/","status":"200","token_id":"Bearer ` + secret + `"}`)
	var ev event.Event
	err = d.Decode(line, &ev)
	want := `field "token_id": holds what looks like a raw credential, and no fingerprint key is configured`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	if strings.Contains(string(line), secret[8:]) {
		t.Error("the secret is still in the line")
	}
}

// TestFingerprintStable: the same secret gives the same id as vigil's own
// `token` field does, in every format, with or without its Authorization
// scheme.
func TestFingerprintStable(t *testing.T) {
	fp := newFP(t)
	secret := "sk_live_" + rand.Text()
	want := fp.ID([]byte(secret))
	lines := map[ingest.Format]string{
		ingest.Vigil:      `{"timestamp":"2026-03-04T01:56:48Z","token":"` + secret + `","source_ip":"198.51.100.7","endpoint":"/","status_code":200}`,
		ingest.NginxJSON:  `{"time":"2026-03-04T01:56:48+00:00","remote_addr":"198.51.100.7","uri":"/","status":"200","token_id":"Bearer ` + secret + `"}`,
		ingest.APIGateway: `{"requestTimeEpoch":1772589408000,"ip":"198.51.100.7","resourcePath":"/","status":"200","apiKeyId":"` + secret + `"}`,
	}
	for f, l := range lines {
		d, _ := ingest.NewDecoder(f, fp.Clone())
		var ev event.Event
		if err := d.Decode([]byte(l), &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if ev.TokenID != want {
			t.Errorf("%s: token id %s, want %s", f, ev.TokenID, want)
		}
	}
}
