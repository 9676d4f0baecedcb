package packet

import (
	"bytes"
	"runtime"
	"testing"
)

// users returns n User Properties k/v.
func users(n int) []byte {
	return bytes.Repeat(pUser("k", "v"), n)
}

// TestDecodeOptions_MaxUserProperties: the cap counts every property
// list of a packet, a packet at the cap decodes, one over it fails with
// QuotaExceeded, and 0 means no cap.
func TestDecodeOptions_MaxUserProperties(t *testing.T) {
	const max = 3
	connect := func(own, will int) []byte {
		return pkt(0x10, str("MQTT"), by(5, 0x06, 0, 60), props(users(own)), str("c"),
			props(users(will)), str("w"), str("x"))
	}
	tests := []struct {
		name string
		raw  []byte
		want Reason // 0: decodes
	}{
		{"publish at the cap", pkt(0x30, str("t"), props(users(max))), 0},
		{"publish over the cap", pkt(0x30, str("t"), props(users(max+1))), QuotaExceeded},
		{"puback over the cap", pkt(0x40, by(0, 1, 0), props(users(max+1))), QuotaExceeded},
		{"subscribe over the cap", pkt(0x82, by(0, 1), props(users(max+1)), str("a"), by(0)), QuotaExceeded},
		{"unsubscribe over the cap", pkt(0xa2, by(0, 1), props(users(max+1)), str("a")), QuotaExceeded},
		{"disconnect over the cap", pkt(0xe0, by(0), props(users(max+1))), QuotaExceeded},
		{"auth over the cap", pkt(0xf0, by(0x18), props(pStr(PropAuthMethod, "m"), users(max+1))), QuotaExceeded},
		{"connect at the cap over both lists", connect(1, max-1), 0},
		{"connect over the cap over both lists", connect(2, max-1), QuotaExceeded},
		{"connect over the cap in the will", connect(0, max+1), QuotaExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(bytes.NewReader(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			body := tc.raw[len(tc.raw)-h.Remaining:]
			_, err = DecodeOptions{MaxUserProperties: max}.Decode(h, body, V5)
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("Decode with cap %d: %v, want reason %v", max, err, tc.want)
			}
			if _, err := Decode(h, body, V5); err != nil {
				t.Fatalf("Decode without cap: %v", err)
			}
			if h.Type == PUBLISH {
				var p Publish
				err := DecodeOptions{MaxUserProperties: max}.DecodePublish(h, body, V5, &p)
				if got := reasonOf(err); got != tc.want {
					t.Fatalf("DecodePublish with cap %d: %v, want reason %v", max, err, tc.want)
				}
			}
		})
	}
}

// TestDecodeOptions_HugeUserPropertiesAllocation: a PUBLISH of 100,000
// User Properties is refused at the cap without building their slice: the
// decode allocates next to nothing, where the uncapped decode allocates
// megabytes.
func TestDecodeOptions_HugeUserPropertiesAllocation(t *testing.T) {
	raw := pkt(0x30, str("t"), props(users(100_000)))
	h, err := ReadHeader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body := raw[len(raw)-h.Remaining:]
	alloc := func(o DecodeOptions) (uint64, error) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var p Publish
		err := o.DecodePublish(h, body, V5, &p)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, err
	}
	capped, err := alloc(DecodeOptions{MaxUserProperties: 64})
	if reasonOf(err) != QuotaExceeded {
		t.Fatalf("capped decode: %v", err)
	}
	uncapped, err := alloc(DecodeOptions{})
	if err != nil {
		t.Fatalf("uncapped decode: %v", err)
	}
	t.Logf("allocated %d bytes capped, %d uncapped", capped, uncapped)
	if capped > 64<<10 {
		t.Fatalf("capped decode allocated %d bytes", capped)
	}
}
