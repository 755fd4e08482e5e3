package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strings"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/app"
)

const configUsage = `Usage:
  vigil config default      print the default configuration, with comments
  vigil config check FILE   validate a configuration file and the parts it builds

'check' prints "FILE: ok" and exits 0, or prints the errors and exits 2
(1 if FILE cannot be read).
`

// runConfig is `vigil config`.
func runConfig(io IO, args []string) int {
	flags := flag.NewFlagSet("vigil config", flag.ContinueOnError)
	if code, ok := parseFlags(io, flags, configUsage, args); !ok {
		return code
	}
	switch sub, rest := flags.Arg(0), flags.Args(); {
	case sub == "default" && len(rest) == 1:
		if _, err := io.Stdout.Write(config.DefaultYAML()); err != nil {
			fmt.Fprintf(io.Stderr, "vigil config: %v\n", err)
			return exitError
		}
		return exitOK
	case sub == "check" && len(rest) == 2:
		return checkConfig(io, rest[1])
	case sub == "check":
		return usageError(io, flags, configUsage, "check takes one FILE")
	case sub == "default":
		return usageError(io, flags, configUsage, "default takes no arguments")
	case sub == "":
		return usageError(io, flags, configUsage, "missing subcommand")
	default:
		return usageError(io, flags, configUsage, fmt.Sprintf("unknown subcommand %q", sub))
	}
}

// checkConfig loads path and builds the parts it configures.
func checkConfig(io IO, path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(io.Stderr, err)
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == path {
			return exitError // the file itself cannot be read
		}
		return exitUsage
	}
	parts, err := app.Build(cfg, io.LookupEnv)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(io.Stderr, "%s: %s\n", path, line)
		}
		return exitUsage
	}
	fmt.Fprintf(io.Stdout, "%s: ok\n", path)
	if parts.KeyRandom {
		fmt.Fprintf(io.Stderr, "%s: note: no fingerprint key is configured (fingerprint.key_file, or %s); "+
			"token ids from raw tokens will be random per run\n", path, keyEnvHint(cfg))
	}
	return exitOK
}
