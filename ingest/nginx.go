package ingest

import (
	"strconv"

	"github.com/vigil-sec/vigil/event"
)

// nginxDecoder reads the combined access-log format of nginx and Apache:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// The referer and user agent may be missing (the "common" format), and
// anything after the user agent (nginx's "main" adds
// $http_x_forwarded_for) is ignored.
type nginxDecoder struct {
	base
}

// clf is a cursor over a line of the combined format.
type clf struct {
	b []byte
	i int
}

// syntax reports a line that is not in the format, naming the field where
// it went wrong (the line is not JSON: no event.SyntaxError).
func (c *clf) syntax(field, reason string) error {
	return &event.FieldError{Field: field, Reason: reason + " at byte " + strconv.Itoa(c.i)}
}

// word returns the bytes up to the next space, and steps over the space.
func (c *clf) word() []byte {
	start := c.i
	for c.i < len(c.b) && c.b[c.i] != ' ' {
		c.i++
	}
	w := c.b[start:c.i]
	if c.i < len(c.b) {
		c.i++
	}
	return w
}

// quoted returns the content of the quoted field at the cursor, its
// escapes (\" and \\ from Apache, \xHH from nginx) left as written.
func (c *clf) quoted(field string) ([]byte, error) {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return nil, c.syntax(field, "expected '\"'")
	}
	c.i++
	start := c.i
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case '\\':
			c.i += 2
			continue
		case '"':
			q := c.b[start:c.i]
			c.i++
			return q, nil
		}
		c.i++
	}
	c.i = start - 1
	return nil, c.syntax(field, "unterminated quoted string")
}

// space steps over the one space between fields; at the end of the line
// it reports false.
func (c *clf) space(next string) (bool, error) {
	if c.i >= len(c.b) {
		return false, nil
	}
	if c.b[c.i] != ' ' {
		return false, c.syntax(next, "expected a space before the field")
	}
	c.i++
	return true, nil
}

func (d *nginxDecoder) Decode(line []byte, ev *event.Event) error {
	*ev = event.Event{}
	if len(line) > event.MaxLineBytes {
		return &event.FieldError{Field: "line", Reason: "longer than 1 MiB"}
	}
	for len(line) > 0 && (line[len(line)-1] == '\r' || line[len(line)-1] == ' ') {
		line = line[:len(line)-1]
	}
	c := clf{b: line}
	ip := c.word()
	if len(ip) == 0 {
		return missing("remote_addr")
	}
	a, ok := parseAddr(ip)
	if !ok || ip[0] == '[' {
		return &event.FieldError{Field: "remote_addr", Reason: "not an IP address"}
	}
	ev.SourceIP = a
	c.word() // ident, "-" in practice
	user := c.word()
	if c.i >= len(c.b) || c.b[c.i] != '[' {
		return c.syntax("time_local", "expected '['")
	}
	if len(c.b)-c.i < 28 || c.b[c.i+27] != ']' {
		return &event.FieldError{Field: "time_local", Reason: "not a time like [10/Oct/2000:13:55:36 -0700]"}
	}
	t, ok := parseCLF(c.b[c.i+1 : c.i+27])
	if !ok {
		return &event.FieldError{Field: "time_local", Reason: "not a time like [10/Oct/2000:13:55:36 -0700]"}
	}
	ev.Time = t
	c.i += 28
	if _, err := c.space("request"); err != nil {
		return err
	}
	req, err := c.quoted("request")
	if err != nil {
		return err
	}
	if _, err := c.space("status"); err != nil {
		return err
	}
	if err := d.request(req, ev); err != nil {
		return err
	}
	st := c.word()
	if len(st) != 3 || st[0] < '1' || st[0] > '5' || st[1] < '0' || st[1] > '9' || st[2] < '0' || st[2] > '9' {
		return &event.FieldError{Field: "status", Reason: "not an HTTP status code"}
	}
	ev.Status = int(st[0]-'0')*100 + int(st[1]-'0')*10 + int(st[2]-'0')
	// body_bytes_sent ends at a space or the end of the line.
	if sent := c.word(); len(sent) == 0 {
		return missing("body_bytes_sent")
	} else if err := size("body_bytes_sent", val{b: sent, k: kString}, &ev.PayloadBytes, event.HasPayloadBytes, ev); err != nil {
		return err
	}
	if c.i < len(c.b) {
		if _, err := c.quoted("http_referer"); err != nil {
			return err
		}
		if more, err := c.space("http_user_agent"); err != nil {
			return err
		} else if more {
			ua, err := c.quoted("http_user_agent")
			if err != nil {
				return err
			}
			if err := d.str("http_user_agent", val{b: ua, k: kString}, &ev.UserAgent, event.HasUserAgent, ev); err != nil {
				return err
			}
		}
	}
	if len(user) == 0 || len(user) == 1 && user[0] == '-' {
		d.anonymous(ev)
		return nil
	}
	return d.tokenID("remote_user", "user:", val{b: user, raw: user, k: kString}, ev)
}

// request reads "$request": method, target and protocol.
func (d *nginxDecoder) request(req []byte, ev *event.Event) error {
	m := 0
	for m < len(req) && req[m] >= 'A' && req[m] <= 'Z' {
		m++
	}
	if m == 0 || m > 20 || m+1 >= len(req) || req[m] != ' ' {
		return &event.FieldError{Field: "request", Reason: "not a request line (METHOD TARGET PROTOCOL)"}
	}
	target := req[m+1:]
	for i, c := range target {
		if c == ' ' {
			target = target[:i]
			break
		}
	}
	if len(target) == 0 {
		return &event.FieldError{Field: "request", Reason: "not a request line (METHOD TARGET PROTOCOL)"}
	}
	ev.Method = d.methodString(req[:m])
	ev.Has |= event.HasMethod
	return d.path("request", target, ev)
}

// path sets the endpoint and path of a request target. The path keeps its
// ids but not its query, which may carry credentials (?api_key=…).
func (d *base) path(field string, target []byte, ev *event.Event) error {
	if len(target) > event.MaxStringLen {
		return &event.FieldError{Field: field, Reason: "longer than 8 KiB"}
	}
	for i, c := range target {
		if c == '?' || c == '#' {
			target = target[:i]
			break
		}
	}
	if err := d.endpoint(field, target, ev); err != nil {
		return err
	}
	if len(target) > 0 {
		ev.Path = d.keep("", target)
		ev.Has |= event.HasPath
	}
	return nil
}
