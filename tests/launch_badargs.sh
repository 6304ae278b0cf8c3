#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Bad arguments make pcihole-launch print one line naming the argument on
# stderr, nothing on stdout, and exit 2, before it touches /dev/kvm (so this
# test needs no KVM).
#
#   tests/launch_badargs.sh PATH/TO/pcihole-launch
set -u
launcher=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect NEEDLE ARGS...: exit 2, exactly one stderr line containing NEEDLE.
expect() {
	needle=$1
	shift
	"$launcher" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" != 2 ] || [ "$lines" != 1 ] || [ -s "$tmp/out" ] ||
		! grep -qF -- "$needle" "$tmp/err"; then
		printf "FAIL: %s -> exit %s, %s stderr line(s), want exit 2 and one line naming '%s':\n" "$*" "$rc" "$lines" "$needle"
		sed 's/^/    /' "$tmp/err" "$tmp/out"
		fail=1
	else
		printf "ok: %s -> %s\n" "$*" "$(cat "$tmp/err")"
	fi
}

expect "--device 00:20.0" --device 00:20.0
expect "--device 0:0:0" --device 0:0:0
expect "--device 00:02.8" --device 00:02.8
expect "--device xx" --device xx
expect "--device 00:02.0,foo" --device 00:02.0,foo
expect "duplicate" --device 00:02.0 --device 00:02.0
expect "duplicate" --device 00:02.0 --device 0000:00:02.0
expect "--device 05:00.0" --segment 0:0xb0000000:0-3 --device 05:00.0
expect "--device 0001:00:00.0" --device 0001:00:00.0
expect "--device 00:02.1" --device 00:02.0 --device 00:02.1
expect "--mode foo" --mode foo
expect "--mode" --mode
expect "--scan sideways" --scan sideways
expect "--repeat 0" --repeat 0
expect "--repeat x" --repeat x
expect "--slots -1" --slots -1
expect "--segment 0:0xb0000000" --segment 0:0xb0000000
expect "--segment 0:0xb0080000:0-1" --segment 0:0xb0080000:0-1
expect "--segment 1:0xb0100000:0-1" --segment 0:0xb0000000:0-3 --segment 1:0xb0100000:0-1
expect "--segment 0:0x100000000:0-0" --segment 0:0x100000000:0-0
expect "--segment 0:0xfff00000:0-1" --segment 0:0xfff00000:0-1
expect "--segment 0:0x100000:0-0" --segment 0:0x100000:0-0
expect "--bogus" --bogus
expect "stray" stray
expect "--plot-data x" --plot-data x
expect "--hotplug 00:03.1" --hotplug 00:03.1 --repeat 2
expect "--hotplug 00:20.0" --hotplug 00:20.0 --repeat 2
expect "--hotplug 00:02.0" --device 00:02.0 --hotplug 00:02.0 --repeat 2
expect "--unplug 00:04.0" --device 00:02.0 --unplug 00:04.0 --repeat 2
expect "--device 00:03.1" --device 00:03.0,multifunction --device 00:03.1 --unplug 00:03.0 --repeat 2
expect "--hotplug" --hotplug 00:03.0
expect "--churn 00:09.0" --device 00:02.0 --churn 00:09.0
expect "--churn 00:02.0" --device 00:02.0 --churn 00:02.0 --mode naive-readonly
expect "--churn 00:03.0" --device 00:03.0,multifunction --device 00:03.1 --churn 00:03.0
expect "--churn 00:02.0" --device 00:02.0 --churn 00:02.0 --hotplug 00:04.0 --repeat 2
expect "--hotplug" --hotplug 00:03.0 --repeat 2 --mode naive-readonly
expect "--unplug" --device 00:03.0 --unplug 00:03.0 --repeat 2 --bench
expect "--device 00:20.0" --bench --device 00:20.0

# Numbers as the library parses them: decimal, or hex after 0x.  A trailing
# --bogus stops an accepted value before it reaches /dev/kvm.
expect "--repeat 02000000" --repeat 02000000 --bogus
expect "--repeat  1" --repeat " 1" --bogus
expect "--slots +2" --slots +2 --bogus
expect "--slots 0x" --slots 0x --bogus
expect "--slots 0x10000" --slots 0x10000 --bogus
expect "--bogus" --repeat 08 --slots 0x1f --bogus

# No --device at all: no qsort() or bsearch() of a NULL array (UBSan aborts).
expect "--unplug 00:02.0" --unplug 00:02.0 --repeat 2
expect "--churn 00:02.0" --churn 00:02.0

# Control bytes in an argument are escaped: still one line.
nl=$(printf 'foo\nbar')
expect 'unknown mode' --mode "$nl"
expect '--device foo\nbar' --device "$nl"
expect '--scan foo\x09bar' --scan "$(printf 'foo\tbar')"

# And the help is not an error.
"$launcher" --help >"$tmp/out" 2>&1 || { echo "FAIL: --help exits $?"; fail=1; }
grep -q -- "--mode" "$tmp/out" || { echo "FAIL: --help does not list --mode"; fail=1; }
exit $fail
