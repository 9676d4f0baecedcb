package main

import (
	"reflect"

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

// applyPresets gives the broker the preset rules of cfg, on reload, when
// they changed.
func (r *reloader) applyPresets(cfg conf.Config) {
	if reflect.DeepEqual(cfg.PresetSubscriptions, r.cfg.PresetSubscriptions) {
		return
	}
	rules := presetRules(cfg)
	r.srv.SetPresetRules(rules)
	r.log.Info("preset subscription rules reloaded", "rules", len(rules))
}
