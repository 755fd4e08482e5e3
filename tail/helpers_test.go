package tail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/tail"
)

// deadline bounds every wait: generous, as the tests share slow machines.
const deadline = 30 * time.Second

// testOptions polls often, so the tests are quick; nothing depends on it.
func testOptions() tail.Options {
	return tail.Options{Poll: 5 * time.Millisecond, RotateWait: 10 * time.Second}
}

// collector reads a Reader to its end on its own goroutine.
type collector struct {
	r      *tail.Reader
	mu     sync.Mutex
	data   []byte
	events []tail.Event
	// torn is a short read that did not end with '\n', which Read never
	// returns.
	torn string
	err  error
	done chan struct{}
}

// follow starts following paths with o and collecting what is read. The
// Reader is stopped when the test ends.
func follow(t *testing.T, paths []string, o tail.Options) (*collector, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{done: make(chan struct{})}
	o.OnEvent = func(ev tail.Event) {
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.mu.Unlock()
	}
	r, err := tail.Follow(ctx, paths, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c.r = r
	go c.run()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(deadline):
			t.Error("Read did not return after cancel")
		}
	})
	return c, cancel
}

func (c *collector) run() {
	defer close(c.done)
	buf := make([]byte, 1<<20)
	for {
		n, err := c.r.Read(buf)
		c.mu.Lock()
		c.data = append(c.data, buf[:n]...)
		if n > 0 && n < len(buf) && buf[n-1] != '\n' && c.torn == "" {
			c.torn = string(buf[:n])
		}
		if err != nil {
			c.err = err
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (c *collector) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.data)
}

func (c *collector) lines() []string {
	s := c.text()
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func (c *collector) count(kind tail.EventKind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// check fails the test if a read returned part of a line or failed.
func (c *collector) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.torn != "" {
		t.Errorf("a short read ended inside a line: %.80q", c.torn)
	}
	if c.err != nil && !errors.Is(c.err, io.EOF) {
		t.Errorf("Read: %v", c.err)
	}
}

// waitFor waits until cond holds; waiting is polling, never an assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("after %v, still waiting for %s", deadline, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitLines waits until c has read n lines.
func waitLines(t *testing.T, c *collector, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d lines", n), func() bool { return bytes.Count([]byte(c.text()), []byte("\n")) >= n })
}

// appendTo appends s to the file at path, creating it.
func appendTo(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// numbered returns lines "<prefix>-<i>\n" for i in [from, to).
func numbered(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%06d some payload to make the line longer\n", prefix, i)
	}
	return b.String()
}
