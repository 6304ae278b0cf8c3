#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Run pcihole-launch in every mode and every scan pattern on a small
# two-segment layout and check its --json report against an independent
# count of what each scan must read (tests/launch_oracle.sh, which replays
# the scan against a model of the configured devices): the guest found
# exactly the configured functions, hole reads are exits in mmio mode (one
# per read) and 0 in the slot modes, present-function and other exits as the
# scan implies.
# A mode the kernel lacks (exit 3) is reported and skipped; only pci-hole may
# be missing.  Exit 77 without /dev/kvm.
#
#   tests/launch_modes.sh PATH/TO/pcihole-launch
set -eu
launcher=$1
oracle=$(cd "$(dirname "$0")" && pwd)/launch_oracle.sh
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not usable here"
	exit 77
fi
exec python3 - "$launcher" "$oracle" <<'PY'
import json, os, subprocess, sys

# The checks below set it themselves where they mean to.
os.environ.pop("PCIHOLE_EXPECT_MODE", None)

launcher, oracle_sh = sys.argv[1], sys.argv[2]
# (segment group, base, first bus, last bus)
segs = [(0, 0xb0000000, 0, 3), (1, 0xc0000000, 2, 3)]
devs = ["00:00.0", "00:02.0", "00:1f.0,multifunction", "00:1f.3", "02:05.0", "0001:03:04.0"]

def key(d):
    b = d.split(",")[0]
    parts = b.split(":")
    seg = int(parts[0], 16) if len(parts) == 3 else 0
    bus, df = int(parts[-2], 16), parts[-1]
    dev, fn = df.split(".")
    return (seg, bus, int(dev, 16), int(fn, 16))

present = {key(d) for d in devs}
multi = {key(d)[:3] for d in devs if d.endswith(",multifunction")}
names = sorted("%04x:%02x:%02x.%x" % k for k in present)

