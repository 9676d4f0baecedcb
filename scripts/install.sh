#!/bin/sh
# install.sh installs gatemq as a systemd service:
#
#   /usr/bin/gatemq                      the binary (replaced on upgrade)
#   $UNITDIR/gatemq.service              the unit (default /etc/systemd/system)
#   /etc/gatemq/gatemq.toml              the example config with data_dir
#                                        /var/lib/gatemq, only if absent
#   /var/lib/gatemq                      the data directory, mode 0700, kept
#   user and group gatemq                a system user, created if missing
#
# Usage: sudo scripts/install.sh [BINARY]    (default: ./gatemq)
#
# It is idempotent: run it again to upgrade; data and config are kept. With
# DESTDIR=/some/dir it installs under that directory without root, and
# creates no user, changes no owner and leaves systemd alone (for packaging
# and tests). When systemd runs, it reloads units, enables gatemq and starts
# or restarts it; NO_START=1 only enables it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-./gatemq}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-/etc/systemd/system}
NO_START=${NO_START:-}
user=gatemq

say() { printf 'install.sh: %s\n' "$*"; }

[ -f "$bin" ] || { say "no binary at $bin: run make build, or give its path"; exit 1; }
"$bin" version >/dev/null 2>&1 || { say "$bin does not run here (wrong architecture?)"; exit 1; }
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
	say "run as root (or set DESTDIR to install under a directory)"
	exit 1
fi

root=$DESTDIR
owned() { [ -z "$DESTDIR" ]; } # whether to create the user and set owners

# The user first: the directories below are given to it.
if owned && ! getent passwd "$user" >/dev/null; then
	say "creating system user $user"
	useradd --system --user-group --home-dir /var/lib/gatemq --no-create-home \
		--shell /usr/sbin/nologin --comment "gatemq MQTT broker" "$user"
fi

# The binary: written beside the old one and renamed over it, so a running
# broker keeps its file and a failed copy leaves the old one in place.
mkdir -p "$root/usr/bin"
cp "$bin" "$root/usr/bin/.gatemq.new"
chmod 0755 "$root/usr/bin/.gatemq.new"
mv -f "$root/usr/bin/.gatemq.new" "$root/usr/bin/gatemq"
say "installed $root/usr/bin/gatemq ($("$root/usr/bin/gatemq" version))"

mkdir -p "$root$UNITDIR"
cp "$here/gatemq.service" "$root$UNITDIR/.gatemq.service.new"
chmod 0644 "$root$UNITDIR/.gatemq.service.new"
mv -f "$root$UNITDIR/.gatemq.service.new" "$root$UNITDIR/gatemq.service"
say "installed $root$UNITDIR/gatemq.service"

# Config: readable by the service, writable by root only. Never replaced.
mkdir -p "$root/etc/gatemq"
chmod 0750 "$root/etc/gatemq"
owned && chown "root:$user" "$root/etc/gatemq"
if [ -e "$root/etc/gatemq/gatemq.toml" ]; then
	say "kept $root/etc/gatemq/gatemq.toml (the new example: gatemq default-config)"
else
	# The example, with the data directory the unit uses.
	if [ -f "$here/gatemq.toml" ]; then cat "$here/gatemq.toml"; else "$bin" default-config; fi |
		sed 's|^data_dir = "[^"]*" *|data_dir = "/var/lib/gatemq"      |' >"$root/etc/gatemq/.gatemq.toml.new"
	chmod 0640 "$root/etc/gatemq/.gatemq.toml.new"
	owned && chown "root:$user" "$root/etc/gatemq/.gatemq.toml.new"
	mv "$root/etc/gatemq/.gatemq.toml.new" "$root/etc/gatemq/gatemq.toml"
	say "installed $root/etc/gatemq/gatemq.toml"
fi

# Data: the service's alone. Never emptied.
mkdir -p "$root/var/lib/gatemq"
chmod 0700 "$root/var/lib/gatemq"
owned && chown "$user:$user" "$root/var/lib/gatemq"

if ! errs=$("$root/usr/bin/gatemq" check-config "$root/etc/gatemq/gatemq.toml" 2>&1 >/dev/null); then
	say "warning: $root/etc/gatemq/gatemq.toml does not load: fix it before starting gatemq:"
	printf '%s\n' "$errs"
fi

if owned && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	systemctl enable gatemq.service
	if [ -n "$NO_START" ]; then
		say "enabled gatemq; start it with: systemctl start gatemq"
	elif systemctl is-active --quiet gatemq.service; then
		systemctl restart gatemq.service
		say "restarted gatemq"
	else
		systemctl start gatemq.service
		say "started gatemq: systemctl status gatemq, journalctl -u gatemq"
	fi
elif owned; then
	say "systemd is not running: start the broker yourself, e.g. runuser -u $user -- /usr/bin/gatemq -config /etc/gatemq/gatemq.toml -data-dir /var/lib/gatemq"
fi
