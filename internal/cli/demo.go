package cli

import "fmt"

// runDemo is being written; see the issue tracker.
func runDemo(io IO, args []string) int {
	fmt.Fprintln(io.Stderr, "vigil demo: not built yet")
	return exitError
}
