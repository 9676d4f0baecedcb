package conf

import (
	"errors"
	"strings"
	"testing"
)

func TestLoopbackOnly(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:1883", true},
		{"127.1.2.3:1883", true},
		{"[::1]:1883", true},
		{"localhost:1883", true},
		{"LocalHost:0", true},
		{"[::ffff:127.0.0.1]:1883", true},
		{"[fe80::1%eth0]:1883", false},
		{":1883", false},
		{"0.0.0.0:1883", false},
		{"[::]:1883", false},
		{"192.168.1.10:1883", false},
		{"10.0.0.1:1883", false},
		{"gateway.local:1883", false},
		{"localhost.example.com:1883", false},
		{"127.0.0.1", false}, // invalid: no port
		{"", false},
	}
	for _, tc := range tests {
		if got := LoopbackOnly(tc.addr); got != tc.want {
			t.Errorf("LoopbackOnly(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestListener_AnonymousAllowed(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		addr  string
		allow *bool
		want  bool
	}{
		{"127.0.0.1:1883", nil, true},
		{"0.0.0.0:1883", nil, false},
		{":1883", nil, false},
		{"0.0.0.0:1883", &yes, true},
		{"127.0.0.1:1883", &no, false},
	}
	for _, tc := range tests {
		l := Listener{Address: tc.addr, AllowAnonymous: tc.allow}
		if got := l.AnonymousAllowed(); got != tc.want {
			t.Errorf("%s with allow_anonymous %v: %v, want %v", tc.addr, tc.allow, got, tc.want)
		}
	}
	// The default configuration listens on loopback with anonymous access.
	c := Default()
	if !c.Listeners[0].AnonymousAllowed() {
		t.Error("default listener refuses anonymous clients")
	}
	// -listen on all interfaces turns it off.
	c.ApplyOverrides("0.0.0.0:1883", "")
	if c.Listeners[0].AnonymousAllowed() {
		t.Error("-listen 0.0.0.0:1883 allows anonymous clients")
	}
}

func TestConfig_ValidateListenerAuth(t *testing.T) {
	yes := true
	tls := func(l *Listener) { l.TLSCert, l.TLSKey = "/c.pem", "/k.pem" }
	mtls := func(l *Listener) { tls(l); l.ClientCA = "/ca.pem" }
	tests := []struct {
		name    string
		mutate  func(l *Listener)
		wantKey string // "" for valid
		wantErr string
	}{
		{"tls", tls, "", ""},
		{"mutual tls, everything", func(l *Listener) {
			mtls(l)
			l.RequireCertificate, l.UseIdentityAsUsername, l.CRLFile = true, true, "/crl.pem"
		}, "", ""},
		{"ws over tls", func(l *Listener) { tls(l); l.Protocol = "ws" }, "", ""},
		{"auth files", func(l *Listener) { l.PasswordFile, l.ACLFile, l.AllowAnonymous = "/p", "/a", &yes }, "", ""},
		{"cert without key", func(l *Listener) { l.TLSCert = "/c.pem" }, "listener[0].tls_cert", "tls_key is missing"},
		{"key without cert", func(l *Listener) { l.TLSKey = "/k.pem" }, "listener[0].tls_key", "tls_cert is missing"},
		{"client_ca without tls", func(l *Listener) { l.ClientCA = "/ca.pem" }, "listener[0].client_ca", "needs tls_cert and tls_key"},
		{"crl without tls", func(l *Listener) { l.CRLFile = "/crl.pem" }, "listener[0].crl_file", "needs tls_cert"},
		{"require without tls", func(l *Listener) { l.RequireCertificate = true }, "listener[0].require_certificate", "needs tls_cert"},
		{"require without client_ca", func(l *Listener) { tls(l); l.RequireCertificate = true }, "listener[0].require_certificate", "needs client_ca"},
		{"identity without client_ca", func(l *Listener) { tls(l); l.UseIdentityAsUsername = true }, "listener[0].use_identity_as_username", "needs client_ca"},
		{"crl without client_ca", func(l *Listener) { tls(l); l.CRLFile = "/crl.pem" }, "listener[0].crl_file", "needs client_ca"},
		{"identity with password file", func(l *Listener) { mtls(l); l.UseIdentityAsUsername, l.PasswordFile = true, "/p" }, "listener[0].password_file", "not used with use_identity_as_username"},
		{"identity with anonymous", func(l *Listener) { mtls(l); l.UseIdentityAsUsername, l.AllowAnonymous = true, &yes }, "listener[0].allow_anonymous", "not used with use_identity_as_username"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c.Listeners[0])
			err := c.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Key != tc.wantKey || !strings.Contains(e.Err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want %s: …%s…", err, tc.wantKey, tc.wantErr)
			}
		})
	}
}

func TestLoad_ListenerAuthKeys(t *testing.T) {
	c, err := Parse(strings.NewReader(`
[[listener]]
address = "0.0.0.0:8883"
tls_cert = "/etc/gatemq/server.pem"
tls_key = "/etc/gatemq/server.key"
client_ca = "/etc/gatemq/ca.pem"
require_certificate = true
use_identity_as_username = true
crl_file = "/etc/gatemq/crl.pem"
acl_file = "/etc/gatemq/acl"

[[listener]]
address = "0.0.0.0:9001"
protocol = "ws"
allow_anonymous = false
password_file = "/etc/gatemq/passwords"
`), "auth.toml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Listeners[0], c.Listeners[1]
	if !a.TLS() || a.ClientCA == "" || !a.RequireCertificate || !a.UseIdentityAsUsername || a.CRLFile == "" || a.ACLFile == "" || a.AllowAnonymous != nil {
		t.Errorf("listener[0] = %+v", a)
	}
	if b.TLS() || b.Protocol != "ws" || b.AllowAnonymous == nil || *b.AllowAnonymous || b.PasswordFile == "" {
		t.Errorf("listener[1] = %+v", b)
	}
}
