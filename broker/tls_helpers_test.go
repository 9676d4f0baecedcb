package broker

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"gatemq/broker/packet"
)

// Helpers for the TLS, WebSocket and authentication tests: a throwaway
// PKI, listeners with ListenerOptions, and raw clients over any net.Conn.

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serialSeq atomic.Int64

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serialSeq.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// testCert is an issued certificate with its key.
type testCert struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
	tls     tls.Certificate
}

// issue makes a certificate for a server (valid for 127.0.0.1 and
// localhost) or a client, with common name cn; edit, if set, changes the
// template first.
func (ca *testCA) issue(t testing.TB, cn string, server bool, edit func(*x509.Certificate)) *testCert {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serialSeq.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCert{certPEM: pemBlock("CERTIFICATE", der), keyPEM: pemBlock("PRIVATE KEY", kder)}
	c.cert, _ = x509.ParseCertificate(der)
	if c.tls, err = tls.X509KeyPair(c.certPEM, c.keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}

// crl returns a PEM CRL signed by ca that revokes certs.
func (ca *testCA) crl(t testing.TB, certs ...*testCert) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(serialSeq.Add(1)),
		ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: time.Now().Add(24 * time.Hour),
	}
	for _, c := range certs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.cert.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("X509 CRL", der)
}

// writeFile writes data to name in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsSetup describes a TLS listener's files; load writes them to a
// temporary directory and loads them.
type tlsSetup struct {
	ca       *testCA
	server   *testCert
	clientCA []byte // PEM; nil for none
	crl      []byte // PEM; nil for none
	require  bool
}

func (s tlsSetup) load(t testing.TB) (*TLSConfig, TLSFiles) {
	t.Helper()
	dir := t.TempDir()
	f := TLSFiles{
		Cert:               writeFile(t, dir, "server.pem", s.server.certPEM),
		Key:                writeFile(t, dir, "server.key", s.server.keyPEM),
		RequireCertificate: s.require,
	}
	if s.clientCA != nil {
		f.ClientCA = writeFile(t, dir, "client-ca.pem", s.clientCA)
	}
	if s.crl != nil {
		f.CRL = writeFile(t, dir, "crl.pem", s.crl)
	}
	cfg, err := LoadTLS(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, f
}

// newTestListener starts a Server with one listener on 127.0.0.1:0
// configured by lopts; both close when the test ends.
func newTestListener(t testing.TB, opts Options, lopts ListenerOptions) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(opts)
	errc := make(chan error, 1)
	go func() { errc <- s.ServeListener(ln, lopts) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve returned %v", err)
		}
	})
	return s, ln.Addr().String()
}

// clientTLS returns a client configuration trusting ca, presenting cert
// if it is not nil, even when the server names other CAs.
func clientTLS(ca *testCA, cert *testCert) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert.tls, nil
		}
	}
	return cfg
}

// dialTLS dials addr with cfg and completes the handshake.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { tc.Close() })
	return tc, nil
}

// rawOver wraps an established connection in a rawClient.
func rawOver(t testing.TB, nc net.Conn, v packet.Version) *rawClient {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: v}
}

// dialRawTLS is dialRaw over TLS; the handshake must succeed.
func dialRawTLS(t testing.TB, addr string, cfg *tls.Config, v packet.Version) *rawClient {
	t.Helper()
	tc, err := dialTLS(t, addr, cfg)
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	return rawOver(t, tc, v)
}
