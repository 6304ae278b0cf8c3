#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Build the libFuzzer harnesses with clang and run each for a bounded time.
#
#   tests/fuzz/run.sh [LIMIT]
#
# LIMIT is the total wall time in seconds shared by the harnesses (default 120),
# or N followed by "r" for N runs per harness (e.g. 2000000r; still capped at
# an hour each).  Every regression input is replayed first.  Exits non-zero on
# any crash, leak, sanitizer report or failed property, and prints the number
# of executions.
#
# Environment:
#   PCIHOLE_FUZZ_BUILD  build directory (default: build-fuzz in the repo)
#   PCIHOLE_FUZZ_JOBS   harnesses to run at once (default 1); with 2 each one
#                       gets the whole time instead of a share
#   PCIHOLE_FUZZ_SEED   libFuzzer -seed (default: random)
#   PCIHOLE_FUZZ_HARNESSES  which to run (default "parse plan")
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${PCIHOLE_FUZZ_BUILD:-$root/build-fuzz}
jobs=${PCIHOLE_FUZZ_JOBS:-1}
limit=${1:-120}
read -ra harnesses <<<"${PCIHOLE_FUZZ_HARNESSES:-parse plan}"
fuzzdir=$root/tests/fuzz

declare -A max_len=([parse]=128 [plan]=2048)

if [[ $limit =~ ^([0-9]+)r$ ]]; then
	runs=${BASH_REMATCH[1]}
	secs=3600
elif [[ $limit =~ ^([0-9]+)s?$ ]]; then
	runs=2147483647
	secs=${BASH_REMATCH[1]}
	if ((jobs < ${#harnesses[@]})); then
		secs=$(( (secs + ${#harnesses[@]} - 1) / ${#harnesses[@]} ))
	fi
	((secs > 0)) || secs=1
else
	echo "usage: $0 [SECONDS | RUNSr]" >&2
	exit 2
fi

command -v clang >/dev/null || { echo "run.sh: clang not found" >&2; exit 2; }
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPCIHOLE_FUZZ=ON -DPCIHOLE_EXAMPLES=OFF >"$build/configure.log" 2>&1 ||
	{ cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" --target "${harnesses[@]/#/fuzz_}" >"$build/fuzz-build.log" 2>&1 ||
	{ tail -50 "$build/fuzz-build.log" >&2; exit 1; }

mkdir -p "$build/fuzz-logs" "$build/fuzz-artifacts"
status=0

# Saved findings first: a fixed bug must stay fixed.
for h in "${harnesses[@]}"; do
	shopt -s nullglob
	regs=("$fuzzdir"/regressions/"$h"-*)
	shopt -u nullglob
	((${#regs[@]})) || continue
	if "$build/tests/fuzz_$h" "${regs[@]}" >"$build/fuzz-logs/$h-regressions.log" 2>&1; then
		echo "fuzz_$h: ${#regs[@]} regression inputs pass"
	else
		echo "fuzz_$h: regression inputs FAIL:" >&2
		grep -E "check failed|ERROR|SUMMARY|Running:" "$build/fuzz-logs/$h-regressions.log" | tail -5 >&2
		status=1
	fi
done

run_one() {
	local h=$1 log=$build/fuzz-logs/$1.log corpus=$build/fuzz-corpus/$1
	local seed=()

	mkdir -p "$corpus"
	[[ -n ${PCIHOLE_FUZZ_SEED:-} ]] && seed=(-seed="$PCIHOLE_FUZZ_SEED")
	# The scratch corpus comes first: libFuzzer writes new inputs there, never into the sources.
	"$build/tests/fuzz_$h" "${seed[@]}" -runs="$runs" -max_total_time="$secs" \
		-timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$h]}" \
		-dict="$fuzzdir/fuzz_$h.dict" -print_final_stats=1 \
		-artifact_prefix="$build/fuzz-artifacts/$h-" \
		"$corpus" "$fuzzdir/corpus_$h" >"$log" 2>&1
}

pids=()
for h in "${harnesses[@]}"; do
	if ((jobs > 1)); then
		run_one "$h" & pids+=($!)
	else
		run_one "$h" && pids+=(0) || pids+=(-1)
	fi
done

total=0
for i in "${!harnesses[@]}"; do
	h=${harnesses[$i]}
	log=$build/fuzz-logs/$h.log
	rc=0
	if ((jobs > 1)); then
		wait "${pids[$i]}" || rc=$?
	else
		((${pids[$i]} == 0)) || rc=1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
	execs=${execs:-0}
	total=$((total + execs))
	if ((rc)); then
		echo "fuzz_$h: FAILED after $execs executions (log: $log)" >&2
		grep -E "check failed|ERROR:|SUMMARY|Test unit written|Base64" "$log" | head -8 >&2
		status=1
	else
		echo "fuzz_$h: $execs executions in ${time:-?} s, no failures"
	fi
done
echo "fuzz total: $total executions"
exit $status
