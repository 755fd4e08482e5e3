package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The environment variables that name shared servers.
const (
	envAddr         = "REDIS_ADDR"
	envClusterAddrs = "REDIS_CLUSTER_ADDRS"
)

// Timeouts and limits of the servers' lives.
const (
	// startTimeout bounds a start, from exec to the first PONG.
	startTimeout = 10 * time.Second
	// stopTimeout is how long Stop and the cleanup wait after SIGTERM
	// before they send SIGKILL.
	stopTimeout = 5 * time.Second
	// clusterTimeout bounds the forming of a cluster and WaitReady.
	clusterTimeout = 20 * time.Second
	// startAttempts: a free port can be taken between freePorts and
	// redis-server's bind; the server is started again on other ports.
	startAttempts = 3
	// restartAttempts, restartBackoff: Start must use the same port, so
	// when it is taken it waits for it a little.
	restartAttempts = 5
	restartBackoff  = 200 * time.Millisecond
	// maxRedirects bounds the MOVED and ASK replies ClusterServer.Cmd
	// follows for one command.
	maxRedirects = 5
	// logTailLines, logTailBytes: how much of a server's log errors show.
	logTailLines = 40
	logTailBytes = 16 << 10
)

// The cluster Cluster forms.
const (
	clusterNodes       = 3
	clusterSlots       = 16384
	clusterNodeTimeout = "2000" // ms
)

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = errors.New("address already in use")

// An Option changes how Standalone or Cluster provides its servers.
type Option func(*options)

type options struct {
	private bool
	args    []string
}

// Private makes Standalone or Cluster start servers of the test's own even
// when REDIS_ADDR or REDIS_CLUSTER_ADDRS names shared ones. Tests that
// Stop, Kill, Start or Pause a server need it.
func Private() Option {
	return func(o *options) { o.private = true }
}

