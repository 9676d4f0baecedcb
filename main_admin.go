package main

import (
	"context"
	"log/slog"
	"time"

	"gatemq/admin"
	"gatemq/boltstore"
	"gatemq/broker"
	"gatemq/conf"
)

// startAdmin serves the admin API on its Unix socket and, when [admin]
// address is set, on loopback TCP with the token of token_file. It
// returns the function that stops it. A failure is logged and leaves the
// broker running without the API (or without its TCP side): MQTT matters
// more than the operator's view of it.
func startAdmin(cfg conf.Config, srv *broker.Server, store *boltstore.Store, archive *boltstore.Archive, log *slog.Logger) (stop func()) {
	log = log.With("component", "admin")
	opts := admin.Options{Broker: srv, Logger: log}
	if store != nil { // not a typed nil in the interface
		opts.Store = store
	}
	if archive != nil {
		opts.Archive = archive
	}
	if cfg.Admin.TokenFile != "" {
		tok, err := admin.ReadToken(cfg.Admin.TokenFile)
		if err != nil {
			log.Error("admin API on TCP disabled", "err", err)
		}
		opts.Token = tok
	}
	a := admin.New(opts)
	path := adminSocket(cfg)
	if _, err := a.ListenUnix(path); err != nil {
		log.Error("admin socket", "path", path, "err", err)
	} else {
		log.Info("admin API listening", "socket", path)
	}
	if cfg.Admin.Address != "" && opts.Token != "" {
		if ln, err := a.ServeTCP(cfg.Admin.Address); err != nil {
			log.Error("admin API on TCP", "address", cfg.Admin.Address, "err", err)
		} else {
			log.Info("admin API listening", "address", ln.Addr().String())
		}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.Close(ctx)
	}
}

// reloadLogLevel sets the log level from the [log] level of the config
// file at path, on SIGHUP. A file that does not load keeps the level, and
// says why.
func reloadLogLevel(path string, lv *slog.LevelVar, log *slog.Logger) {
	if path == "" {
		return
	}
	cfg, err := conf.Load(path)
	if err != nil {
		log.Error("reload: config file not applied; log level kept", "level", lv.Level().String(), "err", err)
		return
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		log.Error("reload: log level kept", "level", lv.Level().String(), "err", err)
		return
	}
	if l != lv.Level() {
		log.Info("log level changed", "from", lv.Level().String(), "to", l.String())
		lv.Set(l)
	}
}
