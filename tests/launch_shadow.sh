#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Shadowed functions end to end (issue 14, launcher part): pcihole-launch
# with and without --shadow, in readonly and mmio modes, under the linux,
# firmware and brute scans, on a two-segment layout.  Checks, per scan:
#   - the exits by class equal tests/launch_oracle.sh's count, which replays
#     the scan against a model of the configured devices (no number here
#     comes from a previous run);
#   - readonly --shadow: 0 read exits of any class (holes and shadowed
#     functions alike), and every guest write exits and is applied: the
#     write count equals the oracle's, and the guest's read-backs (BAR
#     sizing masks, the command register after the INTx toggle, each BAR
#     restored), served from the shadow page without an exit, are what the
#     sizing protocol promises (the launcher checks every value and says ok);
#   - readonly without --shadow: hole reads 0, present functions trapped;
#   - a device model that leaves the shadow page stale fails (test seam);
#   - the launcher's own (non-hugetlb) all-ones memfd works (test seam);
#   - all functions shadowed: one slot per window; hotplug (--hotplug /
#     --unplug) of shadowed functions changes no slot; --churn still holds;
#   - pci-hole --shadow exits 3 with one line, naive-readonly --shadow 2.
# Exit 77 without /dev/kvm; never asserts a timing.
#
#   tests/launch_shadow.sh PATH/TO/pcihole-launch
set -eu
launcher=$1
oracle=$(cd "$(dirname "$0")" && pwd)/launch_oracle.sh
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not usable here"
	exit 77
fi
exec python3 - "$launcher" "$oracle" <<'PY'
import json, os, subprocess, sys

os.environ.pop("PCIHOLE_EXPECT_MODE", None)
launcher, oracle = sys.argv[1], sys.argv[2]
segs = ["0:0xb0000000:0-3", "1:0xc0000000:2-3"]
devs = ["00:00.0", "00:02.0", "00:1f.0,multifunction", "00:1f.3", "02:05.0", "0001:03:04.0"]
layout = []
for s in segs:
    layout += ["--segment", s]
for d in devs:
    layout += ["--device", d]
CLASSES = ["hole_reads", "hole_writes", "present_reads", "present_writes",
           "shadow_reads", "shadow_writes"]

failures = []
def check(cond, what):
    if not cond:
        failures.append(what)
        print("  FAIL:", what)

def expected(setup, scan, args, repeat):
    p = subprocess.run(["sh", oracle, "--setup", setup, "--scan", scan, "--repeat", str(repeat)]
                       + args, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        sys.exit("oracle failed: " + p.stderr)
    return json.loads(p.stdout)

def launch(mode, scan, args, shadow, repeat=2, env=None):
    cmd = [launcher, "--mode", mode, "--scan", scan, "--repeat", str(repeat), "--json"] + args
    if shadow:
        cmd.append("--shadow")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)

def run(mode, scan, shadow, args=layout, repeat=2, label=None):
    setup = {("mmio", False): "mmio", ("readonly", False): "holes",
             ("readonly", True): "shadow", ("mmio", True): "mmio-shadow"}[(mode, shadow)]
    label = label or "%s%s/%s" % (mode, " --shadow" if shadow else "", scan)
    p = launch(mode, scan, args, shadow, repeat)
    if p.returncode == 3 and mode == "readonly":
        print("%-36s unavailable: %s" % (label, p.stderr.strip()))
        return None
    check(p.returncode == 0, "%s: exit %d: %s" % (label, p.returncode, p.stderr.strip()))
    if p.returncode != 0:
        return None
    r = json.loads(p.stdout)
    want = expected(setup, scan, args, repeat)
    print("%-36s slots %-2d shadowed %-2d exits %s" % (label, r["slots"], r["shadowed"],
          [[x[c] for c in CLASSES] for x in r["scans"]]))
    check(r["ok"] is True, label + ": launcher says a scan read something wrong")
    check(r["shadow"] is shadow, label + ": shadow %s" % r["shadow"])
    for x, w in zip(r["scans"], want):
        got = {c: x[c] for c in CLASSES}
        exp = {c: w[c] for c in CLASSES}
        check(got == exp, "%s: scan %d exits %s, oracle %s" % (label, x["index"], got, exp))
        check(x["found"] == w["found"] == x["expected"],
              "%s: scan %d found %d, oracle %d" % (label, x["index"], x["found"], w["found"]))
        check(x["present"] == sum(got[c] for c in CLASSES[2:]) and
              x["config"] == sum(got.values()), label + ": present/config totals")
        if setup == "shadow":
            check(x["hole_reads"] + x["present_reads"] + x["shadow_reads"] == 0,
                  "%s: scan %d: %d read exits, want 0" % (label, x["index"],
                  x["hole_reads"] + x["present_reads"] + x["shadow_reads"]))
            check(x["present_writes"] == 0, label + ": a shadowed function's write classed trapped")
            if scan != "brute":
                check(x["shadow_writes"] > 0, label + ": the scan wrote nothing")
        if setup == "holes":
            check(x["hole_reads"] == 0, label + ": hole reads %d" % x["hole_reads"])
    return r

nfns = len(devs)
for scan in ["linux", "firmware", "brute"]:
    base = run("mmio", scan, False)
    run("mmio", scan, True)
    holes = run("readonly", scan, False)
    sh = run("readonly", scan, True)
    if sh:
        # Every present function shadowed: each window is one run of holes
        # and shadow pages, so one slot per window.
        check(sh["shadowed"] == nfns, "shadowed %d of %d" % (sh["shadowed"], nfns))
        check(sh["slots"] == len(segs) and sh["runs"] == len(segs),
              "readonly --shadow/%s: %d slots / %d runs, want one per window (%d)"
              % (scan, sh["slots"], sh["runs"], len(segs)))
    if holes and sh:
        check(holes["slots"] > sh["slots"], "shadowing did not merge runs")

