#!/bin/bash
# The whole kernel leg in one command (what .ci/run calls):
#   build (kernel/build.sh, cached by hash of inputs under $PCIHOLE_KERNEL_CACHE)
#     7.2 stock, 7.2 patched with the debug options (KASAN, PROVE_LOCKING,
#     PROVE_RCU, DEBUG_VM, KVM_PROVE_MMU), 6.12 patched (the backport), the
#     selftests; libpcihole's KVM tests and example launcher into kernel/build/lib
#   boot each kernel in QEMU (kernel/boot.sh) and run there (non-debug 7.2
#   patched: pci_hole_test only):
#     7.2 patched-debug: pci_hole_test must pass, upstream memslot/MMU selftests
#                        pass (or skip), the library's auto-probe must choose
#                        pci-hole, no splat in the kernel log
#     7.2 stock:         pci_hole_test must skip, the same upstream selftests
#                        (--full: the library tests too, which must choose readonly)
#     6.12 patched:      pci_hole_test-6.12 must pass (--full: the library tests too)
#   and print the upstream selftests side by side (kernel/build/upstream-results.txt).
# Exits non-zero unless every boot passes.
#
# usage: kernel/ci.sh [--lib-build DIR] [--no-debug] [--no-6.12] [--no-upstream] [--full]
#   --no-debug  boot the non-debug patched 7.2 kernel (bzImage-patched) instead
#   --full      also run the library's KVM tests on stock 7.2 and on 6.12
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIB="$HERE/build/lib"
DEBUG=1
OLD=1
UPSTREAM=1
FULL=0
while [ $# -gt 0 ]; do
	case "$1" in
	--lib-build) LIB="$2"; shift 2 ;;
	--no-debug) DEBUG=0; shift ;;
	--no-6.12) OLD=0; shift ;;
	--no-upstream) UPSTREAM=0; shift ;;
	--full) FULL=1; shift ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "ci.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

T0=$SECONDS
t() { printf '[ci.sh] %-28s %4d s (total %d s)\n' "$1" $((SECONDS - $2)) $((SECONDS - T0)); }

PATCHED=patched
[ "$DEBUG" = 1 ] && PATCHED=patched-debug
s=$SECONDS
# bzImage-patched (non-debug) is built in any case: the QEMU leg boots its
# L2 guests in it, and it is an incremental build on top of stock.
if [ "$DEBUG" = 1 ]; then K72=stock,patched,debug; else K72=stock,patched; fi
timeout 3000 "$HERE/build.sh" --version 7.2 --kernel "$K72"
t "build.sh 7.2 ($K72)" $s
if [ "$OLD" = 1 ]; then
	s=$SECONDS
	timeout 2400 "$HERE/build.sh" --version 6.12 --kernel patched
	t "build.sh 6.12 (patched)" $s
fi

s=$SECONDS
for p in cmake pkg-config libcmocka-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q "$p" >/dev/null
done
timeout 300 cmake -S "$ROOT" -B "$LIB" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
timeout 1200 cmake --build "$LIB" -j2 >/dev/null
t "library build" $s

steps=()
for b in "$LIB"/tests/test_kvm_*; do
	[ -x "$b" ] && [ -f "$b" ] && steps+=(-- "$b")
done
[ -x "$LIB/examples/pcihole-launch" ] && steps+=(-- "$LIB/examples/pcihole-launch" --bench)
[ ${#steps[@]} -gt 0 ] || { echo "ci.sh: no library KVM tests found in $LIB" >&2; exit 1; }

up=()
[ "$UPSTREAM" = 1 ] && up=(--upstream)
pass=0 fail=0 failed=""
boot() {	# $1 = kernel name, rest = boot.sh arguments
	local k=$1 s=$SECONDS; shift
	if timeout 2000 "$HERE/boot.sh" --kernel "$k" --timeout 1800 "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1)); failed="$failed $k"
	fi
	t "boot $k" "$s"
}
# mmu_stress_test maps a 1 GiB slot: give L1 room for it.
# The library's KVM tests run on the patched kernel (pci-hole); on stock
# (readonly) and on 6.12 only with --full: the host-level CI already runs
# them in readonly mode, and each run costs ~4.5 min under TCG.
lib_other=()
[ "$FULL" = 1 ] && lib_other=("${steps[@]}")
boot "$PATCHED" --mem 2048 "${up[@]}" "${steps[@]}"
boot stock --mem 2048 "${up[@]}" "${lib_other[@]}"
# the non-debug kernel other legs use: the selftest only
[ "$DEBUG" = 1 ] && boot patched
[ "$OLD" = 1 ] && boot patched-6.12 "${lib_other[@]}"

if [ "$UPSTREAM" = 1 ]; then
	# One line per upstream selftest: its result on each kernel.
	res() { grep -ahoE "^STEP-(PASS|FAIL|SKIP): $2\b" "$1" | head -1 | cut -d: -f1 | sed 's/STEP-//'; }
	{
		printf '%-36s %-14s %-14s\n' test "$PATCHED" stock
		grep -ahoE "^STEP-(PASS|FAIL|SKIP): [a-z_0-9]+" "$HERE/build/boot-stock.log" |
		while read -r _ name; do
			case "$name" in pci_hole_test|test_kvm_*|pcihole*) continue ;; esac
			printf '%-36s %-14s %-14s\n' "$name" \
				"$(res "$HERE/build/boot-$PATCHED.log" "$name")" \
				"$(res "$HERE/build/boot-stock.log" "$name")"
		done
	} > "$HERE/build/upstream-results.txt"
	cat "$HERE/build/upstream-results.txt"
fi
echo "kernel leg: $pass passed, $fail failed${failed:+ (failed:$failed)}"
[ "$fail" -eq 0 ]
