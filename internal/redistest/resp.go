package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Error is an error reply of the server, such as "ERR unknown command
// 'FOO'" or "MOVED 3999 127.0.0.1:6381", without the leading '-'.
type Error string

// Error returns the reply's text.
func (e Error) Error() string { return string(e) }

// Limits of the RESP client.
const (
	dialTimeout = 2 * time.Second
	// cmdTimeout bounds one exchange (write the commands, read the
	// replies), so that a test fails rather than hangs on a frozen server.
	cmdTimeout = 10 * time.Second
	// maxBulk is the largest bulk string accepted, Redis's default
	// proto-max-bulk-len.
	maxBulk = 512 << 20
)

// errProtocol reports a reply that is not RESP2.
var errProtocol = errors.New("RESP protocol error")

// exchange opens a connection to addr, sends the commands in one write and
// reads one reply for each. An error reply is a reply (of type Error), not
// an error: the error is for dialing, I/O and malformed replies, and it
// says which. The connection is closed before exchange returns.
func exchange(addr string, timeout time.Duration, cmds ...[]string) ([]any, error) {
	for _, c := range cmds {
		if len(c) == 0 {
			return nil, errors.New("empty command")
		}
	}
	conn, err := net.DialTimeout("tcp", addr, min(dialTimeout, timeout))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	w := bufio.NewWriter(conn)
	for _, c := range cmds {
		writeCommand(w, c)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("sending: %w", err)
	}
	r := bufio.NewReader(conn)
	replies := make([]any, 0, len(cmds))
	for range cmds {
		v, err := readReply(r)
		if err != nil {
			return nil, fmt.Errorf("reading the reply: %w", err)
		}
		replies = append(replies, v)
	}
	return replies, nil
}

// writeCommand writes a command as a RESP array of bulk strings. Errors
// are left to the writer's Flush.
func writeCommand(w *bufio.Writer, args []string) {
	w.WriteString("*")
	w.WriteString(strconv.Itoa(len(args)))
	w.WriteString("\r\n")
	for _, a := range args {
		w.WriteString("$")
		w.WriteString(strconv.Itoa(len(a)))
		w.WriteString("\r\n")
		w.WriteString(a)
		w.WriteString("\r\n")
	}
}

// readReply reads one RESP2 reply: a simple string (string), an error
// (Error), an integer (int64), a bulk string (string, or nil for the null
// bulk string) or an array ([]any of these, or nil for the null array).
func readReply(r *bufio.Reader) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if line == "" {
		return nil, fmt.Errorf("%w: empty line", errProtocol)
	}
	switch kind, rest := line[0], line[1:]; kind {
	case '+':
		return rest, nil
	case '-':
		return Error(rest), nil
	case ':':
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: integer %q", errProtocol, rest)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(rest)
		switch {
		case err != nil || n < -1 || n > maxBulk:
			return nil, fmt.Errorf("%w: bulk string length %q", errProtocol, rest)
		case n == -1:
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return nil, fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", errProtocol, n)
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(rest)
		switch {
		case err != nil || n < -1:
			return nil, fmt.Errorf("%w: array length %q", errProtocol, rest)
		case n == -1:
			return nil, nil
		}
		// The length is the server's word: grow as elements arrive.
		a := make([]any, 0, min(n, 1024))
		for range n {
			v, err := readReply(r)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	default:
		return nil, fmt.Errorf("%w: unexpected reply %q", errProtocol, truncate(line, 64))
	}
}

// readLine reads a line ended by CRLF and returns it without the CRLF.
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("%w: line longer than %d bytes", errProtocol, r.Size())
		}
		return "", err
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", fmt.Errorf("%w: line %q not ended by CRLF", errProtocol, truncate(string(b), 64))
	}
	return string(b[:len(b)-2]), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// commandName names a command in errors: its first word, or the first two
// for commands with subcommands (CLUSTER INFO, CONFIG GET).
func commandName(args []string) string {
	if len(args) == 0 {
		return "(no command)"
	}
	name := strings.ToUpper(args[0])
	switch name {
	case "CLUSTER", "CONFIG", "CLIENT", "DEBUG", "MEMORY", "OBJECT", "SCRIPT", "FUNCTION", "XINFO", "ACL", "COMMAND", "LATENCY", "MODULE", "SLOWLOG":
		if len(args) > 1 {
			name += " " + strings.ToUpper(args[1])
		}
	}
	return name
}

// redirection parses a MOVED or ASK error reply ("MOVED 3999
// 127.0.0.1:6381") into its kind and target address. A target without a
// host (":6381", sent when the node does not know its address) is on the
// host of from, the address that sent the reply. ok is false for other
// errors.
func redirection(e Error, from string) (kind, target string, ok bool) {
	f := strings.Fields(string(e))
	if len(f) != 3 || (f[0] != "MOVED" && f[0] != "ASK") {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(f[2])
	if err != nil {
		return "", "", false
	}
	if host == "" {
		host, _, _ = net.SplitHostPort(from)
	}
	return f[0], net.JoinHostPort(host, port), true
}
