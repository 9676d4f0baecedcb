package conf

import (
	"errors"
	"net"
	"strings"
)

// AnonymousAllowed reports whether the listener lets in clients that give
// no user name: allow_anonymous if the file sets it, else whether the
// address is loopback-only ([LoopbackOnly]), so that a broker opened to
// the network is never open to anyone by default.
func (l *Listener) AnonymousAllowed() bool {
	if l.AllowAnonymous != nil {
		return *l.AllowAnonymous
	}
	return LoopbackOnly(l.Address)
}

// TLS reports whether the listener serves TLS.
func (l *Listener) TLS() bool { return l.TLSCert != "" }

// LoopbackOnly reports whether a listener on addr (host:port) can be
// reached only from this machine: its host is a loopback IP address
// (127.0.0.0/8, ::1) or "localhost". An empty host, an unspecified address
// (0.0.0.0, ::), any other address or host name, and an invalid addr are
// not loopback-only. It looks nothing up.
func LoopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%") // a zone does not change the address
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listenerAuth checks the authentication and TLS keys of the listener at
// key: files come in the pairs and with the prerequisites they need.
// Whether the files exist and parse is checked by main when it loads them.
func (v *validator) listenerAuth(key string, l *Listener) {
	k := func(name string) string { return key + "." + name }
	switch {
	case l.TLSCert != "" && l.TLSKey == "":
		v.add(k("tls_cert"), errors.New("tls_key is missing: the certificate needs its private key"))
	case l.TLSCert == "" && l.TLSKey != "":
		v.add(k("tls_key"), errors.New("tls_cert is missing: the private key needs its certificate"))
	}
	needTLS := func(name string, set bool) {
		if set && !l.TLS() && l.TLSKey == "" {
			v.add(k(name), errors.New("needs tls_cert and tls_key (a TLS listener)"))
		}
	}
	needTLS("client_ca", l.ClientCA != "")
	needTLS("require_certificate", l.RequireCertificate)
	needTLS("use_identity_as_username", l.UseIdentityAsUsername)
	needTLS("crl_file", l.CRLFile != "")
	if l.TLS() && l.ClientCA == "" {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"require_certificate", l.RequireCertificate},
			{"use_identity_as_username", l.UseIdentityAsUsername},
			{"crl_file", l.CRLFile != ""},
		} {
			if f.set {
				v.add(k(f.name), errors.New("needs client_ca, the CAs that sign client certificates"))
			}
		}
	}
	if l.UseIdentityAsUsername {
		if l.PasswordFile != "" {
			v.add(k("password_file"), errors.New("not used with use_identity_as_username, where the certificate replaces the password"))
		}
		if l.AllowAnonymous != nil && *l.AllowAnonymous {
			v.add(k("allow_anonymous"), errors.New("not used with use_identity_as_username, where every client needs a certificate"))
		}
	}
}
