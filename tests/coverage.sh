#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Line and branch coverage of lib/ by the unit tests (gcov + lcov).
#
#   tests/coverage.sh [--strict]
#
# Configures its own build (PCIHOLE_COVERAGE=ON: --coverage -O0), runs the
# tests labelled "unit" (PCIHOLE_COV_LABEL to change it, e.g. "unit|kvm"),
# and prints a per-file table of lib/, the totals, and every line and branch
# of the pure core (segment.c, bdf.c, layout.c, plan.c) left unexecuted.
# HTML goes to BUILD/coverage-html.  --strict exits non-zero when a core file
# is below 95% of its lines; failing tests are reported but do not stop the
# report, since coverage is wanted most when something is being fixed.
#
# Environment: PCIHOLE_COV_BUILD (default: build-cov in the repo).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PCIHOLE_COV_BUILD:-$root/build-cov}
label=${PCIHOLE_COV_LABEL:-unit}
strict=0
[[ ${1:-} == --strict ]] && strict=1
core=(segment.c bdf.c layout.c plan.c)
rc=(--rc lcov_branch_coverage=1)

for tool in gcov lcov genhtml; do
	command -v $tool >/dev/null || { echo "coverage.sh: $tool not found" >&2; exit 2; }
done

mkdir -p "$build"
cmake -S "$root" -B "$build" -DPCIHOLE_COVERAGE=ON -DCMAKE_BUILD_TYPE=Debug \
	-DPCIHOLE_FUZZ=OFF >"$build/configure.log" 2>&1 ||
	{ cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" >"$build/coverage-build.log" 2>&1 ||
	{ tail -40 "$build/coverage-build.log" >&2; exit 1; }

lcov --quiet --zerocounters --directory "$build"
tests_ok=1
ctest --test-dir "$build" -L "$label" --output-on-failure >"$build/coverage-ctest.log" 2>&1 || tests_ok=0
grep -E "tests passed|tests failed|\(Failed\)|\*\*\*" "$build/coverage-ctest.log" || true

lcov --quiet "${rc[@]}" --capture --directory "$build" --base-directory "$root" \
	--output-file "$build/coverage-all.info" 2>"$build/coverage-lcov.log"
lcov --quiet "${rc[@]}" --extract "$build/coverage-all.info" "$root/lib/*" \
	--output-file "$build/coverage.info" 2>>"$build/coverage-lcov.log"
genhtml --quiet "${rc[@]}" --branch-coverage --output-directory "$build/coverage-html" \
	"$build/coverage.info" 2>>"$build/coverage-lcov.log" || true

# The table, from the tracefile itself: LF/LH lines, BRF/BRH branches, DA and
# BRDA for what stayed cold.
awk -v core="${core[*]}" -v strict="$strict" '
function pct(h, f) { return f ? sprintf("%6.1f%%", 100 * h / f) : "     -" }
function ranges(s,   n, a, i, out, lo, hi) {
	n = split(s, a, " "); out = ""
	for (i = 1; i <= n; i++) {
		lo = hi = a[i]
		while (i < n && a[i + 1] == hi + 1) hi = a[++i]
		out = out (out ? "," : "") (lo == hi ? lo : lo "-" hi)
	}
	return out
}
BEGIN {
	split(core, c, " "); for (i in c) iscore[c[i]] = 1
	printf "%-14s %15s %8s %15s %8s\n", "lib/", "lines", "", "branches", ""
}
/^SF:/ { f = substr($0, 4); sub(".*/", "", f); files[++nf] = f; cold[f] = ""; bcold[f] = "" }
/^DA:/ { split(substr($0, 4), d, ","); if (d[2] == 0) cold[f] = cold[f] " " d[1] }
/^BRDA:/ { split(substr($0, 6), d, ","); if (d[4] == "-" || d[4] == 0) if (index(bcold[f] " ", " " d[1] " ") == 0) bcold[f] = bcold[f] " " d[1] }
/^LF:/ { lf[f] = substr($0, 4) } /^LH:/ { lh[f] = substr($0, 4) }
/^BRF:/ { bf[f] = substr($0, 5) } /^BRH:/ { bh[f] = substr($0, 5) }
END {
	for (i = 1; i <= nf; i++) {
		f = files[i]
		printf "%-14s %7d/%-7d %8s %7d/%-7d %8s%s\n", f, lh[f], lf[f], pct(lh[f], lf[f]),
		       bh[f], bf[f], pct(bh[f], bf[f]), iscore[f] ? "  core" : ""
		tl += lf[f]; th += lh[f]; tbf += bf[f]; tbh += bh[f]
		if (iscore[f]) { cl += lf[f]; ch += lh[f]; cbf += bf[f]; cbh += bh[f]
			if (lf[f] && lh[f] / lf[f] < 0.95) low = low " " f }
	}
	printf "%-14s %7d/%-7d %8s %7d/%-7d %8s\n", "total lib/", th, tl, pct(th, tl), tbh, tbf, pct(tbh, tbf)
	printf "%-14s %7d/%-7d %8s %7d/%-7d %8s\n", "total core", ch, cl, pct(ch, cl), cbh, cbf, pct(cbh, cbf)
	print ""
	for (i = 1; i <= nf; i++) {
		f = files[i]
		if (!iscore[f]) continue
		printf "%-10s lines never run: %s\n", f, cold[f] ? ranges(substr(cold[f], 2)) : "none"
		printf "%-10s lines with a branch never taken: %s\n", f, bcold[f] ? ranges(substr(bcold[f], 2)) : "none"
	}
	if (low) { print "below 95% of lines:" low; if (strict) exit 1 }
}' "$build/coverage.info"
status=$?
echo "HTML: $build/coverage-html/index.html"
((tests_ok)) || { echo "coverage.sh: some tests failed (see $build/coverage-ctest.log)" >&2; }
exit $status
