#!/bin/bash
# Build the L2 guest kernel of the QEMU leg: Debian's Linux 7.2
# (linux-source-7.2), x86-64 tinyconfig plus kernel/guest/config, with the
# guest series in kernel/guest/patches/ (prefer ECAM on QEMU's q35 host bridge
# under KVM; off elsewhere, "pci=ecam" / "pci=noecam" on the command line).
#
# usage: kernel/guest/build.sh [-j N] [--print]
#   --print  print the cached bzImage's path (building it first if needed)
#
# Output: kernel/guest/build/bzImage (symlink into the cache), with .config and
# System.map beside it in the cache.
# Cache: $PCIHOLE_GUEST_CACHE (default /var/cache/pcihole-guest)/<hash>/bzImage,
# hash = sha256 of the source package version, BUILD_REV (bump it when a
# change to this script changes the kernel), the config and the patches.  A
# cached bzImage is never rebuilt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${PCIHOLE_GUEST_CACHE:-/var/cache/pcihole-guest}
JOBS=2
PRINT=0
while [ $# -gt 0 ]; do
	case "$1" in
	-j) JOBS="$2"; shift 2 ;;
	--print) PRINT=1; shift ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "guest/build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
log() { if [ "$PRINT" = 1 ]; then echo "[guest/build.sh] $*" >&2; else echo "[guest/build.sh] $*"; fi; }

TARBALL=/usr/src/linux-source-7.2.tar.xz
if [ ! -f "$TARBALL" ]; then
	if [ -x "$ROOT/kernel/get-source.sh" ]; then
		timeout 1200 "$ROOT/kernel/get-source.sh" --version 7.2 >&2
	else
		DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q linux-source-7.2 >&2
	fi
fi
[ -f "$TARBALL" ] || { echo "guest/build.sh: no $TARBALL" >&2; exit 1; }
need=()
for p in build-essential bc flex bison libelf-dev libssl-dev xz-utils cpio; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q "${need[@]}" >&2
fi

# One build at a time per cache (CI legs and developers may share it)
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock -w 3600 9 || { echo "guest/build.sh: cache $CACHE stays locked" >&2; exit 1; }
SRCVER=$(dpkg-query -W -f='${Version}' linux-source-7.2 2>/dev/null || stat -c %s "$TARBALL")
BUILD_REV=2
HASH=$( { echo "$SRCVER $BUILD_REV"; cat "$HERE/config" "$HERE"/patches/*.patch; } |
	sha256sum | cut -c1-16)
OUT="$CACHE/$HASH"
mkdir -p "$HERE/build"
if [ -f "$OUT/bzImage" ]; then
	log "cached: $OUT/bzImage"
else
	T0=$SECONDS
	# The unpacked, patched tree is kept (keyed by source and series) so a
	# config change rebuilds incrementally.
	THASH=$( { echo "$SRCVER"; cat "$HERE"/patches/*.patch; } | sha256sum | cut -c1-16)
	S="$CACHE/tree-$THASH"
	if [ ! -f "$S/.pcihole-ready" ]; then
		rm -rf "$S" "$S.tmp"
		mkdir -p "$S.tmp"
		tar -xJf "$TARBALL" -C "$S.tmp" --strip-components=1
		for p in "$HERE"/patches/*.patch; do
			patch -s -p1 -d "$S.tmp" < "$p"
		done
		touch "$S.tmp/.pcihole-ready"
		mv "$S.tmp" "$S"
		log "unpacked and patched in $((SECONDS - T0)) s"
	fi
	make -s -C "$S" tinyconfig >/dev/null
	"$S/scripts/config" --file "$S/.config" --enable 64BIT
	make -s -C "$S" olddefconfig >/dev/null
	yes=()
	while read -r opt; do
		case "$opt" in ''|'#'*) continue ;; esac
		case "$opt" in
		*=n) "$S/scripts/config" --file "$S/.config" --disable "${opt%=n}" ;;
		*=*) "$S/scripts/config" --file "$S/.config" --set-val "${opt%%=*}" "${opt#*=}" ;;
		*) "$S/scripts/config" --file "$S/.config" --enable "$opt"; yes+=("$opt") ;;
		esac
	done < "$HERE/config"
	make -s -C "$S" olddefconfig >/dev/null
	for opt in "${yes[@]}"; do
		grep -q "^CONFIG_$opt=y" "$S/.config" ||
			{ echo "guest/build.sh: CONFIG_$opt did not survive olddefconfig" >&2; exit 1; }
	done
	log "configured; building bzImage (-j$JOBS)"
	nice make -s -C "$S" -j"$JOBS" bzImage >&2
	rm -rf "$OUT.tmp"
	mkdir -p "$OUT.tmp"
	cp "$S/arch/x86/boot/bzImage" "$S/.config" "$S/System.map" "$OUT.tmp/"
	rm -rf "$OUT"
	mv "$OUT.tmp" "$OUT"
	log "built $OUT/bzImage in $((SECONDS - T0)) s"
fi
ln -sfn "$OUT/bzImage" "$HERE/build/bzImage"
if [ "$PRINT" = 1 ]; then echo "$OUT/bzImage"; fi