# A device model that forgets the shadow page: the guest's sizing read-backs
# (no exit) see stale bytes, and the launcher must fail.
env = dict(os.environ, PCIHOLE_LAUNCH_TEST_STALE_SHADOW="1")
p = launch("readonly", "linux", layout, True, env=env)
if p.returncode != 3:
    print("stale shadow page: exit %d, %s" % (p.returncode, p.stderr.strip().splitlines()[:1]))
    check(p.returncode == 1 and "BAR0 sizing" in p.stderr,
          "stale shadow page: exit %d, want 1 and a BAR0 sizing mismatch" % p.returncode)
# The same seam without --shadow changes nothing: trapped reads go to the model.
p = launch("readonly", "linux", layout, False, env=env)
check(p.returncode in (0, 3), "stale-shadow seam without --shadow: exit %d" % p.returncode)

# Where huge pages are reserved, --shadow replaces the library's hugetlb
# all-ones memfd by one of its own (shadow pages need 4 KiB mappings): the
# library must accept it and the counts stay the oracle's.
env = dict(os.environ, PCIHOLE_LAUNCH_TEST_OWN_MEMFD="1")
p = launch("readonly", "firmware", layout, True, env=env)
if p.returncode != 3:
    check(p.returncode == 0, "own all-ones memfd: exit %d: %s" % (p.returncode, p.stderr.strip()))
    if p.returncode == 0:
        r = json.loads(p.stdout)
        want = expected("shadow", "firmware", layout, 2)
        print("%-36s backing %s, exits %s" % ("readonly --shadow, own memfd", r["backing"],
              [[x[c] for c in CLASSES] for x in r["scans"]]))
        check(r["ok"] is True and r["backing"] == "4k", "own all-ones memfd: %s" % r["backing"])
        check([{c: x[c] for c in CLASSES} for x in r["scans"]] ==
              [{c: w[c] for c in CLASSES} for w in want], "own all-ones memfd: exits")

# Hotplug of shadowed functions: a function appears on bus 1 (it was shadowed
# while absent), a multifunction device with function 5 appears, 00:02.0 goes
# away.  The pages change under the slots; no slot changes at all.
hp = ["--hotplug", "01:07.0", "--hotplug", "03:00.0,multifunction", "--hotplug", "03:00.5",
      "--unplug", "00:02.0"]
for mode in ["readonly", "mmio"]:
    for scan in ["linux", "firmware"]:
        r = run(mode, scan, True, layout + hp, repeat=3, label="%s --shadow hotplug/%s" % (mode, scan))
        if r:
            check(r["hotplug_changes"] == 4, "hotplug: %d changes" % r["hotplug_changes"])
            check(r["shadowed"] == nfns + 3, "hotplug: %d shadowed" % r["shadowed"])
            if mode == "readonly":
                check(r["slots_after_hotplug"] == r["slots"] == len(segs),
                      "readonly --shadow hotplug/%s: slots %d -> %d, want %d throughout"
                      % (scan, r["slots"], r["slots_after_hotplug"], len(segs)))

# Churn: a second thread unplugs and plugs the shadowed 00:02.0 while the
# guest scans (and writes its BARs).  Its mapping changes under the running
# guest; everything else must hold, and holes never exit.
for scan in ["linux", "brute"]:
    p = launch("readonly", scan, layout + ["--churn", "00:02.0"], True, repeat=3)
    if p.returncode == 3:
        continue
    check(p.returncode == 0, "churn/%s: exit %d: %s" % (scan, p.returncode, p.stderr.strip()))
    if p.returncode == 0:
        r = json.loads(p.stdout)
        sc = r["scans"]
        print("%-36s %d toggles, found %s, exits %s" % ("readonly --shadow churn/" + scan,
              r["churn_toggles"], [x["found"] for x in sc], [[x[c] for c in CLASSES] for x in sc]))
        check(r["churn_toggles"] > 0, "churn/%s: no toggles" % scan)
        check(all(x["ok"] and x["found"] in (nfns - 1, nfns) for x in sc), "churn/%s: %s" % (scan, sc))
        check(all(x["hole_reads"] == 0 and x["present_reads"] == 0 for x in sc),
              "churn/%s: hole or trapped read exits" % scan)

# pci-hole with shadows: PCI_HOLE slots for the holes, read-only slots for
# the shadow pages, where the kernel has KVM_MEM_PCI_HOLE; exit 3 elsewhere.
p = launch("pci-hole", "linux", layout, False)
ph = p.returncode == 0
p = launch("pci-hole", "linux", layout, True)
print("pci-hole --shadow: exit %d %s" % (p.returncode, p.stderr.strip()))
if ph:
    r = json.loads(p.stdout)
    sc = r["scans"]
    check(p.returncode == 0 and all(x["hole_reads"] == 0 and x["present_reads"] == 0 and
                                    x["shadow_reads"] == 0 for x in sc),
          "pci-hole --shadow: exit %d, read exits %s" % (p.returncode, sc))
else:
    check(p.returncode == 3 and len(p.stderr.strip().splitlines()) == 1,
          "pci-hole --shadow without the kernel series: exit %d, want 3 and one line" % p.returncode)

# Where shadow pages cannot go.
p = launch("naive-readonly", "linux", layout, True)
check(p.returncode == 2 and "--shadow" in p.stderr, "naive-readonly --shadow: exit %d" % p.returncode)

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
PY
