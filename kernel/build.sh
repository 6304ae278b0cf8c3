#!/bin/bash
# Build Linux 6.12 (Debian's linux-source-6.12) stock and/or with the
# KVM_MEM_PCI_HOLE series in kernel/patches/, plus the pci_hole_test selftest.
#
# usage: kernel/build.sh [--kernel stock|patched|both] [--no-selftest] [-j N]
#
# Outputs (kernel/build/ is git-ignored):
#   kernel/build/bzImage-stock, kernel/build/bzImage-patched   (symlinks into the cache)
#   kernel/build/pci_hole_test                                 (static selftest binary)
# Cache: $PCIHOLE_KERNEL_CACHE (default kernel/build/cache)/<variant>-<hash>/
# where hash covers the tarball version, the patch series and the config
# options. A bzImage whose hash is already cached is not rebuilt; point
# PCIHOLE_KERNEL_CACHE outside the work tree to keep it across fresh clones.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
B="$HERE/build"
CACHE=${PCIHOLE_KERNEL_CACHE:-$B/cache}
TARBALL=/usr/src/linux-source-6.12.tar.xz
VARIANT=both
SELFTEST=1
JOBS=2
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) VARIANT="$2"; shift 2 ;;
	--no-selftest) SELFTEST=0; shift ;;
	-j) JOBS="$2"; shift 2 ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$VARIANT" in stock|patched|both) ;; *) echo "bad --kernel $VARIANT" >&2; exit 2 ;; esac
[ "$JOBS" -gt 2 ] && JOBS=2   # two cores on these machines

T0=$(date +%s.%N)
step_t=$T0
step_name=""
step() {	# report how long the previous step took, start the next one
	local now; now=$(date +%s.%N)
	[ -z "$step_name" ] || printf '[build.sh] %-42s %7.1f s\n' "$step_name" \
		"$(echo "$now - $step_t" | bc)"
	step_name=$1
	step_t=$now
}

# ---------------------------------------------------------------- packages
PKGS="linux-source-6.12 build-essential bc flex bison libelf-dev libssl-dev
      busybox-static qemu-system-x86 cpio xz-utils git"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	step "apt-get install$missing"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	timeout 1200 apt-get install -y -q $missing >/dev/null
fi
[ -f "$TARBALL" ] || { echo "build.sh: $TARBALL missing" >&2; exit 1; }
SRCVER=$(dpkg-query -W -f='${Version}' linux-source-6.12)

# ------------------------------------------------------------------ config
# tinyconfig is 32-bit: 64BIT first, then what KVM, the serial console, the
# initramfs and the library's memfd backend need.
CONFIG_ON="64BIT SMP PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE BLK_DEV_INITRD
	RD_GZIP BINFMT_ELF BINFMT_SCRIPT DEVTMPFS DEVTMPFS_MOUNT PROC_FS SYSFS TMPFS
	SHMEM MEMFD_CREATE TRANSPARENT_HUGEPAGE ADVISE_SYSCALLS MULTIUSER FUTEX EPOLL
	SIGNALFD TIMERFD EVENTFD POSIX_TIMERS HIGH_RES_TIMERS X86_LOCAL_APIC
	X86_IO_APIC ACPI PCI PCI_MMCONFIG CPU_SUP_AMD CPU_SUP_INTEL VIRTUALIZATION
	KVM KVM_AMD KVM_INTEL KVM_SW_PROTECTED_VM"
CONFIG_OFF="KVM_AMD_SEV KVM_XEN KVM_HYPERV"
CONFIG_CHECK="64BIT KVM KVM_AMD KVM_INTEL SHMEM TMPFS MEMFD_CREATE
	TRANSPARENT_HUGEPAGE ADVISE_SYSCALLS BLK_DEV_INITRD SERIAL_8250_CONSOLE
	ACPI PCI_MMCONFIG"

series_files() {	# the patches in order, without the cover letter
	local p
	for p in "$HERE"/patches/[0-9]*.patch; do
		[ -f "$p" ] && [ "${p##*/}" != 0000-cover-letter.patch ] && echo "$p"
	done
	return 0
}

# awk: the diff sections of a patch, without those under tools/
# shellcheck disable=SC2016
KERNEL_PART='FNR == 1 {d = 0} /^diff --git /{d = 1; skip = ($3 ~ /^a\/tools\//)} d && !skip'

hash_of() {	# $1 = stock|patched (what the bzImage depends on) or full (everything)
	{
		echo "$SRCVER"
		echo "$CONFIG_ON / $CONFIG_OFF"
		case "$1" in
		# the bzImage does not depend on the selftest's files under tools/
		patched) series_files | xargs awk "$KERNEL_PART" ;;
		full) series_files | xargs cat ;;
		esac
	} | sha256sum | cut -c1-16
}

unpack() {	# $1 = dest dir
	rm -rf "$1" "$1.tmp"
	mkdir -p "$1.tmp"
	timeout 300 tar -C "$1.tmp" -xf "$TARBALL"
	mv "$1.tmp/linux-source-6.12" "$1"
	rmdir "$1.tmp"
}

