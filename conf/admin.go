package conf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Admin configures the admin API: HTTP JSON, /healthz, /readyz and
// /metrics, on a Unix socket and optionally on loopback TCP. Table [admin].
type Admin struct {
	// Socket is the path of the Unix socket, created with mode 0600.
	// Key admin.socket; default "" (data_dir/admin.sock, or under
	// systemd's RuntimeDirectory= $RUNTIME_DIRECTORY/admin.sock).
	Socket string `toml:"socket"`

	// Address is a loopback host:port where the API is also served,
	// with a bearer token. Key admin.address; default "" (none).
	Address string `toml:"address"`

	// TokenFile is a file whose first line is the bearer token the TCP
	// address requires; it must be set with address. Key
	// admin.token_file; default "".
	TokenFile string `toml:"token_file"`
}

// admin checks the [admin] table.
func (v *validator) admin(a Admin) {
	if a.Address != "" {
		if err := checkLoopback(a.Address); err != nil {
			v.add("admin.address", err)
		}
		if a.TokenFile == "" {
			v.add("admin.token_file", errors.New("required with admin.address"))
		}
	}
}

// checkLoopback checks that addr is host:port on a loopback address.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q (want a loopback host:port, such as \"127.0.0.1:9883\")", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("invalid address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not loopback: the admin API listens on 127.0.0.1 or [::1] only", addr)
	}
	return nil
}
