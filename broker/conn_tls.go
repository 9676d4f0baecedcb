package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// connectionStater is a connection that has been through a TLS
// handshake: a *tls.Conn, or a WebSocket over TLS (wsConn).
type connectionStater interface {
	ConnectionState() tls.ConnectionState
}

// handshakeTLS runs the TLS handshake of a connection to a TLS listener,
// on the connection's own goroutine and within the CONNECT deadline, so a
// client that stalls the handshake holds nothing but its socket until
// then. Other connections pass through.
func (c *conn) handshakeTLS() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	tc.SetDeadline(c.connectBy)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	tc.SetWriteDeadline(time.Time{}) // the writer sets its own
	return nil
}

// certIdentity returns the identity of the client's verified TLS
// certificate, used as its user name by listeners with
// UseIdentityAsUsername: the subject's common name, or when that is
// empty the first DNS name, then e-mail address, then URI of its subject
// alternative names. It returns "" when the client sent no certificate
// (or it has none of these).
func (c *conn) certIdentity() string {
	cs, ok := c.nc.(connectionStater)
	if !ok {
		return ""
	}
	st := cs.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return "" // no certificate, or one not verified against client_ca
	}
	return certIdentity(st.VerifiedChains[0][0])
}

func certIdentity(cert *x509.Certificate) string {
	switch {
	case cert.Subject.CommonName != "":
		return cert.Subject.CommonName
	case len(cert.DNSNames) > 0:
		return cert.DNSNames[0]
	case len(cert.EmailAddresses) > 0:
		return cert.EmailAddresses[0]
	case len(cert.URIs) > 0:
		return cert.URIs[0].String()
	}
	return ""
}
