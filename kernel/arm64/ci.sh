#!/bin/bash
# The arm64 leg in one command: cross-build libpcihole and its KVM tests for
# arm64 (cmake/toolchain-aarch64.cmake), build the stock and the patched arm64
# Linux 7.2 kernels (kernel/arm64/build.sh, cached), boot each in
# qemu-system-aarch64 (TCG, virt with EL2) and run there:
#   patched: the arm64 pci_hole_test selftest must pass, the library's
#            KVM tests must pass with auto choosing pci-hole
#   stock:   the same KVM tests must pass with auto choosing readonly
# With --64k also a stock kernel with 64 KiB pages (host page size tests).
# Exits non-zero unless every boot passes.  If kernel/patches holds no series
# yet, the patched boot is reported SKIPPED (and --require-patched fails).
#
# usage: kernel/arm64/ci.sh [--64k] [--require-patched] [--lib-build DIR]
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LIB="$HERE/build/lib"
K64=0
REQUIRE_PATCHED=0
while [ $# -gt 0 ]; do
	case "$1" in
	--64k) K64=1; shift ;;
	--require-patched) REQUIRE_PATCHED=1; shift ;;
	--lib-build) LIB="$2"; shift 2 ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) echo "ci.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

T0=$SECONDS
t() { printf '[arm64/ci.sh] %-28s %4d s (total %d s)\n' "$1" $((SECONDS - $2)) $((SECONDS - T0)); }

s=$SECONDS
"$HERE/setup.sh"
t "packages" $s

have_series=0
ls "$ROOT"/kernel/patches/[0-9]*.patch >/dev/null 2>&1 && have_series=1
kernels=stock
[ "$have_series" = 1 ] && kernels=stock,patched
[ "$K64" = 1 ] && kernels=$kernels,stock64k
s=$SECONDS
sel=(); [ "$have_series" = 1 ] && sel=(--selftest)
timeout 5400 "$HERE/build.sh" --kernel "$kernels" "${sel[@]}"
t "build.sh $kernels" $s

s=$SECONDS
timeout 300 cmake -S "$ROOT" -B "$LIB" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchain-aarch64.cmake" \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPCIHOLE_EXAMPLES=OFF >/dev/null
timeout 1200 cmake --build "$LIB" -j2 >/dev/null
t "library cross-build" $s

# The mmio and readonly modes behave the same on both kernels: the long
# hotplug / fault-injection / concurrency programs run on the patched kernel
# only (all three modes there), the stock kernel runs the rest (auto must
# choose readonly) unless there is no patched boot.
LONG="test_kvm_fault test_kvm_hotplug test_kvm_concurrency test_kvm_shadow"
steps=() short=()
for b in "$LIB"/tests/test_kvm_*; do
	{ [ -x "$b" ] && [ -f "$b" ]; } || continue
	steps+=(-- "$b")
	case " $LONG " in *" ${b##*/} "*) ;; *) short+=(-- "$b") ;; esac
done
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -I"$ROOT/include" -o "$LIB/pcihole-bench-arm64" \
	"$HERE/bench.c" "$LIB/libpcihole.a" -lpthread
steps+=(-- "$LIB/pcihole-bench-arm64")
short+=(-- "$LIB/pcihole-bench-arm64")
[ ${#steps[@]} -gt 0 ] || { echo "ci.sh: no library KVM tests in $LIB" >&2; exit 1; }

pass=0 fail=0 skip=0
boot() {	# $1 = kernel, $2 = all|short, rest = boot.sh options
	local k=$1 which=$2 s=$SECONDS; shift 2
	local run=("${steps[@]}")
	[ "$which" = all ] || run=("${short[@]}")
	if timeout 1500 "$HERE/boot.sh" --kernel "$k" --timeout 1200 "$@" "${run[@]}"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
	fi
	t "boot $k" "$s"
}
if [ "$have_series" = 1 ]; then
	boot patched all --selftest
	boot stock short
else
	echo "arm64/ci.sh: patched kernel SKIPPED: kernel/patches has no series yet"
	skip=$((skip + 1))
	[ "$REQUIRE_PATCHED" = 0 ] || fail=$((fail + 1))
	boot stock all
fi
# 64 KiB pages: the bench proves the clipping (its expected exits follow
# the host page size); the exact-count tests assume 4 KiB host pages.
if [ "$K64" = 1 ]; then
	steps=(-- "$LIB/pcihole-bench-arm64")
	boot stock64k all
fi
echo "arm64 leg: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
