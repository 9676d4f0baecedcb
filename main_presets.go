package main

import (
	"log/slog"

	"gatemq/broker"
	"gatemq/conf"
)

// presetRules translates the [[preset_subscription]] tables into the
// broker's rules.
func presetRules(cfg conf.Config) []broker.PresetRule {
	var out []broker.PresetRule
	for _, p := range cfg.PresetSubscriptions {
		out = append(out, broker.PresetRule{Client: p.Client, Preset: broker.Preset{Filter: p.Topic, QoS: byte(p.QoS),
			NoLocal: p.NoLocal, RetainAsPublished: p.RetainAsPublished, RetainHandling: byte(p.RetainHandling)}})
	}
	return out
}

// reloadPresets sets the broker's preset rules from the config file at
// path, on SIGHUP. A file that does not load keeps the rules in use, and
// says why.
func reloadPresets(path string, srv *broker.Server, log *slog.Logger) {
	if path == "" {
		return
	}
	cfg, err := conf.Load(path)
	if err != nil {
		log.Error("reload: config file not applied; preset subscriptions kept", "err", err)
		return
	}
	rules := presetRules(cfg)
	srv.SetPresetRules(rules)
	log.Info("preset subscription rules reloaded", "rules", len(rules))
}
