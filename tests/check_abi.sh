#!/bin/sh
# The built libpcihole.so against the ABI baseline committed in lib/libpcihole.abi
# (abidw of the 1.0 release): any change to an existing type or symbol fails;
# added symbols are fine (they go into a new version node of lib/libpcihole.map).
# Moving the baseline is a deliberate act, with the version:
#   tests/check_abi.sh --update build/libpcihole.so
# Exit 77 (SKIPPED) without Debian's abigail-tools.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
base=$here/lib/libpcihole.abi
if [ "${1:-}" = --update ]; then
	abidw --headers-dir "$here/include" --no-corpus-path --out-file "$base" "$2"
	echo "baseline written: $base"
	exit 0
fi
so=$1
command -v abidiff >/dev/null 2>&1 || { echo "abidiff not installed (apt-get install abigail-tools): skipped"; exit 77; }
[ -f "$base" ] || { echo "no baseline $base"; exit 1; }
rc=0
abidiff --no-added-syms --headers-dir2 "$here/include" "$base" "$so" || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "ABI of $so differs from $base (abidiff exit $rc): move the version and the baseline on purpose"
	exit 1
fi
echo "ABI ok: $so matches $base (abidiff, added symbols allowed)"
