// Package auth authenticates MQTT clients against a password file of
// argon2id hashes and authorises what they publish, subscribe to and
// receive against an ACL file in Mosquitto's acl_file format. It also
// implements the gatemq passwd command that edits password files.
//
// # Password file
//
// One user per line, the user name, a colon and an argon2id hash in PHC
// string format:
//
//	# comment
//	alice:$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH
//
// SALT and HASH are unpadded standard base64. Blank lines and lines whose
// first non-blank character is '#' are ignored; CRLF endings are accepted.
// Everything else is an error naming file:line, and the file is not
// loaded: a line without ':', an empty or invalid user name (control
// characters, surrounding white space, a leading '#', more than 65535
// bytes, not UTF-8), a hash that is missing or not argon2id version 19 in
// canonical form, a user named twice. A user name cannot contain ':'
// (the first ':' ends it, and a hash contains none), and no line can give
// a user an empty password: empty passwords are refused by HashPassword
// and SetPassword and are always wrong in Check.
//
// New hashes use m=19456 KiB, t=2, p=1 (OWASP's argon2id minimum), a
// 16-byte random salt and a 32-byte hash: 19 MiB and about 30 ms on one
// x86 core per check, several times that on a Cortex-A53. Each line
// carries its own parameters, so the defaults can change without
// invalidating files; a line may use m up to 1 GiB, t up to 100 and p up
// to 255, salts of 8 to 64 bytes and hashes of 16 to 64 bytes.
//
// # Checking passwords
//
// Passwords.Check compares in constant time and caches nothing. An
// unknown user is checked against a dummy hash with the parameters most
// lines use, so the time taken does not reveal which names exist. At most
// one argon2 computation per CPU (GOMAXPROCS, at most NumCPU) runs at
// once per Passwords; further checks wait, so a storm of 1,000 CONNECTs
// holds at most NumCPU × 19 MiB of argon2 memory and is served at about
// NumCPU checks per 30 ms. CheckContext gives up waiting when its context
// ends.
//
// # ACL file
//
// The grammar is Mosquitto's acl_file:
//
//	# comment
//	topic [read|write|readwrite|deny] FILTER    # anonymous clients
//	pattern [read|write|readwrite|deny] FILTER  # every client
//	user USERNAME
//	topic [read|write|readwrite|deny] FILTER    # USERNAME
//
// The access type defaults to readwrite. FILTER is an MQTT topic filter
// and is the rest of the line, so it may contain spaces (then the access
// type must be given); "topic read" alone is an error rather than, as in
// Mosquitto, a topic named "read". topic lines before the first user line
// apply to anonymous clients; after "user NAME", to clients that
// authenticated as NAME (a second section for the same name adds to the
// first). pattern lines apply to every client wherever they are, with a
// level that is exactly %c standing for the client identifier and %u for
// the user name; %c or %u inside a longer level is an error. Unknown
// keywords, a missing filter, an unknown access type and an invalid filter
// are errors naming file:line.
//
// # ACL rules
//
//   - Nothing is allowed unless a line allows it: an empty ACL file denies
//     everything to everyone. A user without a section has the patterns
//     only; anonymous clients (user name "") never use a user section.
//   - A deny line that matches refuses, whatever the order of the lines
//     and whether it is a topic or a pattern line. (Mosquitto 2 checks
//     the client's topic lines, denies first, before the patterns, so a
//     user's grant there beats a pattern deny; here it does not.)
//   - Publishing needs write on the topic name, receiving needs read; the
//     broker asks CanReceive for every delivery, retained messages
//     included.
//   - Subscribing to a filter needs one read rule whose filter covers
//     every topic the subscription can match, wildcards in the
//     subscription standing only for themselves: read a/# allows a/#,
//     a/b/+ and a; read a/+ allows a/b and a/+ but not a/#; nothing but
//     read # allows #. A deny rule covering the whole subscription refuses
//     it; one covering part of it does not, and those messages are dropped
//     on delivery. For $share/GROUP/FILTER, FILTER is checked.
//     (Mosquitto 2's acl_file grants every subscription and relies on the
//     per-delivery check alone; a broker that wants exactly that calls
//     only CanReceive.)
//   - A topic or filter starting with '$' is matched only by a rule whose
//     first level is literal: # and +/... never reach $SYS, and neither
//     can a client named "$SYS" through %c/#.
//   - Substitution never widens access. %c and %u stand for exactly one
//     level equal to the client ID or user name. A value that cannot be
//     one literal level — empty (as the user name of an anonymous client
//     is), or containing '/', '+' or '#' — makes a granting pattern match
//     nothing, so a client called "+" or "#" gets nothing from
//     devices/%c/#, and a client called "a/b" nothing in a/b/...; in a
//     deny pattern it matches any one level, like +, so the deny still
//     covers what it would for any well-formed value. (Mosquitto 2 refuses
//     all access to clients whose ID or user name contains '+' or '#' once
//     patterns exist.)
//
// # Use
//
// At start: LoadPasswords and LoadACL, refusing to start on an error. On
// CONNECT: Passwords.CheckContext with the CONNECT deadline when the
// client gives a user name, and ACL.CanPublish for its will topic. Then
// CanPublish for each PUBLISH, CanSubscribe for each filter of a
// SUBSCRIBE, CanReceive for each message about to be queued for a client.
// The client ID is the one in use (assigned if the client sent none); the
// user name is "" for a client that sent none.
//
// # Concurrency
//
// Passwords and ACL are immutable after loading and safe for concurrent
// use; there are no locks. To reload, load anew and swap a pointer. The
// ACL checks do not allocate. SetPassword and DeletePassword replace the
// file atomically but do not lock it against another editor.
package auth
