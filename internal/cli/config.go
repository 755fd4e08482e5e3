package cli

import "fmt"

// runConfig is being written; see the issue tracker.
func runConfig(io IO, args []string) int {
	fmt.Fprintln(io.Stderr, "vigil config: not built yet")
	return exitError
}
