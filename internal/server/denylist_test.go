package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/server"
)

// adminDo sends a request to the admin handler from a loopback peer.
func adminDo(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "127.0.0.1:51000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// forwardAuth asks the decision handler about a request with the test
// credential, from the owner's usual place.
func forwardAuth(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", server.PathForwardAuth, nil)
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("User-Agent", "okhttp/4.12.0")
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/v1/orders")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

type denialView struct {
	TokenID string    `json:"token_id"`
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Until   time.Time `json:"until"`
}

// TestDenylistAPI: an operator denies a credential through the admin API;
// its next request is refused (403) with the reason denylisted in the
// decision record, the list shows it, and once it is taken off the list
// the credential is allowed again.
func TestDenylistAPI(t *testing.T) {
	s, logs := newServer(t, "", server.Options{})
	defer s.Checker.Close()
	h, admin := s.Handler(), s.AdminHandler()

	rec := forwardAuth(t, h)
	id := rec.Header().Get("X-Vigil-Token-Id")
	if rec.Code != 200 || !strings.HasPrefix(id, "tk_") {
		t.Fatalf("before: %d %q", rec.Code, id)
	}

	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	body := `{"reason": "leaked in a CI log", "by": "alice", "until": "` + until.Format(time.RFC3339) + `"}`
	if rec := adminDo(t, admin, "PUT", server.PathDenylist+"/"+id, body); rec.Code != 204 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}

	rec = forwardAuth(t, h)
	if rec.Code != 403 || rec.Header().Get("X-Vigil-Decision") != "block" {
		t.Fatalf("denied credential: %d %v", rec.Code, rec.Header())
	}
	if strings.Contains(rec.Body.String(), "leaked") {
		t.Error("the client is told why it was denied")
	}
	var view struct {
		Recent []struct {
			Decision string `json:"decision"`
			Reasons  []struct {
				Signal, Detail string
			} `json:"reasons"`
		} `json:"recent_decisions"`
	}
	rec = adminDo(t, admin, "GET", server.PathCredentials+id, "")
	if err := json.Unmarshal(rec.Body.Bytes(), &view); err != nil {
		t.Fatal(err, rec.Body.String())
	}
	wantDetail := "credential denylisted: leaked in a CI log (by alice, until " + until.Format(time.RFC3339) + ")"
	if len(view.Recent) == 0 || view.Recent[0].Decision != "block" || len(view.Recent[0].Reasons) != 1 ||
		view.Recent[0].Reasons[0].Signal != "denylisted" || view.Recent[0].Reasons[0].Detail != wantDetail {
		t.Errorf("decision record: %s", rec.Body)
	}

	rec = adminDo(t, admin, "GET", server.PathDenylist, "")
	var list []denialView
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 {
		t.Fatalf("GET: %d %v %s", rec.Code, err, rec.Body)
	}
	if len(list) != 1 || list[0].TokenID != id || list[0].Reason != "leaked in a CI log" || list[0].By != "alice" ||
		!list[0].Until.Equal(until) || list[0].At.IsZero() {
		t.Errorf("list: %s", rec.Body)
	}

	if rec := adminDo(t, admin, "DELETE", server.PathDenylist+"/"+id, ""); rec.Code != 204 {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	if rec := forwardAuth(t, h); rec.Code != 200 {
		t.Errorf("after DELETE: %d", rec.Code)
	}
	if rec := adminDo(t, admin, "DELETE", server.PathDenylist+"/"+id, ""); rec.Code != 404 {
		t.Errorf("second DELETE: %d %s", rec.Code, rec.Body)
	}
	if rec := adminDo(t, admin, "GET", server.PathDenylist, ""); strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("empty list: %s", rec.Body)
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "credential denylisted") {
		t.Errorf("logs: %s", logs)
	}
}

// TestDenylistBadRequests: a bad PUT gets 400 with a problem that names the
// field, and repeats no value it was sent.
func TestDenylistBadRequests(t *testing.T) {
	s, _ := newServer(t, "", server.Options{})
	defer s.Checker.Close()
	admin := s.AdminHandler()
	const id = "tk_0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name, id, body string
		status         int
		want           string
	}{
		{"no body", id, "", 400, "body: empty"},
		{"not JSON", id, "reason=x", 400, "body: invalid character"},
		{"no reason", id, `{"by": "alice"}`, 400, "reason: missing"},
		{"blank reason", id, `{"reason": "   "}`, 400, "reason: missing"},
		{"reason a number", id, `{"reason": 7}`, 400, "reason: want a string"},
		{"reason too long", id, `{"reason": "` + strings.Repeat("x", 300) + `"}`, 400, "reason: 300 bytes, at most 256"},
		{"control characters", id, `{"reason": "a\u0000b"}`, 400, "reason: contains control characters"},
		{"by too long", id, `{"reason": "x", "by": "` + strings.Repeat("b", 257) + `"}`, 400, "by: 257 bytes"},
		{"until not a time", id, `{"reason": "x", "until": "next tuesday"}`, 400, "until: not an RFC 3339 time"},
		{"until a number", id, `{"reason": "x", "until": 1767225600}`, 400, "until: want a"},
		{"until past", id, `{"reason": "x", "until": "2020-01-01T00:00:00Z"}`, 400, "until: 2020-01-01T00:00:00Z is not in the future"},
		{"unknown field", id, `{"reason": "x", "expires": "2030-01-01T00:00:00Z"}`, 400, `unknown field "expires"`},
		{"two values", id, `{"reason": "x"} {"reason": "y"}`, 400, "body: more than one JSON value"},
		{"too large", id, `{"reason": "` + strings.Repeat("x", 5000) + `"}`, 413, "body: larger than 4096 bytes"},
		{"raw credential", "s3cr3t-T0KEN-never-logged-4242", `{"reason": "x"}`, 400, "token_id: not a vigil token id"},
		{"short token id", "tk_0123", `{"reason": "x"}`, 400, "token_id: not a vigil token id"},
		{"IPv6 address", "ip:2001:db8::1", `{"reason": "x"}`, 400, "token_id: an ip: key is"},
	} {
		rec := adminDo(t, admin, "PUT", server.PathDenylist+"/"+c.id, c.body)
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != c.status || p.Status != c.status ||
			rec.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(p.Detail, c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, rec.Code, rec.Body, c.status, c.want)
		}
		if c.id != id && strings.Contains(rec.Body.String(), c.id) {
			t.Errorf("%s: the token id sent is repeated: %s", c.name, rec.Body)
		}
	}
	if rec := adminDo(t, admin, "GET", server.PathDenylist, ""); strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("bad requests denied something: %s", rec.Body)
	}
	// Keys of requests without a credential can be denied; the / of an
	// IPv6 key is escaped in the path.
	for _, key := range []string{"ip:198.51.100.7", "ip:2001:db8:1:2::%2F64"} {
		if rec := adminDo(t, admin, "PUT", server.PathDenylist+"/"+key, `{"reason": "scanner"}`); rec.Code != 204 {
			t.Errorf("%s: %d %s", key, rec.Code, rec.Body)
		}
	}
	rec := adminDo(t, admin, "GET", server.PathDenylist, "")
	var list []denialView
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != 2 || list[1].TokenID != "ip:2001:db8:1:2::/64" {
		t.Errorf("anonymous keys: %v %s", err, rec.Body)
	}
}

