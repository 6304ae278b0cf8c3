#!/usr/bin/env python3
"""Judge the L1 console logs of examples/qemu/ci.sh and print the table.

usage: check.py [--report FILE] KERNEL=LOG [KERNEL=LOG ...]

Every check is on counts and lists; timings are reported, never judged.
Exit status 0 only if every check passed for every log.
"""
import json
import re
import sys

HOLE_READS_OFF_MIN = 8000
# The cases ci.sh runs on each L1 kernel (see its case table)
EXPECTED = {
    "stock": ["microvm-off", "microvm-auto", "q35-off", "q35-auto", "q35-portio-off",
              "q35-portio-auto", "microvm-hotplug"],
    "patched": ["microvm-off", "microvm-auto", "microvm-readonly", "q35-off", "q35-auto",
                "microvm-hotplug"],
}
# Shadowed functions (pcihole-shadow=on): machine -> L1 kernels that run
# the holes + shadow case (readonly on stock, pci-hole on patched)
SHADOW = {"microvm": "stock", "q35": "patched"}
for _m, _k in SHADOW.items():
    EXPECTED[_k].append(_m + "-shadow")


def parse(path):
    cases = {}
    order = []
    boot = ""
    alldone = False
    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\r\n")
            if line.startswith("L1-BOOT"):
                boot = line
            elif line.startswith("L1-ALL-DONE"):
                alldone = True
            m = re.match(r"L1-(SERIAL|QMP|QEMUOUT|CASE-BEGIN|CASE-END|NOTE|HOTPLUG) (\S+) ?(.*)", line)
            if not m:
                continue
            kind, name, rest = m.groups()
            c = cases.setdefault(name, {"serial": [], "qmp": [], "qemuout": [], "notes": [],
                                        "rc": None})
            if name not in order:
                order.append(name)
            if kind == "SERIAL":
                c["serial"].append(rest)
            elif kind == "QMP":
                c["qmp"].append(rest)
            elif kind == "QEMUOUT":
                c["qemuout"].append(rest)
            elif kind == "CASE-END":
                c["rc"] = int(rest.split("rc=")[1]) if "rc=" in rest else None
            elif kind == "CASE-BEGIN":
                kv = dict(x.split("=") for x in rest.split() if "=" in x)
                c["l1_start"] = float(kv.get("start", 0))
                c["l1_done"] = float(kv.get("done", 0))
            else:
                c["notes"].append(kind + " " + rest)
    return boot, alldone, order, cases


def devlist(serial, marker):
    out, on = [], False
    for l in serial:
        if l.startswith(marker + "-BEGIN"):
            on, out = True, []
        elif l.startswith(marker + "-END"):
            on = False
        elif on and l.startswith(marker + " "):
            bdf, ven, dev, cls = l.split()[1:5]
            out.append((bdf, int(ven, 16), int(dev, 16), int(cls, 16) >> 8))
    return sorted(out)


def cfglist(serial):
    """{bdf: (size, sha256)} of the guest's sysfs config reads."""
    out = {}
    for l in serial:
        if l.startswith("L2-CFG "):
            bdf, size, sha = l.split()[1:4]
            out[bdf] = (int(size), sha)
    return out


def cfgdump(serial):
    return [l[len("L2-CFGDUMP "):] for l in serial if l.startswith("L2-CFGDUMP ")]


def qmp_json(c):
    res = []
    for l in c["qmp"]:
        try:
            res.append(json.loads(l))
        except ValueError:
            pass
    return res


def pcihole_infos(c):
    infos = []
    for j in qmp_json(c):
        r = j.get("return")
        if isinstance(r, str) and "requested=" in r:
            kv = {}
            for tok in r.split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    kv[k] = int(v) if re.fullmatch(r"\d+", v) else v
            infos.append(kv)
    return infos


def query_pci(c, last=True):
    lists = []
    for j in qmp_json(c):
        r = j.get("return")
        if isinstance(r, list) and r and isinstance(r[0], dict) and "devices" in r[0]:
            out = []

            def walk(devs):
                for d in devs:
                    out.append(("0000:%02x:%02x.%x" % (d["bus"], d["slot"], d["function"]),
                                d["id"]["vendor"], d["id"]["device"], d["class_info"]["class"]))
                    br = d.get("pci_bridge")
                    if br:
                        walk(br.get("devices", []))
            for b in r:
                walk(b["devices"])
            lists.append(sorted(out))
    return lists


