#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Run every unit test (ctest label "unit") of an existing build under valgrind.
#
#   tests/valgrind.sh BUILD_DIR
#
# Each test's command, working directory and environment come from ctest, so
# the programs run exactly as ctest would run them, only under memcheck.
# Tests whose program is not an ELF executable (shell scripts such as the
# export check) are listed as skipped: valgrind would only check the shell.
# Exits non-zero if any test fails or valgrind reports an error or a
# definitely lost block.  The build must not use sanitizers (PCIHOLE_SANITIZE).
set -euo pipefail

if (($# != 1)) || [[ ! -f $1/CMakeCache.txt ]]; then
	echo "usage: $0 BUILD_DIR (a configured CMake build)" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not found" >&2; exit 2; }
command -v jq >/dev/null || { echo "valgrind.sh: jq not found" >&2; exit 2; }
if grep -Eq '^PCIHOLE_SANITIZE:[A-Z]+=.+' "$build/CMakeCache.txt" ||
   grep -Eq '^PCIHOLE_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
	echo "valgrind.sh: $build is built with sanitizers; use a plain build" >&2
	exit 2
fi

list() {
	ctest --test-dir "$build" -L unit --show-only=json-v1
}

# Build what ctest cannot find yet, once.
if list | jq -e '[.tests[] | select(.command == null)] | length > 0' >/dev/null; then
	cmake --build "$build" -j"$(nproc)" >/dev/null
fi
json=$(list)
if ! jq -e '.tests | length > 0' >/dev/null <<<"$json"; then
	echo "valgrind.sh: no unit tests in $build" >&2
	exit 1
fi

vg=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=yes --quiet)
logdir=$build/valgrind-logs
mkdir -p "$logdir"
failed=() passed=0 skipped=()

n=$(jq '.tests | length' <<<"$json")
for ((i = 0; i < n; i++)); do
	t=$(jq -c ".tests[$i]" <<<"$json")
	name=$(jq -r '.name' <<<"$t")
	if jq -e '.command == null' >/dev/null <<<"$t"; then
		echo "MISSING $name (not built)"
		failed+=("$name")
		continue
	fi
	mapfile -t cmd < <(jq -r '.command[]' <<<"$t")
	wd=$(jq -r '[.properties[]? | select(.name == "WORKING_DIRECTORY") | .value][0] // empty' <<<"$t")
	mapfile -t envs < <(jq -r '.properties[]? | select(.name == "ENVIRONMENT") | .value[]' <<<"$t")
	# A shell running a test script is ELF too, but memcheck would only check the shell.
	if [[ $(head -c4 "${cmd[0]}" 2>/dev/null | od -An -c | tr -d ' ') != '177ELF' ]] ||
	   [[ ${cmd[0]##*/} =~ ^(sh|bash|dash)$ ]]; then
		echo "SKIP    $name (${cmd[0]##*/} is not a test program)"
		skipped+=("$name")
		continue
	fi
	log=$logdir/$name.log
	start=$SECONDS
	if (cd "${wd:-$build}" && env "${envs[@]}" timeout 3600 "${vg[@]}" "${cmd[@]}") >"$log" 2>&1; then
		echo "PASS    $name ($((SECONDS - start)) s)"
		passed=$((passed + 1))
	else
		echo "FAIL    $name ($((SECONDS - start)) s), log: $log"
		grep -E '^==[0-9]+==' "$log" | head -30 || tail -30 "$log"
		failed+=("$name")
	fi
done

echo "valgrind: $passed passed, ${#failed[@]} failed, ${#skipped[@]} skipped (not ELF)"
((${#failed[@]} == 0))
