package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStandalone uses the server of REDIS_ADDR when it is set, one of its
// own otherwise, and talks RESP to it.
func TestStandalone(t *testing.T) {
	s := Standalone(t)
	if env := os.Getenv(envAddr); env != "" && s.Addr() != env {
		t.Errorf("Addr() = %s with %s=%s", s.Addr(), envAddr, env)
	}
	if !strings.HasPrefix(s.Prefix(), "vigiltest:") || !strings.HasSuffix(s.Prefix(), ":") {
		t.Errorf("Prefix() = %q", s.Prefix())
	}
	key := s.Prefix() + "greeting"
	for _, c := range []struct {
		args []string
		want any
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", key, "hello"}, "OK"},
		{[]string{"GET", key}, "hello"},
		{[]string{"GET", s.Prefix() + "missing"}, nil},
		{[]string{"INCR", key}, Error("ERR value is not an integer or out of range")},
		{[]string{"SET", key, "a\r\nb\x00c"}, "OK"},
		{[]string{"GET", key}, "a\r\nb\x00c"},
		{[]string{"SET", key, ""}, "OK"},
		{[]string{"GET", key}, ""},
		{[]string{"RPUSH", s.Prefix() + "list", "a", "b", "c"}, int64(3)},
		{[]string{"LRANGE", s.Prefix() + "list", "0", "-1"}, []any{"a", "b", "c"}},
		{[]string{"LRANGE", s.Prefix() + "missing", "0", "-1"}, []any{}},
		{[]string{"DEL", key, s.Prefix() + "list"}, int64(2)},
	} {
		if got := s.Do(t, c.args...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %#v, want %#v", c.args, got, c.want)
		}
	}
	_, err := s.Cmd("NOSUCHCOMMAND")
	var e Error
	if !errors.As(err, &e) || !strings.HasPrefix(string(e), "ERR unknown command") {
		t.Errorf("Cmd(NOSUCHCOMMAND): %v, want an Error", err)
	}
	if _, err := s.Cmd(); err == nil {
		t.Error("Cmd(): no error")
	}
}

// TestStopStartKill takes a server of its own down and up again, on the
// same port.
func TestStopStartKill(t *testing.T) {
	s := Standalone(t, Private())
	if env := os.Getenv(envAddr); env != "" && s.Addr() == env {
		t.Fatalf("Private(): got the shared server %s", env)
	}
	addr, key := s.Addr(), s.Prefix()+"k"
	if r := s.Do(t, "SET", key, "v"); r != "OK" {
		t.Fatalf("SET: %#v", r)
	}

	start := time.Now()
	s.Stop(t)
	if d := time.Since(start); d >= stopTimeout {
		t.Errorf("Stop took %v: SIGTERM was not heeded", d)
	}
	if r, err := s.Cmd("PING"); err == nil {
		t.Fatalf("PING after Stop: %#v", r)
	} else if !strings.Contains(err.Error(), addr) {
		t.Errorf("error without the address %s: %v", addr, err)
	}
	s.Start(t)
	if s.Addr() != addr {
		t.Fatalf("Start moved the server from %s to %s", addr, s.Addr())
	}
	if r := s.Do(t, "GET", key); r != nil {
		t.Errorf("GET after a restart without persistence: %#v", r)
	}
	if r := s.Do(t, "SET", key, "v2"); r != "OK" {
		t.Fatalf("SET after Start: %#v", r)
	}

	s.Kill(t)
	if r, err := s.Cmd("PING"); err == nil {
		t.Fatalf("PING after Kill: %#v", r)
	}
	s.Start(t)
	if r := s.Do(t, "PING"); r != "PONG" || s.Addr() != addr {
		t.Fatalf("after Kill and Start: PING %#v on %s", r, s.Addr())
	}

	// Misuse fails the test (here a stand-in for it) and says why.
	if msg := fatalOf(t, func(tb testing.TB) { s.Start(tb) }); !strings.Contains(msg, "already running") {
		t.Errorf("Start of a running server: %q", msg)
	}
	s.Stop(t)
	// Start on the same port: it waits a little for a taken port, then
	// fails the test, saying so.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := fatalOf(t, s.Start)
	l.Close()
	if !strings.Contains(msg, "address already in use") || !strings.Contains(msg, "Address already in use") || !strings.Contains(msg, addr) {
		t.Errorf("Start on a taken port: %q", msg)
	}
	for name, f := range map[string]func(testing.TB){
		"Stop":  s.Stop,
		"Kill":  s.Kill,
		"Pause": func(tb testing.TB) { s.Pause(tb, time.Second) },
	} {
		if msg := fatalOf(t, f); !strings.Contains(msg, "not running") || !strings.Contains(msg, addr) {
			t.Errorf("%s of a stopped server: %q", name, msg)
		}
	}
	s.Start(t)
	if r := s.Do(t, "PING"); r != "PONG" || s.Addr() != addr {
		t.Fatalf("after Start on the freed port: PING %#v on %s", r, s.Addr())
	}
}

