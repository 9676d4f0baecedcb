package main

import (
	"log/slog"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"gatemq/boltstore"
	"gatemq/broker"
)

// systemd speaks the sd_notify protocol to the service manager, when there
// is one (NOTIFY_SOCKET set, as under Type=notify): READY=1 once the broker
// serves, WATCHDOG=1 at half of WatchdogSec while health reports no error,
// RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 at
// shutdown. Without NOTIFY_SOCKET every call is a no-op.
type systemd struct {
	log    *slog.Logger
	health func() error
	stop   chan struct{}
	once   sync.Once
}

// startSystemd sends READY=1 and, when the unit has WatchdogSec, starts
// the watchdog pings. health must be safe to call from another goroutine;
// it may block, which stops the pings as a failing check does. Call
// stopping when shutdown begins.
func startSystemd(log *slog.Logger, health func() error) *systemd {
	sd := &systemd{log: log.With("component", "systemd"), health: health, stop: make(chan struct{})}
	sd.ready()
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		sd.log.Warn("systemd watchdog", "err", err)
	}
	if interval <= 0 {
		return sd
	}
	sd.log.Info("systemd watchdog enabled", "timeout", interval)
	go sd.watchdog(interval / 2)
	return sd
}

// ready sends READY=1: the broker serves, or finished a reload.
func (sd *systemd) ready() {
	if sent, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		sd.log.Warn("sd_notify READY=1", "err", err)
	} else if sent {
		sd.log.Debug("told systemd the broker is ready")
	}
}

// reloading sends RELOADING=1 with MONOTONIC_USEC, the time of the
// reload request that systemd 253 and later match against its own
// (sd_notify(3)); ready must follow when the reload is done, whether it
// applied anything or not.
func (sd *systemd) reloading() {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec()); err != nil {
		sd.log.Warn("sd_notify RELOADING=1", "err", err)
	}
}

// watchdog pings systemd every period while the health check passes. A
// failing check is logged once when it starts failing and once when it
// recovers; without pings systemd kills and restarts the broker after
// WatchdogSec.
func (sd *systemd) watchdog(period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	failing := false
	for {
		// Wait first: the accept loops start in goroutines after READY=1.
		select {
		case <-t.C:
		case <-sd.stop:
			return
		}
		err := sd.health()
		switch {
		case err != nil && !failing:
			sd.log.Error("health check failed: not pinging the systemd watchdog", "err", err)
		case err == nil && failing:
			sd.log.Info("health check passes again")
		}
		failing = err != nil
		if !failing {
			if _, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); err != nil {
				sd.log.Warn("sd_notify WATCHDOG=1", "err", err)
			}
		}
	}
}

// stopping stops the watchdog pings and sends STOPPING=1. It does not
// wait for a health check in progress, which may be the one hanging. It is
// idempotent.
func (sd *systemd) stopping() {
	sd.once.Do(func() {
		close(sd.stop)
		if _, err := daemon.SdNotify(false, daemon.SdNotifyStopping); err != nil {
			sd.log.Warn("sd_notify STOPPING=1", "err", err)
		}
	})
}

// health is the watchdog's check: the broker's accept loops are running
// and, with durable sessions, the store's writer is alive and committing.
// store may be nil.
func health(srv *broker.Server, store *boltstore.Store) func() error {
	return func() error {
		if err := srv.Healthy(); err != nil {
			return err
		}
		if store != nil {
			return store.Healthy()
		}
		return nil
	}
}
