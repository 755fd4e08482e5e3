package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	stdio "io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/ingest"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/replay"
)

const replayUsage = `Usage: vigil replay [flags] [FILE|-]

Decide every event of a log file (or standard input, for - or no FILE):
one decision line per usable event on standard output, in input order.
Unusable lines are reported on standard error by line number and
skipped; a summary follows them.

The log is vigil's own JSON events or a gateway's or cloud's log (see
--format and docs/ingest.md); gzip is read transparently. CloudTrail's
{"Records":[...]} files are read record by record, and line numbers then
count records.

Exit status: 0 on success, 1 on I/O or configuration errors, 2 on usage
errors and, with --strict, on the first unusable line.

Flags:
`

// runReplay is `vigil replay`.
func runReplay(io IO, args []string) int {
	fs := flag.NewFlagSet("vigil replay", flag.ContinueOnError)
	configPath := fs.String("config", "", "read the configuration from `FILE` (default: built-in defaults)")
	strict := fs.Bool("strict", false, "stop at the first unusable line, with exit status 2")
	workers := fs.Int("workers", 0, "decoding and encoding goroutines, 0 for one per CPU (default: replay.workers of the configuration)")
	batch := fs.Int("batch", 0, "lines per batch (default: replay.batch of the configuration)")
	formatName := fs.String("format", "auto", "the log's `format`: auto (detected from the start of the input) or one of "+formatNames())
	if code, ok := parseFlags(io, fs, replayUsage, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageError(io, fs, replayUsage, "at most one FILE may be given (flags go before it)")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	format, err := parseFormatFlag(*formatName)
	if err != nil {
		return usageError(io, fs, replayUsage, "--format: "+err.Error()+" (or auto)")
	}
	if set["workers"] && (*workers < 0 || *workers > 256) {
		return usageError(io, fs, replayUsage, fmt.Sprintf("--workers %d: must be between 0 and 256", *workers))
	}
	if set["batch"] && (*batch < 1 || *batch > replay.MaxBatch) {
		return usageError(io, fs, replayUsage, fmt.Sprintf("--batch %d: must be between 1 and %d", *batch, replay.MaxBatch))
	}

	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			fmt.Fprintf(io.Stderr, "vigil replay: %v\n", err)
			return exitError
		}
	}
	parts, err := app.Build(cfg, io.LookupEnv)
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil replay: configuration: %v\n", err)
		return exitError
	}
	geo, closeGeo, err := enricher(parts)
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil replay: %v\n", err)
		return exitError
	}
	defer closeGeo()
	opts := replay.Options{
		Input:   io.Stdin,
		Output:  io.Stdout,
		Errors:  io.Stderr,
		Parts:   parts,
		Workers: cfg.Replay.Workers,
		Batch:   cfg.Replay.Batch,
		Strict:  *strict,
		Logger:  slog.New(slog.NewTextHandler(io.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Enrich:  geo,
	}
	if set["workers"] {
		opts.Workers = *workers
	}
	if set["batch"] {
		opts.Batch = *batch
	}
	if parts.KeyRandom {
		opts.OnRawToken = func(line int) {
			fmt.Fprintf(io.Stderr, "vigil replay: warning: line %d carries a raw token, but no fingerprint key is configured:\n"+
				"  token ids derived from raw tokens are random for this run and will not match any other run.\n"+
				"  Set fingerprint.key_file in the configuration, or %s.\n", line, keyEnvHint(cfg))
		}
	}
	in, err := openLog(io, fs.Arg(0), format)
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil replay: %v\n", err)
		if errors.Is(err, ingest.ErrUnknownFormat) {
			return exitUsage
		}
		return exitError
	}
	defer in.close()
	name := in.name
	if *formatName == "auto" && in.format != ingest.Vigil {
		fmt.Fprintf(io.Stderr, "vigil replay: reading %s as %s (detected; --format to choose)\n", name, in.format)
	}
	opts.Input, opts.NewDecoder = in.r, decoders(in.format)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills the process
	}()
	sum, err := replay.Run(ctx, opts)
	writeSummary(io.Stderr, sum)
	var lineErr *replay.LineError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &lineErr):
		// The line itself is already reported among the errors.
		fmt.Fprintf(io.Stderr, "vigil replay: stopped at line %d of %s (--strict)\n", lineErr.Line, name)
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(io.Stderr, "vigil replay: interrupted")
		return exitError
	}
	fmt.Fprintf(io.Stderr, "vigil replay: %v\n", err)
	return exitError
}

// detectSample is how much of the input auto-detection looks at.
const detectSample = 64 << 10

// detectFormat returns the input to read and its format: format itself if
// given, else the one detected from the input's first 64 KiB, which stay
// in the returned reader.
func detectFormat(in stdio.Reader, format ingest.Format) (stdio.Reader, ingest.Format, error) {
	if format != "" {
		return in, format, nil
	}
	br := bufio.NewReaderSize(in, detectSample)
	sample, err := br.Peek(detectSample)
	if err != nil && !errors.Is(err, stdio.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, "", err
	}
	if len(bytes.TrimSpace(sample)) == 0 {
		return br, ingest.Vigil, nil // nothing to decide in any format
	}
	f, err := ingest.Detect(sample)
	if err != nil {
		return nil, "", fmt.Errorf("%w (--format)", err)
	}
	return br, f, nil
}

// formatNames lists the formats for the usage.
func formatNames() string {
	var names []string
	for _, f := range ingest.Formats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// keyEnvHint names the environment variable that would hold the key.
func keyEnvHint(cfg *config.Config) string {
	if cfg.Fingerprint.KeyEnv != "" {
		return "$" + cfg.Fingerprint.KeyEnv
	}
	return "set fingerprint.key_env to the name of an environment variable that holds it"
}

// writeSummary writes the replay's summary block.
func writeSummary(w stdio.Writer, s replay.Summary) {
	var levels []string
	for l, n := range s.Decisions {
		levels = append(levels, fmt.Sprintf("%s %d", policy.Level(l), n))
	}
	fmt.Fprintf(w, "vigil replay: %s decided, %s, %s\n",
		plural(s.Events, "event"), plural(s.BadLines, "bad line"), plural(s.Credentials, "credential"))
	fmt.Fprintf(w, "  decisions: %s\n", strings.Join(levels, ", "))
	fmt.Fprintf(w, "  elapsed %.2fs, %.0f events/s\n", s.Elapsed.Seconds(), s.EventsPerSec)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// parseFlags parses args into fs. With -h it prints usage on stdout and
// returns exitOK; on a bad flag it prints the error and usage on stderr and
// returns exitUsage. ok is true when the command should go on.
func parseFlags(io IO, fs *flag.FlagSet, usage string, args []string) (code int, ok bool) {
	var msg bytes.Buffer
	fs.SetOutput(&msg)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	switch {
	case err == nil:
		fs.SetOutput(io.Stderr)
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		_, _ = io.Stdout.Write(msg.Bytes())
		return exitOK, false
	}
	_, _ = io.Stderr.Write(msg.Bytes())
	return exitUsage, false
}

// usageError reports a usage error with the command's usage.
func usageError(io IO, fs *flag.FlagSet, usage, msg string) int {
	fmt.Fprintf(io.Stderr, "%s: %s\n", fs.Name(), msg)
	fs.SetOutput(io.Stderr)
	fs.Usage()
	return exitUsage
}
