// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
//! pcihole-rust-vmm: run a tiny guest that scans a q35-like ECAM segment, with
//! the hole slots created by this VMM from libpcihole's plan.
//!
//! Exit status: 0 all checks passed, 1 a check or a call failed, 77 skipped
//! (no usable /dev/kvm), 2 bad usage.

use std::process::exit;
use std::time::{Duration, Instant};

use pcihole_vmm::kvm::{Kvm, KVM_CAP_NR_MEMSLOTS, KVM_CAP_READONLY_MEM, KVM_CAP_USER_MEMORY};
use pcihole_vmm::vmm::{check_run, Device, Mode, Result, Scan, Vm};

const SEGMENT: &str = "0:0xb0000000:0-255";
const ECAM: u64 = 0xb000_0000;
/// 00:01.1: a hole; the guest writes to it once.
const WRITE_GPA: u32 = 0xb000_9000;
const TIMEOUT: Duration = Duration::from_secs(60);

fn devices() -> Result<Vec<Device>> {
    Ok(vec![
        Device::new("00:00.0", 0x8086, 0x29c0)?, // host bridge
        Device::new("00:01.0", 0x1234, 0x1111)?, // VGA
        Device::new("00:02.0", 0x1af4, 0x1000)?, // virtio-net
        Device::new("00:1f.0", 0x8086, 0x2918)?, // LPC
        Device::new("00:1f.2", 0x8086, 0x2922)?, // AHCI
        Device::new("00:1f.3", 0x8086, 0x2930)?, // SMBus
        Device::new("01:00.0", 0x1af4, 0x1041)?, // virtio 1.0 behind a root port
    ])
}

fn scans() -> Vec<Scan> {
    vec![
        // Every function of bus 0 (256 reads).
        Scan {
            start: ECAM,
            count: 256,
            stride: 0x1000,
        },
        // Function 0 of every device of buses 1-15, as pcibios_fixup_peer_bridges
        // does for 1-255 (480 reads).
        Scan {
            start: ECAM + (1 << 20),
            count: 15 * 32,
            stride: 0x8000,
        },
    ]
}

struct Scenario {
    failures: u32,
}

impl Scenario {
    fn run_one(&mut self, vm: &Vm, vcpu_id: u64, what: &str) -> Result<()> {
        let scans = scans();
        let t = Instant::now();
        let (ex, vals) = vm.run_guest(vcpu_id, &scans, WRITE_GPA, TIMEOUT)?;
        let dt = t.elapsed();
        let c = check_run(vm, &scans, WRITE_GPA, &ex, &vals);
        let mut errors = c.errors.clone();
        if matches!(vm.mode, Mode::Readonly { budget: None } | Mode::PciHole) {
            if ex.hole_reads != 0 {
                errors.push(format!(
                    "{} hole-read exits with full readonly coverage, expected 0",
                    ex.hole_reads
                ));
            }
        }
        println!(
            "{:<24} slots {:>3} (runs {:>3}, {:>5} MiB mapped, memfd {} KiB {}) | {} reads: {} all-ones, {} devices | exits: {} hole reads, {} hole writes, {} device reads | {:.1} ms",
            what,
            vm.hole_slots(),
            vm.nr_runs,
            vm.hole_mapped_bytes() >> 20,
            vm.memfd_bytes() >> 10,
            vm.backing_name(),
            c.reads,
            c.holes_seen,
            c.devices_seen.len(),
            ex.hole_reads,
            ex.hole_writes,
            ex.dev_reads,
            dt.as_secs_f64() * 1e3
        );
        if !errors.is_empty() {
            self.failures += 1;
            for e in errors.iter().take(20) {
                println!("  FAIL: {}", e);
            }
        }
        Ok(())
    }

    fn scenario(&mut self, kvm: &Kvm, mode: Mode) -> Result<()> {
        let mut vm = Vm::new(kvm, SEGMENT, &devices()?, mode)?;
        self.run_one(&vm, 0, &mode.to_string())?;
        // Hotplug 00:03.0 and scan again with the slots the plan diff left.
        let before = vm.hole_slots();
        let (del, add) = vm.hotplug(Device::new("00:03.0", 0x1af4, 0x1042)?)?;
        if matches!(mode, Mode::Readonly { budget: None } | Mode::PciHole) {
            if (del, add) != (1, 2) || vm.hole_slots() != before + 1 {
                self.failures += 1;
                println!("  FAIL: hotplug of 00:03.0 changed {} / {} slots, expected 1 deleted, 2 created", del, add);
            }
        }
        self.run_one(&vm, 1, &format!("{} +00:03.0 ({}-/{}+)", mode, del, add))?;
        vm.teardown()?;
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        eprintln!("usage: pcihole-rust-vmm   (no options; exit 0 pass, 1 fail, 77 skipped)");
        exit(2);
    }
    let kvm = match Kvm::open() {
        Ok(k) => k,
        Err(e) => {
            println!("SKIPPED: /dev/kvm: {}", e);
            exit(77);
        }
    };
    if kvm.check_extension(KVM_CAP_USER_MEMORY) <= 0 {
        println!("SKIPPED: KVM without KVM_CAP_USER_MEMORY");
        exit(77);
    }
    let readonly = kvm.check_extension(KVM_CAP_READONLY_MEM) > 0;
    println!(
        "pcihole-rust-vmm: segment {}, {} devices, KVM_CAP_READONLY_MEM={} NR_MEMSLOTS={}",
        SEGMENT,
        devices().map(|d| d.len()).unwrap_or(0),
        readonly as u32,
        kvm.check_extension(KVM_CAP_NR_MEMSLOTS)
    );
    let mut modes = vec![Mode::Mmio];
    let mut probe_failed = false;
    match pcihole_vmm::ffi::probe(kvm.as_raw_fd()) {
        Ok(c) if c.pci_hole_works != 0 => modes.push(Mode::PciHole),
        Ok(c) => println!(
            "note: no working KVM_MEM_PCI_HOLE (capability {}, functional probe {}): pci-hole scenario skipped",
            c.pci_hole_cap, c.pci_hole_works
        ),
        Err(e) => {
            println!("FAIL: {}", e);
            probe_failed = true;
        }
    }
    if readonly {
        modes.push(Mode::Readonly { budget: None });
        modes.push(Mode::Readonly { budget: Some(2) });
    } else {
        println!("note: no KVM_CAP_READONLY_MEM: readonly scenarios skipped");
    }
    let mut s = Scenario {
        failures: probe_failed as u32,
    };
    for m in modes {
        if let Err(e) = s.scenario(&kvm, m) {
            println!("FAIL: {}: {}", m, e);
            s.failures += 1;
        }
    }
    if s.failures > 0 {
        println!("FAILED: {} check(s)", s.failures);
        exit(1);
    }
    println!("PASSED");
}
