package bench

import (
	"fmt"
	"io"
)

// Main runs `gatemq bench` with args (the words after "bench") and returns
// the process exit code: 0 on success, 1 when the run failed, 2 on a usage
// error. It blocks until the run ends.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "gatemq bench: unknown subcommand %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: gatemq bench pub|sub|pubsub|conn [flags]
`)
}
