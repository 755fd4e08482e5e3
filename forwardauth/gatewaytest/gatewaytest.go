// Package gatewaytest runs real gateways — nginx and Caddy, from the
// system's packages — in front of test servers, with the configurations
// vigil ships in deploy/. A test renders a configuration (NginxSite,
// CaddySite), starts the gateway (StartNginx, StartCaddy) and sends its
// requests to Gateway.URL; the gateway is stopped when the test ends.
//
// Each gateway runs in the foreground as a child process, with every file it
// writes (configuration, pid, logs, temporary files) inside t.TempDir(), on
// a free loopback port. A missing binary fails the test with "... not found:
// run make deps": these tests are part of `make test` and are never skipped.
// The package needs Linux or another Unix.
package gatewaytest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/deploy"
)

// Timeouts of a gateway's life.
const (
	startTimeout = 20 * time.Second
	stopTimeout  = 5 * time.Second
	// startAttempts: a free port can be taken between FreeAddr and the
	// gateway's bind; the gateway is started again on another one.
	startAttempts = 3
)

// Gateway is a running gateway.
type Gateway struct {
	// URL is where clients reach it: "http://127.0.0.1:port".
	URL string
	// Addr is its listen address, "127.0.0.1:port".
	Addr string
	// Dir holds its configuration, pid file, logs and temporary files.
	Dir string
	// Config is the configuration it runs, as written to Dir.
	Config string

	out *syncBuffer
}

// Log returns what the gateway wrote to its standard output and error so
// far (nginx's error log and Caddy's log go there).
func (g *Gateway) Log() string { return g.out.String() }

// FreeAddr returns a loopback address, "127.0.0.1:port", whose port was
// free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return addr
}

// NginxSite renders deploy/nginx/vigil.conf for a test: nginx listens on
// listen, asks vigil at vigil and proxies allowed requests to upstream
// (each "host:port").
func NginxSite(t testing.TB, listen, vigil, upstream string) string {
	t.Helper()
	return render(t, "nginx/vigil.conf", []string{
		"listen 8000;", "listen " + listen + ";",
		"server 127.0.0.1:8080;", "server " + vigil + ";",
		"server 127.0.0.1:8081;", "server " + upstream + ";",
	})
}

// CaddySite renders deploy/caddy/Caddyfile for a test: Caddy listens on
// listen, asks vigil at vigil and proxies allowed requests to upstream
// (each "host:port"), with its admin endpoint off.
func CaddySite(t testing.TB, listen, vigil, upstream string) string {
	t.Helper()
	return render(t, "caddy/Caddyfile", []string{
		"admin localhost:2019", "admin off",
		// Any Host (a site address with a host would match only that
		// host), but only on the loopback address the test chose.
		"http://:8000 {", "http://:" + port(t, listen) + " {\n\tbind " + host(t, listen),
		"forward_auth 127.0.0.1:8080", "forward_auth " + vigil,
		"127.0.0.1:8081", upstream,
	})
}

func port(t testing.TB, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("listen address %q: %v", hostport, err)
	}
	return p
}

func host(t testing.TB, hostport string) string {
	t.Helper()
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("listen address %q: %v", hostport, err)
	}
	return h
}

// render reads a shipped configuration and replaces each old value (which
// must occur exactly once, so that the file and the tests cannot drift
// apart silently) with its new one.
func render(t testing.TB, name string, oldnew []string) string {
	t.Helper()
	b, err := fs.ReadFile(deploy.FS(), name)
	if err != nil {
		t.Fatalf("reading deploy/%s: %v", name, err)
	}
	s := string(b)
	for i := 0; i < len(oldnew); i += 2 {
		if n := strings.Count(s, oldnew[i]); n != 1 {
			t.Fatalf("deploy/%s: %q occurs %d times, want once", name, oldnew[i], n)
		}
		s = strings.Replace(s, oldnew[i], oldnew[i+1], 1)
	}
	return s
}

