#!/bin/bash
# Boot an arm64 kernel from kernel/arm64/build.sh in qemu-system-aarch64 (TCG,
# virt with EL2: the real arm64 KVM runs inside) with an initramfs whose
# static /init (init.c) runs each given arm64 binary, and exit non-zero
# unless all of them passed.
#
# usage: kernel/arm64/boot.sh [--kernel stock|patched|stock64k|PATH]
#            [--expect pci-hole|readonly] [--append "kernel args"]
#            [--timeout SECONDS] [--log FILE] [--selftest]
#            [-- BINARY [ARGS...] [-- BINARY ...]]
#
# Binaries are arm64 ELF files (cross-built); their shared libraries are
# found with aarch64-linux-gnu-readelf in Debian's arm64 multiarch paths
# (libc6:arm64, libcmocka0:arm64) and copied with the loader.  --expect sets
# PCIHOLE_EXPECT_MODE (default: pci-hole for patched, readonly otherwise).
# --selftest adds build/pci_hole_test: it must pass on the patched kernel and
# may skip (exit 4) elsewhere.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
B="$HERE/build"
KERNEL=patched
EXPECT=""
APPEND=""
TIMEOUT=900
LOG=""
SELFTEST=0
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) KERNEL="$2"; shift 2 ;;
	--expect) EXPECT="$2"; shift 2 ;;
	--append) APPEND="$2"; shift 2 ;;
	--timeout) TIMEOUT="$2"; shift 2 ;;
	--log) LOG="$2"; shift 2 ;;
	--selftest) SELFTEST=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "boot.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$KERNEL" in
stock|patched|stock64k) IMG="$B/Image-$KERNEL"; KNAME=$KERNEL ;;
*) IMG="$KERNEL"; KNAME=custom ;;
esac
[ -f "$IMG" ] || { echo "boot.sh: no kernel $IMG (run kernel/arm64/build.sh)" >&2; exit 1; }
if [ -z "$EXPECT" ]; then
	case "$KNAME" in patched|custom) EXPECT="pci-hole" ;; *) EXPECT="readonly" ;; esac
fi
LOG=${LOG:-$B/boot-$KNAME.log}
for p in qemu-system-arm cpio gcc-aarch64-linux-gnu; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		{ DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q "$p" >/dev/null; }
done

T0=$SECONDS
W=$(mktemp -d "${TMPDIR:-/tmp}/pcihole-arm64-initramfs.XXXXXX")
trap 'rm -rf "$W"' EXIT
R="$W/root"
mkdir -p "$R"/{dev,proc,sys,tmp,opt/lib,lib}
aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o "$R/init" "$HERE/init.c"

LIBDIRS="/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/aarch64-linux-gnu/lib"
find_lib() {
	local d
	for d in $LIBDIRS; do [ -f "$d/$1" ] && { echo "$d/$1"; return 0; }; done
	return 1
}
copy_libs() {	# $1 = ELF: copies its NEEDED libraries (recursively) into /opt/lib
	local n path
	for n in $(aarch64-linux-gnu-readelf -d "$1" 2>/dev/null |
		   sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
		[ -f "$R/opt/lib/$n" ] && continue
		path=$(find_lib "$n") || { echo "boot.sh: no arm64 $n for $1" >&2; exit 1; }
		cp -L "$path" "$R/opt/lib/$n"
		copy_libs "$path"
	done
}
add_bin() {	# $1 = ELF: into /opt with its libraries and, if dynamic, the loader
	local interp
	aarch64-linux-gnu-readelf -h "$1" 2>/dev/null | grep -q AArch64 ||
		{ echo "boot.sh: $1 is not an arm64 ELF file" >&2; exit 1; }
	cp -L "$1" "$R/opt/$(basename "$1")"
	interp=$(aarch64-linux-gnu-readelf -l "$1" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
	if [ -n "$interp" ] && [ ! -f "$R$interp" ]; then
		mkdir -p "$R$(dirname "$interp")"
		cp -L "$(find_lib "$(basename "$interp")")" "$R$interp"
	fi
	copy_libs "$1"
}

: > "$R/opt/steps"
: > "$R/opt/skip-ok"
nstep=0
if [ "$SELFTEST" = 1 ]; then
	[ -x "$B/pci_hole_test" ] || { echo "boot.sh: no $B/pci_hole_test" >&2; exit 1; }
	add_bin "$B/pci_hole_test"
	printf 'pci_hole_test\t/opt/pci_hole_test\n' >> "$R/opt/steps"
	[ "$KNAME" = patched ] || echo pci_hole_test >> "$R/opt/skip-ok"
	nstep=$((nstep + 1))
fi
cmd=()
flush() {
	[ ${#cmd[@]} -gt 0 ] || return 0
	[ -f "${cmd[0]}" ] || { echo "boot.sh: no ${cmd[0]}" >&2; exit 1; }
	add_bin "${cmd[0]}"
	printf '%s\t/opt/%s' "$(basename "${cmd[0]}")" "$(basename "${cmd[0]}")" >> "$R/opt/steps"
	[ ${#cmd[@]} -gt 1 ] && printf ' %s' "${cmd[@]:1}" >> "$R/opt/steps"
	printf '\n' >> "$R/opt/steps"
	nstep=$((nstep + 1))
	cmd=()
}
for a in "$@"; do
	if [ "$a" = "--" ]; then flush; else cmd+=("$a"); fi
done
flush
{
	echo "PCIHOLE_EXPECT_MODE=$EXPECT"
	echo "PCIHOLE_KERNEL=$KNAME"
	[ -z "${PCIHOLE_TEST_SEED:-}" ] || echo "PCIHOLE_TEST_SEED=$PCIHOLE_TEST_SEED"
} > "$R/opt/env"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/initramfs.cpio.gz"
printf '[arm64/boot.sh] initramfs: %d steps, %s, %d s\n' "$nstep" \
	"$(du -h "$W/initramfs.cpio.gz" | cut -f1)" $((SECONDS - T0))

T1=$SECONDS
set +e
timeout "$TIMEOUT" qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
	-cpu max -smp 1 -m 1024 -nographic -no-reboot -kernel "$IMG" \
	-initrd "$W/initramfs.cpio.gz" -append "console=ttyAMA0 panic=-1 $APPEND" \
	< /dev/null > "$LOG" 2>&1
qrc=$?
set -e
printf '[arm64/boot.sh] qemu: rc=%d, %d s, log %s\n' "$qrc" $((SECONDS - T1)) "$LOG"
grep -aE "^(=== |STEP-|PCIHOLE-ARM64-SUMMARY|BOOT:|\[  (PASSED|FAILED|SKIPPED) |# |ok |not ok |kvm \[)" "$LOG" | tr -d '\r' || true

summary=$(grep -a "PCIHOLE-ARM64-SUMMARY" "$LOG" | tr -d '\r' | tail -1)
[ "$qrc" -eq 0 ] || { echo "arm64/boot.sh: FAIL: qemu exited $qrc (timeout is 124)"; exit 1; }
[ -n "$summary" ] || { echo "arm64/boot.sh: FAIL: no summary line in $LOG"; exit 1; }
echo "$summary" | grep -q " 0 failed" || { echo "arm64/boot.sh: FAIL"; exit 1; }
echo "$summary" | grep -q " 0 passed, 0 failed, 0 skipped" &&
	{ echo "arm64/boot.sh: FAIL: nothing ran"; exit 1; }
echo "arm64/boot.sh: PASS ($KNAME)"