def kmsg_usecs(serial, fn):
    for l in serial:
        m = re.search(r"initcall %s\+\S+ returned -?\d+ after (\d+) usecs" % fn, l)
        if m:
            return int(m.group(1))
    return None


def uptime(serial, marker):
    for l in serial:
        m = re.match(marker + r".*uptime=([\d.]+)", l)
        if m:
            return float(m.group(1))
    return None


def judge(kernel, path, rows):
    boot, alldone, order, cases = parse(path)
    ok = True
    res = []

    def check(cond, what):
        nonlocal ok
        res.append(("PASS" if cond else "FAIL", what))
        ok = ok and bool(cond)

    check(boot != "", "L1 %s booted (%s)" % (kernel, boot[8:70]))
    check(alldone, "L1 %s ran every case" % kernel)
    info = {}
    lists = {}
    for name in order:
        c = cases[name]
        infos = pcihole_infos(c)
        fin = infos[-1] if infos else {}
        info[name] = fin
        lists[name] = devlist(c["serial"], "L2-DEV")
        q = query_pci(c)
        done = any(l.startswith("L2-DONE") for l in c["serial"])
        check(done, "%s: the L2 guest reached the end of /init" % name)
        check(fin != {}, "%s: info pcihole answered" % name)
        check(fin.get("stale", 1) == 0,
              "%s: the library's classification never disagreed with the bus (stale=%s)"
              % (name, fin.get("stale")))
        if q:
            check(lists[name] == q[-1], "%s: guest's sysfs list == QEMU's query-pci (%d functions)"
                  % (name, len(q[-1])))
        else:
            check(False, "%s: query-pci answered" % name)
        for n in c["notes"]:
            if n.startswith("NOTE"):
                res.append(("INFO", "%s: %s" % (name, n)))
        rows.append(row(kernel, name, c, fin))

    # auto takes pci-hole where the kernel serves KVM_MEM_PCI_HOLE (the
    # patched L1: the 7.2 series' flag through REGION2), else readonly.
    want_auto = "pci-hole" if kernel == "patched" else "readonly"
    for n in EXPECTED.get(kernel, EXPECTED["stock"]):
        check(n in cases, "%s: case %s ran" % (kernel, n))
    for m in ("microvm", "q35"):
        off, on = info.get(m + "-off", {}), info.get(m + "-auto", {})
        check(lists.get(m + "-off") and lists.get(m + "-off") == lists.get(m + "-auto"),
              "%s: device list identical with pcihole=off and auto" % m)
        check(off.get("hole_reads", 0) > HOLE_READS_OFF_MIN,
              "%s: pcihole=off, hole reads reaching QEMU's ECAM handler %s > %d"
              % (m, off.get("hole_reads"), HOLE_READS_OFF_MIN))
        check(on.get("hole_reads", 1) == 0,
              "%s: pcihole=auto, hole reads reaching QEMU's ECAM handler %s == 0"
              % (m, on.get("hole_reads")))
        check(on.get("mode") == want_auto, "%s: auto chose %s on the %s L1 kernel (got %s)"
              % (m, want_auto, kernel, on.get("mode")))
        if want_auto == "pci-hole":
            check(on.get("slot_flag") == "0x8",
                  "%s: pci-hole slots carry the 7.2 series' flag 1 << 3 (%s, via REGION2)"
                  % (m, on.get("slot_flag")))
    if "microvm-readonly" in cases:
        ro = info.get("microvm-readonly", {})
        check(ro.get("mode") == "readonly" and ro.get("hole_reads", 1) == 0,
              "microvm: pcihole=readonly serves every hole read (%s)" % ro.get("hole_reads"))
        check(lists.get("microvm-readonly") == lists.get("microvm-off"),
              "microvm: device list identical with pcihole=readonly")
    if "q35-portio-off" in cases:
        check(lists.get("q35-portio-off") == lists.get("q35-off"),
              "q35: device list identical through port I/O (pci=noecam)")
    check(info.get("q35-auto", {}).get("mode") == want_auto and
          any(l.startswith("L2-DONE") for l in cases.get("q35-auto", {"serial": []})["serial"]),
          "q35: SeaBIOS and Linux boot with the library on")

    # shadowed functions: off / holes / holes + shadow, same L1
    for m, k in SHADOW.items():
        if k != kernel:
            continue
        sh = info.get(m + "-shadow", {})
        trio = [m + "-off", m + "-auto", m + "-shadow"]
        cl = {n: cfglist(cases[n]["serial"]) if n in cases else {} for n in trio}
        check(sh.get("mode") == want_auto and sh.get("shadow") == "on",
              "%s: holes + shadow ran with %s and shadow=on (got %s, %s)"
              % (m, want_auto, sh.get("mode"), sh.get("shadow")))
        check(sh.get("shadowed", 0) > 0 and sh.get("trapped") == 0,
              "%s: every present function shadowed (shadowed=%s trapped=%s: %s)"
              % (m, sh.get("shadowed"), sh.get("trapped"), sh.get("shadowed_functions")))
        check(sh.get("hole_reads", 1) == 0 and sh.get("present_reads", 1) == 0,
              "%s: holes + shadow, ECAM config reads reaching QEMU for the whole boot: "
              "%s hole + %s present == 0 (writes: %s hole, %s present)"
              % (m, sh.get("hole_reads"), sh.get("present_reads"), sh.get("hole_writes"),
                 sh.get("present_writes")))
        check(info.get(m + "-off", {}).get("present_reads", 0) > 0,
              "%s: pcihole=off, present reads reaching QEMU %s > 0 (what shadowing removes)"
              % (m, info.get(m + "-off", {}).get("present_reads")))
        check(lists.get(m + "-shadow") and lists.get(m + "-shadow") == lists.get(m + "-off"),
              "%s: device list identical with off and holes + shadow" % m)
        check(cl[m + "-off"] and len(cl[m + "-off"]) == len(lists.get(m + "-off") or []) and
              cl[m + "-off"] == cl[m + "-auto"] == cl[m + "-shadow"],
              "%s: every function's config space (sysfs, %d functions, %d bytes) byte-identical "
              "with off, holes and holes + shadow (sha256 each)"
              % (m, len(cl[m + "-off"]), sum(v[0] for v in cl[m + "-off"].values())))
        dumps = [cfgdump(cases[n]["serial"]) if n in cases else [] for n in trio]
        check(dumps[0] and dumps[0] == dumps[1] == dumps[2],
              "%s: the full od dumps of the three are equal too (%d lines)" % (m, len(dumps[0])))

    # hotplug
    c = cases.get("microvm-hotplug")
    if not c:
        check(False, "hotplug case ran")
    else:
        s = c["serial"]
        infos = pcihole_infos(c)
        found = [l for l in s if l.startswith("L2-HOTPLUG-FOUND")]
        check(info.get("microvm-hotplug", {}).get("mode") == want_auto,
              "hotplug: with %s regions (got %s)"
              % (want_auto, info.get("microvm-hotplug", {}).get("mode")))
        gone = any(l.startswith("L2-HOTPLUG-GONE") for l in s)
        hc = [l for l in s if l.startswith("L2-HOLE-CHECKS")]
        check(found, "hotplug: guest found the device_add'ed device (%s)"
              % (found[0].split()[1] if found else "-"))
        check(gone, "hotplug: device_del removed it from the guest")
        check(any("DEVICE_DELETED" in l for l in c["qmp"]), "hotplug: QEMU sent DEVICE_DELETED")
        bad = [l for l in s if l.startswith("L2-HOLE-BAD")]
        check(hc and "bad=0" in hc[0] and not bad,
              "hotplug: every hole read by the guest during it was all-ones (%s)"
              % (hc[0][len("L2-HOLE-CHECKS "):] if hc else "no checks"))
        if len(infos) >= 4:
            before, added, deleted = infos[0], infos[1], infos[2]
            # Region changes between two answers, from the cumulative
            # counters: a device_add refreshes more than once (registration,
            # then power on at the end of realize), only one of them changes
            # regions.
            a_del = added.get("deleted", 0) - before.get("deleted", 0)
            a_add = added.get("added", 0) - before.get("added", 0)
            d_del = deleted.get("deleted", 0) - added.get("deleted", 0)
            d_add = deleted.get("added", 0) - added.get("added", 0)
            check(a_del == 1 and a_add in (1, 2)
                  and added.get("regions") == before.get("regions") + a_add - a_del,
                  "hotplug: device_add changed %d regions (-%d +%d; minimal: -1 +2)"
                  % (a_del + a_add, a_del, a_add))
            check(d_add == 1 and d_del in (1, 2)
                  and deleted.get("regions") == before.get("regions"),
                  "hotplug: device_del changed %d regions (-%d +%d; minimal: -2 +1), back to %s"
                  % (d_del + d_add, d_del, d_add, before.get("regions")))
            hpl = devlist(s, "L2-HPDEV")
            ql = query_pci(c)
            check(len(ql) >= 2 and hpl == ql[0],
                  "hotplug: guest list with the device == QEMU's query-pci (%d functions)" % len(hpl))
        else:
            check(False, "hotplug: info pcihole before/after add/del (%d answers)" % len(infos))
    print("== %s L1 kernel (%s)" % (kernel, path))
    for v, w in res:
        print("  %s %s" % (v, w))
    return ok


