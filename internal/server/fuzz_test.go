package server_test

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/server"
)

// FuzzReport: any body posted to /v1/report is answered 200 or 400 with a
// JSON summary, never a panic or a 5xx.
func FuzzReport(f *testing.F) {
	for _, s := range []string{
		`{"token_id":"tk_a","status":200,"response_bytes":10}`,
		"{\"token_id\":\"tk_a\",\"status\":403}\nnot json\n",
		`{"token_id":"","status":99,"response_bytes":-1,"time":"x"}`,
		"\x00\xff{",
		strings.Repeat("{", 70000),
	} {
		f.Add(s)
	}
	cfg, err := config.Parse([]byte(testConfig), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	s, err := server.New(f.Context(), cfg, testEnv, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Checker.Close() })
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", server.PathReport, strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:5555" // a trusted proxy
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if !strings.HasPrefix(rec.Body.String(), `{"applied":`) {
			t.Fatalf("body %q", rec.Body.String())
		}
	})
}
