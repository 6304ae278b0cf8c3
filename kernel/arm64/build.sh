#!/bin/bash
# Build arm64 Linux 7.2 kernels for the arm64 leg, cross-compiled with
# Debian's gcc-aarch64-linux-gnu from Debian's linux-source-7.2:
#   stock      the Debian tree, 4 KiB pages
#   patched    + kernel/patches (the KVM_MEM_PCI_HOLE series) + kernel/arm64/patches
#   stock64k   the Debian tree with 64 KiB pages (host page size tests)
# and, with --selftest, the static arm64 pci_hole_test from the patched tree.
#
# usage: kernel/arm64/build.sh [--kernel LIST] [--selftest] [-j N]
#   LIST: comma separated stock,patched,stock64k (default stock,patched)
#
# Outputs (kernel/arm64/build/ is git-ignored): build/Image-<variant>,
# build/pci_hole_test.  Cache: $PCIHOLE_ARM64_CACHE (default
# /var/cache/pcihole-arm64)/<variant>-<hash>/ where the hash covers the Debian
# package version, the config and the kernel part of the patches; work/ there
# keeps the source and object trees for incremental rebuilds.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KDIR=$(cd "$HERE/.." && pwd)
B="$HERE/build"
CACHE=${PCIHOLE_ARM64_CACHE:-/var/cache/pcihole-arm64}
KERNELS=stock,patched
SELFTEST=0
# The generic + x86 series; PCIHOLE_SERIES overrides it (a series in progress).
SERIES=${PCIHOLE_SERIES:-$KDIR/patches}
JOBS=2
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) KERNELS="$2"; shift 2 ;;
	--selftest) SELFTEST=1; shift ;;
	-j) JOBS="$2"; shift 2 ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
for k in ${KERNELS//,/ }; do
	case "$k" in stock|patched|stock64k) ;; *) echo "build.sh: bad --kernel $k" >&2; exit 2 ;; esac
done
export ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-

T0=$SECONDS
step_t=$SECONDS
step_name=""
step() {
	[ -z "$step_name" ] || printf '[arm64/build.sh] %-44s %5d s\n' "$step_name" $((SECONDS - step_t))
	step_name=$1
	step_t=$SECONDS
}

PKGS="build-essential bc flex bison libelf-dev libssl-dev cpio xz-utils
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	step "apt-get install$missing"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	timeout 1200 apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
TARBALL=$("$KDIR/get-source.sh" --version 7.2 --print-tarball)
SRCVER=$(dpkg-query -W -f='${Version}' linux-source-7.2)

# tinyconfig plus what KVM at EL2, the PL011 console, the initramfs, PSCI
# power-off and the library's memfd backend need (REFERENCES.md, arm64 leg).
CONFIG_ON="SMP PRINTK TTY ARM_AMBA SERIAL_AMBA_PL011 SERIAL_AMBA_PL011_CONSOLE
	BLK_DEV_INITRD RD_GZIP BINFMT_ELF BINFMT_SCRIPT DEVTMPFS DEVTMPFS_MOUNT
	PROC_FS SYSFS TMPFS SHMEM MEMFD_CREATE TRANSPARENT_HUGEPAGE ADVISE_SYSCALLS
	MULTIUSER FUTEX EPOLL SIGNALFD TIMERFD EVENTFD POSIX_TIMERS HIGH_RES_TIMERS
	PCI PCI_HOST_GENERIC ARM_GIC_V3 VIRTUALIZATION KVM POWER_RESET
	POWER_RESET_SYSCON"
CONFIG_OFF=""
CONFIG_CHECK="KVM SHMEM TMPFS MEMFD_CREATE TRANSPARENT_HUGEPAGE BLK_DEV_INITRD
	SERIAL_AMBA_PL011_CONSOLE ARM_GIC_V3"
PAGES64K_ON="ARM64_64K_PAGES"
PAGES64K_OFF="ARM64_4K_PAGES"

series_files() {	# $1 = variant: the patches it applies, in order
	local p
	[ "$1" = patched ] || return 0
	for p in "$SERIES"/[0-9]*.patch "$HERE"/patches/[0-9]*.patch; do
		[ -f "$p" ] && [ "${p##*/}" != 0000-cover-letter.patch ] && echo "$p"
	done
	return 0
}

# awk: the diff sections of a patch, without those under tools/
# shellcheck disable=SC2016
KERNEL_PART='FNR == 1 {d = 0} /^diff --git /{d = 1; skip = ($3 ~ /^a\/tools\//)} d && !skip'