def row(kernel, name, c, fin):
    s = c["serial"]
    t_init = uptime(s, "L2-INIT")
    acpi = kmsg_usecs(s, "acpi_init")
    peer = kmsg_usecs(s, "pci_subsys_init")
    return {
        "kernel": kernel, "case": name, "mode": fin.get("mode", "?"),
        "init": t_init, "acpi_ms": acpi / 1000.0 if acpi is not None else None,
        "peer_ms": peer / 1000.0 if peer is not None else None,
        "hr": fin.get("hole_reads"), "hw": fin.get("hole_writes"),
        "pr": fin.get("present_reads"), "pw": fin.get("present_writes"),
        "c1h": fin.get("conf1_hole_reads"), "c1p": fin.get("conf1_present_reads"),
        "c1w": (fin.get("conf1_hole_writes") or 0) + (fin.get("conf1_present_writes") or 0),
        "regions": fin.get("regions"), "runs": fin.get("runs"),
        "backing": fin.get("backing"), "chunk": fin.get("chunk"),
        "updates": fin.get("updates"),
        "shadowed": fin.get("shadowed") if fin.get("shadow") == "on" else None,
        "trapped": fin.get("trapped") if fin.get("shadow") == "on" else None,
    }


def fmt(v, f="%s"):
    return "-" if v is None else f % v


