package action

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewOAuthValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    OAuthOptions
		want string // error substring; "" valid
	}{
		{"https", OAuthOptions{RevocationURL: "https://idp.example/revoke", ClientID: "c"}, ""},
		{"http loopback", OAuthOptions{IntrospectionURL: "http://127.0.0.1:8080/i", ClientID: "c"}, ""},
		{"http localhost", OAuthOptions{IntrospectionURL: "http://localhost/i", ClientID: "c"}, ""},
		{"http ipv6 loopback", OAuthOptions{IntrospectionURL: "http://[::1]:9/i", ClientID: "c"}, ""},
		{"no url", OAuthOptions{ClientID: "c"}, "neither revocation_url nor introspection_url"},
		{"http remote", OAuthOptions{RevocationURL: "http://idp.example/revoke", ClientID: "c"}, "https is required"},
		{"ftp", OAuthOptions{RevocationURL: "ftp://idp.example/revoke", ClientID: "c"}, "scheme must be https"},
		{"relative", OAuthOptions{RevocationURL: "/revoke", ClientID: "c"}, "has no host"},
		{"userinfo", OAuthOptions{RevocationURL: "https://u:p@idp.example/revoke", ClientID: "c"}, "user info"},
		{"no client", OAuthOptions{RevocationURL: "https://idp.example/revoke"}, "client_id is empty"},
		{"method", OAuthOptions{RevocationURL: "https://idp.example/revoke", ClientID: "c", AuthMethod: "private_key_jwt"}, "auth_method"},
		{"timeout", OAuthOptions{RevocationURL: "https://idp.example/revoke", ClientID: "c", Timeout: -1}, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewOAuth(tc.o)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	const tok = "at_Zx9-revoke.me~ok"
	for _, method := range []string{"", ClientSecretBasic, ClientSecretPost} {
		t.Run("method="+method, func(t *testing.T) {
			s := newOAuthServer(t, tok)
			c := s.client(t, method)
			if err := c.Revoke(context.Background(), []byte(tok), "access_token"); err != nil {
				t.Fatal(err)
			}
			in, err := c.Introspect(context.Background(), []byte(tok))
			if err != nil || in.Active {
				t.Fatalf("after revoke: %+v, %v", in, err)
			}
			// Unknown tokens are revoked too (RFC 7009 §2.2).
			if err := c.Revoke(context.Background(), []byte("unknown"), ""); err != nil {
				t.Fatal(err)
			}
			want := ClientSecretBasic
			if method == ClientSecretPost {
				want = ClientSecretPost
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for i, m := range s.methods {
				if m != want || s.contentTypes[i] != "application/x-www-form-urlencoded" {
					t.Fatalf("call %d: auth %s, content type %q", i, m, s.contentTypes[i])
				}
			}
			if s.hints[0] != "access_token" || s.hints[1] != "" || s.formTokens[0] != tok {
				t.Fatalf("hints %q, token %q", s.hints, s.formTokens[0])
			}
		})
	}
}

func TestRevokeErrors(t *testing.T) {
	const tok = "tok-errors-0123456789"
	for _, tc := range []struct {
		name      string
		setup     func(s *oauthServer)
		secret    string
		status    int
		code      string
		retryable bool
	}{
		{"503", func(s *oauthServer) { s.fail503 = 1 }, "", 503, "temporarily_unavailable", true},
		{"unsupported", func(s *oauthServer) { s.unsupported = true }, "", 400, "unsupported_token_type", false},
		{"wrong secret", func(*oauthServer) {}, "wrong", 401, "invalid_client", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOAuthServer(t, tok)
			s.set(tc.setup)
			c := s.client(t, "")
			if tc.secret != "" {
				s.set(func(s *oauthServer) { s.secret = tc.secret })
			}
			err := c.Revoke(context.Background(), []byte(tok), "")
			var h *HTTPError
			if !errors.As(err, &h) || h.Status != tc.status || h.Code != tc.code || h.Retryable != tc.retryable || IsRetryable(err) != tc.retryable {
				t.Fatalf("err %#v (%v)", h, err)
			}
		})
	}
}

func TestHTTPStatusClassification(t *testing.T) {
	for _, tc := range []struct {
		status     int
		header     string
		retryable  bool
		retryAfter time.Duration
	}{
		{200, "", false, 0},
		{400, "", false, 0},
		{403, "", false, 0},
		{404, "", false, 0},
		{408, "", true, 0},
		{429, "7", true, 7 * time.Second},
		{500, "", true, 0},
		{502, "", true, 0},
		{503, "120", true, 2 * time.Minute},
		{503, "soon", true, 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			w.WriteHeader(tc.status)
			w.Write([]byte("<html>oops</html>"))
		}))
		c, _ := NewOAuth(OAuthOptions{RevocationURL: srv.URL, ClientID: "c", ClientSecret: "s"})
		err := c.Revoke(context.Background(), []byte("t"), "")
		srv.Close()
		if tc.status == 200 {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		var h *HTTPError
		if !errors.As(err, &h) || h.Status != tc.status || h.Retryable != tc.retryable || h.RetryAfter != tc.retryAfter || h.Code != "" {
			t.Fatalf("%d: %#v (%v)", tc.status, h, err)
		}
	}
	// An HTTP date.
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if d := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Fatalf("date Retry-After: %s", d)
	}
	// Network errors are retryable, cancellation is not.
	c, _ := NewOAuth(OAuthOptions{RevocationURL: "http://127.0.0.1:1/revoke", ClientID: "c", Timeout: time.Second})
	if err := c.Revoke(context.Background(), []byte("t"), ""); !IsRetryable(err) {
		t.Fatalf("network error not retryable: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Revoke(ctx, []byte("t"), ""); err == nil || IsRetryable(err) {
		t.Fatalf("cancelled: %v", err)
	}
	if IsRetryable(Permanent(&HTTPError{Status: 503, Retryable: true})) || IsRetryable(nil) || IsRetryable(errors.New("x")) {
		t.Fatal("Permanent, nil or plain error retryable")
	}
}

