#!/bin/bash
# The whole kernel leg in one command: build the stock and the patched 6.12
# kernels and the selftest (kernel/build.sh, cached), build libpcihole's KVM
# tests and the example launcher into kernel/build/lib, then boot both kernels
# in QEMU and run everything there:
#   patched: pci_hole_test must pass, the library's auto-probe must choose pci-hole
#   stock:   pci_hole_test must skip, the library's auto-probe must choose readonly
# Exits non-zero unless both boots pass.
#
# usage: kernel/ci.sh [--lib-build DIR]   (default kernel/build/lib)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIB="$HERE/build/lib"
while [ $# -gt 0 ]; do
	case "$1" in
	--lib-build) LIB="$2"; shift 2 ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "ci.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

T0=$SECONDS
t() { printf '[ci.sh] %-28s %4d s (total %d s)\n' "$1" $((SECONDS - $2)) $((SECONDS - T0)); }

s=$SECONDS
timeout 3600 "$HERE/build.sh" --kernel both
t "build.sh" $s

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

pass=0 fail=0
for k in patched stock; do
	s=$SECONDS
	if timeout 1500 "$HERE/boot.sh" --kernel "$k" --timeout 1200 "${steps[@]}"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
	fi
	t "boot $k" $s
done
echo "kernel leg: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
