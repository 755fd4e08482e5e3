package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/vigil-sec/vigil/ingest"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/replay"
	"github.com/vigil-sec/vigil/tail"
)

const followUsage = `Usage: vigil follow [flags] FILE…

Follow growing log files, like tail -F, and decide every event as it is
written: one decision line per event on standard output (or --decisions),
and one short alert line per decision at or above --min-level on standard
error (or --alerts). Files are followed from their end unless --from-start;
a rotated file (renamed and created again, or copytruncate) is read to its
end and the new one from its start; a file that does not exist yet is
waited for. Lines from several files are decided in the order they are
read. Unusable lines are reported on standard error, numbered in that
order.

SIGINT or SIGTERM stops it: what the files hold by then is decided, and a
summary is printed on standard error. A second signal stops it at once.

Flags:
`

// runFollow is `vigil follow`; it stops on SIGINT or SIGTERM.
func runFollow(io IO, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	return followContext(ctx, io, args)
}

// followContext is `vigil follow`, stopping when ctx is done.
func followContext(ctx context.Context, cio IO, args []string) int {
	fs := flag.NewFlagSet("vigil follow", flag.ContinueOnError)
	configPath := fs.String("config", "", "read the configuration from `FILE` (default: built-in defaults)")
	format := fs.String("format", "auto", "the log's `format`: auto (detected from what the first file holds) or one of "+formatNames())
	fromStart := fs.Bool("from-start", false, "read the files from their start, not only what is appended")
	decisionsPath := fs.String("decisions", "", "append the decisions to `FILE` (default: standard output)")
	alertsPath := fs.String("alerts", "", "append the alerts to `FILE`, - for standard output (default: standard error)")
	minLevelName := fs.String("min-level", policy.Throttle.String(), "alert on decisions at or above `LEVEL`: throttle, step_up_auth or block")
	poll := fs.Duration("poll", tail.DefaultPoll, "how often idle files are checked")
	if code, ok := parseFlags(cio, fs, followUsage, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(cio, fs, followUsage, "at least one FILE is required (flags go before them)")
	}
	logFormat, err := parseFormatFlag(*format)
	if err != nil {
		return usageError(cio, fs, followUsage, "--format: "+err.Error()+" (or auto)")
	}
	minLevel, err := policy.ParseLevel(*minLevelName)
	if err != nil || minLevel == policy.Allow {
		return usageError(cio, fs, followUsage, fmt.Sprintf("--min-level %q: want throttle, step_up_auth or block", *minLevelName))
	}
	if *poll <= 0 {
		return usageError(cio, fs, followUsage, fmt.Sprintf("--poll %v: must be positive", *poll))
	}

	// Errors, alerts, file notices and logs come from several goroutines.
	stderr := &lockedWriter{w: cio.Stderr}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil follow: "+format+"\n", a...)
		return exitError
	}
	cfg := config.Default()
	if *configPath != "" {
		if cfg, err = config.Load(*configPath); err != nil {
			return fail("%v", err)
		}
	}
	parts, err := app.Build(cfg, cio.LookupEnv)
	if err != nil {
		return fail("configuration: %v", err)
	}
	geo, closeGeo, err := enricher(parts)
	if err != nil {
		return fail("%v", err)
	}
	defer closeGeo()
	decisions, alerts := cio.Stdout, io.Writer(stderr)
	if *decisionsPath != "" {
		f, err := os.OpenFile(*decisionsPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		decisions = f
	}
	switch *alertsPath {
	case "":
	case "-":
		alerts = cio.Stdout
	default:
		f, err := os.OpenFile(*alertsPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		alerts = f
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, err := tail.Follow(ctx, fs.Args(), tail.Options{
		Poll:      *poll,
		FromStart: *fromStart,
		MaxLine:   event.MaxLineBytes,
		Log:       log,
		OnEvent:   func(ev tail.Event) { fmt.Fprintf(stderr, "vigil follow: %s\n", ev) },
	})
	if err != nil {
		return fail("%v", err)
	}
	newDecoder, err := followDecoder(logFormat, fs.Args())
	if err != nil {
		in.Close()
		return usageError(cio, fs, followUsage, err.Error())
	}
	defer in.Close()
	alerter := &alerter{decisions: decisions, alerts: alerts, min: minLevel}
	opts := replay.Options{
		Input:      in,
		Live:       true,
		Output:     alerter,
		Errors:     stderr,
		Parts:      parts,
		Workers:    cfg.Replay.Workers,
		Batch:      cfg.Replay.Batch,
		Logger:     log,
		NewDecoder: newDecoder,
		Enrich:     geo,
	}
	if parts.KeyRandom {
		opts.OnRawToken = func(int) {
			fmt.Fprintf(stderr, "vigil follow: warning: the events carry raw tokens, but no fingerprint key is configured:\n"+
				"  token ids derived from raw tokens are random for this run and will not match any other run.\n"+
				"  Set fingerprint.key_file in the configuration, or %s.\n", keyEnvHint(cfg))
		}
	}
	// The pipeline is not stopped by ctx: the Reader ends at ctx, once
	// what the files hold has been read, and Run decides all of it.
	sum, err := replay.Run(context.WithoutCancel(ctx), opts)
	writeFollowSummary(stderr, sum, alerter.count, minLevel, in.Stats().Total())
	if err != nil {
		return fail("%v", err)
	}
	return exitOK
}

// followDecoder returns the decoders of format f; for "" (--format auto),
// the format detected from the first of paths that holds lines
// already (a log that does not exist yet needs --format). Lines of a
// growing file are decoded one by one: CloudTrail is followed as JSON
// lines (one record per line), not as Records files, which are written
// whole rather than appended to.
func followDecoder(f ingest.Format, paths []string) (func(fp *event.Fingerprinter) replay.Decoder, error) {
	if f == "" {
		for _, p := range paths {
			sample, err := readPrefix(p, detectSample)
			if err != nil || len(bytes.TrimSpace(sample)) == 0 {
				continue
			}
			if f, err = ingest.Detect(sample); err != nil {
				return nil, fmt.Errorf("%s: %w (--format)", p, err)
			}
			break
		}
		if f == "" {
			return nil, errors.New("--format: no file holds lines yet to detect the format from: give --format")
		}
	}
	if d := decoders(f); d != nil {
		return d, nil
	}
	return func(fp *event.Fingerprinter) replay.Decoder { return event.NewDecoder(fp) }, nil
}

// readPrefix reads at most n bytes from the start of a file.
func readPrefix(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:m], err
}

func writeFollowSummary(w io.Writer, s replay.Summary, alerts int, minLevel policy.Level, files tail.FileStats) {
	fmt.Fprintf(w, "vigil follow: %s decided, %s, %s (%s or above), %s, %s, %s skipped\n",
		plural(s.Events, "event"), plural(s.BadLines, "bad line"), plural(alerts, "alert"), minLevel,
		plural(files.Rotations, "rotation"), plural(files.Truncations, "truncation"), plural(files.Skipped, "long line"))
	var levels []string
	for l, n := range s.Decisions {
		levels = append(levels, fmt.Sprintf("%s %d", policy.Level(l), n))
	}
	fmt.Fprintf(w, "  decisions: %s\n", strings.Join(levels, ", "))
}

// lockedWriter serializes the writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// alerter passes the decision lines replay writes on to decisions, and
// writes an alert line for each decision at or above min. It is written to
// by replay's one writer goroutine.
type alerter struct {
	decisions, alerts io.Writer
	min               policy.Level
	carry             []byte // the start of a decision line cut by a write
	count             int    // alerts written
}

var _ io.Writer = (*alerter)(nil)

// maxCarry bounds the unfinished line kept; decision lines are far shorter.
const maxCarry = 1 << 20

func (a *alerter) Write(p []byte) (int, error) {
	n, err := a.decisions.Write(p)
	if err != nil {
		return n, err
	}
	rest := p
	if len(a.carry) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(a.carry)+len(p) <= maxCarry {
				a.carry = append(a.carry, p...)
			}
			return n, nil
		}
		a.carry = append(a.carry, p[:i]...)
		err = a.line(a.carry)
		a.carry = a.carry[:0]
		rest = p[i+1:]
	}
	for err == nil {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(rest) <= maxCarry {
				a.carry = append(a.carry, rest...)
			}
			break
		}
		err = a.line(rest[:i])
		rest = rest[i+1:]
	}
	if err != nil {
		return n, fmt.Errorf("alerts: %w", err)
	}
	return n, nil
}

