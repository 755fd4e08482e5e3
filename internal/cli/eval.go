package cli

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/eval"
	"github.com/vigil-sec/vigil/simulate"
)

const evalUsage = `Usage: vigil eval [flags]

Measures how well vigil tells stolen credentials' attackers from their
owners on labeled traffic, next to the seed profile and a per-IP
fixed-window rate limiter on the same events: per attack scenario, recall
at ≥ throttle and ≥ step_up_auth, attacker requests before the first
≥ throttle, attacker requests allowed and the owner's collateral; for
credentials never attacked, how often they are escalated (docs/eval.md).

Without --events and --labels it evaluates simulated traffic (the default
simulation, or --seed and --mix); with them, the events (JSON lines,
docs/events.md) and their labels ({"request_id", "label", "scenario",
"token_id"} per line, as 'vigil demo --labels' writes them).

Flags:
`

// runEval is `vigil eval`.
func runEval(io IO, args []string) int {
	fs := flag.NewFlagSet("vigil eval", flag.ContinueOnError)
	configPath := fs.String("config", "", "evaluate the configuration in `FILE` (default: built-in defaults); the seed profile takes its profile settings")
	asJSON := fs.Bool("json", false, "print one JSON document with every number instead of the tables")
	eventsPath := fs.String("events", "", "read the events from `FILE` (needs --labels)")
	labelsPath := fs.String("labels", "", "read the labels from `FILE` (needs --events)")
	seed := fs.Uint64("seed", 1, "seed of the simulation, without --events")
	mix := fs.String("mix", "", "simulation mix `NAME`, without --events: "+mixNames()+" (default: default)")
	ipLimit := fs.Int("ip-limit", 60, "IP limiter: requests allowed per source address and window")
	ipWindow := fs.Duration("ip-window", time.Minute, "IP limiter: length of its fixed windows")
	if code, ok := parseFlags(io, fs, evalUsage, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(io, fs, evalUsage, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	files := *eventsPath != "" || *labelsPath != ""
	switch {
	case files && (*eventsPath == "" || *labelsPath == ""):
		return usageError(io, fs, evalUsage, "--events and --labels go together")
	case files && (set["seed"] || set["mix"]):
		return usageError(io, fs, evalUsage, "--seed and --mix choose a simulation; they do not apply to --events")
	case *ipLimit < 1 || *ipWindow <= 0:
		return usageError(io, fs, evalUsage, "--ip-limit and --ip-window must be positive")
	}

	fail := func(err error) int {
		fmt.Fprintf(io.Stderr, "vigil eval: %v\n", err)
		return exitError
	}
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return fail(err)
		}
	}
	vigil, parts, err := eval.NewEngineDecider("vigil", cfg, io.LookupEnv)
	if err != nil {
		return fail(err)
	}
	defer vigil.Close()
	seedP, _, err := eval.NewEngineDecider("seed", eval.SeedConfig(cfg), io.LookupEnv)
	if err != nil {
		return fail(err)
	}
	defer seedP.Close()
	limiter, err := eval.NewIPLimiter(eval.IPLimiterOptions{Limit: *ipLimit, Window: *ipWindow})
	if err != nil {
		return fail(err)
	}
	opts := eval.Options{Deciders: []eval.Decider{vigil, seedP, limiter}}

	var (
		rep    *eval.Report
		source string
	)
	if files {
		rep, err = evalFiles(*eventsPath, *labelsPath, eval.Files{Fingerprinter: parts.Fingerprinter}, opts)
		source = fmt.Sprintf("%s labeled by %s", *eventsPath, *labelsPath)
	} else {
		var so simulate.Options
		if so, err = evalSimulation(*seed, *mix); err != nil {
			return usageError(io, fs, evalUsage, err.Error())
		}
		var tr *simulate.Traffic
		if tr, err = simulate.Generate(so); err == nil {
			rep, err = eval.Traffic(tr.Items, opts)
		}
		source = fmt.Sprintf("simulation seed %d, mix %s, %s", *seed, mixName(*mix), so.Duration)
	}
	if err != nil {
		return fail(err)
	}
	out := bufio.NewWriter(io.Stdout)
	if *asJSON {
		err = eval.WriteJSON(out, rep)
	} else {
		fmt.Fprintf(out, "vigil eval: %s\n", source)
		err = eval.WriteText(out, rep)
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return fail(err)
	}
	return exitOK
}

func evalFiles(eventsPath, labelsPath string, f eval.Files, opts eval.Options) (*eval.Report, error) {
	ev, err := os.Open(eventsPath)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	lb, err := os.Open(labelsPath)
	if err != nil {
		return nil, err
	}
	defer lb.Close()
	f.Events, f.EventsName = bufio.NewReaderSize(ev, 1<<20), eventsPath
	f.Labels, f.LabelsName = bufio.NewReaderSize(lb, 1<<20), labelsPath
	return eval.ReadFiles(f, opts)
}

func mixNames() string {
	var names []string
	for _, m := range simulate.Mixes() {
		names = append(names, m[0])
	}
	return strings.Join(names, ", ")
}

func mixName(mix string) string {
	if mix == "" {
		return "default"
	}
	return mix
}

// evalSimulation returns the simulation `vigil eval` judges without
// files: a mix of simulate's (the default one unless named), as `vigil
// simulate` generates it.
func evalSimulation(seed uint64, mix string) (simulate.Options, error) {
	o, err := simulate.Mix(mixName(mix), seed, 0)
	if err != nil {
		return o, fmt.Errorf("--mix %q: %w", mix, err)
	}
	return o, nil
}
