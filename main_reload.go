package main

import (
	"log/slog"
	"net"
	"regexp"

	"gatemq/broker"
	"gatemq/conf"
)

// reloader applies the configuration again on SIGHUP. It reads the file
// once and hands the one Config to each piece: the log level, the broker's
// limits, and each listener's limits and files (TLS certificates, password
// file, ACL). A file that does not load is not applied at all: the
// configuration in use stays, and only the listeners' files are read
// again. Settings that cannot change live are logged, one line per key,
// as needing a restart.
//
// It runs on the signal loop's goroutine only.
type reloader struct {
	path            string // the config file; "" runs on the embedded defaults
	listen, dataDir string // the command-line overrides, applied again
	started         conf.Config
	cfg             conf.Config // the configuration applied last
	log             *slog.Logger
	level           *slog.LevelVar
	srv             *broker.Server
	files           []*listenerFiles
	lns             []net.Listener
	sd              *systemd
}

// liveKey matches the keys that reload applies; the others need a
// restart. The broker's Limits say when each applies.
var liveKey = regexp.MustCompile(`^(log\.level|mqtt\.(max_packet_size|max_keepalive|max_inflight|` +
	`max_queued_messages|max_queued_bytes|queue_qos0_messages|sys_interval|max_connections|` +
	`max_topic_levels|max_subscriptions|max_user_properties|await_rel_timeout)|` +
	`listener\[\d+\]\.(max_connections|max_connection_rate|allow_anonymous|password_file|acl_file))$`)

// reload applies the configuration file again, telling systemd.
func (r *reloader) reload() {
	r.sd.reloading()
	defer r.sd.ready()
	r.log.Info("reloading", "config", r.path)
	next, err := r.load()
	if err != nil {
		r.log.Error("reload: config file not applied: keeping the configuration in use", "err", err)
		next = r.cfg
	}
	for _, key := range conf.Changed(r.cfg, next) {
		if liveKey.MatchString(key) {
			r.log.Info("reload: applying", "key", key)
		}
	}
	r.applyLevel(next)
	r.applyLimits(next)
	r.applyListeners(next)
	for _, key := range conf.Changed(r.started, next) {
		if !liveKey.MatchString(key) {
			r.log.Warn("reload: changed setting needs a restart", "key", key)
		}
	}
	r.cfg = next
	r.log.Info("reload done")
}

// load reads the file with the command line's overrides, as at start.
func (r *reloader) load() (conf.Config, error) {
	cfg := conf.Default()
	if r.path != "" {
		var err error
		if cfg, err = conf.Load(r.path); err != nil {
			return conf.Config{}, err
		}
	}
	cfg.ApplyOverrides(r.listen, r.dataDir)
	return cfg, cfg.Validate()
}

func (r *reloader) applyLevel(cfg conf.Config) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return // Validate accepts only levels that parse
	}
	if from := r.level.Level(); l != from {
		r.level.Set(l)
		r.log.Info("log level changed", "from", from.String(), "to", l.String())
	}
}

func (r *reloader) applyLimits(cfg conf.Config) {
	r.srv.SetLimits(brokerLimits(cfg))
}

// applyListeners applies each listener's limits and authentication, and
// reads its files again. With another number of listeners (which needs a
// restart) each keeps its settings and only its files are read again.
func (r *reloader) applyListeners(cfg conf.Config) {
	same := len(cfg.Listeners) == len(r.files)
	for i, lf := range r.files {
		l := lf.cfg
		if same {
			l = cfg.Listeners[i]
			r.srv.SetListenerLimits(r.lns[i], l.MaxConnections, l.MaxConnectionRate)
		}
		lf.reload(l, r.log)
	}
}
