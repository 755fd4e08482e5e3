package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/simulate"
)

const simulateUsage = `Usage: vigil simulate [flags]

Generates labeled API traffic for evaluation: credentials used by their
owners over several days (browser and mobile users, ETL jobs, integrations,
CI, multi-region services, monitors, travellers, VPN users) and attacks on
stolen credentials, as JSON lines in the event contract (docs/events.md).
The labels go to a separate file, one line per event in the same order:
{"request_id", "label": "owner"|"attacker", "scenario", "token_id"}.
The same seed, mix and days give the same files. docs/simulate.md
describes every archetype and attack.

Events go to standard output unless --events names a file; the labels go
to --labels, by default next to the events file (events.jsonl →
events.labels.jsonl), which is required when events go to standard output.
A summary is printed on standard error.

Flags:
`

func runSimulate(io IO, args []string) int {
	fs := flag.NewFlagSet("vigil simulate", flag.ContinueOnError)
	fs.SetOutput(io.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), simulateUsage)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nMixes:\n")
		for _, m := range simulate.Mixes() {
			fmt.Fprintf(fs.Output(), "  %-10s %s\n", m[0], wrap(m[1], 13, 100, strings.Repeat(" ", 13)))
		}
	}
	seed := fs.Uint64("seed", 1, "seed of the simulation; the same seed, mix and days give the same files")
	days := fs.Int("days", 0, "length of the evaluation window in `DAYS` (1 to 366; 0: the mix's own, 7)")
	mixName := fs.String("mix", "default", "which population and attacks to simulate (`NAME`, see below)")
	eventsPath := fs.String("events", "-", "write the events to `FILE` (- for standard output)")
	labelsPath := fs.String("labels", "", "write the labels to `FILE` (default: next to the events file)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(io.Stderr, "vigil simulate: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *days < 0 || *days > 366 {
		return usageErr("--days %d: must be between 1 and 366 (0 for the mix's own)", *days)
	}
	if *labelsPath == "" {
		if *eventsPath == "-" || *eventsPath == "" {
			return usageErr("--labels FILE is required when the events go to standard output")
		}
		*labelsPath = labelsBeside(*eventsPath)
	}
	if *labelsPath == "-" && *eventsPath == "-" {
		return usageErr("events and labels cannot both go to standard output")
	}
	if *labelsPath == *eventsPath {
		return usageErr("--events and --labels name the same file %q", *eventsPath)
	}

	opts, err := simulate.Mix(*mixName, *seed, time.Duration(*days)*24*time.Hour)
	if err != nil {
		return usageErr("%v", err)
	}
	tr, err := simulate.Generate(opts)
	if err != nil {
		fmt.Fprintf(io.Stderr, "vigil simulate: %v\n", err)
		return exitError
	}
	for _, f := range []struct {
		path  string
		write itemWriter
	}{{*eventsPath, simulate.WriteEvents}, {*labelsPath, simulate.WriteLabels}} {
		if f.path == "-" {
			err = f.write(io.Stdout, tr.Items)
		} else {
			err = writeFile(f.path, tr.Items, f.write)
		}
		if err != nil {
			fmt.Fprintf(io.Stderr, "vigil simulate: %v\n", err)
			return exitError
		}
	}
	w := bufio.NewWriter(io.Stderr)
	writeSimulateSummary(w, tr, *mixName, *seed, *eventsPath, *labelsPath)
	_ = w.Flush()
	return exitOK
}

// labelsBeside names the labels file of an events file: events.jsonl →
// events.labels.jsonl, in the same directory.
func labelsBeside(events string) string {
	dir, base := filepath.Split(events)
	for _, ext := range []string{".jsonl", ".ndjson", ".json"} {
		if s, ok := strings.CutSuffix(base, ext); ok {
			return filepath.Join(dir, s+".labels"+ext)
		}
	}
	return filepath.Join(dir, base+".labels.jsonl")
}

func writeSimulateSummary(w *bufio.Writer, tr *simulate.Traffic, mix string, seed uint64, events, labels string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	if events == "-" {
		events = "standard output"
	}
	if labels == "-" {
		labels = "standard output"
	}
	p("vigil simulate: mix %s, seed %d: %s events of %d credentials, window %s", mix, seed,
		commas(len(tr.Items)), len(tr.Credentials), span(tr.Start, tr.End))
	if tr.From.Before(tr.Start) {
		p(" (history from %s)", tr.From.Format("2 Jan 2006"))
	}
	p("\n  events: %s\n  labels: %s\n", events, labels)
	type key struct {
		role     simulate.Role
		scenario string
	}
	n := make(map[key]int)
	var keys []key
	for i := range tr.Items {
		k := key{tr.Items[i].Label.Role, tr.Items[i].Label.Scenario}
		if n[k] == 0 {
			keys = append(keys, k)
		}
		n[k]++
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.role != b.role {
			return int(a.role) - int(b.role)
		}
		return strings.Compare(a.scenario, b.scenario)
	})
	creds := make(map[string]int)
	for _, c := range tr.Credentials {
		creds[c.Archetype]++
	}
	runs := make(map[string][]string)
	for _, a := range tr.Attacks {
		runs[a.Attack] = append(runs[a.Attack], fmt.Sprintf("%s from %s", a.Victim.Name, a.Start.Format("Mon 15:04")))
	}
	for _, k := range keys {
		what := fmt.Sprintf("%d credentials", creds[k.scenario])
		if k.role == simulate.Attacker {
			what = "on " + strings.Join(runs[k.scenario], ", ")
		}
		p("  %-8s %-12s %9s  %s\n", k.role, k.scenario, commas(n[k]), what)
	}
}
