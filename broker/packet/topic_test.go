package packet

import (
	"strings"
	"testing"
)

func TestValidTopicName(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"/", true},
		{"//", true},
		{"/a/", true},
		{" ", true},
		{"$SYS/broker", true},
		{"$share/g/a", true}, // a name, not a subscription
		{"température/°C", true},
		{strings.Repeat("a", 65535), true},
		{"", false},
		{strings.Repeat("a", 65536), false},
		{"a/+", false},
		{"+", false},
		{"a/#", false},
		{"a#", false},
		{"a\x00b", false},
		{"a\xffb", false},
		{"\xed\xa0\x80", false}, // surrogate U+D800
		{"\xc0\x80", false},     // overlong NUL
	} {
		err := ValidTopicName(tc.s)
		if (err == nil) != tc.ok {
			t.Errorf("ValidTopicName(%.20q) = %v, want ok=%t", tc.s, err, tc.ok)
		}
		if err != nil && reasonOf(err) != TopicNameInvalid {
			t.Errorf("ValidTopicName(%.20q) = %v, want topic name invalid", tc.s, err)
		}
	}
}

func TestValidTopicFilter(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"a", true},
		{"a/b", true},
		{"#", true},
		{"+", true},
		{"+/+", true},
		{"/+", true},
		{"a/#", true},
		{"a/+/c/#", true},
		{"/#", true},
		{"$SYS/#", true},
		{"$share/g/a/b", true},
		{"$share/g/#", true},
		{"$share/g/+/x", true},
		{"$share/g//", true},
		{"$share", true}, // not a shared subscription: a plain filter
		{"$sharex/g", true},
		{"", false},
		{"a#", false},
		{"a/b#", false},
		{"#/a", false},
		{"a/#/b", false},
		{"a+", false},
		{"a/+b/c", false},
		{"++", false},
		{"a\x00", false},
		{"\xff", false},
		{strings.Repeat("a", 65536), false},
		{"$share/", false},
		{"$share/g", false},
		{"$share/g/", false},
		{"$share//a", false},
		{"$share/+/a", false},
		{"$share/g#/a", false},
		{"$share/g/a#", false},
	} {
		err := ValidTopicFilter(tc.s)
		if (err == nil) != tc.ok {
			t.Errorf("ValidTopicFilter(%.20q) = %v, want ok=%t", tc.s, err, tc.ok)
		}
		if err != nil && reasonOf(err) != TopicFilterInvalid {
			t.Errorf("ValidTopicFilter(%.20q) = %v, want topic filter invalid", tc.s, err)
		}
	}
}

func TestSharedFilter(t *testing.T) {
	for _, tc := range []struct {
		s, group, filter string
		ok               bool
	}{
		{"$share/g/a/b", "g", "a/b", true},
		{"$share/g", "", "", false},
		{"$share//a", "", "a", true},
		{"a/b", "", "", false},
		{"$SHARE/g/a", "", "", false},
	} {
		g, f, ok := SharedFilter(tc.s)
		if g != tc.group || f != tc.filter || ok != tc.ok {
			t.Errorf("SharedFilter(%q) = %q, %q, %t; want %q, %q, %t", tc.s, g, f, ok, tc.group, tc.filter, tc.ok)
		}
	}
}
