#!/bin/bash
# Build Debian's Linux 7.2 (default) or 6.12 stock and/or with the
# KVM_MEM_PCI_HOLE series, plus the pci_hole_test selftest and, for 7.2,
# upstream's memslot/MMU selftests.
#
# usage: kernel/build.sh [--version 7.2|6.12] [--kernel stock|patched|debug|LIST]
#                        [--no-selftest] [-j N]
#   --kernel takes one or more of stock, patched, debug (comma separated);
#            "both" = stock,patched.  debug = the patched kernel with KASAN,
#            PROVE_LOCKING, PROVE_RCU, DEBUG_VM and KVM_PROVE_MMU.
#
# Outputs (kernel/build/ is git-ignored), SUF = "" for 7.2, "-6.12" for 6.12:
#   kernel/build/bzImage-stock$SUF, bzImage-patched$SUF, bzImage-patched-debug$SUF
#   kernel/build/pci_hole_test$SUF          (static selftest binary)
#   kernel/build/selftests$SUF/             (static upstream selftests, 7.2 only)
# Series: kernel/patches/ for 7.2, kernel/patches-6.12/ for the 6.12 backport.
# Cache: $PCIHOLE_KERNEL_CACHE (default kernel/build/cache)/<name>-<hash>/
# where hash covers the Debian package version, the series and the config
# options. A bzImage whose hash is already cached is not rebuilt; point
# PCIHOLE_KERNEL_CACHE outside the work tree to keep it across fresh clones.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
B="$HERE/build"
CACHE=${PCIHOLE_KERNEL_CACHE:-$B/cache}
VERSION=7.2
KERNELS=stock,patched
SELFTEST=1
JOBS=2
while [ $# -gt 0 ]; do
	case "$1" in
	--version) VERSION="$2"; shift 2 ;;
	--kernel) KERNELS="$2"; shift 2 ;;
	--no-selftest) SELFTEST=0; shift ;;
	-j) JOBS="$2"; shift 2 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ "$KERNELS" = both ] && KERNELS=stock,patched
for k in ${KERNELS//,/ }; do
	case "$k" in stock|patched|debug) ;; *) echo "build.sh: bad --kernel $k" >&2; exit 2 ;; esac
done
case "$VERSION" in
7.2) SUF=""; PATCHDIR="$HERE/patches"; SELFDIR=x86 ;;
6.12) SUF="-6.12"; PATCHDIR="$HERE/patches-6.12"; SELFDIR=x86_64 ;;
*) echo "build.sh: bad --version $VERSION" >&2; exit 2 ;;
esac
[ "$JOBS" -gt 2 ] && JOBS=2   # two cores on these machines

T0=$(date +%s.%N)
step_t=$T0
step_name=""
step() {	# report how long the previous step took, start the next one
	local now; now=$(date +%s.%N)
	[ -z "$step_name" ] || printf '[build.sh] %-46s %7.1f s\n' "$step_name" \
		"$(echo "$now - $step_t" | bc)"
	step_name=$1
	step_t=$now
}

# ---------------------------------------------------------------- packages
PKGS="build-essential bc flex bison libelf-dev libssl-dev busybox-static
      qemu-system-x86 cpio xz-utils git rsync"
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
TARBALL=$("$HERE/get-source.sh" --version "$VERSION" --print-tarball)
SRCVER=$(dpkg-query -W -f='${Version}' "linux-source-$VERSION")

# ------------------------------------------------------------------ config
# tinyconfig is 32-bit: 64BIT first, then what KVM, the serial console, the
# initramfs, the library's memfd backend and a QEMU inside (L2 guests: the
# QEMU leg runs Debian 12's qemu-system-x86_64 -accel kvm in these kernels)
# need.
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
# The debug kernel: what a KVM maintainer runs the MMU selftests under.
# SLUB_TINY (tinyconfig) excludes KASAN; outline KASAN builds faster.
DEBUG_ON="DEBUG_KERNEL EXPERT KASAN KASAN_GENERIC KASAN_OUTLINE PROVE_LOCKING
	PROVE_RCU DEBUG_VM KVM_PROVE_MMU DEBUG_ATOMIC_SLEEP DEBUG_LIST
	STACKTRACE BUG DEBUG_BUGVERBOSE"
DEBUG_OFF="SLUB_TINY KASAN_INLINE"
DEBUG_CHECK="KASAN PROVE_LOCKING PROVE_RCU DEBUG_VM KVM_PROVE_MMU"

series_files() {	# the patches in order, without the cover letter
	local p
	for p in "$PATCHDIR"/[0-9]*.patch; do
		[ -f "$p" ] && [ "${p##*/}" != 0000-cover-letter.patch ] && echo "$p"
	done
	return 0
}

# awk: the diff sections of a patch, without those under tools/
# shellcheck disable=SC2016
KERNEL_PART='FNR == 1 {d = 0} /^diff --git /{d = 1; skip = ($3 ~ /^a\/tools\//)} d && !skip'

