package main

import (
	"errors"
	"fmt"
	"log/slog"

	"gatemq/auth"
	"gatemq/broker"
	"gatemq/conf"
)

// listenerFiles is what a listener loaded from the files its [[listener]]
// table names: TLS certificates, password file and ACL. main keeps it to
// reload them on SIGHUP.
type listenerFiles struct {
	key       string // "listener[1]", for logs and errors
	cfg       conf.Listener
	tls       *broker.TLSConfig // nil for a plain listener
	auth      *broker.Auth
	passwords *auth.Passwords // nil without password_file
	acl       *auth.ACL       // nil without acl_file
}

// loadListenerFiles loads the files of every listener. The first that is
// missing or invalid is returned as a *conf.Error naming the config file
// (configPath, "" for the defaults) and the key, such as
//
//	gatemq.toml: listener[1].client_ca: /etc/gatemq/ca.pem: no PEM certificate found
func loadListenerFiles(cfg conf.Config, configPath string) ([]*listenerFiles, error) {
	out := make([]*listenerFiles, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		lf := &listenerFiles{key: fmt.Sprintf("listener[%d]", i), cfg: l}
		fail := func(name string, err error) error {
			return &conf.Error{File: configPath, Key: lf.key + "." + name, Err: err}
		}
		var err error
		if l.TLS() {
			if lf.tls, err = broker.LoadTLS(tlsFiles(l)); err != nil {
				return nil, fail(tlsKey(err), err)
			}
		}
		if l.PasswordFile != "" {
			if lf.passwords, err = auth.LoadPasswords(l.PasswordFile); err != nil {
				return nil, fail("password_file", err)
			}
		}
		if l.ACLFile != "" {
			if lf.acl, err = auth.LoadACL(l.ACLFile); err != nil {
				return nil, fail("acl_file", err)
			}
		}
		lf.auth = broker.NewAuth(lf.policy())
		out[i] = lf
	}
	return out, nil
}

func tlsFiles(l conf.Listener) broker.TLSFiles {
	return broker.TLSFiles{
		Cert:               l.TLSCert,
		Key:                l.TLSKey,
		ClientCA:           l.ClientCA,
		RequireCertificate: l.RequireCertificate,
		CRL:                l.CRLFile,
	}
}

// tlsKey returns the config key of the file a broker.TLSFileError is about.
func tlsKey(err error) string {
	var fe *broker.TLSFileError
	if errors.As(err, &fe) {
		switch fe.Field {
		case "Cert":
			return "tls_cert"
		case "Key":
			return "tls_key"
		case "ClientCA":
			return "client_ca"
		case "CRL":
			return "crl_file"
		}
	}
	return "tls_cert"
}

// policy is the broker's view of the loaded files. nil pointers must not
// become non-nil interfaces.
func (lf *listenerFiles) policy() broker.AuthPolicy {
	p := broker.AuthPolicy{AllowAnonymous: lf.cfg.AnonymousAllowed()}
	if lf.passwords != nil {
		p.Passwords = lf.passwords
	}
	if lf.acl != nil {
		p.ACL = lf.acl
	}
	return p
}

// apply sets the TLS, WebSocket and authentication options of the
// listener.
func (lf *listenerFiles) apply(o *broker.ListenerOptions) {
	if lf.tls != nil {
		o.TLS = lf.tls.Config()
	}
	o.WebSocket = lf.cfg.Protocol == "ws"
	o.UseIdentityAsUsername = lf.cfg.UseIdentityAsUsername
	o.Auth = lf.auth
}

// scheme names what the listener serves, for logs.
func (lf *listenerFiles) scheme() string {
	switch {
	case lf.cfg.Protocol == "ws" && lf.tls != nil:
		return "wss"
	case lf.cfg.Protocol == "ws":
		return "ws"
	case lf.tls != nil:
		return "mqtts"
	}
	return "mqtt"
}

// logStart logs how the listener lets clients in, and warns when it lets
// nobody in.
func (lf *listenerFiles) logStart(log *slog.Logger, addr string) {
	l := &lf.cfg
	log.Info("listening", "address", addr, "protocol", lf.scheme(), "anonymous", l.AnonymousAllowed(),
		"password_file", l.PasswordFile, "acl_file", l.ACLFile, "client_certificates", clientCerts(l))
	if !l.AnonymousAllowed() && l.PasswordFile == "" && !l.UseIdentityAsUsername {
		log.Warn("listener lets no client in: anonymous access is off because the address is not loopback-only,"+
			" and there is no password_file; set password_file (or allow_anonymous = true) in its [[listener]] table",
			"listener", lf.key, "address", addr)
	}
}

func clientCerts(l *conf.Listener) string {
	switch {
	case l.ClientCA == "":
		return "none"
	case l.UseIdentityAsUsername:
		return "identity"
	case l.RequireCertificate:
		return "required"
	}
	return "optional"
}

// reload reads the listener's files again, with the authentication
// settings of l (allow_anonymous, password_file, acl_file): a file that
// fails to load is logged and the one in use is kept, with its path; the
// others are still reloaded. TLS is reloaded from the files it was
// loaded from (which file is a restart's business).
func (lf *listenerFiles) reload(l conf.Listener, log *slog.Logger) {
	log = log.With("listener", lf.key)
	if lf.tls != nil {
		if err := lf.tls.Reload(); err != nil {
			log.Error("reload TLS files: keeping those in use", "key", tlsKey(err), "err", err)
		} else {
			log.Info("reloaded TLS files", "certificate", lf.tls.Certificate().Subject.CommonName,
				"not_after", lf.tls.Certificate().NotAfter)
		}
	}
	lf.cfg.AllowAnonymous = l.AllowAnonymous
	if path := l.PasswordFile; path == "" {
		lf.passwords, lf.cfg.PasswordFile = nil, ""
	} else if pw, err := auth.LoadPasswords(path); err != nil {
		log.Error("reload password_file: keeping the one in use", "file", path, "err", err)
	} else {
		lf.passwords, lf.cfg.PasswordFile = pw, path
		log.Info("reloaded password_file", "file", path, "users", pw.Len())
	}
	if path := l.ACLFile; path == "" {
		lf.acl, lf.cfg.ACLFile = nil, ""
	} else if acl, err := auth.LoadACL(path); err != nil {
		log.Error("reload acl_file: keeping the one in use", "file", path, "err", err)
	} else {
		lf.acl, lf.cfg.ACLFile = acl, path
		log.Info("reloaded acl_file", "file", path)
	}
	lf.auth.Set(lf.policy())
}
