package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"sync/atomic"
)

// TLSFiles names the PEM files of a TLS listener.
type TLSFiles struct {
	// Cert is the server certificate chain, leaf first; Key is its
	// private key. Both are required.
	Cert, Key string
	// ClientCA holds the certificates of the CAs that sign client
	// certificates. Empty: clients are not asked for a certificate.
	// Set: a certificate a client presents must verify against it.
	ClientCA string
	// RequireCertificate refuses clients without a certificate; it
	// needs ClientCA.
	RequireCertificate bool
	// CRL holds certificate revocation lists ("X509 CRL" PEM blocks),
	// each signed by a CA of ClientCA; a client certificate they list
	// is refused during the handshake. It needs ClientCA. A CRL past
	// its NextUpdate still applies: a gateway's clock is often wrong,
	// and refusing every client for it would be worse.
	CRL string
}

// A TLSFileError is a problem with one of a listener's TLS files, found
// by LoadTLS or Reload.
type TLSFileError struct {
	Field string // the TLSFiles field: "Cert", "Key", "ClientCA" or "CRL"
	Path  string
	Err   error
}

func (e *TLSFileError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }

func fileError(field, path string, err error) *TLSFileError {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err // the path is said once
	}
	return &TLSFileError{Field: field, Path: path, Err: err}
}
func (e *TLSFileError) Unwrap() error { return e.Err }

// TLSConfig is a TLS listener's configuration, loaded from files and
// reloadable while the listener serves: connections made after a
// successful Reload use the new certificates, key, CAs and CRL. It is
// safe for concurrent use.
type TLSConfig struct {
	files  TLSFiles
	cur    atomic.Pointer[tls.Config]
	listen *tls.Config
}

// LoadTLS reads and checks the files. It returns a *TLSFileError naming
// the first file that is missing, unreadable or invalid: a CA file
// without a certificate, a key that does not match the certificate, a
// CRL not signed by a client CA.
func LoadTLS(files TLSFiles) (*TLSConfig, error) {
	t := &TLSConfig{files: files}
	cfg, err := buildTLS(files)
	if err != nil {
		return nil, err
	}
	t.cur.Store(cfg)
	t.listen = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load(), nil
		},
	}
	return t, nil
}

// Reload reads the files again. On error the configuration in use is
// kept and the error (a *TLSFileError) returned.
func (t *TLSConfig) Reload() error {
	cfg, err := buildTLS(t.files)
	if err != nil {
		return err
	}
	t.cur.Store(cfg)
	return nil
}

// Config returns the *tls.Config to serve with: it hands each handshake
// the configuration loaded last. Do not modify it.
func (t *TLSConfig) Config() *tls.Config { return t.listen }

// Certificate returns the server certificate in use, for logs and tests.
func (t *TLSConfig) Certificate() *x509.Certificate {
	return t.cur.Load().Certificates[0].Leaf
}

func buildTLS(f TLSFiles) (*tls.Config, error) {
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, fileError("Cert", f.Cert, err)
	}
	if _, err := parseCertsPEM(certPEM); err != nil {
		return nil, fileError("Cert", f.Cert, err)
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, fileError("Key", f.Key, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fileError("Key", f.Key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.NoClientCert,
	}
	if f.ClientCA == "" {
		return cfg, nil
	}
	caPEM, err := os.ReadFile(f.ClientCA)
	if err != nil {
		return nil, fileError("ClientCA", f.ClientCA, err)
	}
	cas, err := parseCertsPEM(caPEM)
	if err != nil {
		return nil, fileError("ClientCA", f.ClientCA, err)
	}
	cfg.ClientCAs = x509.NewCertPool()
	for _, ca := range cas {
		cfg.ClientCAs.AddCert(ca)
	}
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	if f.RequireCertificate {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if f.CRL != "" {
		revoked, err := loadCRL(f.CRL, cas)
		if err != nil {
			return nil, fileError("CRL", f.CRL, err)
		}
		// VerifyConnection runs after the chain is verified, on full
		// handshakes and resumptions alike.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			for _, chain := range cs.VerifiedChains {
				for _, c := range chain {
					if revoked.has(c.RawIssuer, c.SerialNumber) {
						return fmt.Errorf("certificate %q (serial %s) is revoked", c.Subject.CommonName, c.SerialNumber)
					}
				}
			}
			return nil
		}
	}
	return cfg, nil
}

// parseCertsPEM returns every certificate in PEM data; none is an error.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// revokedSet holds revoked serial numbers by issuer.
type revokedSet map[string]struct{}

func (r revokedSet) has(issuer []byte, serial *big.Int) bool {
	_, ok := r[revokedKey(issuer, serial)]
	return ok
}

func revokedKey(issuer []byte, serial *big.Int) string {
	return string(issuer) + "\x00" + string(serial.Bytes())
}

// loadCRL reads the CRLs in the PEM file at path, checks each is signed
// by one of cas and returns the revoked serials.
func loadCRL(path string, cas []*x509.Certificate) (revokedSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set := revokedSet{}
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		n++
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse CRL %d: %w", n, err)
		}
		if err := checkCRLIssuer(crl, cas); err != nil {
			return nil, fmt.Errorf("CRL %d: %w", n, err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			set[revokedKey(crl.RawIssuer, e.SerialNumber)] = struct{}{}
		}
	}
	if n == 0 {
		return nil, errors.New(`no PEM "X509 CRL" block found`)
	}
	return set, nil
}

func checkCRLIssuer(crl *x509.RevocationList, cas []*x509.Certificate) error {
	var err error
	for _, ca := range cas {
		if !bytes.Equal(ca.RawSubject, crl.RawIssuer) {
			continue
		}
		if err = crl.CheckSignatureFrom(ca); err == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("bad signature: %w", err)
	}
	return errors.New("not issued by a CA of the client CA file")
}