hash_of() {	# $1 = stock|patched|debug (what the bzImage depends on) or full (everything)
	{
		echo "$VERSION $SRCVER"
		echo "$CONFIG_ON / $CONFIG_OFF"
		case "$1" in
		# the bzImage does not depend on the selftest's files under tools/
		patched) series_files | xargs awk "$KERNEL_PART" ;;
		debug) series_files | xargs awk "$KERNEL_PART"; echo "$DEBUG_ON / $DEBUG_OFF" ;;
		# what an object tree's configuration depends on
		stock-config|patched-config) ;;
		debug-config) echo "$DEBUG_ON / $DEBUG_OFF" ;;
		full) series_files | xargs cat ;;
		esac
	} | sha256sum | cut -c1-16
}

# One source tree and one object tree per version for stock and patched: the
# patched kernel is an incremental build on top of the stock one (only what
# the series touches recompiles), which halves the leg's cold time.  The
# tree records its state (stock or the series' hash) in .pcihole-hash.
TREE="$B/src$SUF"
prepare_src() {	# $1 = stock|patched: $TREE in that state
	local v=$1 h p state=""
	if [ "$v" = stock ]; then h=stock; else h=$(hash_of full); fi
	[ -f "$TREE/.pcihole-hash" ] && state=$(cat "$TREE/.pcihole-hash")
	[ "$state" = "$h" ] && return 0
	if [ "$state" != stock ]; then
		# absent, or patched with another series: start from the tarball
		step "unpack $TARBALL"
		"$HERE/get-source.sh" --version "$VERSION" --unpack "$TREE"
		echo stock > "$TREE/.pcihole-hash"
		[ "$v" = stock ] && return 0
	fi
	step "apply $(series_files | wc -l) patches ($PATCHDIR)"
	[ -n "$(series_files)" ] || { echo "build.sh: no patches in $PATCHDIR" >&2; exit 1; }
	for p in $(series_files); do
		timeout 60 patch -s -p1 -d "$TREE" --no-backup-if-mismatch < "$p" ||
			{ echo "build.sh: $p does not apply" >&2; exit 1; }
	done
	echo "$h" > "$TREE/.pcihole-hash"
}

set_opts() {	# $1 = .config, $2 = -e|-d, rest = options
	local cfg=$1 how=$2 o; shift 2
	for o in "$@"; do "$SRC_TREE/scripts/config" --file "$cfg" "$how" "$o"; done
}

build_variant() {	# $1 = stock|patched|debug
	local v=$1 name h src out cache o
	name="$v"; [ "$v" = debug ] && name=patched-debug
	name="$name$SUF"
	h=$(hash_of "$v")
	cache="$CACHE/$name-$h"
	if [ -f "$cache/bzImage" ]; then
		step "$name: cached bzImage $name-$h"
		ln -sfn "$cache/bzImage" "$B/bzImage-$name"
		return 0
	fi
	if [ "$v" = stock ]; then prepare_src stock; else prepare_src patched; fi
	src=$TREE
	SRC_TREE=$src
	# stock and patched share an object tree (same options); debug has its own
	if [ "$v" = debug ]; then out="$B/out-debug$SUF"; else out="$B/out$SUF"; fi
	mkdir -p "$out"
	if [ -f "$out/.pcihole-config" ] && [ "$(cat "$out/.pcihole-config")" = "$(hash_of "$v-config")" ]; then
		step "$name: olddefconfig (incremental)"
		timeout 300 make -s -C "$src" O="$out" olddefconfig >/dev/null
	else
		step "$name: configure"
		rm -rf "$out"
		mkdir -p "$out"
		timeout 300 make -s -C "$src" O="$out" tinyconfig >/dev/null
		set_opts "$out/.config" -e 64BIT
		timeout 300 make -s -C "$src" O="$out" olddefconfig >/dev/null
		# Twice: some options only appear once their parents are on.
		for o in 1 2; do
			# shellcheck disable=SC2086
			set_opts "$out/.config" -e $CONFIG_ON
			# shellcheck disable=SC2086
			set_opts "$out/.config" -d $CONFIG_OFF
			if [ "$v" = debug ]; then
				# shellcheck disable=SC2086
				set_opts "$out/.config" -e $DEBUG_ON
				# shellcheck disable=SC2086
				set_opts "$out/.config" -d $DEBUG_OFF
			fi
			timeout 300 make -s -C "$src" O="$out" olddefconfig >/dev/null
		done
		hash_of "$v-config" > "$out/.pcihole-config"
	fi
	for o in $CONFIG_CHECK $([ "$v" = debug ] && echo "$DEBUG_CHECK"); do
		grep -q "^CONFIG_$o=y$" "$out/.config" ||
			{ echo "build.sh: CONFIG_$o is not =y in $out/.config" >&2; exit 1; }
	done
	step "$name: make -j$JOBS bzImage"
	timeout 5400 make -s -C "$src" O="$out" -j"$JOBS" bzImage > "$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log" >&2; echo "build.sh: $name bzImage failed" >&2; exit 1; }
	if grep -E "warning:" "$out/build.log" | grep -E "kvm|virt/" >&2; then
		echo "build.sh: warnings in KVM files (above)" >&2; exit 1
	fi
	mkdir -p "$cache"
	cp "$out/arch/x86/boot/bzImage" "$cache/bzImage.tmp"
	cp "$out/.config" "$cache/config"
	mv "$cache/bzImage.tmp" "$cache/bzImage"
	ln -sfn "$cache/bzImage" "$B/bzImage-$name"
}

