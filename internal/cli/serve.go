package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/store/redisstore"
)

const serveUsage = `Usage: vigil serve [flags]

Run vigil inline: decide every request a gateway asks about. Credentials'
state is kept in this process (state.backend memory; on disk with
profile.data_dir) or in Redis, shared by every replica (state.backend redis).

  decision listener (serve.listen, default 127.0.0.1:8080)
    /v1/forward-auth         Traefik ForwardAuth, Caddy forward_auth
    /v1/forward-auth/nginx   nginx auth_request (see deploy/nginx)
    /v1/ext-authz/...        Envoy ext_authz, HTTP mode (path_prefix /v1/ext-authz)
    /v1/report               POST outcomes (JSON lines: token_id, time, status, response_bytes)
    /healthz, /readyz
  gRPC (serve.grpc_listen, default 127.0.0.1:9001)
    envoy.service.auth.v3.Authorization/Check, grpc.health.v1.Health
  admin (serve.admin_listen, default 127.0.0.1:9090; loopback unless an admin token is set)
    /metrics, GET /v1/credentials/{token_id}
    GET /v1/denylist, PUT and DELETE /v1/denylist/{token_id}

SIGTERM or SIGINT stops it gracefully.

Flags:
`

const proxyUsage = `Usage: vigil proxy --upstream URL [flags]

Run vigil as a reverse proxy in front of an HTTP API: every request is
decided and enforced (429 with Retry-After, 401 step-up challenge, 403) before
it reaches URL; allowed requests carry x-vigil-* headers upstream, and the
upstream's status and response size feed the credential's profile.
Metrics, the read API and the denylist are on the admin listener
(serve.admin_listen).

Flags:
`

func runServe(io IO, args []string) int { return runInline(io, args, false) }
func runProxy(io IO, args []string) int { return runInline(io, args, true) }

func runInline(io IO, args []string, proxy bool) int {
	name, usage := "vigil serve", serveUsage
	if proxy {
		name, usage = "vigil proxy", proxyUsage
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	configPath := fs.String("config", "", "read the configuration from `FILE` (default: built-in defaults)")
	listen := fs.String("listen", "", "decision (or proxy) listener `ADDR` (default: serve.listen)")
	admin := fs.String("admin", "", "admin listener `ADDR` (default: serve.admin_listen)")
	var upstream *string
	if proxy {
		upstream = fs.String("upstream", "", "the API to proxy to, e.g. http://127.0.0.1:3000")
	}
	debug := fs.Bool("debug", false, "log at debug level")
	if code, ok := parseFlags(io, fs, usage, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(io, fs, usage, "no arguments expected")
	}
	var o server.Options
	if proxy {
		u, err := url.Parse(*upstream)
		if *upstream == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError(io, fs, usage, fmt.Sprintf("--upstream %q: want an http or https URL", *upstream))
		}
		o.Upstream = u
	}
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			fmt.Fprintf(io.Stderr, "%s: %v\n", name, err)
			return exitError
		}
	}
	if *listen != "" {
		cfg.Serve.Listen = *listen
	}
	if *admin != "" {
		cfg.Serve.AdminListen = *admin
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(io.Stderr, &slog.HandlerOptions{Level: level}))
	if cfg.State.Backend == config.BackendRedis {
		// The Redis client's own logger is process-wide: set once, here,
		// for the one server this process runs.
		redisstore.RouteClientLogs(log)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := server.New(ctx, cfg, io.LookupEnv, log, o)
	if err != nil {
		fmt.Fprintf(io.Stderr, "%s: %v\n", name, err)
		return exitError
	}
	if err := s.Run(ctx, nil); err != nil {
		fmt.Fprintf(io.Stderr, "%s: %v\n", name, err)
		return exitError
	}
	return exitOK
}
