package conf

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// PeerGroup configures the peer group: the gateways of one site that
// know of each other over gossip (hashicorp/memberlist). It gives
// membership and health only: who is there, alive, suspect, failed or
// gone. Table [peer_group].
type PeerGroup struct {
	// Enable starts the peer group. Key peer_group.enable; default
	// false.
	Enable bool `toml:"enable"`

	// Bind is the IP:port where the gossip listens, on TCP and UDP
	// alike; port 0 takes a free port. Key peer_group.bind; default
	// "0.0.0.0:7946".
	Bind string `toml:"bind"`

	// Advertise is the IP:port the other gateways reach this one at.
	// "" means the bind address or, when that is 0.0.0.0, the host's
	// first private IPv4 address; a bind on [::] needs it. Key
	// peer_group.advertise; default "".
	Advertise string `toml:"advertise"`

	// Join lists other gateways' gossip addresses, host:port. They are
	// tried in the background until one answers (a gateway may start
	// first), and again whenever this gateway has no live peer. Key
	// peer_group.join; default none.
	Join []string `toml:"join"`

	// Name is this gateway's name in the group, unique within it: 1 to
	// 128 letters, digits, '.', '_' or '-'. Key peer_group.name; default
	// "" (the durable store's site ID, else the host name).
	Name string `toml:"name"`

	// SecretFile is a file holding the group's key: 16, 24 or 32 bytes
	// (AES-128, -192 or -256), base64 or raw. The gossip is then
	// encrypted and authenticated (AES-GCM), and gateways without the
	// key cannot join. Required unless bind is loopback-only. Key
	// peer_group.secret_file; default "".
	SecretFile string `toml:"secret_file"`

	// GossipInterval is how often a gateway passes news of the group to
	// a few others, 10ms to 10s. Key peer_group.gossip_interval; default
	// "200ms".
	GossipInterval Duration `toml:"gossip_interval"`

	// ProbeInterval is how often a gateway probes one other, 50ms to 1m:
	// a peer that misses a probe is suspect, and failed when it does not
	// answer within a few more intervals. Key peer_group.probe_interval;
	// default "1s".
	ProbeInterval Duration `toml:"probe_interval"`
}

func defaultPeerGroup() PeerGroup {
	return PeerGroup{
		Bind:           "0.0.0.0:7946",
		Join:           []string{},
		GossipInterval: Duration(200 * time.Millisecond),
		ProbeInterval:  Duration(time.Second),
	}
}

// maxPeerName is the longest peer_group.name.
const maxPeerName = 128

// peerGroup checks the [peer_group] table. The keys are checked whether
// or not the group is enabled: a mistake shows before it is switched on.
func (v *validator) peerGroup(p PeerGroup) {
	bindIP, bindErr := checkIPPort(p.Bind, 0)
	if bindErr != nil {
		v.add("peer_group.bind", bindErr)
	}
	if p.Advertise != "" {
		if _, err := checkIPPort(p.Advertise, 1); err != nil {
			v.add("peer_group.advertise", err)
		}
	} else if bindIP != nil && bindIP.IsUnspecified() && bindIP.To4() == nil {
		v.add("peer_group.advertise", fmt.Errorf("required with bind %q: set the IP:port the other gateways reach this one at", p.Bind))
	}
	for i, j := range p.Join {
		if err := checkHostPort(j); err != nil {
			v.add("peer_group.join["+strconv.Itoa(i)+"]", err)
		}
	}
	if p.Name != "" {
		if err := CheckPeerName(p.Name); err != nil {
			v.add("peer_group.name", err)
		}
	}
	v.durationRange("peer_group.gossip_interval", p.GossipInterval, Duration(10*time.Millisecond), Duration(10*time.Second))
	v.durationRange("peer_group.probe_interval", p.ProbeInterval, Duration(50*time.Millisecond), Duration(time.Minute))
	if p.Enable && p.SecretFile == "" && bindErr == nil && !LoopbackOnly(p.Bind) {
		v.add("peer_group.secret_file", fmt.Errorf("required with bind %q, which is not loopback: the key encrypts the gossip and keeps other hosts out of the group "+
			"(make one with: head -c 32 /dev/urandom | base64 > /etc/gatemq/peer.key, and copy it to every gateway)", p.Bind))
	}
}

// CheckPeerName reports whether name can name a gateway in the peer
// group: 1 to 128 letters, digits, '.', '_' or '-', as host names and
// site IDs are.
func CheckPeerName(name string) error {
	if name == "" || len(name) > maxPeerName {
		return fmt.Errorf("invalid name %q: want 1 to %d characters", name, maxPeerName)
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("invalid name %q: want letters, digits, '.', '_' or '-'", name)
		}
	}
	return nil
}

// checkIPPort checks that addr is an IP address and a port from minPort
// to 65535, and returns the IP.
func checkIPPort(addr string, minPort uint64) (net.IP, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q (want IP:port, such as \"192.168.1.10:7946\")", addr)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("invalid address %q: %q is not an IP address", addr, host)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p < minPort {
		return nil, fmt.Errorf("invalid address %q: port %q is not a number from %d to 65535", addr, port, minPort)
	}
	return ip, nil
}

// checkHostPort checks that addr is a host name or IP address and a port
// from 1 to 65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q (want host:port, such as \"gw-2.local:7946\")", addr)
	}
	if host == "" {
		return fmt.Errorf("invalid address %q: missing host", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("invalid address %q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}