// TestArgs: Args reach redis-server's command line, after the harness's
// own, and imply a private server.
func TestArgs(t *testing.T) {
	s := Standalone(t, Args("--maxmemory", "32mb", "--maxmemory-policy", "volatile-ttl"))
	if env := os.Getenv(envAddr); env != "" && s.Addr() == env {
		t.Fatalf("Args: got the shared server %s", env)
	}
	for name, want := range map[string]string{
		"maxmemory":        "33554432",
		"maxmemory-policy": "volatile-ttl",
		"save":             "",
		"appendonly":       "no",
		"bind":             "127.0.0.1",
	} {
		if got := s.Do(t, "CONFIG", "GET", name); !reflect.DeepEqual(got, []any{name, want}) {
			t.Errorf("CONFIG GET %s: %#v, want %q", name, got, want)
		}
	}
	// Later arguments override the harness's.
	s = Standalone(t, Args("--save", "3600 1"))
	if got := s.Do(t, "CONFIG", "GET", "save"); !reflect.DeepEqual(got, []any{"save", "3600 1"}) {
		t.Errorf("CONFIG GET save: %#v", got)
	}
	// A bad argument fails the start, with redis-server's complaint.
	msg := fatalOf(t, func(tb testing.TB) { Standalone(tb, Args("--no-such-directive", "1")) })
	if !strings.Contains(msg, "exited during start-up") || !strings.Contains(msg, "no-such-directive") {
		t.Errorf("start with a bad argument: %q", msg)
	}
}

// TestPause: a paused server answers nothing, then everything.
func TestPause(t *testing.T) {
	s := Standalone(t, Private())
	const d = time.Second
	start := time.Now()
	s.Pause(t, d)
	s.Pause(t, d/4) // cannot shorten the pause

	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatalf("connecting to a paused server: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING to a paused server: %q, %v; want a timeout", line, err)
	}

	if r := s.Do(t, "PING"); r != "PONG" {
		t.Fatalf("PING after the pause: %#v", r)
	}
	if el := time.Since(start); el < d {
		t.Errorf("answered %v after Pause(%v)", el, d)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); line != "+PONG\r\n" || err != nil {
		t.Errorf("PING sent during the pause: %q, %v", line, err)
	}

	// Stop ends a pause, politely.
	s.Pause(t, time.Hour)
	start = time.Now()
	s.Stop(t)
	if el := time.Since(start); el >= stopTimeout {
		t.Errorf("Stop of a paused server took %v: SIGTERM was not heeded", el)
	}
	s.Start(t)
	if r := s.Do(t, "PING"); r != "PONG" {
		t.Fatalf("PING after Start: %#v", r)
	}
}

