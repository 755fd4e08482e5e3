package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/inventory"
)

const tokensUsage = `Usage:
  vigil tokens list    [flags]            the credential inventory: one line per credential
  vigil tokens show    [flags] TOKEN_ID   everything vigil knows of one credential
  vigil tokens export  [flags]            the whole inventory as CSV, JSON or JSON lines
  vigil tokens dormant [flags]            credentials unused for --after (default lifecycle.dormancy.after)
  vigil tokens scopes  [flags]            scopes granted and not used in --window, per credential and client
  vigil tokens revoke  [flags] TOKEN_ID   denylist the credential everywhere, revoke it at the IdP, call the rotation webhook
  vigil tokens actions [flags]            response actions still running, and those given up
  vigil tokens zones   [flags]            propose network zones from what credentials used, as YAML for review

The inventory is kept by a running 'vigil serve' or 'vigil proxy' (on every
state backend: memory, a data directory, Redis); these commands ask its admin
listener: --admin, else serve.admin_listen of --config. With an admin token
(serve.admin_token_env), the same environment variable must hold it here.

Token ids (tk_…) are fingerprints: the raw credential is never shown or kept.

Flags:
`

// runTokens is `vigil tokens`.
func runTokens(io IO, args []string) int {
	fs := flag.NewFlagSet("vigil tokens", flag.ContinueOnError)
	configPath := fs.String("config", "", "read serve.admin_listen and serve.admin_token_env from `FILE`")
	admin := fs.String("admin", "", "the admin listener's `URL` or host:port (default: serve.admin_listen)")
	format := fs.String("format", "", "output `FORMAT`: table, json, csv, jsonl (which ones depends on the subcommand)")
	client := fs.String("client", "", "list: only credentials of this client_id")
	bindingF := fs.String("binding", "", "list: only credentials with this binding: unbound, dpop, mtls, mixed")
	dormant := fs.String("dormant", "", "list: only credentials unused for this long (30d, 720h)")
	sortBy := fs.String("sort", "max_risk", "list: order by max_risk, risk, last_seen, first_seen, requests or token_id")
	limit := fs.Int("limit", 100, "list: at most this many credentials")
	after := fs.String("after", "", "dormant: unused for this long (30d, 720h)")
	window := fs.String("window", "", "scopes: the observation window (30d, 720h)")
	out := fs.String("o", "", "export: write to `FILE` instead of standard output")
	reason := fs.String("reason", "", "revoke: why (recorded in the denylist and the audit log)")
	by := fs.String("by", "", "revoke: who asks (default: $USER)")
	tokenStdin := fs.Bool("token-stdin", false, "revoke: read the raw credential from standard input, for the IdP's revocation endpoint (RFC 7009); it is sent once and never stored")
	steps := fs.String("steps", "", "revoke: comma-separated steps: denylist, revoke, webhook (default: those configured)")
	minShare := fs.Float64("min-share", 0.01, "zones: networks carrying at least this share of a subject's requests")
	minRequests := fs.Int("min-requests", 20, "zones: subjects with fewer requests get no proposal")
	days := fs.Int("days", 0, "zones: learn only from the networks each credential used in its first N days (0: all)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on the admin listener after this long")
	if code, ok := parseFlags(io, fs, tokensUsage, args); !ok {
		return code
	}
	pos := fs.Args()
	if len(pos) > 1 { // flags after the subcommand or its argument
		if code, ok := parseFlags(io, fs, tokensUsage, pos[1:]); !ok {
			return code
		}
		pos = append(pos[:1], fs.Args()...)
		if len(pos) > 2 {
			if code, ok := parseFlags(io, fs, tokensUsage, pos[2:]); !ok {
				return code
			}
			pos = append(pos[:2], fs.Args()...)
		}
	}
	if len(pos) == 0 {
		return usageError(io, fs, tokensUsage, "missing subcommand")
	}
	sub, rest := pos[0], pos[1:]
	wantArgs := map[string]int{"list": 0, "export": 0, "dormant": 0, "scopes": 0, "zones": 0, "actions": 0, "show": 1, "revoke": 1}
	n, known := wantArgs[sub]
	switch {
	case !known:
		return usageError(io, fs, tokensUsage, fmt.Sprintf("unknown subcommand %q", sub))
	case len(rest) != n && n == 0:
		return usageError(io, fs, tokensUsage, sub+" takes no arguments")
	case len(rest) != n:
		return usageError(io, fs, tokensUsage, sub+" takes one TOKEN_ID")
	}
	c, err := newAdminClient(io, *configPath, *admin, *timeout)
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil tokens: %v\n", err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	now := time.Now()
	q := url.Values{}
	switch sub {
	case "list":
		q.Set("sort", *sortBy)
		q.Set("limit", fmt.Sprint(*limit))
		setIf(q, "client_id", *client)
		setIf(q, "binding", *bindingF)
		setIf(q, "dormant", *dormant)
		switch f := orDefault(*format, "table"); f {
		case "table":
			var list server.TokenList
			if err = c.getJSON(ctx, server.PathTokens, q, &list); err == nil {
				err = inventory.WriteTable(io.Stdout, list.Entries, now)
				if err == nil && list.Total > len(list.Entries) {
					fmt.Fprintf(io.Stderr, "(%d of %d credentials; --limit shows more)\n", len(list.Entries), list.Total)
				}
			}
		case "json", "csv", "jsonl":
			q.Set("format", f)
			err = c.copy(ctx, server.PathTokens, q, io.Stdout)
		default:
			return usageError(io, fs, tokensUsage, fmt.Sprintf("list --format %q: want table, json, csv or jsonl", f))
		}
	case "show":
		id := rest[0]
		var e inventory.Entry
		switch f := orDefault(*format, "table"); f {
		case "table":
			if err = c.getJSON(ctx, server.PathTokens+"/"+url.PathEscape(id), nil, &e); err == nil {
				err = inventory.WriteEntry(io.Stdout, e, now)
			}
		case "json":
			err = c.copy(ctx, server.PathTokens+"/"+url.PathEscape(id), nil, io.Stdout)
		default:
			return usageError(io, fs, tokensUsage, fmt.Sprintf("show --format %q: want table or json", f))
		}
	case "export":
		f := orDefault(*format, "csv")
		if f != "csv" && f != "json" && f != "jsonl" {
			return usageError(io, fs, tokensUsage, fmt.Sprintf("export --format %q: want csv, json or jsonl", f))
		}
		q.Set("format", f)
		q.Set("limit", fmt.Sprint(1_000_000))
		q.Set("sort", "token_id")
		w, done, oerr := outFile(io, *out)
		if oerr != nil {
			fmt.Fprintf(io.Stderr, "vigil tokens: %v\n", oerr)
			return exitError
		}
		err = c.copy(ctx, server.PathTokens, q, w)
		err = errors.Join(err, done())
	case "dormant":
		setIf(q, "after", *after)
		switch f := orDefault(*format, "table"); f {
		case "table":
			var rep server.DormantReport
			if err = c.getJSON(ctx, server.PathDormant, q, &rep); err == nil {
				err = writeDormant(io.Stdout, rep)
			}
		case "json":
			err = c.copy(ctx, server.PathDormant, q, io.Stdout)
		default:
			return usageError(io, fs, tokensUsage, fmt.Sprintf("dormant --format %q: want table or json", f))
		}
	case "scopes":
		setIf(q, "window", *window)
		switch f := orDefault(*format, "table"); f {
		case "table":
			var rep inventory.ScopeReport
			if err = c.getJSON(ctx, server.PathUnusedScopes, q, &rep); err == nil {
				err = writeScopes(io.Stdout, rep)
			}
		case "json":
			err = c.copy(ctx, server.PathUnusedScopes, q, io.Stdout)
		default:
			return usageError(io, fs, tokensUsage, fmt.Sprintf("scopes --format %q: want table or json", f))
		}
	case "revoke":
		err = revoke(ctx, io, c, rest[0], revokeFlags{reason: *reason, by: *by, steps: *steps, tokenStdin: *tokenStdin})
	case "actions":
		switch f := orDefault(*format, "table"); f {
		case "table":
			var a server.ActionsAnswer
			if err = c.getJSON(ctx, server.PathActions, nil, &a); err == nil {
				err = writeActions(io.Stdout, a)
			}
		case "json":
			err = c.copy(ctx, server.PathActions, nil, io.Stdout)
		default:
			return usageError(io, fs, tokensUsage, fmt.Sprintf("actions --format %q: want table or json", f))
		}
	case "zones":
		q.Set("min_share", fmt.Sprint(*minShare))
		q.Set("min_requests", fmt.Sprint(*minRequests))
		if *days > 0 {
			q.Set("days", fmt.Sprint(*days))
		}
		err = c.copy(ctx, server.PathZoneProposal, q, io.Stdout)
	}
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil tokens %s: %v\n", sub, err)
		return exitError
	}
	return exitOK
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// outFile opens path for writing, or standard output for "".
func outFile(io IO, path string) (io.Writer, func() error, error) {
	if path == "" {
		return io.Stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// adminClient talks to a running vigil's admin listener.
type adminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

func newAdminClient(io IO, configPath, admin string, timeout time.Duration) (*adminClient, error) {
	cfg := config.Default()
	if configPath != "" {
		var err error
		if cfg, err = config.Load(configPath); err != nil {
			return nil, err
		}
	}
	addr := orDefault(admin, cfg.Serve.AdminListen)
	if addr == "" {
		return nil, errors.New("no admin listener: serve.admin_listen is empty and --admin was not given")
	}
	if !strings.Contains(addr, "://") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("--admin %q: want a URL or host:port", addr)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1" // a wildcard listener answers on loopback too
		}
		addr = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin %q: want an http or https URL", addr)
	}
	c := &adminClient{base: u, http: &http.Client{Timeout: timeout}}
	if name := cfg.Serve.AdminTokenEnv; name != "" && io.LookupEnv != nil {
		c.token, _ = io.LookupEnv(name)
	}
	return c, nil
}

