// Command genevents writes a deterministic synthetic event stream for load
// tests of `vigil replay` (see bench/replay.sh). It prints the number of
// usable event lines on standard error as "events N".
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigil-sec/vigil/replay/replaytest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("genevents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o replaytest.Options
	out := fs.String("o", "-", "write to `FILE` (- for standard output)")
	fs.IntVar(&o.Events, "n", 1_000_000, "usable events")
	fs.IntVar(&o.Credentials, "credentials", 10_000, "distinct credentials")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed; the same seed gives the same stream")
	fs.DurationVar(&o.Interval, "interval", 100*time.Millisecond, "event time between events")
	fs.IntVar(&o.BadEvery, "bad-every", 0, "one unusable line per `N` events (0: none)")
	fs.IntVar(&o.RawTokenEvery, "raw-token-every", 0, "one event in `N` carries a raw token (0: none)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		w = f
	}
	st, err := replaytest.Write(w, o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		if err := f.Close(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "events %d\nbad %d\nlines %d\n", st.Events, st.Bad, st.Lines)
	return 0
}
