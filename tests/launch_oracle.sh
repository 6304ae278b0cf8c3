#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# The exits pcihole-launch's scans must cost, computed independently of the
# launcher: a model of the configured functions' config space (the type-0
# PCIe endpoint examples/launch/launch.h documents: PM -> MSI -> PCIe
# capabilities, a 32-bit memory BAR, an I/O BAR, a 64-bit BAR, two
# unimplemented BARs, a ROM, pin INTA#, memory decode on) and the scans as
# their models do them (guest.c's comment: Linux 6.12's pci_setup_device and
# pci_init_capabilities, SeaBIOS's pci_next / pci_probe_devices /
# pci_bios_get_bar / pci_bios_init_device, brute force), replayed access by
# access against the model, so the branches (64-bit BAR, decode enabled, pin,
# capability walks) follow from the bytes.  Each access is then classed by
# where it lands and how the setup serves it.
#
#   tests/launch_oracle.sh --setup mmio|holes|shadow|mmio-shadow --scan S
#                          [--repeat N] [--segment ...] [--device ...]
#                          [--hotplug ...] [--unplug ...]
#
# prints a JSON list, one object per scan, with the keys of the launcher's
# --json scans: hole_reads hole_writes present_reads present_writes
# shadow_reads shadow_writes (and found).  holes = readonly slots over every
# hole (no slot budget), shadow = readonly --shadow, mmio-shadow = mmio
# --shadow.  Used by tests/launch_modes.sh, launch_shadow.sh, launch_bench.sh.
set -eu
exec python3 - "$@" <<'PY'
import argparse, json, struct, sys

ap = argparse.ArgumentParser()
ap.add_argument("--setup", required=True, choices=["mmio", "holes", "shadow", "mmio-shadow"])
ap.add_argument("--scan", default="linux", choices=["linux", "firmware", "brute"])
ap.add_argument("--repeat", type=int, default=1)
ap.add_argument("--segment", action="append", default=[])
ap.add_argument("--device", action="append", default=[])
ap.add_argument("--hotplug", action="append", default=[])
ap.add_argument("--unplug", action="append", default=[])
a = ap.parse_args()

def bdf(text):
    p = text.split(",")[0].split(":")
    seg = int(p[0], 16) if len(p) == 3 else 0
    dev, fn = p[-1].split(".")
    return (seg, int(p[-2], 16), int(dev, 16), int(fn, 16))

segs = []
for s in a.segment or ["0:0xb0000000:0-255"]:
    seg, base, buses = s.split(":")
    b0, b1 = buses.split("-")
    segs.append((int(seg, 0), int(b0, 0), int(b1, 0)))

multi = {bdf(d) for d in a.device + a.hotplug if d.endswith(",multifunction")}
before = {bdf(d) for d in a.device}
after = (before - {bdf(d) for d in a.unplug}) | {bdf(d) for d in a.hotplug}

class Function:
    """The device model the launcher documents, as bytes plus a write mask."""
    def __init__(self, mf):
        c = self.cfg = bytearray(4096)
        m = self.wmask = bytearray(4096)
        def put(buf, off, fmt, v):
            struct.pack_into("<" + fmt, buf, off, v)
        put(c, 0x00, "I", 0x10001b36)
        put(c, 0x04, "H", 0x0002)          # memory decode on
        put(c, 0x06, "H", 0x0010)          # capability list
        put(c, 0x08, "I", 0x08800001)
        c[0x0e] = 0x80 if mf else 0
        put(c, 0x10, "I", 0xe0000000)      # 4 KiB memory
        put(c, 0x14, "I", 0x1001)          # 256-byte I/O
        put(c, 0x18, "I", 0x0000000c)      # 1 MiB 64-bit prefetchable
        put(c, 0x1c, "I", 0x1)
        c[0x34] = 0x40
        c[0x3d] = 1
        c[0x40:0x42] = bytes([0x01, 0x50])  # PM
        c[0x50:0x52] = bytes([0x05, 0x60])  # MSI
        c[0x60:0x62] = bytes([0x10, 0x00])  # PCIe, last
        put(m, 0x04, "H", 0x0547)
        put(m, 0x10, "I", 0xfffff000)
        put(m, 0x14, "I", 0xffffff00)
        put(m, 0x18, "I", 0xfff00000)
        put(m, 0x1c, "I", 0xffffffff)
        put(m, 0x30, "I", 0xffff0001)      # 64 KiB ROM
        m[0x3c] = 0xff