prepare_src() {	# $1 = variant, $2 = hash: unpacked (and patched) tree in $B/src-$1
	local v=$1 h=$2 src="$B/src-$1" p
	[ -f "$src/.pcihole-hash" ] && [ "$(cat "$src/.pcihole-hash")" = "$h" ] && return 0
	step "$v: unpack $TARBALL"
	unpack "$src"
	if [ "$v" = patched ]; then
		step "$v: apply $(series_files | wc -l) patches"
		for p in $(series_files); do
			timeout 60 patch -s -p1 -d "$src" --no-backup-if-mismatch < "$p" ||
				{ echo "build.sh: $p does not apply" >&2; exit 1; }
		done
	fi
	echo "$h" > "$src/.pcihole-hash"
}

build_variant() {	# $1 = stock|patched
	local v=$1 h src out cache
	h=$(hash_of "$v")
	cache="$CACHE/$v-$h"
	if [ -f "$cache/bzImage" ]; then
		step "$v: cached bzImage $v-$h"
		ln -sfn "$cache/bzImage" "$B/bzImage-$v"
		return 0
	fi
	src="$B/src-$v"
	out="$B/out-$v"
	if [ "$v" = patched ]; then prepare_src patched "$(hash_of full)"; else prepare_src stock "$h"; fi
	mkdir -p "$out"
	step "$v: configure"
	timeout 300 make -s -C "$src" O="$out" tinyconfig >/dev/null
	timeout 60 "$src/scripts/config" --file "$out/.config" -e 64BIT
	timeout 300 make -s -C "$src" O="$out" olddefconfig >/dev/null
	# shellcheck disable=SC2086
	for o in $CONFIG_ON; do "$src/scripts/config" --file "$out/.config" -e "$o"; done
	for o in $CONFIG_OFF; do "$src/scripts/config" --file "$out/.config" -d "$o"; done
	timeout 300 make -s -C "$src" O="$out" olddefconfig >/dev/null
	# a second round: some options only appear once their parents are on
	for o in $CONFIG_ON; do "$src/scripts/config" --file "$out/.config" -e "$o"; done
	timeout 300 make -s -C "$src" O="$out" olddefconfig >/dev/null
	for o in $CONFIG_CHECK; do
		grep -q "^CONFIG_$o=y$" "$out/.config" ||
			{ echo "build.sh: CONFIG_$o is not =y in $out/.config" >&2; exit 1; }
	done
	step "$v: make -j$JOBS bzImage"
	timeout 1800 make -s -C "$src" O="$out" -j"$JOBS" bzImage > "$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log" >&2; echo "build.sh: $v bzImage failed" >&2; exit 1; }
	if grep -E "warning:" "$out/build.log" | grep -E "kvm|virt/" >&2; then
		echo "build.sh: warnings in KVM files (above)" >&2; exit 1
	fi
	mkdir -p "$cache"
	cp "$out/arch/x86/boot/bzImage" "$cache/bzImage.tmp"
	cp "$out/.config" "$cache/config"
	mv "$cache/bzImage.tmp" "$cache/bzImage"
	ln -sfn "$cache/bzImage" "$B/bzImage-$v"
}

build_selftest() {
	# Built from the patched tree (uapi headers with the new flag); it runs on
	# the stock kernel too, where it skips for lack of the capability.
	local src="$B/src-patched" out="$B/selftest-out" h cache
	h=$(hash_of full)
	cache="$CACHE/selftest-$h"
	if [ -x "$cache/pci_hole_test" ]; then
		step "selftest: cached"
		cp "$cache/pci_hole_test" "$B/pci_hole_test"
		return 0
	fi
	prepare_src patched "$h"
	step "selftest: headers_install"
	rm -rf "$out"
	mkdir -p "$out"
	timeout 300 make -s -C "$src" O="$out/obj" headers_install \
		INSTALL_HDR_PATH="$out/usr" >/dev/null
	step "selftest: make pci_hole_test (static)"
	timeout 900 make -s -C "$src/tools/testing/selftests/kvm" -j"$JOBS" \
		OUTPUT="$out/kvm" KHDR_INCLUDES="-isystem $out/usr/include" \
		EXTRA_CFLAGS="-static" "$out/kvm/x86_64/pci_hole_test" \
		> "$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log" >&2; echo "build.sh: selftest build failed" >&2; exit 1; }
	if grep -q "warning:" "$out/build.log"; then
		grep warning: "$out/build.log" >&2; exit 1
	fi
	mkdir -p "$cache"
	cp "$out/kvm/x86_64/pci_hole_test" "$cache/pci_hole_test"
	cp "$out/kvm/x86_64/pci_hole_test" "$B/pci_hole_test"
}

mkdir -p "$B"
case "$VARIANT" in
stock) build_variant stock ;;
patched) build_variant patched ;;
both) build_variant stock; build_variant patched ;;
esac
[ "$SELFTEST" = 1 ] && build_selftest
step "done"
printf '[build.sh] total %.1f s\n' "$(echo "$(date +%s.%N) - $T0" | bc)"
ls -l "$B"/bzImage-* "$B/pci_hole_test" 2>/dev/null || true
