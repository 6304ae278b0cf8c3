#!/bin/bash
# Build Debian 12's QEMU (7.2) with the libpcihole series in
# examples/qemu/patches/, linked statically against libpcihole from this tree.
#
# usage: examples/qemu/build.sh [--print] [-j N] [--qtest "TEST ..."]
#   --print        print the binary's path on stdout (building it if needed)
#   --qtest LIST   also build and run these qtests (e.g. "q35-test
#                  device-plug-test") in the cached build tree, as they are
#                  with pcihole=readonly and with pcihole=readonly,
#                  pcihole-shadow=on on q35/microvm; fails if one fails
#
# Steps: a bookworm deb-src line if apt has none, `apt-get source qemu`
# (dpkg-source applies Debian's patches), the series on top (patch -p1),
# libpcihole built with cmake and installed without its .so so that the
# linker takes libpcihole.a (nothing to ship beside the binary), configure
# --target-list=x86_64-softmmu --without-default-features --enable-kvm
# --disable-tcg --disable-docs --enable-pcihole, ninja qemu-system-x86_64.
#
# Cache: $PCIHOLE_QEMU_CACHE (default /var/cache/pcihole-qemu)/<hash>/ with
# qemu-system-x86_64 and the build tree (src/), hash = sha256 of the QEMU
# source version, the series, the configure flags, BUILD_REV (bump it when a
# change to this script changes the binary) and the library's sources.
# examples/qemu/build/qemu-system-x86_64 links to the cached binary.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${PCIHOLE_QEMU_CACHE:-/var/cache/pcihole-qemu}
JOBS=2
PRINT=0
QTESTS=""
while [ $# -gt 0 ]; do
	case "$1" in
	--print) PRINT=1; shift ;;
	-j) JOBS="$2"; shift 2 ;;
	--qtest) QTESTS="$2"; shift 2 ;;
	-h|--help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "qemu/build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
# with --print only the path goes to stdout
log() { echo "[qemu/build.sh] $*" >&2; }
T0=$SECONDS

