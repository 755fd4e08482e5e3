package cli

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServeStopsOnSIGTERM: `vigil serve` answers on its listeners and, on
// SIGTERM, shuts down gracefully and exits 0.
func TestServeStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/vigil.yaml"
	addr, admin := freeAddr(t), freeAddr(t)
	os.WriteFile(cfg, []byte("serve: {grpc_listen: \"\", shutdown_grace: 2s}\n"), 0o600)
	var stderr syncBuffer
	io := IO{Stdout: &bytes.Buffer{}, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }}
	done := make(chan int, 1)
	go func() { done <- Main([]string{"serve", "--config", cfg, "--listen", addr, "--admin", admin}, io) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, err := http.Get("http://" + admin + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin: %v %v", resp, err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
	for _, want := range []string{"random key", "vigil serving", "vigil shutting down"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestProxyNeedsUpstream(t *testing.T) {
	var stderr bytes.Buffer
	io := IO{Stdout: &bytes.Buffer{}, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }}
	for _, args := range [][]string{{"proxy"}, {"proxy", "--upstream", "ftp://x"}, {"proxy", "--upstream", "http://"}} {
		stderr.Reset()
		if code := Main(args, io); code != exitUsage || !strings.Contains(stderr.String(), "--upstream") {
			t.Errorf("%v: %d %s", args, code, stderr.String())
		}
	}
}

// TestLiveDemo: `vigil demo --proxy` shows the owner allowed throughout
// and the thief throttled (429) and then stepped up (401).
func TestLiveDemo(t *testing.T) {
	var out, stderr bytes.Buffer
	io := IO{Stdout: &out, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }}
	if code := Main([]string{"demo", "--proxy"}, io); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	s := out.String()
	for _, want := range []string{" 429 ", " 401 ", "step_up_auth", "owner: 56 of 56 requests allowed", "thief: "} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, liveOwnerToken) || strings.Contains(stderr.String(), liveOwnerToken) {
		t.Error("the raw token is in the output")
	}
}