// TestShared uses a server of its own as REDIS_ADDR: a test on a shared
// server gets a prefix of its own, its keys are deleted when it ends,
// other keys are not, and it cannot stop the server.
func TestShared(t *testing.T) {
	own := Standalone(t, Private())
	other := "unrelated:key"
	own.Do(t, "SET", other, "kept")
	t.Setenv(envAddr, own.Addr())

	var prefix string
	t.Run("test", func(t *testing.T) {
		s := Standalone(t)
		if s.Addr() != own.Addr() {
			t.Fatalf("Addr() = %s, want REDIS_ADDR=%s", s.Addr(), own.Addr())
		}
		prefix = s.Prefix()
		if prefix == own.Prefix() {
			t.Errorf("two calls got the same prefix %q", prefix)
		}
		// More keys than one SCAN returns.
		for batch := range 5 {
			args := []string{"MSET"}
			for i := range 500 {
				args = append(args, fmt.Sprintf("%skey:%d:%d", prefix, batch, i), "v")
			}
			if r := s.Do(t, args...); r != "OK" {
				t.Fatalf("MSET: %#v", r)
			}
		}
		for name, f := range map[string]func(testing.TB){
			"Stop":  s.Stop,
			"Kill":  s.Kill,
			"Start": s.Start,
			"Pause": func(tb testing.TB) { s.Pause(tb, time.Second) },
		} {
			msg := fatalOf(t, f)
			if !strings.Contains(msg, "redistest.Private()") || !strings.Contains(msg, envAddr) {
				t.Errorf("%s on a shared server: %q", name, msg)
			}
		}
	})
	if n := countKeys(t, own, prefix+"*"); n != 0 {
		t.Errorf("%d keys %s* left after the test", n, prefix)
	}
	if r := own.Do(t, "GET", other); r != "kept" {
		t.Errorf("GET %s: %#v: the cleanup deleted a key outside the prefix", other, r)
	}

	// Private() wins over REDIS_ADDR.
	if s := Standalone(t, Private()); s.Addr() == own.Addr() {
		t.Error("Private() with REDIS_ADDR set: got the shared server")
	}
	// A shared server that does not answer fails the test.
	t.Setenv(envAddr, freeAddr(t))
	if msg := fatalOf(t, func(tb testing.TB) { Standalone(tb) }); !strings.Contains(msg, envAddr) {
		t.Errorf("unreachable REDIS_ADDR: %q", msg)
	}
}

// TestMissingServer: without redis-server the tests fail, telling what to
// do; they never skip.
func TestMissingServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(envAddr, "")
	t.Setenv(envClusterAddrs, "")
	for name, f := range map[string]func(testing.TB){
		"Standalone": func(tb testing.TB) { Standalone(tb) },
		"Cluster":    func(tb testing.TB) { Cluster(tb) },
	} {
		if msg := fatalOf(t, f); !strings.Contains(msg, "redis-server not found: run make deps") {
			t.Errorf("%s without redis-server: %q", name, msg)
		}
	}
}