func TestRevokeRedirectNotFollowed(t *testing.T) {
	followed := false
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed = true }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c, _ := NewOAuth(OAuthOptions{RevocationURL: srv.URL, ClientID: "c"})
	err := c.Revoke(context.Background(), []byte("t"), "")
	if err == nil || IsRetryable(err) || followed {
		t.Fatalf("redirect: %v, followed %v", err, followed)
	}
}

func TestIntrospect(t *testing.T) {
	const tok = "tok-introspect-0123456789"
	s := newOAuthServer(t, tok)
	c := s.client(t, ClientSecretPost)
	in, err := c.Introspect(context.Background(), []byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	if !in.Active || strings.Join(in.Scope, ",") != "read,write" || in.ClientID != "app-1" || in.Subject != "user-1" ||
		len(in.Audience) != 1 || in.CNF.JKT != "thumb" || in.Expiry.Before(time.Now()) {
		t.Fatalf("%+v", in)
	}
	if in, err := c.Introspect(context.Background(), []byte("unknown")); err != nil || in.Active {
		t.Fatalf("unknown token: %+v, %v", in, err)
	}
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"active":true,"scope":"` + strings.Repeat("a", maxBody) + `"}`))
	}))
	defer big.Close()
	c, _ = NewOAuth(OAuthOptions{IntrospectionURL: big.URL, ClientID: "c"})
	if _, err := c.Introspect(context.Background(), []byte(tok)); err == nil || !strings.Contains(err.Error(), "64 KiB") {
		t.Fatalf("oversized body: %v", err)
	}
	if err := c.Revoke(context.Background(), []byte(tok), ""); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("revoke without url: %v", err)
	}
}

func TestDecodeIntrospection(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // error substring; "" valid
		check    func(Introspection) bool
	}{
		{"inactive", `{"active":false,"scope":"a b","sub":"x"}`, "", func(i Introspection) bool { return !i.Active && i.Scope == nil && i.Subject == "" }},
		{"inactive ignores bad fields", `{"active":false,"exp":"soon"}`, "", func(i Introspection) bool { return !i.Active }},
		{"aud string", `{"active":true,"aud":"a"}`, "", func(i Introspection) bool { return len(i.Audience) == 1 && i.Audience[0] == "a" }},
		{"aud array", `{"active":true,"aud":["a","b"]}`, "", func(i Introspection) bool { return len(i.Audience) == 2 }},
		{"fractional exp", `{"active":true,"exp":1700000000.5}`, "", func(i Introspection) bool { return i.Expiry.UnixMilli() == 1700000000500 }},
		{"nulls", `{"active":true,"sub":null,"exp":null,"cnf":null,"aud":null}`, "", func(i Introspection) bool { return i.Active && i.Expiry.IsZero() }},
		{"cnf", `{"active":true,"cnf":{"x5t#S256":"bwcK"}}`, "", func(i Introspection) bool { return i.CNF.X5TS256 == "bwcK" }},
		{"unknown members", `{"active":true,"ext":{"a":[1]}}`, "", func(i Introspection) bool { return i.Active }},
		{"missing active", `{"scope":"a"}`, `"active" is missing`, nil},
		{"string active", `{"active":"true"}`, `"active": want true or false`, nil},
		{"scope type", `{"active":true,"scope":["a"]}`, `"scope": want a string`, nil},
		{"exp type", `{"active":true,"exp":"1700000000"}`, `"exp": want a number`, nil},
		{"exp range", `{"active":true,"exp":-1}`, `"exp": out of range`, nil},
		{"nbf range", `{"active":true,"nbf":1e300}`, `"nbf": out of range`, nil},
		{"aud type", `{"active":true,"aud":[1]}`, `"aud"`, nil},
		{"cnf type", `{"active":true,"cnf":"x"}`, `"cnf"`, nil},
		{"cnf member", `{"active":true,"cnf":{"jkt":1}}`, `"cnf": introspection: field "jkt"`, nil},
		{"array", `[]`, "not a JSON object", nil},
		{"syntax", `{"active":tru`, "invalid JSON at byte", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := decodeIntrospection([]byte(tc.in))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil || !tc.check(in) {
				t.Fatalf("%+v, %v", in, err)
			}
		})
	}
}

func TestFormEncoding(t *testing.T) {
	got := string(appendForm(nil, []byte("a b+c/d=é~-._")))
	if want := "a+b%2Bc%2Fd%3D%C3%A9~-._"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}
