#!/bin/bash
# Install Debian's linux-source-VERSION and, optionally, unpack it.
#
# usage: kernel/get-source.sh [--version 7.2|6.12] [--unpack DEST] [--print-tarball]
#
# 7.2 comes from Debian unstable (linux-source-7.2 7.2.13-1 is arch-independent
# and depends only on binutils and xz-utils, so it installs on Debian 12).  The
# script adds, idempotently, an apt source for unstable and a pin that lets
# only linux-source-7.2 come from it (priority 500; everything else in unstable
# stays at 50, below bookworm's 500, so nothing else is ever upgraded from it).
# 6.12 is bookworm's (bookworm-security) package.  Other legs (QEMU, arm64) may
# call this too: it never changes an existing file whose content is already right.
#
# --unpack DEST   unpack into DEST (replaced), i.e. DEST/Makefile exists after
# --print-tarball print the tarball's path on stdout and nothing else
set -euo pipefail

VERSION=7.2
DEST=""
PRINT=0
while [ $# -gt 0 ]; do
	case "$1" in
	--version) VERSION="$2"; shift 2 ;;
	--unpack) DEST="$2"; shift 2 ;;
	--print-tarball) PRINT=1; shift ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "get-source.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$VERSION" in 7.2|6.12) ;; *) echo "get-source.sh: no source for $VERSION" >&2; exit 2 ;; esac
PKG=linux-source-$VERSION
TARBALL=/usr/src/$PKG.tar.xz

SOURCES=/etc/apt/sources.list.d/pcihole-unstable.sources
PREFS=/etc/apt/preferences.d/pcihole-unstable
SOURCES_TEXT='Types: deb
URIs: http://deb.debian.org/debian
Suites: unstable
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
PREFS_TEXT='Package: *
Pin: release a=unstable
Pin-Priority: 50

Package: linux-source-7.2
Pin: release a=unstable
Pin-Priority: 500'

say() { [ "$PRINT" = 1 ] || echo "[get-source.sh] $*" >&2; }

# apt-get may be running for someone else (another leg): wait for its lock.
apt_wait() {
	local _
	for _ in $(seq 1 240); do
		pgrep -x apt-get >/dev/null 2>&1 || pgrep -x dpkg >/dev/null 2>&1 || return 0
		sleep 5
	done
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

changed=0
if [ "$VERSION" = 7.2 ]; then
	# Pin first: an apt-get update with the source but without the pin
	# would offer unstable's packages at the default priority.
	if [ "$(cat "$PREFS" 2>/dev/null)" != "$PREFS_TEXT" ]; then
		mkdir -p "$(dirname "$PREFS")"
		printf '%s\n' "$PREFS_TEXT" > "$PREFS"
		changed=1
		say "wrote $PREFS"
	fi
	if [ "$(cat "$SOURCES" 2>/dev/null)" != "$SOURCES_TEXT" ]; then
		mkdir -p "$(dirname "$SOURCES")"
		printf '%s\n' "$SOURCES_TEXT" > "$SOURCES"
		changed=1
		say "wrote $SOURCES"
	fi
fi

if ! installed "$PKG" || [ ! -f "$TARBALL" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt_wait
	say "apt-get install $PKG"
	if [ "$changed" = 1 ] || ! apt-cache show "$PKG" >/dev/null 2>&1; then
		timeout 900 apt-get update -q >/dev/null
	fi
	timeout 1800 apt-get install -y -q --no-install-recommends "$PKG" >/dev/null ||
		{ echo "get-source.sh: apt-get install $PKG failed" >&2; exit 1; }
fi
[ -f "$TARBALL" ] || { echo "get-source.sh: $TARBALL missing after install" >&2; exit 1; }
[ "$PRINT" = 1 ] && echo "$TARBALL"

if [ -n "$DEST" ]; then
	rm -rf "$DEST" "$DEST.tmp"
	mkdir -p "$DEST.tmp"
	timeout 600 tar -C "$DEST.tmp" -xf "$TARBALL"
	mv "$DEST.tmp/$PKG" "$DEST"
	rmdir "$DEST.tmp"
	say "unpacked $TARBALL into $DEST"
fi
exit 0
