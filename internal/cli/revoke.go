package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-sec/vigil/action"
	"github.com/vigil-sec/vigil/internal/server"
)

type revokeFlags struct {
	reason, by, steps string
	tokenStdin        bool
}

// revoke asks the server to revoke a credential and prints the action.
func revoke(ctx context.Context, stdio IO, c *adminClient, tokenID string, f revokeFlags) error {
	if f.reason == "" {
		return fmt.Errorf("--reason is required: it is recorded in the denylist and the audit log")
	}
	req := server.RevokeRequest{Reason: f.reason, By: f.by}
	if req.By == "" {
		req.By = os.Getenv("USER")
	}
	if f.steps != "" {
		req.Steps = strings.Split(f.steps, ",")
	}
	var raw []byte
	if f.tokenStdin {
		line, err := bufio.NewReaderSize(stdio.Stdin, 16<<10).ReadString('\n')
		if strings.TrimSpace(line) == "" {
			return fmt.Errorf("--token-stdin: no token on standard input (%v)", err)
		}
		raw = []byte(strings.TrimSpace(line))
		defer clear(raw)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if raw != nil {
		// Spliced in rather than marshalled from a string, so the only copies
		// are these buffers, wiped after.
		tok, _ := json.Marshal(string(raw))
		body = append(append(append(body[:len(body)-1], `,"token":`...), tok...), '}')
		clear(tok)
	}
	defer clear(body)
	resp, err := c.do(ctx, http.MethodPost, server.PathTokens+"/"+url.PathEscape(tokenID)+"/revoke", nil, bytes.NewReader(body), "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var ans server.RevokeAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	note := ""
	if ans.Duplicate {
		note = " (already requested: not repeated)"
	}
	fmt.Fprintf(stdio.Stdout, "%s: action %s %s%s\n", tokenID, ans.ActionID, ans.Status.State, note)
	for _, st := range ans.Status.Steps {
		fmt.Fprintf(stdio.Stdout, "  %-9s %s", st.Step, st.Outcome)
		if st.Error != "" {
			fmt.Fprintf(stdio.Stdout, ": %s", st.Error)
		}
		fmt.Fprintln(stdio.Stdout)
	}
	fmt.Fprintln(stdio.Stdout, "Steps retry in the background; `vigil tokens actions` shows those still running and those given up.")
	return nil
}

// writeActions prints the executor's pending and failed steps.
func writeActions(w io.Writer, a server.ActionsAnswer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "STATE\tACTION\tTOKEN ID\tSTEP\tATTEMPT\tWHEN\tERROR\n")
	for _, group := range []struct {
		name string
		rs   []action.Record
	}{{"pending", a.Pending}, {"failed", a.Failed}} {
		for _, r := range group.rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", group.name, r.ID, r.TokenID, r.Step, r.Attempt,
				r.Time.UTC().Format(time.RFC3339), dash(printable(r.Error)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := a.Stats
	_, err := fmt.Fprintf(w, "submitted %d, steps succeeded %d, failed %d, retries %d; audit log %s\n",
		s.Submitted, s.Succeeded, s.Failed, s.Retries, a.AuditLog)
	return err
}