// Args appends arguments to the redis-server command line of each server
// started, after the harness's own, which they can override:
//
//	Args("--maxmemory", "32mb", "--maxmemory-policy", "volatile-ttl")
//
// Args implies Private: a shared server runs with the configuration it has.
func Args(args ...string) Option {
	args = slices.Clone(args)
	return func(o *options) {
		o.private = true
		o.args = append(o.args, args...)
	}
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Server is a redis-server for a test: one the harness runs (private), or
// a shared one named by REDIS_ADDR or REDIS_CLUSTER_ADDRS. The methods
// that take a testing.TB must be called from the test's goroutine, as they
// may call t.Fatal; Addr, Prefix and Cmd may be called from any goroutine.
type Server struct {
	addr   string
	prefix string
	// env names the variable a shared server comes from; "" for a
	// private one.
	env string

	// A private server's command line and files.
	bin     string
	args    []string
	dir     string
	logFile string
	busPort int // a cluster node's cluster bus port; 0 if standalone

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of a private redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait has returned
	err  error         // cmd.Wait's, to read once done is closed

	// Pause's state, guarded by the Server's mu: when to resume, and the
	// timer that will (nil when the process is not paused).
	resumeAt time.Time
	resume   *time.Timer
}

// Standalone returns a redis-server for t. When REDIS_ADDR is set (to
// "host:port") and no option asks for a private server, it is that shared
// server, which must answer PING; the keys under the returned Server's
// Prefix are deleted from it when the test ends.
//
// Otherwise Standalone starts a redis-server of the test's own on a free
// 127.0.0.1 port:
//
//	redis-server --port N --bind 127.0.0.1 --save "" --appendonly no
//		--dir DIR --logfile DIR/redis.log --daemonize no [Args...]
//
// with DIR from t.TempDir(), and returns once it answers PING. It is
// stopped when the test ends (SIGTERM, then SIGKILL after 5 s). A missing
// redis-server fails the test: run make deps.
func Standalone(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := collect(opts)
	prefix := newPrefix()
	if addr := os.Getenv(envAddr); addr != "" && !o.private {
		s := &Server{addr: addr, prefix: prefix, env: envAddr}
		if err := s.ping(); err != nil {
			t.Fatalf("redistest: the shared server of %s=%s: %v", envAddr, addr, err)
		}
		t.Cleanup(func() {
			err := scanPrefix(s, prefix, func(keys []string) error {
				_, err := s.Cmd(append([]string{"UNLINK"}, keys...)...)
				return err
			})
			if err != nil {
				t.Errorf("redistest: deleting the keys %s* from %s: %v", prefix, addr, err)
			}
		})
		return s
	}
	return startServer(t, findServer(t), prefix, o.args, -1)
}

// Addr returns the server's address, "host:port".
func (s *Server) Addr() string { return s.addr }

// Prefix returns the key prefix of the test, "vigiltest:<16 hex digits>:",
// which has no glob metacharacters. The test's keys should all start with
// it: on a shared server, the keys under it are deleted when the test
// ends.
func (s *Server) Prefix() string { return s.prefix }

// Cmd sends one command and returns the reply: a string (simple or bulk),
// an int64, nil (null bulk string or array) or a []any of these. An error
// reply is returned as the error, of type Error; other errors (connecting,
// I/O, a malformed reply, 10 s without a reply) say the command and the
// server's address. Each call uses a connection of its own.
func (s *Server) Cmd(args ...string) (any, error) {
	r, err := exchange(s.addr, cmdTimeout, args)
	if err != nil {
		return nil, fmt.Errorf("redistest: %s on %s: %w", commandName(args), s.addr, err)
	}
	if e, ok := r[0].(Error); ok {
		return nil, e
	}
	return r[0], nil
}

// Do is Cmd for a test: an error reply is returned as the reply, of type
// Error, and other errors fail the test.
func (s *Server) Do(t testing.TB, args ...string) any {
	t.Helper()
	r, err := s.Cmd(args...)
	if e, ok := err.(Error); ok {
		return e
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *Server) ping() error {
	r, err := s.Cmd("PING")
	if err != nil {
		return err
	}
	if r != "PONG" {
		return fmt.Errorf("PING on %s: reply %q, want PONG", s.addr, r)
	}
	return nil
}

// Stop stops a private server politely (SIGTERM; SIGKILL after 5 s) and
// waits for it to exit. Start starts it again.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.halt(t, "Stop", stopTimeout)
}

// Kill stops a private server abruptly (SIGKILL), as a crash would, and
// waits for it to exit. Start starts it again.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.halt(t, "Kill", 0)
}

func (s *Server) halt(t testing.TB, what string, grace time.Duration) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.running(t, what)
	s.proc = nil
	p.stop(grace)
}

// Start starts a stopped private server again, on the same port with the
// same command line, and returns once it answers PING. Its data is gone:
// persistence is off. A cluster node keeps its place in the cluster (its
// node configuration file is kept); see ClusterServer.WaitReady.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.private(t, "Start")
	if p := s.proc; p != nil {
		select {
		case <-p.done: // it died on its own
			p.stop(0)
			s.proc = nil
		default:
			t.Fatalf("redistest: Start: redis-server on %s is already running", s.addr)
		}
	}
	var err error
	for range restartAttempts {
		var p *process
		if p, err = s.launch(); err == nil {
			s.proc = p
			return
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(restartBackoff)
	}
	t.Fatalf("redistest: restarting redis-server on %s: %v", s.addr, err)
}

