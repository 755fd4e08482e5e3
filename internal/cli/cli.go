// Package cli implements the vigil command. Each subcommand lives in its own
// file as run<Name>(io, args) int, returning the process exit status, so
// tests can run any command in-process.
package cli

import (
	"fmt"
	"io"
	"os"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad arguments or, with --strict, bad input
)

// IO is what a command may touch of the process.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// LookupEnv reads the environment (os.LookupEnv in the binary).
	LookupEnv func(string) (string, bool)
}

// Stdio returns the process's own streams and environment.
func Stdio() IO {
	return IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}
}

const usage = `vigil — behavioral security for API credentials

Usage:
  vigil demo [flags]             simulate traffic with an attack and show vigil's decisions
  vigil serve [flags]            decide inline for gateways: forward-auth, Envoy ext_authz (HTTP, gRPC)
  vigil proxy --upstream URL     enforce in front of any HTTP API as a reverse proxy
  vigil tokens SUBCOMMAND        the credential inventory of a running vigil: list, show, export, dormant, scopes, revoke, actions, zones
  vigil replay [flags] [FILE|-]  decide every event of a log: vigil events, nginx, Envoy, API Gateway, CloudTrail, GitHub
  vigil investigate [flags] FILE which credentials of a log were abused, since when (text, HTML)
  vigil follow [flags] FILE…     follow growing log files: decide events and alert as they are written
  vigil simulate [flags]         write labeled evaluation traffic (events and labels)
  vigil eval [flags]             measure detection on labeled traffic: vigil vs seed vs a per-IP rate limiter
  vigil config check FILE        validate a configuration file
  vigil config default           print the default configuration, with comments
  vigil version                  print the version

Run 'vigil COMMAND -h' for a command's flags.
`

// Main runs the vigil command line and returns the exit status.
func Main(args []string, io IO) int {
	if len(args) == 0 {
		fmt.Fprint(io.Stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "demo":
		return runDemo(io, args[1:])
	case "replay":
		return runReplay(io, args[1:])
	case "investigate":
		return runInvestigate(io, args[1:])
	case "follow":
		return runFollow(io, args[1:])
	case "serve":
		return runServe(io, args[1:])
	case "proxy":
		return runProxy(io, args[1:])
	case "tokens":
		return runTokens(io, args[1:])
	case "simulate":
		return runSimulate(io, args[1:])
	case "eval":
		return runEval(io, args[1:])
	case "config":
		return runConfig(io, args[1:])
	case "version", "--version", "-version":
		fmt.Fprintln(io.Stdout, "vigil", Version)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(io.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(io.Stderr, "vigil: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// Version is set at build time with -ldflags "-X github.com/vigil-sec/vigil/internal/cli.Version=…".
var Version = "dev"
