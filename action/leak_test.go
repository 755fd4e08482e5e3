package action

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestRawTokenNeverLeaks runs actions whose authorization server echoes
// the token back in its errors, and searches every output for the token's
// bytes: errors, records, the audit file, logs and webhook bodies.
func TestRawTokenNeverLeaks(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxAttempts = 3 })
	tok := []byte(testToken)
	var outputs []string
	check := func(what string, b []byte) {
		t.Helper()
		if bytes.Contains(b, tok) {
			t.Errorf("raw token in %s: %s", what, b)
		}
		outputs = append(outputs, what)
	}

	// 1: retries with echoed errors, then success.
	h.oauth.set(func(s *oauthServer) { s.echo, s.fail503 = true, 2 })
	id1, _, err := h.x.Submit(request(StepDenylist | StepRevoke | StepWebhook))
	if err != nil {
		t.Fatal(err)
	}
	h.waitState(id1, StateSucceeded)

	// 2: a permanent, echoed error.
	h.oauth.set(func(s *oauthServer) { s.unsupported = true })
	req := request(StepRevoke | StepWebhook)
	req.TokenID = "tk_second"
	id2, _, err := h.x.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	h.waitState(id2, StateFailed)
	f := h.x.Failed()
	if len(f) != 1 || !strings.Contains(f[0].Error, redacted) {
		t.Fatalf("echoed error not redacted: %+v", f)
	}

	// 3: attempts spent on echoed 503s.
	h.oauth.set(func(s *oauthServer) { s.unsupported, s.fail503 = false, 100 })
	req.TokenID = "tk_third"
	id3, _, _ := h.x.Submit(req)
	h.waitState(id3, StateFailed)

	// 4: refused requests and direct calls.
	bad := request(StepRevoke)
	bad.Reason = "token " + testToken
	_, _, err = h.x.Submit(bad)
	check("refused Submit error", []byte(fmt.Sprint(err)))
	c := h.oauth.client(t, "")
	check("Revoke error", []byte(fmt.Sprint(c.Revoke(context.Background(), tok, ""))))
	h.oauth.set(func(s *oauthServer) { s.secret = "rotated" })
	_, err = c.Introspect(context.Background(), tok)
	check("Introspect error", []byte(fmt.Sprint(err)))
	in, _ := NewIntrospector(IntrospectorOptions{Client: c})
	_, err = in.Lookup(context.Background(), "tk_x", tok)
	check("Lookup error", []byte(fmt.Sprint(err)))

	for _, id := range []string{id1, id2, id3} {
		st, _ := h.x.Status(id)
		check("Status "+id, []byte(fmt.Sprintf("%+v %#v", st, st)))
	}
	check("Failed", []byte(fmt.Sprintf("%+v", h.x.Failed())))
	check("Pending", []byte(fmt.Sprintf("%+v", h.x.Pending())))

	// The secret type redacts everywhere.
	s := secret(tok)
	var lb logBuffer
	slog.New(slog.NewTextHandler(&lb, nil)).Info("x", "token", s)
	check("secret formatting", []byte(fmt.Sprintf("%v %s %q %#v %x %+v", s, s, s, s, s, s)+string(lb.Bytes())))

	h.stop()
	audit, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	check("audit file", audit)
	check("logs", h.logs.Bytes())
	check("webhook bodies", h.rc.allBodies())
	if !bytes.Contains(audit, []byte(redacted)) || !bytes.Contains(h.logs.Bytes(), []byte(redacted)) {
		t.Fatal("the echo scenario did not run: nothing was redacted")
	}
	if len(h.rc.allBodies()) == 0 || len(h.logs.Bytes()) == 0 {
		t.Fatal("no webhook bodies or logs to search")
	}
	// The server did receive the token: the test searched real traffic.
	if toks, _ := h.oauth.seen(); toks[0] != testToken {
		t.Fatalf("server saw %q", toks[0])
	}
	t.Logf("searched: %s", strings.Join(outputs, ", "))
}

// TestRevokeBodyWiped checks that the form body holding the token is
// zeroed once the request is done.
func TestRevokeBodyWiped(t *testing.T) {
	b := &wipingBody{b: []byte("token=" + testToken)}
	buf := make([]byte, 8)
	if n, _ := b.Read(buf); n != 8 {
		t.Fatal("short read")
	}
	b.Close()
	if !bytes.Equal(b.b, make([]byte, len(b.b))) {
		t.Fatal("body not wiped")
	}
	if n, _ := b.Read(buf); n != 0 {
		t.Fatal("read after close")
	}
}
