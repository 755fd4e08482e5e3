// Command vigil is a behavioral security engine for APIs. All of its work
// is in internal/cli and the packages behind it; main only connects it to
// the process.
package main

import (
	"os"

	"github.com/vigil-sec/vigil/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Stdio()))
}