// TestCluster forms a cluster of its own, sends keys to the nodes that own
// them, restarts a node, and uses the cluster as REDIS_CLUSTER_ADDRS.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := Cluster(t, Private())
	t.Logf("cluster %v formed in %v", c.Addrs(), time.Since(start).Round(time.Millisecond))
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs() = %v, want 3", c.Addrs())
	}

	// SET on node 0 a key another node owns: node 0 answers MOVED, and
	// the node it names takes the key.
	node0 := c.Node(0)
	var key string
	var moved Error
	for i := 0; moved == ""; i++ {
		if i == 100 {
			t.Fatal("100 keys, all on node 0")
		}
		key = fmt.Sprintf("%skey:%d", c.Prefix(), i)
		switch r := node0.Do(t, "SET", key, "v"); r := r.(type) {
		case Error:
			moved = r
		default:
			if r != "OK" {
				t.Fatalf("SET %s on node 0: %#v", key, r)
			}
		}
	}
	f := strings.Fields(string(moved))
	if len(f) != 3 || f[0] != "MOVED" {
		t.Fatalf("SET %s on node 0: %q, want MOVED <slot> <host:port>", key, moved)
	}
	slot, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("MOVED reply %q: %v", moved, err)
	}
	if want := node0.Do(t, "CLUSTER", "KEYSLOT", key); want != int64(slot) {
		t.Errorf("MOVED names slot %d, CLUSTER KEYSLOT %#v", slot, want)
	}
	i := slices.Index(c.Addrs(), f[2])
	if i <= 0 {
		t.Fatalf("MOVED to %s, not another node of %v", f[2], c.Addrs())
	}
	owner := c.Node(i)
	if r := owner.Do(t, "SET", key, "owned"); r != "OK" {
		t.Fatalf("SET %s on %s: %#v", key, owner.Addr(), r)
	}
	if r := owner.Do(t, "GET", key); r != "owned" {
		t.Errorf("GET %s on %s: %#v", key, owner.Addr(), r)
	}
	if got := c.NodeFor(t, key); got != owner {
		t.Errorf("NodeFor(%s) = %s, want %s", key, got.Addr(), owner.Addr())
	}
	if r := c.Do(t, "GET", key); r != "owned" {
		t.Errorf("GET %s through the cluster: %#v", key, r)
	}
	if r := c.Do(t, "MSET", c.Prefix()+"{a}", "1", c.Prefix()+"{b}", "2"); !strings.HasPrefix(fmt.Sprint(r), "CROSSSLOT") {
		t.Errorf("MSET across slots: %#v, want CROSSSLOT", r)
	}

	// The slots are spread over the three nodes.
	for i := range 60 {
		if r := c.Do(t, "SET", fmt.Sprintf("%sspread:%d", c.Prefix(), i), "v"); r != "OK" {
			t.Fatalf("SET through the cluster: %#v", r)
		}
	}
	for i := range 3 {
		if n := countKeys(t, c.Node(i), c.Prefix()+"spread:*"); n == 0 {
			t.Errorf("node %d (%s) has none of 60 keys", i, c.Node(i).Addr())
		}
	}

	// A node stopped and started again keeps its slots; its keys are gone.
	start = time.Now()
	owner.Stop(t)
	if _, err := c.Cmd("GET", key); err == nil {
		t.Error("GET of a key on a stopped node: no error")
	}
	owner.Start(t)
	c.WaitReady(t)
	t.Logf("node %s restarted, cluster ready again in %v", owner.Addr(), time.Since(start).Round(time.Millisecond))
	if r := owner.Do(t, "GET", key); r != nil {
		t.Errorf("GET %s on the restarted owner: %#v", key, r)
	}
	if r := c.Do(t, "SET", key, "again"); r != "OK" {
		t.Errorf("SET %s after the restart: %#v", key, r)
	}

	// The cluster as REDIS_CLUSTER_ADDRS: a prefix of its own, cleaned
	// up; no stopping its nodes.
	t.Setenv(envClusterAddrs, strings.Join(c.Addrs(), ", "))
	var prefix string
	t.Run("shared", func(t *testing.T) {
		s := Cluster(t)
		if !slices.Equal(s.Addrs(), c.Addrs()) {
			t.Fatalf("Addrs() = %v, want REDIS_CLUSTER_ADDRS=%v", s.Addrs(), c.Addrs())
		}
		prefix = s.Prefix()
		for i := range 60 {
			if r := s.Do(t, "SET", fmt.Sprintf("%sk:%d", prefix, i), "v"); r != "OK" {
				t.Fatalf("SET: %#v", r)
			}
		}
		msg := fatalOf(t, s.Node(1).Stop)
		if !strings.Contains(msg, "redistest.Private()") || !strings.Contains(msg, envClusterAddrs) {
			t.Errorf("Stop of a shared node: %q", msg)
		}
	})
	for i := range 3 {
		if n := countKeys(t, c.Node(i), prefix+"*"); n != 0 {
			t.Errorf("node %d: %d keys %s* left after the test", i, n, prefix)
		}
	}
	if r := c.Do(t, "GET", key); r != "again" {
		t.Errorf("GET %s: %#v: the cleanup deleted a key outside its prefix", key, r)
	}
}