def oracle(scan, extra=(), repeat=1):
    """Exits each scan costs when every access exits: [(hole reads, present accesses)]."""
    p = subprocess.run(["sh", oracle_sh, "--setup", "mmio", "--scan", scan, "--repeat", str(repeat)]
                       + args + list(extra), capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        sys.exit("oracle failed: " + p.stderr)
    out = [(x["hole_reads"], x["present_reads"] + x["present_writes"]) for x in json.loads(p.stdout)]
    return out if repeat > 1 else out[0]

args = []
for s in segs:
    args += ["--segment", "%d:0x%x:%d-%d" % (s[0], s[1], s[2], s[3])]
for d in devs:
    args += ["--device", d]

failures = []
ran = {}
def check(cond, what):
    if not cond:
        failures.append(what)
        print("  FAIL:", what)

def run(mode, scan, extra=()):
    cmd = [launcher, "--mode", mode, "--scan", scan, "--repeat", "2", "--json"] + args + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    label = "%s/%s%s" % (mode, scan, " " + " ".join(extra) if extra else "")
    if p.returncode == 3:
        print("%-34s unavailable: %s" % (label, p.stderr.strip()))
        check(mode == "pci-hole", label + ": only pci-hole may be unavailable, got exit 3")
        check(len(p.stderr.strip().splitlines()) == 1, label + ": exit 3 needs a one-line message")
        return None
    check(p.returncode == 0, "%s: exit %d, stderr: %s" % (label, p.returncode, p.stderr.strip()))
    try:
        r = json.loads(p.stdout)
    except ValueError:
        check(False, label + ": --json output is not JSON: " + p.stdout[:200])
        return None
    s = r["scans"]
    print("%-34s mode %-9s slots %-3d backing %-5s hole reads %s present %s other %s" % (
        label, r["mode"], r["slots"], r["backing"], [x["hole_reads"] for x in s],
        [x["present"] for x in s], [x["other"] for x in s]))
    check(r["ok"] is True, label + ": report says not ok")
    check(sorted(r["functions"]) == names, label + ": functions %s" % r["functions"])
    check(len(s) == 2, label + ": %d scans" % len(s))
    holes, pres = oracle(scan)
    for x in s:
        check(x["ok"] is True and x["found"] == len(present),
              label + ": scan %d found %d of %d" % (x["index"], x["found"], len(present)))
        check(x["present"] == pres, label + ": scan %d present exits %d, want %d" % (x["index"], x["present"], pres))
        check(x["other"] == 2, label + ": scan %d other exits %d, want 2" % (x["index"], x["other"]))
        check(x["hole_writes"] == 0, label + ": scan %d hole writes %d" % (x["index"], x["hole_writes"]))
        if r["mode"] == "mmio":
            check(x["hole_reads"] == holes, label + ": mmio scan %d hole reads %d, want one per read: %d"
                  % (x["index"], x["hole_reads"], holes))
        elif not extra:
            check(x["hole_reads"] == 0, label + ": scan %d hole reads %d, want 0" % (x["index"], x["hole_reads"]))
    if r["mode"] == "mmio":
        check(r["slots"] == 0, label + ": mmio uses %d slots" % r["slots"])
    elif not extra:
        check(r["slots"] == r["runs"] and r["uncovered_pages"] == 0,
              label + ": slots %d for %d runs, %d pages uncovered" % (r["slots"], r["runs"], r["uncovered_pages"]))
    if r["mode"] in ("readonly", "pci-hole"):
        check(r["allones_bytes"] <= 2 << 20, label + ": all-ones memory %d > 2 MiB" % r["allones_bytes"])
    ran[(mode, scan) + tuple(extra)] = r
    return r

for mode in ["mmio", "naive-readonly", "readonly", "pci-hole", "auto"]:
    for scan in ["linux", "firmware", "brute"]:
        run(mode, scan)

# A slot budget of one: the rest of the holes fall back to the mmio path,
# which still answers all-ones, so the guest still finds exactly the same.
for mode in ["readonly", "naive-readonly"]:
    r = run(mode, "linux", ["--slots", "1"])
    if r:
        holes, _ = oracle("linux")
        check(r["slots"] == 1, "%s --slots 1: %d slots" % (mode, r["slots"]))
        check(0 < r["hole_exits_first"] < holes,
              "%s --slots 1: %d hole exits, want between 0 and %d" % (mode, r["hole_exits_first"], holes))

# Hotplug after scan 1: one function appears on bus 1 (splitting a hole run),
# a multifunction device with function 5 appears, and 00:02.0 goes away (its
# page joins two runs).  In the slot modes every later scan must still take
# no hole exit (the slots were re-planned) and find exactly the new set.
hp = ["--hotplug", "01:07.0", "--hotplug", "03:00.0,multifunction", "--hotplug", "03:00.5",
      "--unplug", "00:02.0", "--repeat", "3"]
for mode in ["mmio", "readonly", "pci-hole", "auto"]:
    cmd = [launcher, "--mode", mode, "--json"] + args + hp
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode == 3:
        check(mode == "pci-hole", mode + " hotplug: unavailable")
        continue
    check(p.returncode == 0, "%s hotplug: exit %d: %s" % (mode, p.returncode, p.stderr.strip()))
    if p.returncode != 0:
        continue
    r = json.loads(p.stdout)
    sc = r["scans"]
    print("%-34s mode %-9s slots %d -> %d, hole reads %s, found %s" % (
        mode + " hotplug", r["mode"], r["slots"], r["slots_after_hotplug"],
        [x["hole_reads"] for x in sc], [(x["found"], x["expected"]) for x in sc]))
    check([x["expected"] for x in sc] == [len(present), len(present) + 2, len(present) + 2],
          mode + " hotplug: expected counts %s" % [x["expected"] for x in sc])
    check(all(x["ok"] and x["found"] == x["expected"] for x in sc), mode + " hotplug: scans not ok")
    check(r["hotplug_changes"] == 4, mode + " hotplug: %d changes" % r["hotplug_changes"])
    if r["mode"] != "mmio":
        check(all(x["hole_reads"] == 0 for x in sc), mode + " hotplug: hole exits after re-planning")
        # +01:07.0 splits one run, +03:00.0/.5 split another twice, -00:02.0 joins two: +2.
        check(r["slots_after_hotplug"] == r["slots"] + 2,
              mode + " hotplug: slots %d -> %d" % (r["slots"], r["slots_after_hotplug"]))
    else:
        # After: 01:07.0 and 03:00.0 are no longer fn0 holes, 00:02.0 is one again,
        # and 03:00.0 is multifunction: functions 1-7 are read, 6 of them holes.
        want = oracle("linux", hp[:-2], repeat=3)
        check([(x["hole_reads"], x["present"]) for x in sc] == want,
              "mmio hotplug: (hole reads, present) %s, oracle %s"
              % ([(x["hole_reads"], x["present"]) for x in sc], want))

# Churn: a second thread unplugs and re-plugs 00:02.0 while the guest scans
# every page.  Slots are deleted and created under the running guest; the
# guest must see 00:02.0 or all-ones, and everything else exactly.
for mode in ["mmio", "readonly", "pci-hole", "auto"]:
    cmd = [launcher, "--mode", mode, "--json", "--scan", "brute", "--repeat", "2",
           "--churn", "00:02.0"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode == 3:
        check(mode == "pci-hole", mode + " churn: unavailable")
        continue
    check(p.returncode == 0, "%s churn: exit %d: %s" % (mode, p.returncode, p.stderr.strip()))
    if p.returncode != 0:
        continue
    r = json.loads(p.stdout)
    sc = r["scans"]
    print("%-34s mode %-9s %d toggles, hole reads %s, found %s" % (
        mode + " churn", r["mode"], r["churn_toggles"], [x["hole_reads"] for x in sc],
        [x["found"] for x in sc]))
    check(r["churn_toggles"] > 0, mode + " churn: no toggles")
    check(all(x["ok"] and x["found"] in (len(present) - 1, len(present)) for x in sc),
          mode + " churn: scans %s" % sc)
    check(all(x["hole_writes"] == 0 for x in sc), mode + " churn: hole writes")

# No --device at all: the guest finds nothing and every fn0 read is a hole
# (the launcher once passed its NULL device array to qsort/bsearch: UBSan).
for mode in ["mmio", "readonly"]:
    p = subprocess.run([launcher, "--mode", mode, "--json", "--segment", "0:0xb0000000:0-1"],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, "%s, no device: exit %d: %s" % (mode, p.returncode, p.stderr.strip()))
    if p.returncode == 0:
        r = json.loads(p.stdout)
        s = r["scans"][0]
        print("%-34s mode %-9s found %d, hole reads %d" % (mode + " no device", r["mode"], s["found"], s["hole_reads"]))
        check(r["ok"] is True and r["functions"] == [] and s["found"] == 0 and s["present"] == 0,
              mode + ", no device: %s" % r)
        check(s["hole_reads"] == (64 if r["mode"] == "mmio" else 0),
              mode + ", no device: %d hole reads" % s["hole_reads"])

# PCIHOLE_EXPECT_MODE (set by kernel/boot.sh) turns a silent fallback of auto
# into a failure: the wrong expectation fails, the right one passes.
auto = ran.get(("auto", "linux"))
if auto:

    for want, code in ((auto["mode"], 0), ("mmio" if auto["mode"] != "mmio" else "readonly", 1)):
        env = dict(os.environ, PCIHOLE_EXPECT_MODE=want)
        p = subprocess.run([launcher, "--mode", "auto"] + args, capture_output=True, text=True,
                           env=env, timeout=300)
        print("auto with PCIHOLE_EXPECT_MODE=%-9s exit %d %s" % (want, p.returncode, p.stderr.strip()))
        check(p.returncode == code, "PCIHOLE_EXPECT_MODE=%s: exit %d, want %d" % (want, p.returncode, code))

# A presence map that lacks a configured device (a VMM bug, injected through
# the launcher's test seam): the guest misses it and the launcher must fail.
for mode in ["mmio", "readonly", "naive-readonly"]:
    env = dict(os.environ, PCIHOLE_LAUNCH_TEST_HIDE="00:02.0")
    p = subprocess.run([launcher, "--mode", mode] + args, capture_output=True, text=True,
                       env=env, timeout=300)
    print("%s with 00:02.0 hidden: exit %d, %s" % (mode, p.returncode, p.stderr.strip().splitlines()[:1]))
    check(p.returncode == 1 and "missed 0000:00:02.0" in p.stderr,
          "%s with 00:02.0 hidden: exit %d, want 1 and 'missed 0000:00:02.0'" % (mode, p.returncode))

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
PY
