package cli

import "fmt"

// runReplay is being written; see the issue tracker.
func runReplay(io IO, args []string) int {
	fmt.Fprintln(io.Stderr, "vigil replay: not built yet")
	return exitError
}
