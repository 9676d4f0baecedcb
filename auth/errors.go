package auth

import (
	"errors"
	"fmt"
)

var (
	// ErrSyntax is wrapped in a ParseError when a line of a password or
	// ACL file does not follow the grammar: no ':' after a user name, an
	// unknown keyword, a missing field, an unknown access type.
	ErrSyntax = errors.New("syntax error")

	// ErrBadUsername is returned when a user name is empty, longer than
	// 65535 bytes, not valid UTF-8, contains ':' or a control character,
	// or starts or ends with white space.
	ErrBadUsername = errors.New("invalid user name")

	// ErrBadHash is wrapped in a ParseError when the hash of a password
	// line is not an argon2id PHC string this package accepts (see the
	// package documentation for the limits on its parameters).
	ErrBadHash = errors.New("invalid password hash")

	// ErrDuplicateUser is wrapped in a ParseError when a password file
	// names the same user twice.
	ErrDuplicateUser = errors.New("duplicate user")

	// ErrEmptyPassword is returned by HashPassword and SetPassword for an
	// empty password: no user can have one.
	ErrEmptyPassword = errors.New("empty password")

	// ErrUnknownUser is returned by DeletePassword when the file has no
	// line for the user.
	ErrUnknownUser = errors.New("no such user")

	// ErrBadFilter is wrapped in a ParseError when the topic filter of an
	// ACL line is not a valid MQTT topic filter, or a pattern uses %c or
	// %u as part of a level instead of a whole level.
	ErrBadFilter = errors.New("invalid topic filter")
)

// A ParseError reports a bad line in a password or ACL file. Its message
// reads "file:line: problem", as a compiler's would.
type ParseError struct {
	File string // the name given to ParsePasswords or ParseACL, or the path
	Line int    // 1-based
	Err  error  // wraps one of the sentinels above
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }
