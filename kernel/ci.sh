#!/bin/bash
# The whole kernel leg in one command (what .ci/run calls, in two phases):
#   build (kernel/build.sh, cached by hash of inputs under $PCIHOLE_KERNEL_CACHE)
#     7.2 stock, 7.2 patched, 7.2 patched with the debug options (KASAN,
#     PROVE_LOCKING, PROVE_RCU, DEBUG_VM, KVM_PROVE_MMU), 6.12 patched (the
#     backport), the selftests; libpcihole's KVM tests and example launcher
#     into kernel/build/lib
#   boot each kernel in QEMU (kernel/boot.sh) and run there:
#     7.2 patched-debug: pci_hole_test and the library's KVM tests must pass
#                        (the library's auto-probe must choose pci-hole), no
#                        splat in the kernel log
#     7.2 patched:       pci_hole_test, upstream's memslot/MMU selftests
#                        (mmu_stress_test too), the launcher benchmark
#                        (README's table); again with kvm.tdp_mmu=0 and with
#                        kvm_amd.npt=0: pci_hole_test and the launcher
#     7.2 stock:         pci_hole_test must skip, the same upstream selftests
#                        (mmu_stress_test only if it failed on patched: the
#                        baseline), the launcher benchmark (auto: readonly)
#                        (--full: the library tests too, which must choose readonly)
#     6.12 patched:      pci_hole_test-6.12 must pass (--full: the library tests too)
#   and print the upstream selftests side by side (kernel/build/upstream-results.txt).
# The upstream selftests run on the non-debug kernels: under TCG the debug
# kernel makes them ~8x slower (561 s against 72 s), more than CI's budget
# holds beside the library's tests, which are what the series changes.
# Exits non-zero unless every boot passes.
#
# usage: kernel/ci.sh [--lib-build DIR] [--build-only|--boot-only] [--no-debug]
#                     [--no-6.12] [--no-upstream] [--full]
#   --build-only  build the kernels, selftests and the library, boot nothing
#   --boot-only   boot what an earlier --build-only built (CI boots while
#                 it runs the host tests)
#   --no-debug    no debug kernel: the library tests run on bzImage-patched
#   --full        also run the library's KVM tests on stock 7.2 and on 6.12
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIB="$HERE/build/lib"
DEBUG=1
OLD=1
UPSTREAM=1
FULL=0
PHASES=build,boot
while [ $# -gt 0 ]; do
	case "$1" in
	--lib-build) LIB="$2"; shift 2 ;;
	--no-debug) DEBUG=0; shift ;;
	--no-6.12) OLD=0; shift ;;
	--no-upstream) UPSTREAM=0; shift ;;
	--full) FULL=1; shift ;;
	--build-only) PHASES=build; shift ;;
	--boot-only) PHASES=boot; shift ;;
	-h|--help) sed -n '2,31p' "$0"; exit 0 ;;
	*) echo "ci.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

T0=$SECONDS
t() { printf '[ci.sh] %-28s %4d s (total %d s)\n' "$1" $((SECONDS - $2)) $((SECONDS - T0)); }

has() { case ",$PHASES," in *",$1,"*) return 0 ;; esac; return 1; }

if has build; then
	s=$SECONDS
	# bzImage-patched (non-debug) is built in any case: the upstream
	# selftests and the benchmark run on it, the QEMU leg boots its L2
	# guests in it, and it is an incremental build on top of stock.
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
fi
has boot || exit 0

tests=()
for b in "$LIB"/tests/test_kvm_*; do
	[ -x "$b" ] && [ -f "$b" ] && tests+=(-- "$b")
done
[ ${#tests[@]} -gt 0 ] || { echo "ci.sh: no library KVM tests found in $LIB" >&2; exit 1; }
launch=()
[ -x "$LIB/examples/pcihole-launch" ] && launch=(-- "$LIB/examples/pcihole-launch" --bench)
[ ${#launch[@]} -gt 0 ] || { echo "ci.sh: no pcihole-launch in $LIB" >&2; exit 1; }

up=()
[ "$UPSTREAM" = 1 ] && up=(--upstream-extra)
pass=0 fail=0 failed=""
boot() {	# $1 = kernel name[:label], rest = boot.sh arguments
	local k=${1%%:*} l=${1#*:} s=$SECONDS; shift
	local log=()
	[ "$l" = "$k" ] || log=(--log "$HERE/build/boot-$k-$l.log")
	if timeout 2000 "$HERE/boot.sh" --kernel "$k" --timeout 1800 "${log[@]}" "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1)); failed="$failed $l"
	fi
	t "boot $l" "$s"
}
# The library's KVM tests run on the patched kernel (pci-hole); on stock
# (readonly) and on 6.12 only with --full: the host-level CI already runs
# them in readonly mode, and each run costs ~4.5 min under TCG.
lib_other=()
[ "$FULL" = 1 ] && lib_other=("${tests[@]}")
# mmu_stress_test maps a 1 GiB slot: give L1 room for it.
if [ "$DEBUG" = 1 ]; then
	# A quarter of the long tests' iterations, fault injection at every 4th
	# call: under TCG the debug kernel runs them ~10x slower than patched.
	# The host CI and --no-debug run them in full.
	boot patched-debug --mem 2048 --env PCIHOLE_TEST_SCALE=4 "${tests[@]}"
	boot patched --mem 2048 "${up[@]}" "${launch[@]}"
else
	boot patched --mem 2048 "${up[@]}" "${tests[@]}" "${launch[@]}"
fi
# mmu_stress_test (no hole slot in it, ~3 min under TCG) runs on stock only
# as the baseline for a failure on patched: is it the series or the base?
up_stock=()
if [ "$UPSTREAM" = 1 ]; then
	up_stock=(--upstream)
	grep -aq "^STEP-PASS: mmu_stress_test" "$HERE/build/boot-patched.log" ||
		up_stock=(--upstream-extra)
fi
boot stock --mem 2048 "${up_stock[@]}" "${launch[@]}" "${lib_other[@]}"
# The other x86 MMUs: the shadow-paging-of-TDP MMU (tdp_mmu=0) and shadow
# paging (npt=0) take the hole fault through other code; pci_hole_test and
# the launcher's scans in each (seconds each on the non-debug kernel).
boot patched:tdp_mmu0 --append "kvm.tdp_mmu=0" "${launch[@]}"
boot patched:npt0 --append "kvm_amd.npt=0" "${launch[@]}"
[ "$OLD" = 1 ] && boot patched-6.12 "${lib_other[@]}"

if [ "$UPSTREAM" = 1 ]; then
	# One line per upstream selftest: its result on each kernel.
	res() {
		local r
		r=$(grep -ahoE "^STEP-(PASS|FAIL|SKIP): $2\b" "$1" | head -1 | cut -d: -f1 | sed 's/STEP-//')
		echo "${r:-not run}"
	}
	{
		printf '%-36s %-14s %-14s\n' test patched stock
		grep -ahoE "^STEP-(PASS|FAIL|SKIP): [a-z_0-9]+" "$HERE/build/boot-patched.log" |
		while read -r _ name; do
			case "$name" in pci_hole_test|test_kvm_*|pcihole*) continue ;; esac
			printf '%-36s %-14s %-14s\n' "$name" \
				"$(res "$HERE/build/boot-patched.log" "$name")" \
				"$(res "$HERE/build/boot-stock.log" "$name")"
		done
	} > "$HERE/build/upstream-results.txt"
	cat "$HERE/build/upstream-results.txt"
fi
echo "kernel leg: $pass passed, $fail failed${failed:+ (failed:$failed)}"
[ "$fail" -eq 0 ]
