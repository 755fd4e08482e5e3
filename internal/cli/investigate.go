package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/ingest"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/internal/atomicfile"
	"github.com/vigil-sec/vigil/investigate"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/replay"
)

const investigateUsage = `Usage: vigil investigate [flags] [FILE|-]

Answers "which credentials were abused, since when?" for a log of events
(FILE, or standard input for - or no FILE). Every event is judged as
'vigil replay' would; then, for each credential with events decided at or
above --min-level, the report says when it first deviated, from where
(addresses, ASNs and countries, new ones marked), what it did since
(endpoints, bytes out, errors), the reasons, and a timeline. The riskiest
credentials come first.

The text report goes to standard output; --html also writes one
self-contained HTML page with a risk chart per credential. Unusable lines
are reported on standard error by line number and skipped.

Exit status: 0 on success, 1 on I/O or configuration errors, 2 on usage
errors.

Flags:
`

// runInvestigate is `vigil investigate`.
func runInvestigate(io IO, args []string) int {
	fs := flag.NewFlagSet("vigil investigate", flag.ContinueOnError)
	configPath := fs.String("config", "", "read the configuration from `FILE` (default: built-in defaults)")
	format := fs.String("format", "auto", "the log's `format`: auto (detected from the start of the input) or one of "+formatNames())
	htmlPath := fs.String("html", "", "also write the report as an HTML page to `FILE`")
	minLevel := fs.String("min-level", "throttle", "the decision from which an event is suspicious: throttle, step_up_auth or block")
	top := fs.Int("top", 10, "list at most `N` suspicious credentials, the riskiest (0: all)")
	if code, ok := parseFlags(io, fs, investigateUsage, args); !ok {
		return code
	}
	usageErr := func(msg string) int { return usageError(io, fs, investigateUsage, msg) }
	if fs.NArg() > 1 {
		return usageErr("at most one FILE may be given (flags go before it)")
	}
	level, err := policy.ParseLevel(*minLevel)
	if err != nil || level == policy.Allow {
		return usageErr(fmt.Sprintf("--min-level %q: want throttle, step_up_auth or block", *minLevel))
	}
	if *top < 0 {
		return usageErr(fmt.Sprintf("--top %d: must not be negative", *top))
	}
	if *htmlPath == "-" {
		return usageErr("--html needs a file name")
	}
	logFormat, err := parseFormatFlag(*format)
	if err != nil {
		return usageErr("--format: " + err.Error() + " (or auto)")
	}

	fail := func(format string, a ...any) int {
		fmt.Fprintf(io.Stderr, "vigil investigate: "+format+"\n", a...)
		return exitError
	}
	cfg := config.Default()
	if *configPath != "" {
		if cfg, err = config.Load(*configPath); err != nil {
			return fail("%v", err)
		}
	}
	parts, err := app.Build(cfg, io.LookupEnv)
	if err != nil {
		return fail("configuration: %v", err)
	}
	geo, closeGeo, err := enricher(parts)
	if err != nil {
		return fail("%v", err)
	}
	defer closeGeo()
	col := investigate.NewCollector(investigate.Options{
		Model:      parts.Model,
		MinLevel:   level,
		Thresholds: parts.Ladder,
	})
	opts := replay.Options{
		Input:   io.Stdin,
		Output:  discardDecisions,
		Errors:  io.Stderr,
		Parts:   parts,
		Workers: cfg.Replay.Workers,
		Batch:   cfg.Replay.Batch,
		Logger:  slog.New(slog.NewTextHandler(io.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),

		Enrich:  geo,
		Observe: col.Observe,
	}
	if parts.KeyRandom {
		opts.OnRawToken = func(line int) {
			fmt.Fprintf(io.Stderr, "vigil investigate: warning: line %d carries a raw token, but no fingerprint key is configured:\n"+
				"  its token id is random for this run and will not match any other run or system.\n", line)
		}
	}
	in, err := openLog(io, fs.Arg(0), logFormat)
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil investigate: %v\n", err)
		if errors.Is(err, ingest.ErrUnknownFormat) {
			return exitUsage
		}
		return exitError
	}
	defer in.close()
	opts.Input, opts.NewDecoder = in.r, decoders(in.format)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills the process
	}()
	sum, runErr := replay.Run(ctx, opts)
	fmt.Fprintf(io.Stderr, "vigil investigate: %s judged, %s, %s; %.2fs\n",
		plural(sum.Events, "event"), plural(sum.BadLines, "bad line"), plural(sum.Credentials, "credential"), sum.Elapsed.Seconds())
	interrupted := errors.Is(runErr, context.Canceled)
	if runErr != nil && !interrupted {
		return fail("%v", runErr)
	}
	if interrupted {
		// What was judged is still worth a report.
		fmt.Fprintln(io.Stderr, "vigil investigate: interrupted: the report covers the events judged so far")
	}

	rep := col.Report().Top(*top)
	if err := investigate.WriteText(io.Stdout, rep); err != nil {
		return fail("writing the report: %v", err)
	}
	if *htmlPath != "" {
		var page bytes.Buffer
		if err := investigate.WriteHTML(&page, rep); err != nil {
			return fail("writing the HTML report: %v", err)
		}
		if err := atomicfile.Write(*htmlPath, page.Bytes()); err != nil {
			return fail("writing the HTML report: %v", err)
		}
		fmt.Fprintf(io.Stderr, "vigil investigate: HTML report written to %s\n", *htmlPath)
	}
	if interrupted {
		return exitError
	}
	return exitOK
}

// discardDecisions takes the decision lines, which an investigation does
// not print. (In runInvestigate, io is the command's IO.)
var discardDecisions = io.Discard
