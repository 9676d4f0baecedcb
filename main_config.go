package main

import (
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"

	"gatemq/conf"
)

// defaultConfig is scripts/gatemq.toml: every key at its default, with
// comments. TestDefaultConfig_* keep it equal to conf.Default() and
// documented in the README.
//
//go:embed scripts/gatemq.toml
var defaultConfig string

// defaultConfigMain prints the commented example configuration.
func defaultConfigMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("default-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: gatemq default-config > gatemq.toml") }
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	io.WriteString(stdout, defaultConfig)
	return 0
}

// checkConfigMain loads and validates a configuration file, with the files
// its listeners and peer group name, and prints the configuration in effect. It exits 1
// with every error found, each naming the file, line and key.
func checkConfigMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: gatemq check-config FILE") }
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	cfg, err := conf.Load(path)
	if err == nil {
		_, err = loadListenerFiles(cfg, path)
	}
	if err == nil {
		_, err = loadPeerKey(cfg, path)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := conf.Print(stdout, cfg); err != nil {
		fmt.Fprintf(stderr, "gatemq: %v\n", err)
		return 1
	}
	for i, l := range cfg.Listeners {
		if privilegedPort(l.Address) {
			fmt.Fprintf(stderr, "%s: note: listener[%d].address %s is a port below 1024: the systemd unit needs CAP_NET_BIND_SERVICE (see scripts/gatemq.service)\n",
				path, i, l.Address)
		}
	}
	fmt.Fprintf(stderr, "%s: configuration ok\n", path)
	return 0
}

// privilegedPort reports whether addr (host:port) names a port below
// 1024, which only a process with CAP_NET_BIND_SERVICE may bind.
func privilegedPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 1024
}

// defaultGCPercent is the collector's target under load when neither
// gc_percent nor GOGC sets one. Against Go's 100 it took 8 to 12% off
// the broker's CPU per durable message (the collector's share, 25 to 30%
// of the CPU, shrinks) for a peak RSS of 41 instead of 37 MiB under 300k
// messages.
const defaultGCPercent = 200

// The allocation rates, in bytes a second, above which the broker is
// busy and below which it is idle again. A durable message costs about
// 1 KiB of allocations: 16 MiB/s is some 15,000 messages a second.
const (
	gcBusyRate = 16 << 20
	gcIdleRate = 4 << 20
)

// startGCTuner sets the garbage collector's target. GOGC, when set and
// gc_percent is not, is left as it is. Otherwise the target is
// gc_percent (default 200) while the broker is busy and at most Go's 100
// while it is idle: the headroom buys CPU only where the collector has
// work, and an idle gateway keeps the smaller heap (with 200 throughout,
// 5,000 idle connections held 2.5 KiB more each, the freed memory the
// runtime keeps within the larger target). Busy is an allocation rate,
// read once a second. stop ends the tuner.
func startGCTuner(cfg conf.Config, log *slog.Logger) (stop func()) {
	busy := cfg.GCPercent
	switch {
	case busy != 0:
		log.Info("garbage collector target set", "gc_percent", busy)
	case os.Getenv("GOGC") != "":
		return func() {}
	default:
		busy = defaultGCPercent
	}
	idle := min(busy, 100)
	debug.SetGCPercent(idle)
	if idle == busy {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(s)
		last, cur := s[0].Value.Uint64(), idle
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			metrics.Read(s)
			n := s[0].Value.Uint64()
			rate := n - last
			last = n
			want := cur
			switch {
			case rate > gcBusyRate:
				want = busy
			case rate < gcIdleRate:
				want = idle
			}
			if want != cur {
				debug.SetGCPercent(want)
				cur = want
			}
		}
	}()
	return func() { close(quit); <-done }
}

// applyMemoryLimit sets the Go runtime's soft memory limit to memory_limit,
// when set; otherwise the GOMEMLIMIT environment variable's applies.
func applyMemoryLimit(cfg conf.Config, log *slog.Logger) {
	if cfg.MemoryLimit == 0 {
		return
	}
	debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	log.Info("memory limit set", "memory_limit", cfg.MemoryLimit.String())
}
