#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# examples/sample-vmm.c end to end, in both documented teardown orders and in
# mmio mode: the guest must read all-ones from the hole (also after writing
# it), the device model's ids, its own interrupt-line write back, and the
# hotplugged function; the hole accesses that exit must be the ones the mode
# leaves to the mmio path; no fd may be left open.  Exit 77 without /dev/kvm.
#
#   tests/launch_sample.sh PATH/TO/sample-vmm
set -u
vmm=$1
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not usable here"
	exit 77
fi
fail=0
need() { # output, fixed string
	printf '%s\n' "$1" | grep -qxF -- "$2" || { echo "FAIL: no line '$2'"; fail=1; }
}

for args in "" "--destroy-first" "--mmio" "--mmio --destroy-first"; do
	echo "== sample-vmm $args"
	# shellcheck disable=SC2086 # $args is zero to two words
	out=$("$vmm" $args 2>&1)
	rc=$?
	printf '%s\n' "$out"
	[ "$rc" = 0 ] || { echo "FAIL: exit $rc"; fail=1; }
	mode=$(printf '%s\n' "$out" | sed -n 's/^mode \([a-z-]*\): .*/\1/p')
	case $args in
	*--mmio*) [ "$mode" = mmio ] || { echo "FAIL: --mmio ran mode '$mode'"; fail=1; } ;;
	*) [ -n "$mode" ] || { echo "FAIL: no mode line"; fail=1; } ;;
	esac
	need "$out" "hole 00:03.0 reads 0xffffffff"
	need "$out" "00:02.0 reads 0x00021b36"
	need "$out" "00:02.0 register 0x3c after writing 0x0b: 0x0000010b"
	need "$out" "hole 00:03.0 register 0x3c after writing 0x0b: 0xffffffff"
	need "$out" "hotplugged 00:04.0 reads 0x00031b36"
	# Slot modes: only the write to the hole exits (read-only or pci-hole
	# slot); mmio: both reads of the hole and the write.  The device model
	# sees the id read, the write, the read back and the hotplugged read.
	if [ "$mode" = mmio ]; then holes=3; else holes=1; fi
	need "$out" "exits: $holes hole accesses answered by pcihole_classify, 4 to the device model"
	case $args in
	*--destroy-first*) need "$out" "teardown: VM closed, then pcihole_ctx_destroy(); fds left open: 0" ;;
	*) need "$out" "teardown: pcihole_ctx_detach(), then VM closed; fds left open: 0" ;;
	esac
	need "$out" "OK"
done

"$vmm" --bogus >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] || { echo "FAIL: --bogus exits $rc, want 2"; fail=1; }
[ "$fail" = 0 ] && echo "sample-vmm ok"
exit "$fail"
