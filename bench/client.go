package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// packetTimeout bounds each wait for a broker's answer: CONNACK, SUBACK,
// and the PUBACK or PUBCOMP of each QoS 1 or 2 publish.
const packetTimeout = 30 * time.Second

// clientOptions describe one MQTT v5 connection.
type clientOptions struct {
	Addr     string
	ClientID string
	Username string
	Password string
	// KeepAlive in seconds; 0 means 60.
	KeepAlive uint16
	// Resume connects with clean start 0, to resume a session kept by
	// the broker; SessionExpiry is the v5 Session Expiry Interval in
	// seconds (0: the session ends with the connection).
	Resume        bool
	SessionExpiry uint32
	// ReceiveMaximum announced to the broker: how many QoS 1 and 2
	// messages it may have unacknowledged towards us. paho allocates a
	// channel of this many entries per client, so idle connections keep it
	// small. 0 means 65535.
	ReceiveMaximum uint16
	// ReadBuffer is the size of the bufio.Reader; 0 means 32 KiB.
	ReadBuffer int
	// OnPublish, when set, is called on paho's router goroutine (one per
	// client, so calls for one client never overlap) for every PUBLISH
	// received. It must not keep p after returning.
	OnPublish func(p *paho.Publish)
	// OnLost, when set, is called once if the connection ends other than
	// by our own Disconnect.
	OnLost func(err error)
}

// client is one connected paho client.
type client struct {
	pc     *paho.Client
	nc     *bufConn
	onLost func(error)
	closed atomic.Bool // by our disconnect or because the connection was lost
}

// connect dials opts.Addr and completes the MQTT v5 handshake, with a
// clean start unless opts.Resume. It blocks until CONNACK or ctx ends.
func connect(ctx context.Context, opts clientOptions) (*client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", opts.Addr, err)
	}
	rb := opts.ReadBuffer
	if rb <= 0 {
		rb = 32 << 10
	}
	c := &client{nc: newBufConn(nc, rb)}
	cfg := paho.ClientConfig{
		Conn: c.nc,
		// Nothing is kept for retransmission, even in a resumed
		// session (the tool only receives there): skip the per-message
		// copy paho's memory store makes.
		Session:       state.New(discardStore{}, discardStore{}),
		PacketTimeout: packetTimeout,
		OnClientError: func(err error) { c.lost(err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.lost(fmt.Errorf("server sent DISCONNECT, reason code 0x%02x", d.ReasonCode))
		},
	}
	if f := opts.OnPublish; f != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				f(pr.Packet)
				return true, nil
			},
		}
	} else {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(paho.PublishReceived) (bool, error) { return true, nil },
		}
	}
	c.onLost = opts.OnLost
	c.pc = paho.NewClient(cfg)

	ka := opts.KeepAlive
	if ka == 0 {
		ka = 60
	}
	rm := opts.ReceiveMaximum
	if rm == 0 {
		rm = 65535
	}
	cp := &paho.Connect{
		ClientID:   opts.ClientID,
		KeepAlive:  ka,
		CleanStart: !opts.Resume,
		Properties: &paho.ConnectProperties{ReceiveMaximum: &rm},
	}
	if opts.SessionExpiry > 0 {
		cp.Properties.SessionExpiryInterval = &opts.SessionExpiry
	}
	if opts.Username != "" {
		cp.Username, cp.UsernameFlag = opts.Username, true
	}
	if opts.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(opts.Password), true
	}
	ca, err := c.pc.Connect(ctx, cp)
	if err != nil {
		c.nc.Close()
		if ca != nil {
			return nil, fmt.Errorf("connect %q: reason code 0x%02x: %w", opts.ClientID, ca.ReasonCode, err)
		}
		return nil, fmt.Errorf("connect %q: %w", opts.ClientID, err)
	}
	return c, nil
}

// lost records that the connection ended without our Disconnect.
func (c *client) lost(err error) {
	if c.closed.CompareAndSwap(false, true) && c.onLost != nil {
		c.onLost(err)
	}
}

// isClosed reports whether the connection has ended or is ending.
func (c *client) isClosed() bool { return c.closed.Load() }

// disconnect sends DISCONNECT, flushes and closes the connection, and
// waits until paho's goroutines have returned, so that everything OnPublish
// recorded is visible to the caller afterwards. It is idempotent.
func (c *client) disconnect() {
	c.closed.Store(true)
	_ = c.pc.Disconnect(&paho.Disconnect{ReasonCode: 0})
	<-c.pc.Done()
}

// isClosedErr reports whether err only says that the connection went away
// as we closed it.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "use of closed network connection")
}

// discardStore is a paho session store that keeps nothing. It suits clean
// sessions that are never resumed, where paho's memory store would only
// copy every outgoing QoS 1 and 2 packet.
type discardStore struct{}

func (discardStore) Put(uint16, byte, io.WriterTo) error { return nil }
func (discardStore) Get(uint16) (io.ReadCloser, error) {
	return nil, errors.New("discard store holds no packets")
}
func (discardStore) Delete(uint16) error     { return nil }
func (discardStore) Quarantine(uint16) error { return nil }
func (discardStore) List() ([]uint16, error) { return nil, nil }
func (discardStore) Reset() error            { return nil }
