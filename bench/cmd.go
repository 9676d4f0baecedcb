package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// Main runs `gatemq bench` with args (the words after "bench") and returns
// the process exit code: 0 on success, 1 when the run failed (a connection
// failed, or messages were lost), 2 on a usage error. It blocks until the
// run ends; SIGINT or SIGTERM end a run early and still print its result.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if os.Getenv("GOGC") == "" {
		// paho allocates several objects per packet and the tool keeps
		// little live memory: collecting less often saves a third of its
		// CPU time per message.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, stdout, stderr)
}

// run is Main without the signal handling, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch args[0] {
	case "pub":
		err = runPub(ctx, args[1:], stdout, stderr)
	case "sub":
		err = runSub(ctx, args[1:], stdout, stderr)
	case "pubsub":
		err = runPubSub(ctx, args[1:], stdout, stderr)
	case "conn":
		err = runConn(ctx, args[1:], stdout, stderr)
	case "report":
		err = runReport(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "gatemq bench: unknown subcommand %q\n", args[0])
		usage(stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errRunFailed):
		return 1 // the result was printed and says why
	default:
		fmt.Fprintf(stderr, "gatemq bench %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: gatemq bench SUBCOMMAND [flags]

  pub     publish from -c clients:  pub -c 10 -q 1 -s 64 -t bench/%i -n 1000
  sub     count what -c subscribers receive:  sub -c 1 -t 'bench/#' -n 10000
  pubsub  subscribers and publishers in one run, checks no message is lost:
          pubsub -pubs 50 -subs 1 -t bench/in/%i -f 'bench/in/+' -q 1 -n 2000
  conn    hold -c idle connections opened at -r per second:  conn -c 5000 -r 1000 -d 30s
  report  print the comparison table from the -json lines of runs

Every subcommand takes -h host:port (default 127.0.0.1:1883), -u, -P,
-prefix, -json; "gatemq bench SUBCOMMAND -help" lists its flags.
%i in a topic or filter is the client's index.
`)
}

// common holds the flags every load subcommand takes.
type common struct {
	host      string
	username  string
	password  string
	prefix    string
	keepAlive int
	json      bool
	label     string
	broker    string
	brokerPID int
	cpuProf   string
	clean     bool
	expiry    uint
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.host, "h", "127.0.0.1:1883", "broker `host:port`")
	fs.StringVar(&c.username, "u", "", "`username`")
	fs.StringVar(&c.password, "P", "", "`password`")
	fs.StringVar(&c.prefix, "prefix", fmt.Sprintf("bench-%d", os.Getpid()), "client ID `prefix`; IDs are PREFIX-pub0, PREFIX-sub0, PREFIX-conn0...")
	fs.IntVar(&c.keepAlive, "k", 60, "keepalive in `seconds`")
	fs.BoolVar(&c.json, "json", false, "print the result as one JSON object")
	fs.StringVar(&c.label, "label", "", "`name` of the load, copied into the JSON result (for report)")
	fs.StringVar(&c.broker, "broker", "", "`name` of the broker, copied into the JSON result (for report)")
	fs.IntVar(&c.brokerPID, "broker-pid", 0, "`pid` of the broker, to report its CPU time per message and its memory")
	fs.StringVar(&c.cpuProf, "cpuprofile", "", "write a CPU profile of the load tool itself to `file`")
	fs.BoolVar(&c.clean, "clean", true, "connect with clean start; -clean=false resumes the sessions of the same client IDs (see -prefix)")
	fs.UintVar(&c.expiry, "expiry", 0, "Session Expiry Interval in `seconds`: > 0 keeps the sessions after disconnect (durable sessions)")
}

// startProfile starts the -cpuprofile profile; the returned func stops it.
func (c *common) startProfile() (stop func(), err error) {
	if c.cpuProf == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.cpuProf)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// addr returns the dial address, with port 1883 when -h has none.
func (c *common) addr() string {
	if _, _, err := net.SplitHostPort(c.host); err != nil {
		return net.JoinHostPort(strings.Trim(c.host, "[]"), "1883")
	}
	return c.host
}

func (c *common) clientOptions(role string, i int) clientOptions {
	ka := min(max(c.keepAlive, 0), 65535)
	return clientOptions{
		Addr:      c.addr(),
		ClientID:  fmt.Sprintf("%s-%s%d", c.prefix, role, i),
		Username:  c.username,
		Password:  c.password,
		KeepAlive: uint16(ka),
		Resume:    !c.clean,
		// Session Expiry Interval is a four-byte integer.
		SessionExpiry: uint32(min(c.expiry, 0xFFFFFFFF)),
	}
}

func (c *common) header(mode string) Header {
	return Header{Mode: mode, Label: c.label, Broker: c.broker, Addr: c.addr()}
}

// parse parses args into fs, printing errors and usage to stderr.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatemq bench %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

func usageErr(stderr io.Writer, cmd, format string, args ...any) error {
	fmt.Fprintf(stderr, "gatemq bench %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return errUsage
}

// printer prints a result as text or JSON.
type printer interface {
	text(w io.Writer)
}

func emit(w io.Writer, asJSON bool, r printer) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		b = append(b, '\n')
		_, err = w.Write(b)
		return err
	}
	r.text(w)
	return nil
}

// seconds rounds d to milliseconds, in seconds.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// rate returns n per second over d, rounded to a whole number.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(int64(float64(n)/d.Seconds() + 0.5))
}
