package action

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWebhookSend(t *testing.T) {
	rc := newReceiver(t)
	w := rc.webhook(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := Event{ID: "act_1", Type: EventRotate, TokenID: "tk_1", ClientID: "app", Subject: "u", JTI: "j", Reason: "r", Rule: "block", By: "vigil", Time: at}
	if err := w.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if keys := rc.delivered(); len(keys) != 1 || keys[0] != "act_1" {
		t.Fatalf("idempotency keys %q", keys)
	}
	var got map[string]any
	if err := json.Unmarshal(rc.lastBody(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "type", "token_id", "client_id", "subject", "jti", "reason", "rule", "by", "time"} {
		if _, ok := got[k]; !ok {
			t.Errorf("body lacks %q: %s", k, rc.lastBody())
		}
	}
	if got["type"] != EventRotate || got["time"] != "2026-03-01T12:00:00Z" {
		t.Fatalf("body %s", rc.lastBody())
	}
	for _, bad := range []Event{{Type: EventRevoke, TokenID: "t"}, {ID: "a", Type: "credential.delete", TokenID: "t"}, {ID: "a", Type: EventRevoke}} {
		if err := w.Send(context.Background(), bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

func TestWebhookErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{400, false}, {401, false}, {404, false}, {408, true}, {410, false}, {429, true}, {500, true}, {503, true}} {
		rc := newReceiver(t)
		rc.fail, rc.status = 1, tc.status
		err := rc.webhook(t).Send(context.Background(), Event{ID: "a", Type: EventRevoke, TokenID: "tk"})
		var h *HTTPError
		if !errors.As(err, &h) || h.Status != tc.status || IsRetryable(err) != tc.retryable {
			t.Fatalf("%d: %v", tc.status, err)
		}
	}
	for _, o := range []WebhookOptions{
		{URL: "https://h.example/x", Secret: []byte("short")},
		{URL: "http://h.example/x", Secret: make([]byte, 16)},
		{URL: "https://h.example/x", Secret: make([]byte, 16), Timeout: -1},
	} {
		if _, err := NewWebhook(o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	secret := []byte("0123456789abcdef")
	body := []byte(`{"id":"a"}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, now, body)
	other := Sign([]byte("fedcba9876543210"), now, body)
	for _, tc := range []struct {
		name   string
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"good", good, string(body), now, nil},
		{"within tolerance", good, string(body), now.Add(4 * time.Minute), nil},
		{"two v1, one good", other + "," + strings.Split(good, ",")[1], string(body), now, nil},
		{"tampered body", good, `{"id":"b"}`, now, ErrBadSignature},
		{"other key", other, string(body), now, ErrBadSignature},
		{"stale", good, string(body), now.Add(6 * time.Minute), ErrStaleSignature},
		{"future", good, string(body), now.Add(-6 * time.Minute), ErrStaleSignature},
		{"no v1", "t=1800000000", string(body), now, ErrBadSignature},
		{"no t", strings.Split(good, ",")[1], string(body), now, ErrBadSignature},
		{"two t", "t=1800000000," + good, string(body), now, ErrBadSignature},
		{"padded t", strings.Replace(good, "t=", "t=0", 1), string(body), now, ErrBadSignature},
		{"garbage", "xyz", string(body), now, ErrBadSignature},
		{"empty", "", string(body), now, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(secret, tc.header, []byte(tc.body), tc.now, 0)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWebhookNoRedirect(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("https://elsewhere.example/", http.StatusFound))
	defer srv.Close()
	w, _ := NewWebhook(WebhookOptions{URL: srv.URL, Secret: make([]byte, 16)})
	if err := w.Send(context.Background(), Event{ID: "a", Type: EventRevoke, TokenID: "tk"}); err == nil || IsRetryable(err) {
		t.Fatalf("redirect: %v", err)
	}
}
