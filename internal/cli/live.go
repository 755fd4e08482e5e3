package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/server"
)

// The live demo: `vigil proxy` in front of a small demo API on loopback,
// real HTTP requests from an owner and, after a while, from a thief with
// the owner's token. It runs in about ten seconds of wall time.

// liveOwnerToken and liveThief are the demo's credential and attacker; the
// token is a made-up string that protects nothing.
const (
	liveOwnerToken = "demo-owner-token-7f3a9c"
	liveOwnerAddr  = "198.51.100.7"
	liveOwnerUA    = "acme-crm/2.3 okhttp/4.12.0"
	liveThiefAddr  = "203.0.113.66"
	liveThiefUA    = "python-requests/2.32.3"
	liveContacts   = 300 // contacts the demo API holds; higher ids are 404
)

// demoAPI is the upstream: a CRM-like API.
func demoAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/contacts", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"contacts":[`+strings.Repeat(`{"id":1,"name":"Ada"},`, 400)+`{}]}`)
	})
	mux.HandleFunc("GET /v1/contacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > liveContacts {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"id":%d,"name":"Contact %d","email":"c%d@example.com","notes":"%s"}`, id, id, id, strings.Repeat("n", 600))
	})
	mux.HandleFunc("GET /v1/deals", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"deals":[`+strings.Repeat(`{"id":7,"stage":"won"},`, 150)+`{}]}`)
	})
	mux.HandleFunc("/v1/admin/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"forbidden"}`, http.StatusForbidden)
	})
	return mux
}

// liveConfig is the default configuration with the warm-up shortened to
// fit a demo of seconds: twenty requests, no minimum age.
func liveConfig() (*config.Config, error) {
	return config.Parse([]byte(`
scoring: {warmup_age: 0s}
serve: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", grpc_listen: ""}
`), "live demo")
}

type liveStep struct {
	thief bool
	path  string
}

// liveScript is the traffic: the owner's everyday calls, then the thief's
// calls interleaved with the owner's.
func liveScript() []liveStep {
	var s []liveStep
	owner := func(i int) liveStep {
		switch i % 4 {
		case 0:
			return liveStep{path: "/v1/contacts"}
		case 1, 2:
			return liveStep{path: fmt.Sprintf("/v1/contacts/%d", 1+(i*37)%liveContacts)}
		}
		return liveStep{path: "/v1/deals"}
	}
	for i := range 40 {
		s = append(s, owner(i))
	}
	thief := []string{"/v1/contacts", "/v1/admin/users", "/v1/admin/api-keys", "/v1/admin/audit-log"}
	for i := range 40 {
		thief = append(thief, fmt.Sprintf("/v1/contacts/%d", liveContacts-10+i))
	}
	thief = append(thief, "/v1/admin/roles", "/v1/admin/billing", "/v1/admin/sso", "/v1/admin/export", "/v1/contacts", "/v1/deals")
	for i, p := range thief {
		s = append(s, liveStep{thief: true, path: p})
		if i%3 == 2 {
			s = append(s, owner(40+i))
		}
	}
	return s
}

