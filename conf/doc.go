// Package conf defines the gatemq configuration file: its TOML schema, the
// built-in defaults, and validation that catches typos instead of silently
// ignoring them. It imports nothing of gatemq; main translates a [Config]
// into the Options of each package.
//
// # Loading
//
// [Load] starts from [Default], overlays the keys of the file, rejects keys
// the schema does not have and calls [Config.Validate]. Keys the file leaves
// out keep their defaults, except that [[listener]] tables, when present,
// replace the default listener list as a whole. [Parse] does the same for an
// io.Reader and serves tests. [Config.ApplyOverrides] applies the -listen and
// -data-dir flags; [Print] writes the configuration in effect as TOML.
//
// A minimal file:
//
//	data_dir = "/var/lib/gatemq"
//
//	[mqtt]
//	max_packet_size = "256KiB"
//	session_expiry_interval = "24h"
//
//	[[listener]]
//	address = "0.0.0.0:1883"
//
// Durations are strings such as "30s", "1h30m" or "500ms" ([Duration]);
// sizes are strings such as "64MiB", "512KiB" or "10GB", or plain integers of
// bytes ([Size]). testdata/defaults.toml lists every key with its default.
//
// # Errors
//
// Installers edit the file over SSH, so every error names the file, the line
// and the key, like a compiler, and one run reports every problem found:
//
//	gatemq.toml:3: mqtt.sys_interval: invalid duration "10 parsecs" (…)
//	gatemq.toml:7: listener[1].address: invalid address "foo": missing port in address
//	gatemq.toml:12: mqtt.max_keepalive: unknown key
//
// Each is an [*Error]; several come joined with errors.Join. A TOML syntax
// error stops decoding, so it is reported alone.
//
// The toml package gives lines for syntax errors but keeps key positions
// private (and would give every [[listener]] element the same line), so the
// package finds the line of each key with a small scanner of its own run over
// the already-parsed document, and trusts it only when it finds the same keys
// in the same order as toml's MetaData.Keys. Failing that, errors go without
// a line rather than with a wrong one.
//
// # Adding a key
//
// Add a field with a `toml` tag to the struct of its section, with a comment
// stating its key and default; set the default in [Default]; check its range
// in validate; add it to testdata/defaults.toml and testdata/full.toml, and run
// go test ./conf -update to rewrite testdata/print.golden. Fields may be
// string, bool, int, [Duration], [Size], a struct (a table) or a slice of
// structs (an array of tables, whose element type may have a setDefaults
// method). The decoder matches keys to tags exactly.
package conf
