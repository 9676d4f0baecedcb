package broker

import (
	"context"
	"sync/atomic"

	"gatemq/broker/packet"
)

// An Authenticator checks user names and passwords; gatemq/auth's
// *Passwords is one. CheckContext is called from connection goroutines
// concurrently, once per CONNECT with a user name, with ctx ending at the
// CONNECT deadline. It may block while it hashes (tens of milliseconds)
// but should give up when ctx ends. It must not keep password.
type Authenticator interface {
	CheckContext(ctx context.Context, username string, password []byte) (bool, error)
}

// An Authorizer decides which topics a client may use; gatemq/auth's
// *ACL is one. username is "" for an anonymous client. The methods are
// called concurrently from connection goroutines, on every PUBLISH, every
// subscription and every message written to a client, so they must be
// fast and must not block.
type Authorizer interface {
	// CanPublish reports whether the client may publish to topic (and
	// have it as its will topic).
	CanPublish(clientID, username, topic string) bool
	// CanSubscribe reports whether the client may subscribe to filter,
	// as written in SUBSCRIBE (with any $share/{group}/ prefix).
	CanSubscribe(clientID, username, filter string) bool
	// CanReceive reports whether a message published to topic may be
	// sent to the client.
	CanReceive(clientID, username, topic string) bool
}

// AuthPolicy is one version of a listener's access policy.
type AuthPolicy struct {
	// AllowAnonymous lets in clients that give no user name. Without
	// Passwords a user name cannot be checked, so it is ignored and
	// such a client is anonymous too.
	AllowAnonymous bool
	// Passwords checks user names and passwords; nil means none.
	Passwords Authenticator
	// ACL limits what clients may publish, subscribe to and receive;
	// nil allows everything.
	ACL Authorizer
}

// Auth holds a listener's access policy. Set replaces it while clients
// are connected (a reload): new connections are checked against the new
// policy, and connected clients' PUBLISH, SUBSCRIBE and deliveries from
// then on. It is safe for concurrent use; several listeners may share
// one.
type Auth struct {
	p atomic.Pointer[AuthPolicy]
}

// NewAuth returns an Auth holding p.
func NewAuth(p AuthPolicy) *Auth {
	a := &Auth{}
	a.Set(p)
	return a
}

// Set replaces the policy.
func (a *Auth) Set(p AuthPolicy) { a.p.Store(&p) }

// Policy returns the policy in force; nil for a nil Auth.
func (a *Auth) Policy() *AuthPolicy {
	if a == nil {
		return nil
	}
	return a.p.Load()
}

// authenticate decides whether the client of CONNECT cp may connect and
// sets c.username. It returns the CONNACK reason: Bad User Name or
// Password (3.x: 4) for wrong credentials or a missing certificate
// identity, Not Authorized (3.x: 5) for an anonymous client where they
// are not allowed (as Mosquitto answers) and for a will the ACL forbids.
func (c *conn) authenticate(cp *packet.Connect) packet.Reason {
	p := c.ln.opts.Auth.Policy()
	switch {
	case c.ln.opts.UseIdentityAsUsername:
		// The certificate stands for the password, as in Mosquitto.
		id := c.certIdentity()
		if id == "" {
			c.srv.log.Info("connection refused: no client certificate identity", logRemote, c.remote, logClientID, c.clientID)
			return packet.BadUserNameOrPassword
		}
		c.username = id
	case p == nil:
		c.username = cp.Username
		return packet.Success
	case cp.UsernameFlag && p.Passwords != nil:
		ctx, cancel := context.WithDeadline(context.Background(), c.connectBy)
		ok, err := p.Passwords.CheckContext(ctx, cp.Username, cp.Password)
		cancel()
		if !ok {
			c.srv.log.Info("connection refused: bad user name or password", logRemote, c.remote,
				logClientID, c.clientID, logUsername, cp.Username, logErr, err)
			return packet.BadUserNameOrPassword
		}
		c.username = cp.Username
	default:
		// No user name, or none that can be checked: anonymous.
		if !p.AllowAnonymous {
			c.srv.log.Info("connection refused: anonymous", logRemote, c.remote, logClientID, c.clientID)
			return packet.NotAuthorized
		}
	}
	if cp.WillFlag && !c.canPublish(cp.WillTopic) {
		c.srv.log.Info("connection refused: will topic not authorised", logRemote, c.remote,
			logClientID, c.clientID, logUsername, c.username, logTopic, cp.WillTopic)
		return packet.NotAuthorized
	}
	return packet.Success
}

// canPublish reports whether the ACL lets c publish to topic.
func (c *conn) canPublish(topic string) bool {
	p := c.ln.opts.Auth.Policy()
	return p == nil || p.ACL == nil || p.ACL.CanPublish(c.clientID, c.username, topic)
}

// canSubscribe reports whether the ACL lets c subscribe to filter.
func (c *conn) canSubscribe(filter string) bool {
	p := c.ln.opts.Auth.Policy()
	return p == nil || p.ACL == nil || p.ACL.CanSubscribe(c.clientID, c.username, filter)
}

// canReceive reports whether the ACL lets c be sent a message published
// to topic. It is called by the writer for every PUBLISH it writes, so a
// permission revoked by a reload stops queued, retained and resent
// messages as well as new ones.
func (c *conn) canReceive(topic string) bool {
	p := c.ln.opts.Auth.Policy()
	return p == nil || p.ACL == nil || p.ACL.CanReceive(c.clientID, c.username, topic)
}