hash_of() {	# $1 = variant, $2 = kernel|full
	{
		echo "7.2 $SRCVER arm64"
		echo "$CONFIG_ON / $CONFIG_OFF"
		[ "$1" = stock64k ] && echo "$PAGES64K_ON / $PAGES64K_OFF"
		if [ -n "$(series_files "$1")" ]; then
			if [ "$2" = full ]; then
				series_files "$1" | xargs cat
			else
				series_files "$1" | xargs awk "$KERNEL_PART"
			fi
		fi
	} | sha256sum | cut -c1-16
}

# One source tree and one object tree per page size, kept under $CACHE/work
# so that the patched kernel is an incremental build on top of the stock one
# (only what the series touches is recompiled), also across runs.  The tree
# records which patches are applied; switching reverses them first.
WORK=${PCIHOLE_ARM64_WORK:-$CACHE/work}
APPLIED="$WORK/applied"

tree_state() {	# the series applied to $WORK/src now, as a hash ("" = stock)
	[ -f "$WORK/src/.pcihole-state" ] && cat "$WORK/src/.pcihole-state"
	return 0
}

want_state() {	# $1 = stock|patched
	[ "$1" = patched ] || return 0
	series_files patched | xargs cat | sha256sum | cut -c1-16
}

prepare_src() {	# $1 = stock|patched: $WORK/src in that state
	local v=$1 want p
	want=$(want_state "$v")
	if [ ! -f "$WORK/src/.pcihole-base" ] ||
	   [ "$(cat "$WORK/src/.pcihole-base")" != "$SRCVER" ]; then
		step "unpack $TARBALL"
		rm -rf "$WORK/src" "$WORK"/out-* "$APPLIED"
		mkdir -p "$WORK"
		"$KDIR/get-source.sh" --version 7.2 --unpack "$WORK/src" 2>/dev/null
		echo "$SRCVER" > "$WORK/src/.pcihole-base"
	fi
	[ "$(tree_state)" = "$want" ] && return 0
	if [ -d "$APPLIED" ]; then
		step "revert the applied series"
		for p in $(find "$APPLIED" -name '*.patch' | sort -r); do
			timeout 60 patch -R -s -p1 -d "$WORK/src" --no-backup-if-mismatch < "$p" ||
				{ echo "build.sh: cannot revert $p: remove $WORK" >&2; exit 1; }
		done
		rm -rf "$APPLIED"
		rm -f "$WORK/src/.pcihole-state"
	fi
	[ "$v" = patched ] || return 0
	[ -n "$(series_files patched)" ] ||
		{ echo "build.sh: no patches in $SERIES" >&2; exit 1; }
	step "apply $(series_files patched | wc -l) patches"
	mkdir -p "$APPLIED"
	local n=0
	for p in $(series_files patched); do
		n=$((n + 1))
		timeout 60 patch -s -p1 -d "$WORK/src" --no-backup-if-mismatch < "$p" ||
			{ echo "build.sh: $p does not apply" >&2; rm -rf "$APPLIED"; exit 1; }
		cp "$p" "$APPLIED/$(printf %02d $n)-${p##*/}"
	done
	echo "$want" > "$WORK/src/.pcihole-state"
}

set_opts() {	# $1 = .config, $2 = -e|-d, rest = options
	local cfg=$1 how=$2 o; shift 2
	for o in "$@"; do "$WORK/src/scripts/config" --file "$cfg" "$how" "$o"; done
}