func TestReadReply(t *testing.T) {
	for _, c := range []struct {
		in   string
		want any
		err  bool
	}{
		{"+OK\r\n", "OK", false},
		{"-ERR bad\r\n", Error("ERR bad"), false},
		{":-42\r\n", int64(-42), false},
		{"$5\r\nhe\r\no\r\n", "he\r\no", false},
		{"$0\r\n\r\n", "", false},
		{"$-1\r\n", nil, false},
		{"*-1\r\n", nil, false},
		{"*0\r\n", []any{}, false},
		{"*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n-ERR x\r\n", []any{int64(1), []any{"a", nil}, Error("ERR x")}, false},
		{"+OK\n", nil, true},
		{"\r\n", nil, true},
		{"!3\r\nerr\r\n", nil, true},
		{":x\r\n", nil, true},
		{"$-2\r\n", nil, true},
		{"$3\r\nabcd\r\n", nil, true},
		{"$3\r\nab", nil, true},
		{"*2\r\n:1\r\n", nil, true},
		{"*x\r\n", nil, true},
	} {
		got, err := readReply(bufio.NewReader(strings.NewReader(c.in)))
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("readReply(%q) = %#v, %v; want %#v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestRedirection(t *testing.T) {
	for _, c := range []struct {
		e, from, kind, target string
		ok                    bool
	}{
		{"MOVED 3999 127.0.0.1:6381", "127.0.0.1:6379", "MOVED", "127.0.0.1:6381", true},
		{"ASK 3999 10.0.0.2:7000", "10.0.0.1:7000", "ASK", "10.0.0.2:7000", true},
		{"MOVED 3999 :6381", "127.0.0.1:6379", "MOVED", "127.0.0.1:6381", true},
		{"MOVED 3999 [::1]:6381", "[::1]:6379", "MOVED", "[::1]:6381", true},
		{"ERR unknown command", "127.0.0.1:6379", "", "", false},
		{"MOVED 3999", "127.0.0.1:6379", "", "", false},
	} {
		kind, target, ok := redirection(Error(c.e), c.from)
		if kind != c.kind || target != c.target || ok != c.ok {
			t.Errorf("redirection(%q) = %q, %q, %v", c.e, kind, target, ok)
		}
	}
}

// countKeys counts the keys of s matching pattern.
func countKeys(t *testing.T, s *Server, pattern string) int {
	t.Helper()
	n := 0
	if err := scanPrefix(s, strings.TrimSuffix(pattern, "*"), func(keys []string) error {
		n += len(keys)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
}

// fatalTB stands in for a test to see a helper fail it: Fatal, FailNow
// and Skip record the message and end the goroutine, as they would the
// test's. The rest (Cleanup, TempDir, Helper, logging) is the real test's.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Fatal(args ...any)                 { f.end(fmt.Sprint(args...)) }
func (f *fatalTB) Fatalf(format string, args ...any) { f.end(fmt.Sprintf(format, args...)) }
func (f *fatalTB) FailNow()                          { f.end("FailNow") }
func (f *fatalTB) Skip(args ...any)                  { f.end("SKIPPED " + fmt.Sprint(args...)) }
func (f *fatalTB) Skipf(format string, args ...any)  { f.end("SKIPPED " + fmt.Sprintf(format, args...)) }
func (f *fatalTB) SkipNow()                          { f.end("SKIPPED") }

func (f *fatalTB) end(msg string) {
	f.mu.Lock()
	f.msg = msg
	f.mu.Unlock()
	runtime.Goexit()
}

// fatalOf runs fn with a stand-in test and returns the message it failed
// that with; fn must fail it, and must not skip.
func fatalOf(t *testing.T, fn func(testing.TB)) string {
	t.Helper()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.msg == "":
		t.Fatal("the test was not failed")
	case strings.HasPrefix(f.msg, "SKIPPED"):
		t.Fatalf("the test was skipped, never to be: %s", f.msg)
	}
	return f.msg
}