// Pause freezes a private server for d, as a slow or stalled server would
// be: it stops the process (SIGSTOP) and returns, and the process goes on
// (SIGCONT) d later. Connections are still accepted meanwhile (by the
// kernel), but no command is answered. A second Pause can only make the
// pause longer. Stop and Kill end a pause.
func (s *Server) Pause(t testing.TB, d time.Duration) {
	t.Helper()
	if d <= 0 {
		t.Fatalf("redistest: Pause(%v): the duration must be positive", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.running(t, "Pause")
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: Pause: stopping redis-server on %s (pid %d): %v", s.addr, p.cmd.Process.Pid, err)
	}
	if until := time.Now().Add(d); until.After(p.resumeAt) {
		p.resumeAt = until
	}
	if p.resume == nil {
		p.resume = time.AfterFunc(d, func() { s.resumeIfDue(p) })
	}
}

// resumeIfDue continues p at its resumeAt, unless it is no longer the
// server's process (Stop and Kill resume it themselves).
func (s *Server) resumeIfDue(p *process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != p {
		return
	}
	if wait := time.Until(p.resumeAt); wait > 0 {
		p.resume = time.AfterFunc(wait, func() { s.resumeIfDue(p) })
		return
	}
	p.resume = nil
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
}

// private fails the test unless s is a server of its own.
func (s *Server) private(t testing.TB, what string) {
	t.Helper()
	if s.env != "" {
		t.Fatalf("redistest: %s: %s is the shared server of %s; a test that stops, starts or pauses its server needs one of its own: pass redistest.Private()", what, s.addr, s.env)
	}
}

// running returns the process of a private, running server, or fails the
// test. s.mu must be held.
func (s *Server) running(t testing.TB, what string) *process {
	t.Helper()
	s.private(t, what)
	p := s.proc
	if p == nil {
		t.Fatalf("redistest: %s: redis-server on %s is not running (it was stopped and not started again)", what, s.addr)
	}
	select {
	case <-p.done:
		t.Fatalf("redistest: %s: redis-server on %s has exited (%v); the last lines of %s:\n%s", what, s.addr, p.err, s.logFile, logTail(s.logFile, 0))
	default:
	}
	return p
}

// findServer returns the path of redis-server, or fails the test.
func findServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found: run make deps (scripts/deps.sh installs Debian's redis-server): %v", err)
	}
	return bin
}

// startServer starts a private redis-server: a standalone one when node is
// negative, else the node'th node of a cluster (not yet in it). It retries
// on other ports when one was taken, registers the cleanup that stops the
// server, and fails the test when the server cannot be started.
func startServer(t testing.TB, bin, prefix string, extra []string, node int) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{prefix: prefix, bin: bin, dir: dir, logFile: filepath.Join(dir, "redis.log")}
	nports := 1
	if node >= 0 {
		nports = 2 // the cluster bus needs a port too
	}
	var err error
	for range startAttempts {
		var ports []int
		if ports, err = freePorts(nports); err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.args = []string{
			"--port", strconv.Itoa(ports[0]),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--logfile", s.logFile,
			"--daemonize", "no",
		}
		if node >= 0 {
			s.busPort = ports[1]
			s.args = append(s.args,
				"--cluster-enabled", "yes",
				"--cluster-port", strconv.Itoa(s.busPort),
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", node)),
				"--cluster-node-timeout", clusterNodeTimeout,
			)
		}
		s.args = append(s.args, extra...)
		var p *process
		if p, err = s.launch(); err == nil {
			s.proc = p
			break
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if s.proc == nil {
		t.Fatalf("redistest: starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		if p := s.proc; p != nil {
			s.proc = nil
			p.stop(stopTimeout)
		}
		s.mu.Unlock()
		if t.Failed() {
			t.Logf("redistest: redis-server on %s, the last lines of %s:\n%s", s.addr, s.logFile, logTail(s.logFile, 0))
		}
	})
	return s
}

