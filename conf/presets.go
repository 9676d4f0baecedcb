package conf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PresetSubscription is a subscription the broker makes for a client
// itself when it connects, whatever its protocol version: a
// [[preset_subscription]] table. Stored presets (gatemq presets set) add
// to these; a stored one replaces a rule with the same filter for its
// client.
type PresetSubscription struct {
	// Client is the client ID the rule is for; "" or "*" means every
	// client. Key preset_subscription[i].client; default "*".
	Client string `toml:"client"`

	// Topic is the topic filter; %c stands for the client ID and %u for
	// the user name, anywhere in it (a rule with %u does nothing for a
	// client without a user name). A client whose ID or user name holds
	// "+" or "#", or makes the filter invalid, does not get the rule
	// (the broker logs it). Key preset_subscription[i].topic; required.
	Topic string `toml:"topic"`

	// QoS is the subscription's maximum QoS, 0 to 2 (capped by
	// mqtt.max_qos). Key preset_subscription[i].qos; default 0.
	QoS int `toml:"qos"`

	// NoLocal keeps the client's own messages from it; not allowed on
	// a $share/ filter. Key preset_subscription[i].no_local; default
	// false.
	NoLocal bool `toml:"no_local"`

	// RetainAsPublished forwards the RETAIN flag as published (v5
	// clients; 3.x clients get MQTT 3's flags). Key
	// preset_subscription[i].retain_as_published; default false.
	RetainAsPublished bool `toml:"retain_as_published"`

	// RetainHandling is 0 (retained messages at every connect), 1 (only
	// when the subscription is new to the session) or 2 (never). Key
	// preset_subscription[i].retain_handling; default 0.
	RetainHandling int `toml:"retain_handling"`
}

func (p *PresetSubscription) setDefaults() { p.Client = "*" }

// presets checks the [[preset_subscription]] tables.
func (v *validator) presets(ps []PresetSubscription) {
	for i, p := range ps {
		key := "preset_subscription[" + strconv.Itoa(i) + "]"
		if strings.ContainsRune(p.Client, 0) || !utf8.ValidString(p.Client) {
			v.add(key+".client", errors.New("not a valid client ID (UTF-8 without U+0000)"))
		}
		if p.Topic == "" {
			v.add(key+".topic", errors.New("required"))
		} else if err := checkPresetTopic(p.Topic, p.NoLocal); err != nil {
			v.add(key+".topic", err)
		}
		v.intRange(key+".qos", int64(p.QoS), 0, 2)
		v.intRange(key+".retain_handling", int64(p.RetainHandling), 0, 2)
	}
}

// checkPresetTopic checks a preset topic with sample values in place of
// its placeholders.
func checkPresetTopic(topic string, noLocal bool) error {
	if strings.ContainsRune(topic, 0) || !utf8.ValidString(topic) {
		return fmt.Errorf("invalid topic filter %q: not UTF-8 without U+0000", topic)
	}
	f := strings.NewReplacer("%c", "client", "%u", "user").Replace(topic)
	if err := checkFilter(f); err != nil && f != topic {
		return fmt.Errorf("%w (with %%c and %%u replaced by a client ID and user name)", err)
	} else if err != nil {
		return err
	}
	if strings.HasPrefix(f, "$share/") {
		group, rest, ok := strings.Cut(strings.TrimPrefix(f, "$share/"), "/")
		switch {
		case !ok || group == "" || rest == "" || strings.ContainsAny(group, "+#"):
			return fmt.Errorf("invalid shared subscription %q (want $share/{group}/{filter})", topic)
		case noLocal:
			return fmt.Errorf("no_local is not allowed on a shared subscription %q", topic)
		}
	}
	return nil
}
