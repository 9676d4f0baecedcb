package main

import (
	"log/slog"
	"os"
	"time"

	"gatemq/boltstore"
	"gatemq/conf"
	"gatemq/gossip"
)

// peerLeaveTimeout bounds how long shutdown waits for the peers to hear
// that this gateway leaves.
const peerLeaveTimeout = 2 * time.Second

// loadPeerKey reads [peer_group] secret_file when the group is enabled;
// nil without one. An error names the config file and the key.
func loadPeerKey(cfg conf.Config, configPath string) ([]byte, error) {
	p := cfg.PeerGroup
	if !p.Enable || p.SecretFile == "" {
		return nil, nil
	}
	key, err := gossip.ReadKey(p.SecretFile)
	if err != nil {
		return nil, &conf.Error{File: configPath, Key: "peer_group.secret_file", Err: err}
	}
	return key, nil
}

// startPeers joins the peer group when [peer_group] enable is set, named
// peer_group.name, else the store's site ID, else the host name. A group
// that does not start is logged and left out: the broker serves MQTT
// without it. It returns nil without a group.
func startPeers(cfg conf.Config, key []byte, store *boltstore.Store, log *slog.Logger) *gossip.Group {
	p := cfg.PeerGroup
	if !p.Enable {
		return nil
	}
	log = log.With("component", "gossip")
	var site string
	if store != nil {
		site = store.Info().Site.String()
	}
	name := p.Name
	if name == "" {
		name = site
	}
	if name == "" {
		name, _ = os.Hostname()
	}
	if err := conf.CheckPeerName(name); err != nil {
		log.Error("peer group not started: set [peer_group] name", "err", err)
		return nil
	}
	g, err := gossip.Start(gossip.Options{
		Name:           name,
		Bind:           p.Bind,
		Advertise:      p.Advertise,
		Join:           p.Join,
		SecretKey:      key,
		Site:           site,
		Version:        version,
		GossipInterval: p.GossipInterval.D(),
		ProbeInterval:  p.ProbeInterval.D(),
		Logger:         log,
	})
	if err != nil {
		log.Error("peer group not started", "err", err)
		return nil
	}
	return g
}

// stopPeers leaves the peer group, so that the peers list this gateway
// as left rather than dead, and shuts it down. g may be nil.
func stopPeers(g *gossip.Group, log *slog.Logger) {
	if g == nil {
		return
	}
	if err := g.Leave(peerLeaveTimeout); err != nil {
		log.Warn("peer group", "err", err)
	}
	if err := g.Shutdown(); err != nil {
		log.Warn("peer group", "err", err)
	}
}