// decisionKey finds a decision's level: in a JSON object the key's quotes
// are bare, while inside a string value they would be escaped.
var decisionKey = []byte(`"decision":"`)

// line writes the alert of one decision line, if it is one.
func (a *alerter) line(l []byte) error {
	i := bytes.Index(l, decisionKey)
	if i < 0 {
		return nil
	}
	name := l[i+len(decisionKey):]
	if j := bytes.IndexByte(name, '"'); j >= 0 {
		name = name[:j]
	}
	level := policy.Allow
	for lv := range policy.NumLevels {
		if string(name) == lv.String() {
			level = lv
		}
	}
	if level < a.min {
		return nil // the common case, without decoding the line
	}
	var d alertDecision
	if json.Unmarshal(l, &d) != nil {
		return nil
	}
	a.count++
	_, err := io.WriteString(a.alerts, d.String())
	return err
}

// alertDecision is what an alert tells of a decision line.
type alertDecision struct {
	RequestID string        `json:"request_id"`
	TokenID   string        `json:"token_id"`
	Timestamp string        `json:"timestamp"`
	Risk      float64       `json:"risk"`
	Decision  string        `json:"decision"`
	Reasons   []alertReason `json:"reasons"`
}

type alertReason struct {
	Signal       string  `json:"signal"`
	Contribution float64 `json:"contribution"`
}

// String is the alert line: time, decision, credential, risk and the three
// reasons that contributed most.
func (d *alertDecision) String() string {
	rs := slices.Clone(d.Reasons)
	slices.SortStableFunc(rs, func(x, y alertReason) int {
		return cmp.Compare(y.Contribution, x.Contribution)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "ALERT %s %s token %s risk %s", printable(d.Timestamp), printable(d.Decision),
		printable(d.TokenID), strconv.FormatFloat(d.Risk, 'f', -1, 64))
	for i, r := range rs[:min(3, len(rs))] {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s +%s", sep, printable(r.Signal), strconv.FormatFloat(r.Contribution, 'f', -1, 64))
	}
	if len(rs) > 3 {
		fmt.Fprintf(&b, " (+%d more)", len(rs)-3)
	}
	fmt.Fprintf(&b, " [request %s]\n", printable(d.RequestID))
	return b.String()
}
