package bench

import "errors"

var (
	// errUsage is returned by a subcommand whose command line is wrong,
	// after it printed why; Main exits with 2.
	errUsage = errors.New("usage")

	// errRunFailed is returned by a subcommand whose run finished but
	// failed a check (messages lost, a connection failed or dropped,
	// publishes failed), after it printed the result; Main exits with 1.
	errRunFailed = errors.New("run failed")

	// errIdle is returned by waitProgress when nothing was sent or
	// received for the idle timeout.
	errIdle = errors.New("idle")
)