// TestDenylistNeedsAdmin: without an admin token only loopback peers may
// change the denylist; with one, every request needs it.
func TestDenylistNeedsAdmin(t *testing.T) {
	s, _ := newServer(t, "", server.Options{})
	defer s.Checker.Close()
	const path = server.PathDenylist + "/tk_0123456789abcdef0123456789abcdef"
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		p := path
		if method == "GET" {
			p = server.PathDenylist
		}
		req := httptest.NewRequest(method, p, strings.NewReader(`{"reason": "x"}`))
		req.RemoteAddr = "203.0.113.9:40000"
		rec := httptest.NewRecorder()
		s.AdminHandler().ServeHTTP(rec, req)
		if rec.Code != 403 {
			t.Errorf("%s from another host without a token: %d", method, rec.Code)
		}
	}

	cfg, err := config.Parse([]byte(testConfig), "t")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Serve.AdminListen = "0.0.0.0:0"
	withToken, err := server.New(context.Background(), cfg, env(map[string]string{"VIGIL_ADMIN_TOKEN": "adm1n-token",
		"VIGIL_FINGERPRINT_KEY": "0123456789abcdef0123456789abcdef"}), slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer withToken.Checker.Close()
	for _, auth := range []string{"", "Bearer wrong", "Bearer adm1n-token"} {
		req := httptest.NewRequest("PUT", path, strings.NewReader(`{"reason": "x"}`))
		req.RemoteAddr = "203.0.113.9:40000"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		withToken.AdminHandler().ServeHTTP(rec, req)
		want := 401
		if auth == "Bearer adm1n-token" {
			want = 204
		}
		if rec.Code != want {
			t.Errorf("PUT with %q: %d, want %d", auth, rec.Code, want)
		}
	}
	ds, err := withToken.Checker.Store().Denials(context.Background(), 0)
	if err != nil || len(ds) != 1 {
		t.Errorf("denials: %v %+v", err, ds)
	}
}
