// Command gatemq is a single-binary MQTT broker for edge gateways.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"gatemq/auth"
	"gatemq/bench"
	"gatemq/boltstore"
	"gatemq/broker"
	"gatemq/conf"
	"gatemq/internal/topic"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "version":
		fmt.Fprintf(stdout, "gatemq %s\n", version)
		return 0
	case "bench":
		return bench.Main(args, stdout, stderr)
	case "ds":
		return dsMain(args, stdout, stderr)
	case "sessions":
		return sessionsMain(args, stdout, stderr)
	case "clients":
		return clientsMain(args, stdout, stderr)
	case "kick":
		return kickMain(args, stdout, stderr)
	case "presets":
		return presetsMain(args, stdout, stderr)
	case "retained":
		return retainedMain(args, stdout, stderr)
	case "peers":
		return peersMain(args, stdout, stderr)
	case "export":
		return exportMain(args, stdout, stderr)
	case "import":
		return importMain(args, os.Stdin, stdout, stderr)
	case "messages":
		return messagesMain(args, stdout, stderr)
	case "passwd":
		return auth.PasswdMain(args, os.Stdin, stdout, stderr)
	case "default-config":
		return defaultConfigMain(args, stdout, stderr)
	case "check-config":
		return checkConfigMain(args, stdout, stderr)
	case "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "gatemq: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: gatemq [serve] [-config FILE] [-listen ADDR] [-data-dir DIR]
       gatemq version
       gatemq default-config
       gatemq check-config FILE
       gatemq passwd [-b] [-D] FILE USER [PASSWORD]   (gatemq passwd -h for details)
       gatemq bench pub|sub|conn|pubsub|report [flags]   (gatemq bench -h for flags)
       gatemq ds info [-data-dir DIR | -config FILE] [-json]
       gatemq sessions list [-data-dir DIR | -config FILE] [-json]
       gatemq clients [-state online|offline] [-data-dir DIR | -config FILE] [-json]
       gatemq clients show CLIENT_ID [-data-dir DIR | -config FILE] [-json]
       gatemq kick CLIENT_ID [-data-dir DIR | -config FILE]
       gatemq presets list [CLIENT_ID] | set CLIENT_ID FILTER QOS | delete CLIENT_ID [FILTER]   (gatemq presets -h)
       gatemq retained list [-topic FILTER] | get TOPIC | delete TOPIC   (gatemq retained -h)
       gatemq peers [-data-dir DIR | -config FILE] [-json]
       gatemq export [-data-dir DIR | -config FILE] [-o FILE]
       gatemq import [-data-dir DIR | -config FILE] [FILE]
       gatemq messages list --topic TOPIC [--from TIME] [--to TIME] [--limit N] [--after ID] [--newest|--oldest]
                            [-data-dir DIR | -config FILE] [-json]
       gatemq messages get ID [-data-dir DIR | -config FILE] [-json]
