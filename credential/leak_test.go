package credential

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/gate"
)

// secretMark is a recognizable credential; no error message and no log
// line may contain it.
const secretMark = "SeCrEt7c0ffee9d1e"

// allReasons lists every Reason an Error may carry for max length max.
func allReasons(max int) []string {
	return []string{
		reasonDuplicate, reasonAuthSyntax, reasonEmpty, reasonToken68, reasonKeyChars,
		reasonEncoding, reasonJWTMalform, reasonJWTSig, reasonJWTNoKey, reasonJWTExpired,
		reasonJWTNotYet, reasonJWTIssuedAt, reasonJWTIssuer, reasonJWTAudience,
		reasonJWTInvalid, tooLongReason(max),
	}
}

// allowedMessages returns every message an Extractor with these fields may
// produce: fixed words only.
func allowedMessages(max int, fields ...string) map[string]bool {
	m := map[string]bool{}
	for _, f := range fields {
		for _, r := range allReasons(max) {
			m[(&Error{Field: f, Reason: r}).Error()] = true
		}
	}
	return m
}

// checkError fails t unless err is nil or an *Error with an allowed
// message, and c is anonymous after it.
func checkError(t testing.TB, err error, c *Credential, allowed map[string]bool) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if !allowed[err.Error()] {
		t.Fatalf("error message %q is not one of the fixed messages", err.Error())
	}
	if e.Problem != ProblemInvalidRequest && e.Problem != ProblemInvalidToken {
		t.Fatalf("problem %q", e.Problem)
	}
	if c.Kind != gate.Anonymous || c.Secret != nil || c.Source != "" || c.Claims != (Claims{}) {
		t.Fatalf("credential not anonymous after error %v", err)
	}
}

// TestNoSecretInErrorsOrLogs feeds a recognizable secret, in every
// malformed form, to extractors with and without verification, while the
// JWKS server fails and recovers, and looks for it in every error message
// and log line.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newECSigner(t, "k1")
	// A key whose id and claims carry the secret, unknown to the JWKS, so
	// that jwx's own messages would quote it.
	leaky := newECSigner(t, secretMark)
	srv := newJWKSServer(t, jwks(t, s))
	plain, err := New(t.Context(), Options{APIKeyQuery: []string{"api_key"}, MaxLength: 64}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	verifying, err := New(t.Context(), Options{
		APIKeyQuery: []string{"api_key"}, MaxLength: 1024,
		JWT: JWTOptions{Verify: true, JWKSURL: srv.URL, Refresh: MinRefresh, Issuer: "https://idp.example", Audience: "https://api.example"},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer verifying.Close()

	jwts := []string{
		leaky.sign(t, claims(map[string]any{"sub": secretMark})),                                // unknown kid
		s.sign(t, claims(map[string]any{"sub": secretMark, "exp": time.Now().Add(-time.Hour)})), // expired
		s.sign(t, claims(map[string]any{"iss": secretMark})),                                    // wrong issuer
		s.sign(t, claims(map[string]any{"aud": []string{secretMark}})),                          // wrong audience
		tamper(t, s.sign(t, claims(map[string]any{"jti": secretMark}))),                         // bad signature
		"eyJ" + secretMark + "." + secretMark + "." + secretMark,                                // garbage
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0." + secretMark + "." + secretMark,                  // garbage with a good header
	}
	headers := []map[string]string{
		{"Authorization": secretMark},
		{"Authorization": "Basic " + secretMark},
		{"Authorization": "Basic " + secretMark + "!"},
		{"Authorization": "basic " + strings.Repeat(secretMark, 100)},
		{"Authorization": secretMark + " " + secretMark},
		{"Authorization": secretMark + " " + secretMark + "\x01"},
		{"Authorization": secretMark + "/ " + secretMark},
		{"Authorization": "Token " + secretMark + ", Bearer " + secretMark},
		{"Authorization": "AWS4-HMAC-SHA256 Credential=" + secretMark + `, Signature="` + secretMark},
		{"Authorization": "Token " + secretMark + " " + secretMark},
		{"Authorization": "Bearer " + secretMark + " x"},
		{"Authorization": "Bearer " + secretMark + ","},
		{"Authorization": "Bearer " + secretMark + "\x00"},
		{"Authorization": "Bearer " + secretMark + "=" + secretMark},
		{"Authorization": "Bearer " + strings.Repeat(secretMark, 100)},
		{"Authorization": "DPoP é" + secretMark},
		{"X-API-Key": secretMark + " " + secretMark},
		{"X-API-Key": secretMark + "," + secretMark},
		{"X-API-Key": strings.Repeat(secretMark, 100)},
		{"X-API-Key": secretMark + "\x01"},
	}
	for _, tok := range jwts {
		headers = append(headers, map[string]string{"Authorization": "Bearer " + tok})
	}
	uris := []string{
		"/?api_key=" + secretMark + "%zz",
		"/?api_key=" + secretMark + "&api_key=" + secretMark,
		"/?api_key=" + secretMark + "+x",
		"/?api_key=" + secretMark + "%2C",
		"/?api_key=" + strings.Repeat(secretMark, 100),
	}
	fields := []string{"Authorization", "header:x-api-key", "query:api_key"}
	errorsSeen := 0
	run := func() {
		for _, x := range []*Extractor{plain, verifying} {
			allowed := allowedMessages(x.maxLen, fields...)
			for _, hdr := range headers {
				for _, h := range headerSets(hdr) {
					var c Credential
					err := x.Extract(h, "/", &c)
					checkError(t, err, &c, allowed)
					if err != nil {
						errorsSeen++
						// Also through slog and fmt, as a careless caller would.
						log.Warn("rejected", "err", err, "credential", c.Secret)
					} else {
						log.Info("accepted", "secret", c.Secret, "claims_subject_len", len(c.Claims.Subject))
					}
				}
			}
			for _, uri := range uris {
				var c Credential
				err := x.Extract(nil, uri, &c)
				checkError(t, err, &c, allowed)
				if err == nil {
					t.Errorf("%s: no error", uri)
				}
				errorsSeen++
				log.Warn("rejected", "err", err)
			}
		}
	}
	run()
	// The JWKS server fails, then recovers; the reloads log.
	srv.serve(http.StatusInternalServerError, []byte(secretMark))
	waitFor(t, 5*time.Second, "a failed reload", func() bool { return strings.Contains(logs.String(), "JWKS reload failed") })
	srv.serve(http.StatusOK, jwks(t, s))
	run()
	if errorsSeen < 50 {
		t.Fatalf("only %d errors: the test does not test much", errorsSeen)
	}
	out := logs.String()
	if strings.Contains(out, secretMark) {
		i := strings.Index(out, secretMark)
		t.Errorf("the secret is in the log output: %q", out[max(0, i-200):i+len(secretMark)])
	}
	if !strings.Contains(out, "[REDACTED]") {
		t.Errorf("the log output holds no redacted secret; is the test logging anything? %q", out)
	}
}

// TestErrorMessagesAreFixed: every reason is fixed text without a format
// verb, and distinct.
func TestErrorMessagesAreFixed(t *testing.T) {
	rs := allReasons(DefaultMaxLength)
	for i, r := range rs {
		if strings.ContainsAny(r, "%\n") || r == "" {
			t.Errorf("reason %q", r)
		}
		if slices.Contains(rs[i+1:], r) {
			t.Errorf("reason %q twice", r)
		}
	}
}