// StartNginx starts nginx with the http-level configuration that site
// returns for a listen address (NginxSite's, or a test's own), wrapped in a
// main configuration that keeps every file inside the gateway's directory:
//
//	nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'
//
// Running as root, the workers run as root too ("user root;"): the default
// user, nobody, could not write the temporary files in the test's private
// directory. It returns once nginx accepts connections.
func StartNginx(t testing.TB, site func(listen string) string) *Gateway {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin, err = findIn("nginx", "/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")
	}
	if err != nil {
		t.Fatalf("nginx not found: run make deps (%v)", err)
	}
	return start(t, "nginx", func(dir, listen string) (string, []string, []string) {
		conf := nginxMain(dir, site(listen))
		file := filepath.Join(dir, "nginx.conf")
		return conf, []string{bin, "-p", dir + "/", "-c", file, "-g", "daemon off;"}, nil
	})
}

func nginxMain(dir, site string) string {
	var b strings.Builder
	b.WriteString("# Written by vigil's gatewaytest.\n")
	if os.Geteuid() == 0 {
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, `worker_processes 1;
pid %[1]s/nginx.pid;
lock_file %[1]s/nginx.lock;
error_log stderr notice;

events {
    worker_connections 256;
}

http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/client_body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;

`, dir)
	b.WriteString(site)
	b.WriteString("\n}\n")
	return b.String()
}

// StartCaddy starts Caddy with the Caddyfile that site returns for a
// listen address (CaddySite's, or a test's own):
//
//	caddy run --config DIR/Caddyfile --adapter caddyfile
//
// with HOME and XDG_CONFIG_HOME/XDG_DATA_HOME in the gateway's directory.
// The Caddyfile must turn the admin endpoint off ("admin off") or give it a
// free port, and serve plain HTTP (an "http://" site address or
// "auto_https off"). It returns once Caddy accepts connections.
func StartCaddy(t testing.TB, site func(listen string) string) *Gateway {
	t.Helper()
	bin, err := exec.LookPath("caddy")
	if err != nil {
		bin, err = findIn("caddy", "/usr/bin", "/usr/local/bin")
	}
	if err != nil {
		t.Fatalf("caddy not found: run make deps (%v)", err)
	}
	return start(t, "caddy", func(dir, listen string) (string, []string, []string) {
		file := filepath.Join(dir, "Caddyfile")
		env := []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "XDG_DATA_HOME=" + filepath.Join(dir, "data")}
		return site(listen), []string{bin, "run", "--config", file, "--adapter", "caddyfile"}, env
	})
}

func findIn(name string, dirs ...string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not in PATH nor in %s", name, strings.Join(dirs, ", "))
}

// prepare returns a gateway's configuration for a directory and a listen
// address, its command line and its extra environment. The configuration is
// written to the file that follows -c or --config in the command line.
type prepare func(dir, listen string) (config string, argv, env []string)

func start(t testing.TB, name string, prep prepare) *Gateway {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		dir := t.TempDir()
		listen := FreeAddr(t)
		g, err := launch(t, name, dir, listen, prep)
		if err == nil {
			return g
		}
		lastErr = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("starting %s: %v", name, lastErr)
	return nil
}

func launch(t testing.TB, name, dir, listen string, prep prepare) (*Gateway, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	config, argv, env := prep(dir, listen)
	file := configFile(argv)
	if file == "" {
		return nil, errors.New("no configuration file in the command line")
	}
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		return nil, err
	}

	out := &syncBuffer{}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	g := &Gateway{URL: "http://" + listen, Addr: listen, Dir: dir, Config: config, out: out}
	stop := func() {
		pid := cmd.Process.Pid
		// The gateway leads its own process group (nginx's workers are in
		// it): a polite signal to the group, then a kill.
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
	}

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("%s exited during start-up (%v); its output:\n%s", name, err, out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not accept connections on %s within %v; its output:\n%s", name, listen, startTimeout, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s configuration (%s):\n%s\n%s output:\n%s", name, file, config, name, out.String())
		}
	})
	return g, nil
}

// configFile returns the configuration file of a command line: the
// argument after -c or --config.
func configFile(argv []string) string {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == "-c" || argv[i] == "--config" {
			return argv[i+1]
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer that a child's stdout and stderr copiers and
// the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