class Scan:
    def __init__(self, present):
        self.present = present
        self.n = dict(hole_reads=0, hole_writes=0, present_reads=0, present_writes=0,
                      shadow_reads=0, shadow_writes=0)
        self.found = 0

    def count(self, key, write):
        shadow = a.setup in ("shadow", "mmio-shadow")
        slots = a.setup in ("holes", "shadow")
        if key not in self.present:
            if write or not slots:
                self.n["hole_writes" if write else "hole_reads"] += 1
        elif shadow:
            if write or not slots:
                self.n["shadow_writes" if write else "shadow_reads"] += 1
        else:
            self.n["present_writes" if write else "present_reads"] += 1

    def rd(self, key, off, size):
        self.count(key, False)
        if key not in self.present:
            return (1 << (8 * size)) - 1
        return int.from_bytes(fns[key].cfg[off:off + size], "little")

    def wr(self, key, off, size, v):
        self.count(key, True)
        if key in self.present:
            f = fns[key]
            for i in range(size):
                b = (v >> (8 * i)) & 0xff
                f.cfg[off + i] = (f.cfg[off + i] & ~f.wmask[off + i]) | (b & f.wmask[off + i])

    # pci_find_capability: status word, 0x34 byte, a word per entry.
    def lx_cap(self, k, cap):
        if not self.rd(k, 0x06, 2) & 0x10:
            return 0
        pos, ttl = self.rd(k, 0x34, 1), 48
        while ttl:
            ttl -= 1
            if pos < 0x40:
                break
            pos &= ~3
            ent = self.rd(k, pos, 2)
            if ent & 0xff == 0xff:
                break
            if ent & 0xff == cap:
                return pos
            pos = ent >> 8
        return 0

    def lx_base(self, k, pos, mask, rom):
        cmd = self.rd(k, 0x04, 2)
        if cmd & 3:
            self.wr(k, 0x04, 2, cmd & ~3)
        l = self.rd(k, pos, 4)
        self.wr(k, pos, 4, l | mask)
        self.rd(k, pos, 4)
        self.wr(k, pos, 4, l)
        is64 = not rom and (l & 7) == 4
        if is64:
            hi = self.rd(k, pos + 4, 4)
            self.wr(k, pos + 4, 4, 0xffffffff)
            self.rd(k, pos + 4, 4)
            self.wr(k, pos + 4, 4, hi)
        if cmd & 3:
            self.wr(k, 0x04, 2, cmd)
        return 8 if is64 else 4

    def lx_function(self, k):
        hdr = self.rd(k, 0x0e, 1)
        exp = self.lx_cap(k, 0x10)
        if exp:
            self.rd(k, exp + 2, 2)
            self.rd(k, exp + 4, 4)
        self.rd(k, 0x08, 4)
        if exp:
            self.rd(k, 0x100, 4)
            self.rd(k, 0x00, 4)
            self.rd(k, 0x100, 4)
        cmd = self.rd(k, 0x04, 2)
        self.wr(k, 0x04, 2, cmd ^ 0x400)
        self.rd(k, 0x04, 2)
        self.wr(k, 0x04, 2, cmd)
        if self.rd(k, 0x3d, 1):
            self.rd(k, 0x3c, 1)
        pos = 0x10
        while pos < 0x28:
            pos += self.lx_base(k, pos, 0xffffffff, False)
        self.lx_base(k, 0x30, 0xfffff800, True)
        self.rd(k, 0x2c, 2)
        self.rd(k, 0x2e, 2)
        self.lx_cap(k, 0x14)
        if self.lx_cap(k, 0x05):
            self.rd(k, 0x52, 2)
        self.lx_cap(k, 0x11)
        pm = self.lx_cap(k, 0x01)
        if pm:
            self.rd(k, pm + 2, 2)
            self.rd(k, 0x06, 2)
        self.found += 1
        return hdr

    def fw_function(self, k):
        self.rd(k, 0x00, 4)
        self.rd(k, 0x08, 4)
        self.rd(k, 0x0e, 1)
        if self.rd(k, 0x06, 2) & 0x10:
            pos = self.rd(k, 0x34, 1)
            for _ in range(256):
                if not pos or self.rd(k, pos, 1) == 0x10:
                    break
                pos = self.rd(k, pos + 1, 1)
        pos = 0x10
        while pos < 0x28:
            old = self.rd(k, pos, 4)
            self.wr(k, pos, 4, 0xffffffff)
            self.rd(k, pos, 4)
            self.wr(k, pos, 4, old)
            if not old & 1 and old & 6 == 4:
                pos += 4
                hold = self.rd(k, pos, 4)
                self.wr(k, pos, 4, 0xffffffff)
                self.rd(k, pos, 4)
                self.wr(k, pos, 4, hold)
            pos += 4
        old = self.rd(k, 0x30, 4)
        self.wr(k, 0x30, 4, 0xfffff800)
        self.rd(k, 0x30, 4)
        self.wr(k, 0x30, 4, old)
        pin = self.rd(k, 0x3d, 1)
        if pin:
            self.wr(k, 0x3c, 1, 10 + ((k[2] + pin - 1) & 3))
        cmd = self.rd(k, 0x04, 2)
        self.wr(k, 0x04, 2, cmd | 0x0103)
        self.found += 1

    def run(self):
        for seg, b0, b1 in segs:
            for bus in range(b0, b1 + 1):
                for dev in range(32):
                    k0 = (seg, bus, dev, 0)
                    if a.scan == "brute":
                        for fn in range(8):
                            k = (seg, bus, dev, fn)
                            if self.rd(k, 0, 4) & 0xffff != 0xffff:
                                self.rd(k, 0, 4)
                                self.rd(k, 0x0c, 4)
                                self.found += 1
                        continue
                    if a.scan == "linux":
                        if self.rd(k0, 0, 4) & 0xffff == 0xffff:
                            continue
                        mf = self.lx_function(k0) & 0x80
                    else:
                        if self.rd(k0, 0, 2) == 0xffff:
                            continue
                        self.fw_function(k0)
                        mf = self.rd(k0, 0x0e, 1) & 0x80
                    if not mf:
                        continue
                    for fn in range(1, 8):
                        k = (seg, bus, dev, fn)
                        if a.scan == "linux":
                            if self.rd(k, 0, 4) & 0xffff != 0xffff:
                                self.lx_function(k)
                        elif self.rd(k, 0, 2) != 0xffff:
                            self.fw_function(k)
        return dict(self.n, found=self.found)

fns = {k: Function(k in multi) for k in before | after}
out = []
for i in range(a.repeat):
    out.append(Scan(before if i == 0 else after).run())
json.dump(out, sys.stdout)
print()
PY
