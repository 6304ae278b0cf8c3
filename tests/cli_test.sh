#!/usr/bin/env bash
# pcihole-plan end to end: output of the README example, JSON, and errors.
set -euo pipefail
plan=$1
fail() { echo "FAIL: $*"; exit 1; }
# shellcheck disable=SC2054 # the commas separate the BDFs of one argument
q35=(--segment 0:0xb0000000:0-255 --present 00:00.0,00:01.0,00:02.0,00:1f.0,00:1f.2,00:1f.3)

out=$("$plan" "${q35[@]}")
grep -q '^runs: 5 (fewest slots' <<<"$out" || fail "table: not 5 runs: $out"
grep -q 'hole pages: 65530,' <<<"$out" || fail "table: not 65530 hole pages"
[ "$(grep -cE '^ +[0-9]+  0x' <<<"$out")" = 5 ] || fail "table: not 5 rows"

json=$("$plan" "${q35[@]}" --json)
python3 - "$json" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
assert j["nr_runs"] == 5 and len(j["runs"]) == 5, j
assert sum(r["pages"] for r in j["runs"]) == 65530
assert j["hole_pages"] == 65530 and j["uncovered_pages"] == 0
assert all(r["memory_size"] == r["pages"] * 4096 for r in j["runs"])
assert [r["slot"] for r in j["runs"]] == list(range(5))
ends = [r["guest_phys_addr"] + r["memory_size"] for r in j["runs"]]
assert ends[-1] == 0xc0000000
PY

# the same plan from a file, with the segment in ACPI MCFG form
f=$(mktemp)
trap 'rm -f "$f"' EXIT
printf '# q35\nmcfg 0:0xb0000000:0-255\npresent 00:00.0,00:01.0\npresent 00:02.0 # gpu\npresent 00:1f.0,00:1f.2,00:1f.3\n' >"$f"
[ "$("$plan" --file "$f" --json)" = "$json" ] || fail "--file differs from the command line"

# a budget leaves pages to the mmio path
out=$("$plan" "${q35[@]}" --budget 2 --json)
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["nr_slots"]==2 and j["uncovered_pages"]==15, j' "$out"

# bad arguments: exit 2, one line naming the argument
bad() {
	local what=$1; shift
	local err rc=0
	err=$("$plan" "$@" 2>&1 >/dev/null) || rc=$?
	[ $rc = 2 ] || fail "$what: exit $rc, want 2"
	[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "$what: not one line: $err"
	grep -qF -- "$what: " <<<"$err" || fail "$what: message does not name it: $err"
}
bad --present --present 00:20.0
bad --present --present 00:00.8
bad --present --present 00:00.0x
bad --present --present ''
bad --present --present 00:00.0,,00:01.0
bad --present --present 0:00:00.0:0
bad --present --present 01:00.0 --segment 0:0xb0000000:0-0
bad --present --present 00:01.0,00:01.0
bad --segment --segment 0:0xb0080000:0-1
bad --segment --segment 0:0xb0000000:5-4
bad --segment --segment 0:0xb0000000:0-255 --segment 1:0xbff00000:0-0
bad --segment --segment 0:0xb0000000:0-255 --segment 0:0xc0000000:255-255
bad --segment --segment 0:0xffffffffff000000:0-255
bad --segment --segment junk
bad --mcfg --mcfg 0:0xb0000001:0-1
bad --budget --budget -1
bad --budget --budget 12x
bad --flags --flags rw
bad --bogus --bogus
bad extra extra
bad --file --file /nonexistent
printf 'segmnt 0:0:0\n' >"$f"
bad "$f:1" --file "$f"

# Numbers as the library parses them: decimal, or hex after 0x; no octal, sign or space.
# (12 separate present functions: 13 runs, so budgets 8, 9 and 10 all differ.)
# shellcheck disable=SC2054
many=(--present 00:01.0,00:03.0,00:05.0,00:07.0,00:09.0,00:0b.0,00:0d.0,00:0f.0,00:11.0,00:13.0,00:15.0,00:17.0)
slots() { "$plan" "${many[@]}" --budget "$1" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["nr_slots"])'; }
[ "$(slots 010)" = 10 ] || fail "--budget 010 is not ten"
[ "$(slots 09)" = 9 ] || fail "--budget 09 is not nine"
[ "$(slots 0x8)" = 8 ] || fail "--budget 0x8 is not eight"
bad --budget --budget ' 1'
bad --budget --budget +2
bad --budget --budget 0x
bad --budget --budget 4294967296
bad --slot-base --slot-base -0
bad --phys-bits --phys-bits 010
bad --phys-bits --phys-bits 31
bad --phys-bits --phys-bits 65

# An out-of-range --mcfg is a --mcfg error, a bad file line names the line.
bad --mcfg --mcfg 0:0xfffffffffff00000:0-255
bad --mcfg --phys-bits 32 --mcfg 0:0xfff00000:0-1
printf 'segment 0:0xb0000000:0-255\nmcfg 1:0xb0000000:0-0\n' >"$f"
bad "$f:2" --file "$f"

# Messages are one line whatever the argument holds.
bad --present --present $'00:00.0,\n00:01.0'
bad --segment --segment $'0:0xb0000000:0-1\nfoo'
err=$("$plan" --present $'x\ny' 2>&1 >/dev/null || true)
grep -qF 'x\ny' <<<"$err" || fail "newline not escaped: $err"

# --file: a line of any length is one line; a comment hides all of it.
printf 'mcfg 0:0xb0000000:0-255\n#%300s segment 1:0xc0000000:0-0\n' '' >"$f"
out=$("$plan" --file "$f" --json) || fail "--file with a long comment line"
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert len(j["segments"]) == 1, j' "$out" ||
	fail "a directive after column 255 of a comment line took effect"
printf 'present %s00:00.0\n' "$(printf '00:%02x.0,' $(seq 1 31))" >"$f"
out=$("$plan" --file "$f" --json) || fail "--file with a long present line"
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert len(j["present"]) == 32, j' "$out" ||
	fail "a long present line lost functions"
# ... and must not be read past: a directory, an unreadable file, a NUL byte.
bad --file --file /
bad --file --file /proc/self/mem
printf 'present 00:00.0\0,00:01.0\n' >"$f"
bad "$f:1" --file "$f"
echo "cli ok"
