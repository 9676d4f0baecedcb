package admin

import "errors"

// ErrNoToken is returned by ServeTCP when Options.Token is empty: the
// API is never served on TCP without authentication.
var ErrNoToken = errors.New("admin API on TCP needs a token")
