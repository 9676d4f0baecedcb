package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"gatemq/admin"
	"gatemq/boltstore"
	"gatemq/broker"
	"gatemq/conf"
	"gatemq/gossip"
)

// startAdmin serves the admin API on its Unix socket and, when [admin]
// address is set, on loopback TCP with the token of token_file. It
// returns the function that stops it. A failure is logged and leaves the
// broker running without the API (or without its TCP side): MQTT matters
// more than the operator's view of it.
func startAdmin(cfg conf.Config, srv *broker.Server, store *boltstore.Store, peers *gossip.Group, archive *boltstore.Archive, log *slog.Logger) (stop func()) {
	log = log.With("component", "admin")
	dataDir, _ := filepath.Abs(cfg.DataDir)
	opts := admin.Options{Broker: srv, Presets: srv, Retained: srv, Logger: log, DataDir: dataDir}
	if store != nil { // not a typed nil in the interface
		opts.Store = store
	}
	if peers != nil {
		opts.Peers = peers
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
