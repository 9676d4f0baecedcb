#!/bin/sh
# test_deb.sh checks the packages of make deb: dpkg-deb --info and
# --contents of each, then installs the amd64 one into an empty root
# directory with dpkg --root (maintainer scripts run outside a chroot with
# DPKG_ROOT set, so postinst fixes modes there and creates no user), runs
# the installed binary, upgrades over it with an edited config and data,
# and checks both are kept.
#
# Usage: scripts/test_deb.sh [DIST]   (default dist)
set -eu

dist=${1:-dist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
say() { printf 'test-deb: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

if ! command -v dpkg-deb >/dev/null; then
	say "SKIP: dpkg-deb not found (not a Debian system)"
	exit 0
fi

for arch in amd64 arm64 armhf; do
	set -- "$dist"/gatemq_*_"$arch".deb
	[ $# -eq 1 ] && [ -f "$1" ] || fail "want one $dist/gatemq_*_$arch.deb, have: $*"
	deb=$1
	dpkg-deb --info "$deb" >"$tmp/info"
	grep -q "^ Architecture: $arch\$" "$tmp/info" || fail "$deb: architecture is not $arch"
	dpkg-deb --info "$deb" conffiles | grep -qx /etc/gatemq/gatemq.toml || fail "$deb: /etc/gatemq/gatemq.toml is not a conffile"
	for script in postinst prerm postrm; do
		dpkg-deb --info "$deb" "$script" >"$tmp/$script" || fail "$deb: no $script"
		sh -n "$tmp/$script" || fail "$deb: $script: syntax"
	done
	dpkg-deb --contents "$deb" >"$tmp/contents"
	for f in ./usr/bin/gatemq ./lib/systemd/system/gatemq.service ./etc/gatemq/gatemq.toml; do
		grep -q " $f\$" "$tmp/contents" || fail "$deb: $f missing"
	done
	grep -q '^-rwxr-xr-x root/root .* ./usr/bin/gatemq$' "$tmp/contents" || fail "$deb: /usr/bin/gatemq mode or owner"
	say "$arch: $(basename "$deb") ($(wc -c <"$deb") bytes): control, conffiles, scripts and contents ok"
done

# Install the amd64 package into an empty root.
set -- "$dist"/gatemq_*_amd64.deb
deb=$1
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
dpkgi() {
	# --force-depends: the empty root has no adduser or passwd.
	dpkg --root="$root" --force-not-root --force-script-chrootless --force-depends \
		--force-confold --log=/dev/null -i "$deb" >"$tmp/dpkg.log" 2>&1 ||
		{ cat "$tmp/dpkg.log"; fail "dpkg -i $deb"; }
}
dpkgi
dpkg --root="$root" -s gatemq 2>/dev/null | grep -q '^Status: install ok installed' || fail "gatemq not configured in $root"
out=$("$root/usr/bin/gatemq" version) || fail "installed binary does not run"
"$root/usr/bin/gatemq" check-config "$root/etc/gatemq/gatemq.toml" >/dev/null 2>&1 || fail "installed config does not load"
grep -q '^data_dir = "/var/lib/gatemq" ' "$root/etc/gatemq/gatemq.toml" || fail "installed config: data_dir is not /var/lib/gatemq"
[ "$(stat -c %a "$root/var/lib/gatemq")" = 700 ] || fail "/var/lib/gatemq mode $(stat -c %a "$root/var/lib/gatemq")"
[ "$(stat -c %a "$root/etc/gatemq/gatemq.toml")" = 640 ] || fail "gatemq.toml mode"
say "amd64: dpkg -i into $root: installed, $out, config loads"

# Upgrade (reinstall) over an edited config and some data.
printf '[mqtt]\nmax_keepalive = 600\n' >"$root/etc/gatemq/gatemq.toml"
echo data >"$root/var/lib/gatemq/keep"
dpkgi
grep -q 'max_keepalive = 600' "$root/etc/gatemq/gatemq.toml" || fail "upgrade replaced the edited config"
[ "$(cat "$root/var/lib/gatemq/keep")" = data ] || fail "upgrade lost data"
say "amd64: upgrade kept the edited config and the data"