`)
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "TOML configuration `file` (default: embedded defaults)")
	listen := fs.String("listen", "", "address of the first TCP listener, overriding the config (host:port)")
	dataDir := fs.String("data-dir", "", "data `directory`, overriding the config")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := conf.Default()
	if *configPath != "" {
		var err error
		if cfg, err = conf.Load(*configPath); err != nil {
			fmt.Fprintf(stderr, "gatemq: %v\n", err)
			return 2
		}
	}
	cfg.ApplyOverrides(*listen, *dataDir)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "gatemq: %v\n", err)
		return 2
	}
	files, err := loadListenerFiles(cfg, *configPath)
	if err != nil {
		fmt.Fprintf(stderr, "gatemq: %v\n", err)
		return 2
	}
	peerKey, err := loadPeerKey(cfg, *configPath)
	if err != nil {
		fmt.Fprintf(stderr, "gatemq: %v\n", err)
		return 2
	}
	log, logLevel := newLogger(cfg, stderr)
	applyMemoryLimit(cfg, log)
	defer startGCTuner(cfg, log)()
	if err := prepareDataDir(cfg.DataDir, log); err != nil {
		log.Error("prepare data directory", "dir", cfg.DataDir, "err", err)
		return 1
	}

	// Signals are caught from here on: one arriving while the store is
	// restored or the listeners open waits for the loop below instead of
	// killing the process with the default action.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	opts := brokerOptions(cfg, log)
	store, err := openStore(cfg, log)
	if err != nil {
		log.Error("open durable storage", "err", err)
		return 1
	}
	if store != nil {
		defer store.Close()
		opts.Store = store
	}
	archive, err := openArchive(cfg, log)
	if err != nil {
		log.Error("open message archive", "err", err)
		return 1
	}
	if archive != nil {
		defer archive.Close() // after the server: what it queued is committed
		opts.Archive = archive
	}
	srv := broker.New(opts)
	if err := srv.Restore(); err != nil {
		log.Error("restore durable state", "err", err)
		return 1
	}
	var lns []net.Listener
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			log.Error("listen", "address", l.Address, "err", err)
			for _, ln := range lns {
				ln.Close()
			}
			return 1
		}
		lns = append(lns, ln)
	}
	errc := make(chan error, len(lns))
	for i, ln := range lns {
		lopts := broker.ListenerOptions{MaxConnections: cfg.Listeners[i].MaxConnections,
			NoDurableSessions: !durableOn(cfg, cfg.Listeners[i])}
		lopts.MaxConnectionRate = cfg.Listeners[i].MaxConnectionRate
		files[i].apply(&lopts)
		files[i].logStart(log, ln.Addr().String())
		if isLoopback(ln.Addr()) {
			log.Info("only local clients can connect: to open the broker to the LAN, set [[listener]] address = \"0.0.0.0:1883\" with a password_file (or allow_anonymous = true) in the config file")
		}
		go func() { errc <- srv.ServeListener(ln, lopts) }()
	}
	abs, _ := filepath.Abs(cfg.DataDir)
	log.Info("gatemq started", "version", version, "data_dir", abs)
	sd := startSystemd(log, health(srv, store))
	peers := startPeers(cfg, peerKey, store, log)
	stopAdmin := startAdmin(cfg, srv, store, peers, archive, log)
	rl := &reloader{path: *configPath, listen: *listen, dataDir: *dataDir, started: cfg, cfg: cfg,
		log: log, level: logLevel, srv: srv, files: files, lns: lns, sd: sd}

	code := 0
wait:
	for {
		select {
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				rl.reload()
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			break wait
		case err := <-errc:
			if !errors.Is(err, broker.ErrServerClosed) {
				log.Error("listener stopped", "err", err)
				code = 1
			}
			break wait
		}
	}
	sd.stopping()
	stopPeers(peers, log)
	stopAdmin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		log.Warn("shutdown deadline passed, closing anyway", "err", err)
	}
	log.Info("stopped")
	return code
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// newLogger builds the logger; its level is the returned LevelVar, which
// SIGHUP sets from the file again (reloader.applyLevel).
func newLogger(cfg conf.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	lv := new(slog.LevelVar)
	lv.Set(level)
	opts := &slog.HandlerOptions{Level: lv}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

// brokerOptions translates the configuration into the broker's options.
func brokerOptions(cfg conf.Config, log *slog.Logger) broker.Options {
	m := cfg.MQTT
	o := broker.Options{
		Logger:         log.With("component", "broker"),
		Version:        "gatemq " + version,
		ConnectTimeout: m.ConnectTimeout.D(),
		SessionExpiry:  m.SessionExpiryInterval.D(),
		DisableRetain:  !m.RetainAvailable,
		MaxQoS:         byte(m.MaxQoS),
		TopicAliasMax:  uint16(m.MaxTopicAlias),
		MaxClientIDLen: m.MaxClientIDLen,
		DenySubscribe:  m.DenySubscribe,
		DurableBatch:   cfg.DurableSessions.BatchSize,
		PresetRules:    presetRules(cfg),

		StatusRetention: cfg.ClientStatus.OfflineRetention.D(),
		Offline:         offlineRules(cfg),
	}
	o.SetLimits(brokerLimits(cfg))
	return o
}

// brokerLimits translates the [mqtt] limits that a SIGHUP can change.
func brokerLimits(cfg conf.Config) broker.Limits {
	m := cfg.MQTT
	return broker.Limits{
		MaxPacketSize:     int(m.MaxPacketSize),
		MaxKeepAlive:      uint16(m.MaxKeepalive),
		MaxInflight:       m.MaxInflight,
		MaxQueued:         m.MaxQueuedMessages,
		MaxQueuedBytes:    int(m.MaxQueuedBytes),
		QueueQoS0:         m.QueueQoS0Messages,
		MaxConnections:    m.MaxConnections,
		MaxTopicLevels:    m.MaxTopicLevels,
		MaxSubscriptions:  m.MaxSubscriptions,
		MaxUserProperties: m.MaxUserProperties,
		AwaitRelTimeout:   m.AwaitRelTimeout.D(),
		SysInterval:       m.SysInterval.D(),
	}
}

// offlineRules translates the [[offline]] tables.
func offlineRules(cfg conf.Config) []broker.OfflineRule {
	var out []broker.OfflineRule
	for _, o := range cfg.Offline {
		r := broker.OfflineRule{Filter: o.Topic, Mode: broker.OfflinePubsub,
			Retention: o.RetentionOr(cfg.DurableStorage.MessageRetentionPeriod).D()}
		if o.Mode == conf.OfflineQueue {
			n, b := o.QueueLimits()
			r = broker.OfflineRule{Filter: o.Topic, Mode: broker.OfflineQueue, MaxMessages: n, MaxBytes: b}
		}
		out = append(out, r)
	}
	return out
}

// durableOn reports whether a listener's persistent sessions are durable.
func durableOn(cfg conf.Config, l conf.Listener) bool {
	if l.DurableSessions != nil {
		return *l.DurableSessions
	}
	return cfg.DurableSessions.Enable
}

// openStore opens the durable store in DATA_DIR/ds when any listener has
// durable sessions or there are offline message rules, and returns nil
// otherwise.
func openStore(cfg conf.Config, log *slog.Logger) (*boltstore.Store, error) {
	need := len(cfg.Offline) > 0
	for _, l := range cfg.Listeners {
		need = need || durableOn(cfg, l)
	}
	if !need {
		return nil, nil
	}
	st := cfg.DurableStorage
	return boltstore.Open(filepath.Join(cfg.DataDir, "ds"), &boltstore.Options{
		NShards:            st.NShards,
		GenerationInterval: st.GenerationInterval.D(),
		Retention:          st.MessageRetentionPeriod.D(),
		BatchSize:          st.BatchSize,
		FlushInterval:      st.FlushInterval.D(),
		MaxBytes:           int64(st.MaxBytes),
		Logger:             log.With("component", "boltstore"),
	})
}

// openArchive opens the message archive in DATA_DIR/archive when the
// configuration has [[archive]] rules, or when an earlier configuration
// left an archive there (its messages stay readable until their
// retention); it returns nil otherwise.
func openArchive(cfg conf.Config, log *slog.Logger) (*boltstore.Archive, error) {
	dir := filepath.Join(cfg.DataDir, "archive")
	if len(cfg.Archive) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, nil
		}
	}
	o := boltstore.ArchiveOptions{Match: topic.Match, Logger: log.With("component", "archive")}
	for _, r := range cfg.Archive {
		o.Rules = append(o.Rules, boltstore.ArchiveRule{Filter: r.Topic, Retention: r.Retention.D(), MaxBytes: int64(r.MaxBytes)})
	}
	return boltstore.OpenArchive(dir, &o)
}