apt_install() {
	local need=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
	done
	[ ${#need[@]} -eq 0 ] && return 0
	log "apt-get install ${need[*]}"
	DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q "${need[@]}" >&2
}

# One build at a time per cache (CI legs and developers may share it)
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock -w 3600 9 || { echo "qemu/build.sh: cache $CACHE stays locked" >&2; exit 1; }
# Debian 12 ships no deb-src line by default; add the one the lead uses.
if ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	log "adding a bookworm deb-src line"
	cat > /etc/apt/sources.list.d/pcihole-bookworm-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	timeout 600 apt-get update -q >&2
fi
apt_install dpkg-dev ninja-build meson libglib2.0-dev libpixman-1-dev flex bison \
	python3-venv libfdt-dev zlib1g-dev cmake pkg-config gcc make patch
CONFIGURE=(--target-list=x86_64-softmmu --without-default-features --enable-kvm
	--disable-tcg --disable-docs --enable-pcihole)
BUILD_REV=1
QEMU_VER=$(apt-cache showsrc qemu 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -1)
[ -n "$QEMU_VER" ] || { echo "qemu/build.sh: apt knows no qemu source package" >&2; exit 1; }

# The library: a static archive from this tree, cached by its sources.
LIBHASH=$( (cd "$ROOT" && find CMakeLists.txt cmake include lib libpcihole.pc.in -type f | sort |
	xargs cat) | sha256sum | cut -c1-16)
LIB="$CACHE/lib-$LIBHASH"
if [ ! -f "$LIB/inst/lib/libpcihole.a" ]; then
	log "building libpcihole ($LIBHASH)"
	rm -rf "$LIB"
	timeout 600 cmake -S "$ROOT" -B "$LIB/build" -DCMAKE_BUILD_TYPE=Release \
		-DPCIHOLE_TESTS=OFF -DPCIHOLE_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX="$LIB/inst" >/dev/null
	timeout 600 cmake --build "$LIB/build" -j"$JOBS" >/dev/null
	timeout 300 cmake --install "$LIB/build" >/dev/null
	# static only: the QEMU binary then carries the library into the L1 initramfs
	rm -f "$LIB"/inst/lib/libpcihole.so*
fi
export PKG_CONFIG_PATH="$LIB/inst/lib/pkgconfig"
pkg-config --atleast-version=1.0 libpcihole ||
	{ echo "qemu/build.sh: libpcihole from $LIB is older than 1.0" >&2; exit 1; }

HASH=$( { echo "$QEMU_VER $LIBHASH $BUILD_REV ${CONFIGURE[*]}"; cat "$HERE"/patches/*.patch; } |
	sha256sum | cut -c1-16)
OUT="$CACHE/$HASH"
mkdir -p "$HERE/build"
if [ -x "$OUT/qemu-system-x86_64" ]; then
	log "cached: $OUT/qemu-system-x86_64 (qemu $QEMU_VER)"
else
	log "building qemu $QEMU_VER with the series ($HASH)"
	rm -rf "$OUT" "$OUT.tmp"
	mkdir -p "$OUT.tmp"
	(cd "$OUT.tmp" && timeout 900 apt-get source -q "qemu=$QEMU_VER" >/dev/null 2>&1) ||
		{ echo "qemu/build.sh: apt-get source qemu=$QEMU_VER failed" >&2; exit 1; }
	# configure where the tree stays: meson records absolute paths, and
	# --qtest rebuilds in it later
	mv "$(find "$OUT.tmp" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -1)" "$OUT.tmp/src"
	rm -f "$OUT.tmp"/qemu_*
	mv "$OUT.tmp" "$OUT"
	S="$OUT/src"
	for p in "$HERE"/patches/*.patch; do
		patch -s -p1 -d "$S" < "$p" || { echo "qemu/build.sh: $p does not apply" >&2; rm -rf "$OUT"; exit 1; }
	done
	mkdir -p "$S/build"
	(cd "$S/build" && timeout 900 ../configure "${CONFIGURE[@]}" > configure.log 2>&1) ||
		{ tail -20 "$S/build/configure.log" >&2; echo "qemu/build.sh: configure failed" >&2; rm -rf "$OUT"; exit 1; }
	(cd "$S/build" && timeout 3000 nice ninja -j"$JOBS" qemu-system-x86_64 > ninja.log 2>&1) ||
		{ grep -E 'error|FAILED' -A3 "$S/build/ninja.log" | head -40 >&2; echo "qemu/build.sh: build failed" >&2; rm -rf "$OUT"; exit 1; }
	# the binary's presence marks the cache entry complete
	cp "$S/build/qemu-system-x86_64" "$OUT/qemu-system-x86_64.tmp"
	mv "$OUT/qemu-system-x86_64.tmp" "$OUT/qemu-system-x86_64"
	log "built $OUT/qemu-system-x86_64 in $((SECONDS - T0)) s"
fi
ln -sfn "$OUT/qemu-system-x86_64" "$HERE/build/qemu-system-x86_64"

if [ -n "$QTESTS" ]; then
	B="$OUT/src/build"
	# Debian's dfsg source has no firmware blobs: use the packaged ones.  The
	# second wrapper runs the same tests with the library serving holes: q35
	# and microvm get pcihole=readonly (regions through the memory API;
	# qtest has no KVM), the third also with pcihole-shadow=on (present
	# functions as ROM devices over config[]).  libqtest wants names ending
	# in -system-x86_64.
	apt_install seabios ipxe-qemu qemu-system-data
	FW="-L /usr/share/seabios -L /usr/share/qemu -L /usr/lib/ipxe/qemu"
	cat > "$B/qemu-plain-system-x86_64" <<EOF
#!/bin/sh
exec "\$(dirname "\$0")/qemu-system-x86_64" $FW "\$@"
EOF
	cat > "$B/qemu-pcihole-system-x86_64" <<EOF
#!/bin/sh
case " \$* " in
*q35*|*microvm*) exec "\$(dirname "\$0")/qemu-system-x86_64" $FW "\$@" -machine pcihole=readonly ;;
esac
exec "\$(dirname "\$0")/qemu-system-x86_64" $FW "\$@"
EOF
	cat > "$B/qemu-shadow-system-x86_64" <<EOF
#!/bin/sh
case " \$* " in
*q35*|*microvm*) exec "\$(dirname "\$0")/qemu-system-x86_64" $FW "\$@" -machine pcihole=readonly,pcihole-shadow=on ;;
esac
exec "\$(dirname "\$0")/qemu-system-x86_64" $FW "\$@"
EOF
	chmod +x "$B/qemu-plain-system-x86_64" "$B/qemu-pcihole-system-x86_64" \
		"$B/qemu-shadow-system-x86_64"
	fail=0
	for t in $QTESTS; do
		(cd "$B" && timeout 1800 nice ninja -j"$JOBS" "tests/qtest/$t" >> ninja-qtest.log 2>&1) ||
			{ echo "qemu/build.sh: cannot build qtest $t" >&2; fail=1; continue; }
		for q in qemu-plain-system-x86_64 qemu-pcihole-system-x86_64 qemu-shadow-system-x86_64; do
			if (cd "$B" && QTEST_QEMU_BINARY="./$q" \
				QTEST_QEMU_STORAGE_DAEMON_BINARY=/bin/false \
				timeout 900 "tests/qtest/$t" --tap -k > "qtest-$t-$q.log" 2>&1); then
				log "qtest $t ($q): PASS ($(grep -c '^ok' "$B/qtest-$t-$q.log") ok, $(grep -c '^ok.*# SKIP' "$B/qtest-$t-$q.log") skipped)"
			else
				log "qtest $t ($q): FAIL (log $B/qtest-$t-$q.log)"
				grep '^not ok' "$B/qtest-$t-$q.log" >&2 || true
				fail=1
			fi
		done
	done
	[ "$fail" -eq 0 ] || exit 1
fi
if [ "$PRINT" = 1 ]; then echo "$OUT/qemu-system-x86_64"; fi
