package action

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// oauthServer is an authorization server for tests: RFC 7009 revocation
// at /revoke and RFC 7662 introspection at /introspect, with client
// authentication (basic and post), a token table and failure injection.
type oauthServer struct {
	srv              *httptest.Server
	clientID, secret string

	mu     sync.Mutex
	active map[string]bool // raw token → active; absent: unknown
	// Failure injection for /revoke: the first fail503 calls answer 503
	// with Retry-After: 0; unsupported answers 400 unsupported_token_type;
	// echo puts the presented token in error_description.
	fail503     int
	unsupported bool
	echo        bool
	// block, when set, holds /introspect calls until closed.
	block                    chan struct{}
	revokes, introspects     int
	authFailures             int
	methods                  []string
	hints                    []string
	contentTypes, formTokens []string
}

func newOAuthServer(t testing.TB, tokens ...string) *oauthServer {
	s := &oauthServer{clientID: "vigil app", secret: "s3cr:et/+%", active: map[string]bool{}}
	for _, tok := range tokens {
		s.active[tok] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *oauthServer) client(t testing.TB, method string) *OAuth {
	t.Helper()
	c, err := NewOAuth(OAuthOptions{
		RevocationURL: s.srv.URL + "/revoke", IntrospectionURL: s.srv.URL + "/introspect",
		ClientID: s.clientID, ClientSecret: s.secret, AuthMethod: method,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *oauthServer) writeError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// authenticate checks client_secret_basic (id and secret form-encoded
// before base64, RFC 6749 §2.3.1) or client_secret_post.
func (s *oauthServer) authenticate(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		raw, ok := strings.CutPrefix(h, "Basic ")
		if !ok {
			return "", false
		}
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return "", false
		}
		id, sec, ok := strings.Cut(string(b), ":")
		if !ok {
			return "", false
		}
		id, err1 := url.QueryUnescape(id)
		sec, err2 := url.QueryUnescape(sec)
		return ClientSecretBasic, err1 == nil && err2 == nil && id == s.clientID && sec == s.secret
	}
	return ClientSecretPost, r.PostForm.Get("client_id") == s.clientID && r.PostForm.Get("client_secret") == s.secret
}

func (s *oauthServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.writeError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	method, ok := s.authenticate(r)
	s.mu.Lock()
	s.methods = append(s.methods, method)
	s.contentTypes = append(s.contentTypes, r.Header.Get("Content-Type"))
	if !ok {
		s.authFailures++
		s.mu.Unlock()
		s.writeError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	tok := r.PostForm.Get("token")
	s.formTokens = append(s.formTokens, tok)
	switch r.URL.Path {
	case "/revoke":
		s.revokes++
		s.hints = append(s.hints, r.PostForm.Get("token_type_hint"))
		switch {
		case tok == "":
			s.mu.Unlock()
			s.writeError(w, http.StatusBadRequest, "invalid_request", "no token")
		case s.fail503 > 0:
			s.fail503--
			desc := "try later"
			if s.echo {
				desc = "cannot revoke " + tok + " now"
			}
			s.mu.Unlock()
			w.Header().Set("Retry-After", "0")
			s.writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", desc)
		case s.unsupported:
			desc := "token type not supported"
			if s.echo {
				desc = "token " + tok + " not supported"
			}
			s.mu.Unlock()
			s.writeError(w, http.StatusBadRequest, "unsupported_token_type", desc)
		default:
			if _, known := s.active[tok]; known {
				s.active[tok] = false
			}
			s.mu.Unlock()
			w.WriteHeader(http.StatusOK) // also for unknown tokens (RFC 7009 §2.2)
		}
	case "/introspect":
		s.introspects++
		active := s.active[tok]
		block := s.block
		s.mu.Unlock()
		if block != nil {
			<-block
		}
		w.Header().Set("Content-Type", "application/json")
		if !active {
			io.WriteString(w, `{"active":false}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"active": true, "scope": "read write", "client_id": "app-1", "username": "ann",
			"token_type": "Bearer", "sub": "user-1", "iss": "https://idp.example", "jti": "j-1",
			"aud": "https://api.example", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
			"cnf": map[string]string{"jkt": "thumb"},
		})
	default:
		s.mu.Unlock()
		http.NotFound(w, r)
	}
}

func (s *oauthServer) counts() (revokes, introspects int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokes, s.introspects
}

// seen returns what the server was sent: tokens and hints, in order.
func (s *oauthServer) seen() (tokens, hints []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.formTokens...), append([]string(nil), s.hints...)
}

func (s *oauthServer) set(f func(s *oauthServer)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// receiver is a webhook receiver that verifies signatures.
type receiver struct {
	srv    *httptest.Server
	secret []byte

	mu     sync.Mutex
	fail   int // the first fail calls answer status
	status int
	bodies [][]byte
	keys   []string
	errs   []error
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{secret: []byte("webhook-secret-0123456789")}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := VerifySignature(rc.secret, r.Header.Get(SignatureHeader), body, time.Now(), time.Minute)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.bodies = append(rc.bodies, body)
		if err != nil || r.Header.Get("Content-Type") != "application/json" {
			rc.errs = append(rc.errs, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if rc.fail > 0 {
			rc.fail--
			w.WriteHeader(rc.status)
			return
		}
		rc.keys = append(rc.keys, r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) webhook(t testing.TB) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookOptions{URL: rc.srv.URL + "/hook", Secret: rc.secret})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (rc *receiver) delivered() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.keys...)
}

func (rc *receiver) lastBody() []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.bodies[len(rc.bodies)-1]
}

func (rc *receiver) allBodies() []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return bytes.Join(rc.bodies, []byte("\n"))
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