configure() {	# $1 = variant, $2 = object tree
	local v=$1 out=$2 o h
	# stock and patched share one configuration (the series only adds a
	# symbol that KVM selects): keep it, and the objects, when switching
	h=$(echo "$CONFIG_ON / $CONFIG_OFF / $([ "$v" = stock64k ] && echo "$PAGES64K_ON")" |
	    sha256sum | cut -c1-16)
	if [ -f "$out/.config" ] && [ "$(cat "$out/.pcihole-config" 2>/dev/null)" = "$h" ]; then
		# the series may add Kconfig symbols: let them take their defaults
		timeout 300 make -s -C "$WORK/src" O="$out" olddefconfig >/dev/null
		return 0
	fi
	step "$v: configure"
	mkdir -p "$out"
	timeout 300 make -s -C "$WORK/src" O="$out" tinyconfig >/dev/null
	for o in 1 2; do
		# shellcheck disable=SC2086
		set_opts "$out/.config" -e $CONFIG_ON
		# shellcheck disable=SC2086
		[ -z "$CONFIG_OFF" ] || set_opts "$out/.config" -d $CONFIG_OFF
		if [ "$v" = stock64k ]; then
			# shellcheck disable=SC2086
			set_opts "$out/.config" -d $PAGES64K_OFF
			# shellcheck disable=SC2086
			set_opts "$out/.config" -e $PAGES64K_ON
		fi
		timeout 300 make -s -C "$WORK/src" O="$out" olddefconfig >/dev/null
	done
	for o in $CONFIG_CHECK $([ "$v" = stock64k ] && echo "$PAGES64K_ON"); do
		grep -q "^CONFIG_$o=y$" "$out/.config" ||
			{ echo "build.sh: CONFIG_$o is not =y in $out/.config" >&2; exit 1; }
	done
	echo "$h" > "$out/.pcihole-config"
}

build_variant() {	# $1 = stock|patched|stock64k
	local v=$1 h out cache tree
	h=$(hash_of "$v" kernel)
	cache="$CACHE/$v-$h"
	if [ -f "$cache/Image" ]; then
		step "$v: cached Image $v-$h"
		ln -sfn "$cache/Image" "$B/Image-$v"
		return 0
	fi
	tree=stock; [ "$v" = patched ] && tree=patched
	prepare_src "$tree"
	# stock and patched share an object tree (4 KiB pages), 64k has its own
	out="$WORK/out-4k"; [ "$v" = stock64k ] && out="$WORK/out-64k"
	configure "$v" "$out"
	[ "$v" != patched ] || grep -q "^CONFIG_HAVE_KVM_PCI_HOLE_MEM=y" "$out/.config" ||
		{ echo "build.sh: the series does not enable HAVE_KVM_PCI_HOLE_MEM on arm64" >&2; exit 1; }
	step "$v: make -j$JOBS Image"
	timeout 3600 make -s -C "$WORK/src" O="$out" -j"$JOBS" Image > "$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log" >&2; echo "build.sh: $v Image failed" >&2; exit 1; }
	if grep -E "warning:" "$out/build.log" | grep -E "kvm|virt/" >&2; then
		echo "build.sh: warnings in KVM files (above)" >&2; exit 1
	fi
	mkdir -p "$cache"
	cp "$out/arch/arm64/boot/Image" "$cache/Image.tmp"
	cp "$out/.config" "$cache/config"
	mv "$cache/Image.tmp" "$cache/Image"
	ln -sfn "$cache/Image" "$B/Image-$v"
}

build_selftest() {
	local src="$WORK/src" out="$B/selftest-out" h cache
	h=$(hash_of patched full)
	cache="$CACHE/selftest-$h"
	if [ -x "$cache/pci_hole_test" ]; then
		step "selftest: cached"
		cp "$cache/pci_hole_test" "$B/pci_hole_test"
		return 0
	fi
	prepare_src patched
	step "selftest: headers_install"
	rm -rf "$out"
	mkdir -p "$out"
	timeout 300 make -s -C "$src" O="$out/obj" headers_install \
		INSTALL_HDR_PATH="$out/usr" >/dev/null
	step "selftest: make arm64/pci_hole_test (static)"
	timeout 1200 make -s -C "$src/tools/testing/selftests/kvm" -j"$JOBS" \
		OUTPUT="$out/kvm" KHDR_INCLUDES="-isystem $out/usr/include" \
		EXTRA_CFLAGS="-static" "$out/kvm/arm64/pci_hole_test" > "$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log" >&2; echo "build.sh: selftest build failed" >&2; exit 1; }
	if grep "warning:" "$out/build.log" | grep -q pci_hole; then
		grep warning: "$out/build.log" >&2; exit 1
	fi
	mkdir -p "$cache.tmp"
	cp "$out/kvm/arm64/pci_hole_test" "$cache.tmp/pci_hole_test"
	rm -rf "$cache"
	mv "$cache.tmp" "$cache"
	cp "$cache/pci_hole_test" "$B/pci_hole_test"
}

mkdir -p "$B" "$CACHE"
for k in ${KERNELS//,/ }; do build_variant "$k"; done
[ "$SELFTEST" = 1 ] && build_selftest
step "done"
printf '[arm64/build.sh] total %d s\n' $((SECONDS - T0))