// do sends a request to path and returns the response if it is 2xx; any
// other status becomes an error with the server's problem detail.
func (c *adminClient) do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is vigil serve running with its admin listener there? %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p struct {
		Detail string `json:"detail"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		msg = p.Detail
	}
	return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
}

func (c *adminClient) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	return nil
}

func (c *adminClient) copy(ctx context.Context, path string, q url.Values, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

func writeDormant(w io.Writer, rep server.DormantReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TOKEN ID\tCLIENT\tIDLE\tLAST SEEN\tREQUESTS\tSCOPES GRANTED\n")
	for _, d := range rep.Credentials {
		fmt.Fprintf(tw, "%s\t%s\t%dd\t%s\t%d\t%s\n", d.TokenID, dash(printable(d.ClientID)), d.IdleDays,
			d.LastSeen.UTC().Format(time.RFC3339), d.Requests, dash(printable(strings.Join(d.Granted, " "))))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d credentials unused for %s or more\n", len(rep.Credentials), rep.After)
	return err
}

func writeScopes(w io.Writer, rep inventory.ScopeReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CLIENT\tCREDENTIALS\tREQUESTS\tGRANTED\tUNUSED\n")
	for _, c := range rep.Clients {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", printable(c.ClientID), c.Credentials, c.Requests,
			printable(strings.Join(c.Granted, " ")), dash(printable(strings.Join(c.Unused, " "))))
	}
	fmt.Fprintf(tw, "\nTOKEN ID\tCLIENT\tREQUESTS\tOBSERVED FROM\tUNUSED\n")
	for _, c := range rep.Credentials {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", c.TokenID, dash(printable(c.ClientID)), c.Requests,
			c.ObservedFrom.UTC().Format(time.RFC3339), dash(printable(strings.Join(c.Unused, " "))))
	}
	return tw.Flush()
}

func dash(s string) string { return orDefault(s, "-") }

// printable replaces control characters: client ids come from requests.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