func runLiveDemo(cio IO) int {
	out := cio.Stdout
	cfg, err := liveConfig()
	if err != nil {
		fmt.Fprintf(cio.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(cio.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	apiSrv := &http.Server{Handler: demoAPI(), ReadHeaderTimeout: 5 * time.Second}
	go apiSrv.Serve(api)
	defer apiSrv.Close()
	upstream, _ := url.Parse("http://" + api.Addr().String())

	env := func(k string) (string, bool) {
		if k == cfg.Fingerprint.KeyEnv {
			return demoKey, true
		}
		return "", false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, cfg, env, slog.New(slog.DiscardHandler), server.Options{Upstream: upstream})
	if err != nil {
		fmt.Fprintf(cio.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	ready := make(chan server.Listeners, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(l server.Listeners) { ready <- l }) }()
	var ls server.Listeners
	select {
	case ls = <-ready:
	case err := <-done:
		fmt.Fprintf(cio.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	proxy := "http://" + ls.HTTP.String()
	fmt.Fprintf(out, "vigil proxy on %s, in front of a demo API on %s (metrics and read API on %s)\n\n", ls.HTTP, api.Addr(), ls.Admin)
	fmt.Fprintf(out, "The owner's integration calls the API with its token from %s (%s).\n", liveOwnerAddr, liveOwnerUA)
	fmt.Fprintf(out, "After 40 calls the token is stolen and used from %s (%s), while the owner keeps working.\n\n", liveThiefAddr, liveThiefUA)
	fmt.Fprintf(out, "  %-6s %-6s %-24s %-6s %-14s %5s  %s\n", "time", "who", "request", "status", "vigil", "risk", "why")

	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	// The token id is the token's keyed fingerprint, as vigil computes it.
	fp, err := event.NewFingerprinter([]byte(demoKey))
	if err != nil {
		fmt.Fprintf(cio.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	tokenID := fp.ID(event.Secret(liveOwnerToken))
	type tally struct{ n, allowed int }
	var owner, thief tally
	var firstStop, repeats int
	var lastShown string
	for i, st := range liveScript() {
		req, _ := http.NewRequest("GET", proxy+st.path, nil)
		req.Header.Set("Authorization", "Bearer "+liveOwnerToken)
		addr, ua := liveOwnerAddr, liveOwnerUA
		if st.thief {
			addr, ua = liveThiefAddr, liveThiefUA
		}
		// The demo's clients are all on loopback; X-Forwarded-For (trusted
		// from loopback by default) says where each one really is.
		req.Header.Set("X-Forwarded-For", addr)
		req.Header.Set("User-Agent", ua)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Fprintf(cio.Stderr, "vigil demo: %v\n", err)
			return exitError
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(40 * time.Millisecond)
		who, t := "owner", &owner
		if st.thief {
			who, t = "thief", &thief
		}
		t.n++
		passed := resp.StatusCode < 400 || resp.Header.Get("X-Vigil-Decision") == ""
		if passed {
			t.allowed++
		}
		if st.thief && !passed && firstStop == 0 {
			firstStop = thief.n
		}
		// What vigil decided is in the read API; the client sees a status.
		decided, risk, why := lastDecision(client, "http://"+ls.Admin.String(), tokenID)
		// Every change of answer is shown; repeats are summed up.
		key := fmt.Sprint(who, resp.StatusCode, decided)
		if st.thief && key == lastShown {
			repeats++
			continue
		}
		if !st.thief && i >= 3 && i%10 != 0 {
			continue
		}
		if repeats > 0 {
			fmt.Fprintf(out, "  %6s %-6s … %d more like the line above\n", "", "thief", repeats)
			repeats = 0
		}
		if st.thief {
			lastShown = key
		}
		{
			fmt.Fprintf(out, "  %5.1fs %-6s %-24s %-6d %-14s %5.2f  %s\n", time.Since(start).Seconds(), who, st.path, resp.StatusCode, decided, risk, why)
		}
	}
	if repeats > 0 {
		fmt.Fprintf(out, "  %6s %-6s … %d more like the line above\n", "", "thief", repeats)
	}
	fmt.Fprintf(out, "\nowner: %d of %d requests allowed; thief: %d of %d allowed", owner.allowed, owner.n, thief.allowed, thief.n)
	if firstStop > 0 {
		fmt.Fprintf(out, ", stopped from its request %d on", firstStop)
	}
	fmt.Fprintf(out, ".\nThe \"vigil\" column is the decision, then what was enforced when they differ (a throttled\n"+
		"credential's request that fits its rate limit passes). In front of your own API:\n"+
		"  vigil proxy --upstream http://127.0.0.1:3000    decisions: curl 127.0.0.1:9090%s<token_id>\n", server.PathCredentials)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(cio.Stderr, "vigil demo: %v\n", err)
		return exitError
	}
	return exitOK
}

// lastDecision reads the newest decision about tokenID from the read API.
func lastDecision(c *http.Client, admin, tokenID string) (decided string, risk float64, why string) {
	if tokenID == "" {
		return "", 0, ""
	}
	resp, err := c.Get(admin + server.PathCredentials + tokenID)
	if err != nil {
		return "?", 0, err.Error()
	}
	defer resp.Body.Close()
	var v struct {
		Recent []struct {
			Decision string  `json:"decision"`
			Enforced string  `json:"enforced"`
			Risk     float64 `json:"risk"`
			Reasons  []struct {
				Signal       string  `json:"signal"`
				Contribution float64 `json:"contribution"`
			} `json:"reasons"`
		} `json:"recent_decisions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || len(v.Recent) == 0 {
		return "?", 0, ""
	}
	r := v.Recent[0]
	var parts []string
	for _, x := range r.Reasons {
		parts = append(parts, fmt.Sprintf("%s +%.2g", x.Signal, x.Contribution))
	}
	decided = r.Decision
	if r.Enforced != r.Decision {
		decided += "→" + r.Enforced
	}
	return decided, r.Risk, strings.Join(parts, ", ")
}