# Upstream selftests that exercise memslots and the MMU; they run on the
# stock and the patched kernel (kernel/boot.sh --upstream).
UPSTREAM_TESTS="set_memory_region_test memslot_modification_stress_test
	memslot_perf_test mmu_stress_test kvm_page_table_test
	pre_fault_memory_test dirty_log_test guest_memfd_test
	x86/private_mem_kvm_exits_test"

build_selftest() {
	# Built from the patched tree (uapi headers with the new flag); they
	# run on the stock kernel too, where pci_hole_test skips.
	local src=$TREE out="$B/selftest-out$SUF" h cache t targets
	h=$( { hash_of full; cat "$HERE/bench/holebench.c"; } | sha256sum | cut -c1-16)
	cache="$CACHE/selftest$SUF-$h"
	if [ -x "$cache/pci_hole_test" ]; then
		step "selftest$SUF: cached"
		cp "$cache/pci_hole_test" "$B/pci_hole_test$SUF"
		cp "$cache/holebench" "$B/holebench$SUF"
		rm -rf "$B/selftests$SUF"
		[ -d "$cache/upstream" ] && cp -r "$cache/upstream" "$B/selftests$SUF"
		return 0
	fi
	prepare_src patched
	step "selftest$SUF: headers_install"
	rm -rf "$out"
	mkdir -p "$out"
	timeout 300 make -s -C "$src" O="$out/obj" headers_install \
		INSTALL_HDR_PATH="$out/usr" >/dev/null
	targets="$out/kvm/$SELFDIR/pci_hole_test"
	if [ "$VERSION" = 7.2 ]; then
		for t in $UPSTREAM_TESTS; do targets="$targets $out/kvm/$t"; done
	fi
	step "selftest$SUF: make $(echo "$targets" | wc -w) tests (static)"
	# shellcheck disable=SC2086
	timeout 1200 make -s -C "$src/tools/testing/selftests/kvm" -j"$JOBS" \
		OUTPUT="$out/kvm" KHDR_INCLUDES="-isystem $out/usr/include" \
		EXTRA_CFLAGS="-static" $targets > "$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log" >&2; echo "build.sh: selftest build failed" >&2; exit 1; }
	if grep "warning:" "$out/build.log" | grep -q pci_hole; then
		grep warning: "$out/build.log" >&2; exit 1
	fi
	mkdir -p "$cache.tmp/upstream"
	cp "$out/kvm/$SELFDIR/pci_hole_test" "$cache.tmp/pci_hole_test"
	# The READONLY-vs-PCI_HOLE benchmark (kernel/bench.sh) needs REGION2's uapi.
	step "selftest$SUF: holebench (static)"
	timeout 300 gcc -O2 -Wall -Wextra -Werror -static -isystem "$out/usr/include" \
		-o "$cache.tmp/holebench" "$HERE/bench/holebench.c"
	if [ "$VERSION" = 7.2 ]; then
		for t in $UPSTREAM_TESTS; do cp "$out/kvm/$t" "$cache.tmp/upstream/"; done
	fi
	rm -rf "$cache"
	mv "$cache.tmp" "$cache"
	cp "$cache/pci_hole_test" "$B/pci_hole_test$SUF"
	cp "$cache/holebench" "$B/holebench$SUF"
	rm -rf "$B/selftests$SUF"
	cp -r "$cache/upstream" "$B/selftests$SUF"
}

mkdir -p "$B"
# stock first: the patched build is incremental on top of it
for k in stock patched debug; do
	case ",$KERNELS," in *",$k,"*) build_variant "$k" ;; esac
done
[ "$SELFTEST" = 1 ] && build_selftest
# the object trees only serve incremental builds within one run, or by hand
[ -n "${PCIHOLE_KEEP_OBJ:-}" ] || rm -rf "$B/out$SUF" "$B/out-debug$SUF"
step "done"
printf '[build.sh] total %.1f s\n' "$(echo "$(date +%s.%N) - $T0" | bc)"
ls -l "$B"/bzImage-* "$B/pci_hole_test$SUF" 2>/dev/null || true