def table(rows):
    out = ["| L1 kernel | guest setup | mode | /init (s) | ACPI PCI scan (ms) | peer-bridge scan (ms) "
           "| ECAM hole reads | ECAM hole writes | ECAM present r/w | type 1 hole reads "
           "| type 1 present reads | type 1 writes | regions (runs) | shadowed/trapped | memory |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mem = "-"
        if r["backing"] not in (None, "none"):
            mem = "one %s memfd chunk (%s)" % (
                "%d KiB" % (r["chunk"] // 1024) if r["chunk"] else "?", r["backing"])
        sht = "-" if r["shadowed"] is None else "%s/%s" % (r["shadowed"], r["trapped"])
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s/%s | %s | %s | %s | %s | %s | %s |" % (
            r["kernel"], r["case"], r["mode"], fmt(r["init"], "%.2f"), fmt(r["acpi_ms"], "%.1f"),
            fmt(r["peer_ms"], "%.1f"), fmt(r["hr"]), fmt(r["hw"]), fmt(r["pr"]), fmt(r["pw"]),
            fmt(r["c1h"]), fmt(r["c1p"]), fmt(r["c1w"]),
            "%s (%s)" % (fmt(r["regions"]), fmt(r["runs"])), sht, mem))
    return "\n".join(out)


def main(argv):
    report = None
    logs = []
    i = 0
    while i < len(argv):
        if argv[i] == "--report":
            report = argv[i + 1]
            i += 2
            continue
        logs.append(argv[i])
        i += 1
    if not logs:
        print(__doc__)
        return 2
    rows = []
    ok = True
    for kl in logs:
        k, p = kl.split("=", 1)
        try:
            ok = judge(k, p, rows) and ok
        except OSError as e:
            print("FAIL %s: %s" % (k, e))
            ok = False
    t = table(rows)
    print(t)
    if report:
        with open(report, "w") as f:
            f.write(t + "\n")
    print("check.py: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
