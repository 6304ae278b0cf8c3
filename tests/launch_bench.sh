#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Run examples/bench.sh once on a small layout and check the table's shape
# and its exact columns (hole exits, slots, the config exits by class of
# mmio / holes / holes+shadow against tests/launch_oracle.sh); never the
# timings, which depend on the host.  Exit 77 without /dev/kvm.
#
#   tests/launch_bench.sh SRCDIR PATH/TO/pcihole-launch
set -eu
src=$1
launcher=$2
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not usable here"
	exit 77
fi
out=$(sh "$src/examples/bench.sh" --buses 4 --repeat 2 --launcher "$launcher")
printf '%s\n' "$out"
fail=0
need() { printf '%s\n' "$out" | grep -Eq -- "$1" || { echo "FAIL: no line matching: $1"; fail=1; }; }
need 'NOT representative'
# 4 buses x 32 devices - 4 present fn0s + 5 absent functions of 00:1f = 129 hole reads.
need '^mmio +0 none .* 129 +1\.0x +1\.0x$'
need '^naive-readonly +[0-9]+ anon .* 0 +[0-9.]+x +[0-9.]+x$'
need '^readonly +[0-9]+ (hugetlb|thp|4k) .* 0 +[0-9.]+x +[0-9.]+x$'
need '^pci-hole '
need '^auto=(pci-hole|readonly) '
for scan in linux firmware; do
	t=' +[0-9.]+ +[0-9.]+x$'	# first-ms, first-x
	need "^$scan +mmio +[0-9]+ +0 +[0-9]+ +[0-9]+ +0 +0 +[0-9]+ +- +0 +[0-9.]+ +1\\.0x\$"
	need "^$scan +holes +0 +0 +[0-9]+ +[0-9]+ +0 +0 +[0-9]+ +[0-9.]+% +[0-9]+$t"
	need "^$scan +holes\\+shadow +0 +0 +0 +0 +0 +[0-9]+ +[0-9]+ +[0-9.]+% +1$t"
	# n/a without the kernel/ series; else no read exits, more slots than 1.
	need "^$scan +pci-hole\\+shadow +(n/a: |0 +0 +0 +0 +0 +[0-9]+ +[0-9]+ +[0-9.]+% +([2-9]|[1-9][0-9]+)$t)"
done
if printf '%s\n' "$out" | grep -q FAILED; then echo "FAIL: a mode failed"; fail=1; fi

# --json is one JSON document with a result per mode.
sh "$src/examples/bench.sh" --buses 2 --repeat 2 --json --launcher "$launcher" >"${TMPDIR:-/tmp}/launch_bench.$$.json"
python3 -c 'import json, subprocess, sys
d = json.load(open(sys.argv[1]))
modes = [r["label"] for r in d["results"]]
assert modes[:3] == ["mmio", "naive-readonly", "readonly"] and "pci-hole" in modes and modes[-1] == "auto", modes
for r in d["results"]:
    assert r["exit"] == 0 or (r["label"] == "pci-hole" and r["exit"] == 3), r
    if r["exit"] == 0:
        assert r["report"]["ok"] is True, r
# The exit classes, exactly as the oracle counts them for the layout bench.sh uses.
layout = ["--segment", "0:0xb0000000:0-1"]
for dev in ["00:00.0", "00:01.0", "00:02.0", "00:1f.0,multifunction", "00:1f.2", "00:1f.3"]:
    layout += ["--device", dev]
setups = {"mmio": "mmio", "holes": "holes", "holes+shadow": "shadow", "pci-hole+shadow": "shadow"}
cls = d["exit_classes"]
assert [(c["scan"], c["setup"]) for c in cls] == [(s, t) for s in ("linux", "firmware")
                                                   for t in ("mmio", "holes", "holes+shadow", "pci-hole+shadow")], cls
for c in cls:
    if c["setup"] == "pci-hole+shadow" and c["exit"] == 3:
        continue        # no KVM_MEM_PCI_HOLE in this kernel
    assert c["exit"] == 0, c
    want = json.loads(subprocess.run(["sh", sys.argv[2], "--setup", setups[c["setup"]], "--scan", c["scan"]]
                                     + layout, check=True, capture_output=True, text=True).stdout)[0]
    for k in ("hole_reads", "hole_writes", "present_reads", "present_writes", "shadow_reads", "shadow_writes"):
        assert c[k] == want[k], (c, want)
    assert c["config"] == sum(want[k] for k in want if k != "found"), c
print("json ok:", modes, "exit classes:", [(c["scan"], c["setup"], c.get("config", "n/a")) for c in cls])' \
	"${TMPDIR:-/tmp}/launch_bench.$$.json" "$src/tests/launch_oracle.sh" || fail=1
rm -f "${TMPDIR:-/tmp}/launch_bench.$$.json"

# --plot draws a PNG where gnuplot is installed (never installed from here).
if command -v gnuplot >/dev/null 2>&1; then
	png=${TMPDIR:-/tmp}/launch_bench.$$.png
	sh "$src/examples/bench.sh" --buses 2 --repeat 2 --plot "$png" --launcher "$launcher" >/dev/null
	if [ "$(head -c 4 "$png" | tail -c 3)" = PNG ]; then echo "plot ok"; else echo "FAIL: no PNG from --plot"; fail=1; fi
	rm -f "$png"
else
	echo "gnuplot not installed: --plot not tested"
fi
exit $fail