// launch runs s's command line and waits until the server answers PING
// (see answers), failing early when it exits. redis-server's own output (errors in its arguments, before it opens its
// log file) goes to its log file too.
func (s *Server) launch() (*process, error) {
	off := fileSize(s.logFile)
	logf, err := os.OpenFile(s.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	logf.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("running %s for %s: %w", s.bin, s.addr, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		// A try ends as soon as the process exits: when another listener
		// holds the port, the try could wait for its reply in vain.
		probe := make(chan error, 1)
		go func() { probe <- s.answers(p) }()
		var last error
		select {
		case <-p.done:
			tail := logTail(s.logFile, off)
			err := fmt.Errorf("redis-server on %s exited during start-up (%v); the last lines of %s:\n%s", s.addr, p.err, s.logFile, tail)
			if strings.Contains(tail, "Address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return nil, err
		case last = <-probe:
		}
		if last == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop(0)
			return nil, fmt.Errorf("redis-server on %s did not answer PING within %v (last: %v); the last lines of %s:\n%s", s.addr, startTimeout, last, s.logFile, logTail(s.logFile, off))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers tells whether the server on s.addr answers PING and is p (its
// INFO gives p's pid), not another that took the port: nil if so, else
// what it answered.
func (s *Server) answers(p *process) error {
	// Short: the loop tries again.
	r, err := exchange(s.addr, 500*time.Millisecond, []string{"PING"}, []string{"INFO", "server"})
	switch {
	case err != nil:
		return err
	case r[0] != "PONG":
		return fmt.Errorf("PING: reply %#v", r[0])
	}
	if pid := fields(r[1])["process_id"]; pid != strconv.Itoa(p.cmd.Process.Pid) {
		return fmt.Errorf("the server on the port is process %s, not %d", pid, p.cmd.Process.Pid)
	}
	return nil
}

// stop ends the process and waits for it: with grace, SIGTERM (and SIGCONT,
// which a paused server needs to act on it) and, grace later, SIGKILL;
// without, SIGKILL at once. The SIGKILL goes to the process group, which
// also holds any child the server forked.
func (p *process) stop(grace time.Duration) {
	if p.resume != nil {
		p.resume.Stop()
		p.resume = nil
	}
	if grace > 0 {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// Held open until all are chosen, so that they differ.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns the last lines of a log file written after offset off.
func logTail(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	start := max(off, fi.Size()-logTailBytes, 0)
	buf := make([]byte, fi.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	text := strings.TrimRight(string(buf), "\n")
	if text == "" {
		return "(empty)"
	}
	lines := strings.Split(text, "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return strings.Join(lines, "\n")
}

// newPrefix returns a key prefix unique to a call.
func newPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return "vigiltest:" + hex.EncodeToString(b[:]) + ":"
}

// scanPrefix calls del with the keys of s (in database 0) that start with
// prefix, a batch at a time.
func scanPrefix(s *Server, prefix string, del func(keys []string) error) error {
	cursor := "0"
	for {
		r, err := s.Cmd("SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			return err
		}
		a, ok := r.([]any)
		if !ok || len(a) != 2 {
			return fmt.Errorf("SCAN on %s: unexpected reply %#v", s.addr, r)
		}
		next, ok1 := a[0].(string)
		batch, ok2 := a[1].([]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("SCAN on %s: unexpected reply %#v", s.addr, r)
		}
		if len(batch) > 0 {
			keys := make([]string, 0, len(batch))
			for _, k := range batch {
				if k, ok := k.(string); ok {
					keys = append(keys, k)
				}
			}
			if err := del(keys); err != nil {
				return err
			}
		}
		if next == "0" {
			return nil
		}
		cursor = next
	}
}

// ClusterServer is a Redis Cluster for a test: three masters the harness
// runs, or the shared cluster of REDIS_CLUSTER_ADDRS. Its methods that take
// a testing.TB must be called from the test's goroutine; the others may be
// called from any.
type ClusterServer struct {
	nodes  []*Server
	prefix string
	shared bool
}

// Cluster returns a Redis Cluster for t. When REDIS_CLUSTER_ADDRS is set
// (to "host:port,host:port,...") and no option asks for a private cluster,
// it is that shared cluster, which must be healthy (see WaitReady); the
// keys under Prefix are deleted from its nodes when the test ends.
//
// Otherwise Cluster starts three redis-server nodes (7.0 or later) of the
// test's own, each as Standalone would, in a directory of its own, with
//
//	--cluster-enabled yes --cluster-port BUS
//	--cluster-config-file DIR/nodes-I.conf --cluster-node-timeout 2000
//
// and forms a cluster of three masters without replicas: slots 0-5460,
// 5461-10922 and 10923-16383, assigned with CLUSTER ADDSLOTSRANGE, and the
// nodes introduced with CLUSTER MEET. It returns once the cluster is
// ready (WaitReady); the nodes are stopped when the test ends.
func Cluster(t testing.TB, opts ...Option) *ClusterServer {
	t.Helper()
	o := collect(opts)
	c := &ClusterServer{prefix: newPrefix()}
	if env := os.Getenv(envClusterAddrs); env != "" && !o.private {
		c.shared = true
		for a := range strings.SplitSeq(env, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.nodes = append(c.nodes, &Server{addr: a, prefix: c.prefix, env: envClusterAddrs})
			}
		}
		if len(c.nodes) == 0 {
			t.Fatalf("redistest: %s=%q names no server", envClusterAddrs, env)
		}
		if err := c.waitReady(clusterTimeout); err != nil {
			t.Fatalf("redistest: the shared cluster of %s=%s: %v", envClusterAddrs, env, err)
		}
		t.Cleanup(func() {
			for _, n := range c.nodes {
				err := scanPrefix(n, c.prefix, func(keys []string) error {
					for _, k := range keys {
						if _, err := c.Cmd("UNLINK", k); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Errorf("redistest: deleting the keys %s* from the cluster node %s: %v", c.prefix, n.addr, err)
				}
			}
		})
		return c
	}

	bin := findServer(t)
	requireVersion(t, bin, 7)
	for i := range clusterNodes {
		c.nodes = append(c.nodes, startServer(t, bin, c.prefix, o.args, i))
	}
	if err := c.form(); err != nil {
		t.Fatalf("redistest: forming a cluster of %s: %v%s", strings.Join(c.Addrs(), ", "), err, c.logTails())
	}
	c.WaitReady(t)
	return c
}

// form makes a cluster of the nodes, fresh ones: each gets a distinct
// configuration epoch (as redis-cli --cluster create does, sparing the
// nodes an epoch collision to resolve) and its share of the slots, and
// the first node meets the others.
func (c *ClusterServer) form() error {
	n := len(c.nodes)
	for i, node := range c.nodes {
		lo := (i*clusterSlots + n/2) / n
		hi := ((i+1)*clusterSlots+n/2)/n - 1
		if _, err := node.Cmd("CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return fmt.Errorf("CLUSTER SET-CONFIG-EPOCH on %s: %w", node.addr, err)
		}
		if _, err := node.Cmd("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE %d %d on %s: %w", lo, hi, node.addr, err)
		}
	}
	for _, node := range c.nodes[1:] {
		host, port, err := net.SplitHostPort(node.addr)
		if err != nil {
			return err
		}
		bus := strconv.Itoa(node.busPort)
		if _, err := c.nodes[0].Cmd("CLUSTER", "MEET", host, port, bus); err != nil {
			return fmt.Errorf("CLUSTER MEET %s %s %s on %s: %w", host, port, bus, c.nodes[0].addr, err)
		}
	}
	return nil
}

// Addrs returns the addresses of the cluster's nodes, "host:port".
func (c *ClusterServer) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// Prefix returns the key prefix of the test; see Server.Prefix.
func (c *ClusterServer) Prefix() string { return c.prefix }

// Node returns the i'th node, 0 <= i < len(Addrs()), for a test to send it
// commands (with no redirection followed) or, in a private cluster, to
// Stop, Kill, Start or Pause it.
func (c *ClusterServer) Node(i int) *Server { return c.nodes[i] }

// Cmd sends one command to the cluster and returns the reply, as
// Server.Cmd does. It sends it to the first node that accepts a
// connection, then follows MOVED and ASK redirections (up to 5).
func (c *ClusterServer) Cmd(args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("redistest: Cmd: no command")
	}
	var (
		addr  string
		reply any
		err   error
	)
	for _, n := range c.nodes {
		addr = n.addr
		if reply, err = send(addr, false, args); !isDialError(err) {
			break
		}
	}
	for redirects := 0; ; redirects++ {
		if err != nil {
			return nil, err
		}
		e, ok := reply.(Error)
		if !ok {
			return reply, nil
		}
		kind, target, ok := redirection(e, addr)
		if !ok || redirects == maxRedirects {
			return nil, e
		}
		addr = target
		reply, err = send(addr, kind == "ASK", args)
	}
}

// send sends a command to one node, preceded by ASKING when asking.
func send(addr string, asking bool, args []string) (any, error) {
	cmds := [][]string{args}
	if asking {
		cmds = [][]string{{"ASKING"}, args}
	}
	r, err := exchange(addr, cmdTimeout, cmds...)
	if err != nil {
		return nil, fmt.Errorf("redistest: %s on %s: %w", commandName(args), addr, err)
	}
	return r[len(r)-1], nil
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Do is Cmd for a test: an error reply is returned as the reply, of type
// Error, and other errors fail the test.
func (c *ClusterServer) Do(t testing.TB, args ...string) any {
	t.Helper()
	r, err := c.Cmd(args...)
	if e, ok := err.(Error); ok {
		return e
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// NodeFor returns the node that serves key's slot, as the cluster says
// (CLUSTER KEYSLOT, CLUSTER SLOTS): a test can stop it to take the key
// away.
func (c *ClusterServer) NodeFor(t testing.TB, key string) *Server {
	t.Helper()
	r, err := c.Cmd("CLUSTER", "KEYSLOT", key)
	if err != nil {
		t.Fatal(err)
	}
	slot, ok := r.(int64)
	if !ok {
		t.Fatalf("redistest: CLUSTER KEYSLOT %q: unexpected reply %#v", key, r)
	}
	r, err = c.Cmd("CLUSTER", "SLOTS")
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := parseSlots(r)
	if err != nil {
		t.Fatalf("redistest: CLUSTER SLOTS: %v", err)
	}
	for _, sr := range ranges {
		if slot < sr.start || slot > sr.end {
			continue
		}
		for _, n := range c.nodes {
			if n.addr == sr.master {
				return n
			}
		}
		if c.shared {
			return &Server{addr: sr.master, prefix: c.prefix, env: envClusterAddrs}
		}
		t.Fatalf("redistest: NodeFor(%q): slot %d is served by %s, not a node of the cluster %v", key, slot, sr.master, c.Addrs())
	}
	t.Fatalf("redistest: NodeFor(%q): no node serves slot %d", key, slot)
	return nil
}

// WaitReady waits (up to 20 s) until the cluster is healthy, as seen from
// every node: CLUSTER INFO reports cluster_state:ok with all 16384 slots
// assigned and ok; CLUSTER NODES lists every node as connected and not
// failing; and, in a private cluster, every node is a master and CLUSTER
// SLOTS gives each a share of the slots. Cluster does it before it
// returns; a test does it after it restarted a node. On timeout the test
// fails with the last problem seen and the ends of the nodes' logs.
func (c *ClusterServer) WaitReady(t testing.TB) {
	t.Helper()
	if err := c.waitReady(clusterTimeout); err != nil {
		t.Fatalf("redistest: cluster %s: %v%s", strings.Join(c.Addrs(), ", "), err, c.logTails())
	}
}

func (c *ClusterServer) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.health()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// health returns the first problem of the cluster it finds, or nil.
func (c *ClusterServer) health() error {
	for _, n := range c.nodes {
		r, err := n.Cmd("CLUSTER", "INFO")
		if err != nil {
			return err
		}
		info := fields(r)
		for _, want := range [][2]string{
			{"cluster_state", "ok"},
			{"cluster_slots_assigned", strconv.Itoa(clusterSlots)},
			{"cluster_slots_ok", strconv.Itoa(clusterSlots)},
		} {
			if got := info[want[0]]; got != want[1] {
				return fmt.Errorf("%s reports %s:%s, want %s", n.addr, want[0], got, want[1])
			}
		}

		if r, err = n.Cmd("CLUSTER", "NODES"); err != nil {
			return err
		}
		known := parseNodes(r)
		for _, m := range c.nodes {
			e, ok := known[m.addr]
			switch {
			case !ok:
				return fmt.Errorf("%s does not know %s yet", n.addr, m.addr)
			case e.link != "connected":
				return fmt.Errorf("%s is %s from %s", n.addr, e.link, m.addr)
			}
			for _, f := range []string{"fail", "fail?", "handshake", "noaddr"} {
				if slices.Contains(e.flags, f) {
					return fmt.Errorf("%s sees %s as %s", n.addr, m.addr, strings.Join(e.flags, ","))
				}
			}
			if !c.shared && !slices.Contains(e.flags, "master") {
				return fmt.Errorf("%s sees %s as %s, not a master", n.addr, m.addr, strings.Join(e.flags, ","))
			}
		}
		if c.shared {
			continue
		}

		if r, err = n.Cmd("CLUSTER", "SLOTS"); err != nil {
			return err
		}
		ranges, err := parseSlots(r)
		if err != nil {
			return fmt.Errorf("CLUSTER SLOTS on %s: %w", n.addr, err)
		}
		total, masters := int64(0), map[string]bool{}
		for _, sr := range ranges {
			total += sr.end - sr.start + 1
			masters[sr.master] = true
		}
		if total != clusterSlots {
			return fmt.Errorf("%s: CLUSTER SLOTS covers %d slots, want %d", n.addr, total, clusterSlots)
		}
		for _, m := range c.nodes {
			if !masters[m.addr] {
				return fmt.Errorf("%s: CLUSTER SLOTS gives %s no slots", n.addr, m.addr)
			}
		}
		if len(masters) != len(c.nodes) {
			return fmt.Errorf("%s: CLUSTER SLOTS names %d masters, want %d", n.addr, len(masters), len(c.nodes))
		}
	}
	return nil
}

// logTails returns the ends of the private nodes' logs, for an error.
func (c *ClusterServer) logTails() string {
	var b strings.Builder
	for _, n := range c.nodes {
		if n.logFile != "" {
			fmt.Fprintf(&b, "\nredis-server on %s, the last lines of %s:\n%s", n.addr, n.logFile, logTail(n.logFile, 0))
		}
	}
	return b.String()
}

// requireVersion fails the test unless redis-server is of major version
// least or later.
func requireVersion(t testing.TB, bin string, least int) {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("redistest: %s --version: %v", bin, err)
	}
	// "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 ..."
	var version string
	for f := range strings.FieldsSeq(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			version = v
		}
	}
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		t.Fatalf("redistest: %s --version: no version in %q", bin, out)
	}
	if n < least {
		t.Fatalf("redistest: Cluster needs redis-server %d.0 or later (CLUSTER ADDSLOTSRANGE, cluster-port); %s is %s", least, bin, version)
	}
}

// fields parses an INFO-style reply ("key:value" lines) into a map.
func fields(r any) map[string]string {
	s, _ := r.(string)
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// nodeEntry is a line of CLUSTER NODES.
type nodeEntry struct {
	flags []string
	link  string
}

// parseNodes parses a CLUSTER NODES reply into its nodes by "host:port":
//
//	<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
func parseNodes(r any) map[string]nodeEntry {
	s, _ := r.(string)
	m := map[string]nodeEntry{}
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		m[addr] = nodeEntry{flags: strings.Split(f[2], ","), link: f[7]}
	}
	return m
}

// slotRange is an entry of CLUSTER SLOTS: a range of slots and the address
// of its master.
type slotRange struct {
	start, end int64
	master     string
}

// parseSlots parses a CLUSTER SLOTS reply:
//
//	[[start end [ip port id ...] [replica...]...] ...]
func parseSlots(r any) ([]slotRange, error) {
	entries, ok := r.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected reply %#v", r)
	}
	ranges := make([]slotRange, 0, len(entries))
	for _, e := range entries {
		a, ok := e.([]any)
		if !ok || len(a) < 3 {
			return nil, fmt.Errorf("unexpected entry %#v", e)
		}
		start, ok1 := a[0].(int64)
		end, ok2 := a[1].(int64)
		m, ok3 := a[2].([]any)
		if !ok1 || !ok2 || !ok3 || len(m) < 2 {
			return nil, fmt.Errorf("unexpected entry %#v", e)
		}
		host, ok1 := m[0].(string)
		port, ok2 := m[1].(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected master %#v", m)
		}
		ranges = append(ranges, slotRange{start: start, end: end, master: net.JoinHostPort(host, strconv.FormatInt(port, 10))})
	}
	return ranges, nil
}
