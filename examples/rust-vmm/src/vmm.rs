// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
//! A miniature rust-vmm style VMM: guest RAM from vm-memory, the vm fd and the
//! slot ids owned by the VMM, libpcihole used only as a planner (hole runs ->
//! kvm_userspace_memory_region records), as the all-ones backing, and as the
//! KVM_EXIT_MMIO answer for holes.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

use crate::ffi::{
    self, pcihole_bdf, pcihole_run, Access, AllOnes, AllOnesMapping, Layout,
    PCIHOLE_KVM_MEM_PCI_HOLE,
};
use crate::kvm::{kvm_userspace_memory_region, Kvm, VcpuExit, VcpuFd, VmFd, KVM_MEM_READONLY};

/// Guest RAM: 1 MiB at 0.  The code at 64 KiB, the results at 128 KiB.
pub const RAM_SIZE: usize = 1 << 20;
pub const CODE_GPA: u64 = 0x1_0000;
pub const RESULTS_GPA: u64 = 0x2_0000;
/// What the guest writes to a hole (a readonly slot or none: either way an exit
/// that libpcihole's mmio path drops).
pub const WRITE_VALUE: u32 = 0x1234_5678;

#[derive(Debug)]
pub enum Error {
    Pcihole(ffi::Error),
    Kvm(&'static str, io::Error),
    Memory(String),
    Guest(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pcihole(e) => write!(f, "libpcihole: {}", e),
            Error::Kvm(what, e) => write!(f, "KVM {}: {}", what, e),
            Error::Memory(s) => write!(f, "guest memory: {}", s),
            Error::Guest(s) => write!(f, "guest: {}", s),
        }
    }
}

impl From<ffi::Error> for Error {
    fn from(e: ffi::Error) -> Self {
        Error::Pcihole(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn kvm_err(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::Kvm(what, e)
}

/// Slot ids, handed out by the VMM as Cloud Hypervisor does (an AtomicU32).
#[derive(Default)]
pub struct SlotAllocator {
    next: AtomicU32,
}

impl SlotAllocator {
    pub fn next_slot(&self) -> u32 {
        self.next.fetch_add(1, Ordering::SeqCst)
    }
}

/// An emulated PCI function: config space reads give the IDs at offset 0.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    pub bdf: pcihole_bdf,
    pub vendor: u16,
    pub device: u16,
}

impl Device {
    pub fn new(bdf: &str, vendor: u16, device: u16) -> Result<Self> {
        Ok(Device {
            bdf: ffi::parse_bdf(bdf)?,
            vendor,
            device,
        })
    }

    fn config_read(&self, offset: u32, data: &mut [u8]) {
        let ids = (self.vendor as u32 | (self.device as u32) << 16).to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            let o = offset as usize + i;
            *b = if o < 4 { ids[o] } else { 0 };
        }
    }
}

/// One guest loop: `count` 32-bit reads from `start`, `stride` apart.
#[derive(Clone, Copy, Debug)]
pub struct Scan {
    pub start: u64,
    pub count: u32,
    pub stride: u32,
}

/// Hand-assembled 32-bit protected-mode code:
///   mov edi, RESULTS
///   for each scan: mov esi, start; mov ecx, count;
///       1: mov eax, [esi]; mov [edi], eax; add esi, stride; add edi, 4; dec ecx; jnz 1b
///   mov dword [write_gpa], WRITE_VALUE
///   hlt
pub fn guest_code(scans: &[Scan], write_gpa: u32) -> Vec<u8> {
    let mut c = vec![0xbf];
    c.extend_from_slice(&(RESULTS_GPA as u32).to_le_bytes());
    for s in scans {
        c.push(0xbe);
        c.extend_from_slice(&(s.start as u32).to_le_bytes());
        c.push(0xb9);
        c.extend_from_slice(&s.count.to_le_bytes());
        let body = [0x8b, 0x06, 0x89, 0x07, 0x81, 0xc6];
        c.extend_from_slice(&body);
        c.extend_from_slice(&s.stride.to_le_bytes());
        c.extend_from_slice(&[0x83, 0xc7, 0x04, 0x49, 0x75, (-16i8) as u8]);
    }
    c.extend_from_slice(&[0xc7, 0x05]);
    c.extend_from_slice(&write_gpa.to_le_bytes());
    c.extend_from_slice(&WRITE_VALUE.to_le_bytes());
    c.extend_from_slice(&[0xf4, 0xeb, 0xfd]); // hlt; jmp hlt
    c
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// KVM_MEM_PCI_HOLE slots (kernel/ series): no memory behind them at all.
    PciHole,
    /// No slots: every hole access exits and pcihole_mmio_access answers it.
    Mmio,
    /// KVM_MEM_READONLY slots over the all-ones memfd, at most `budget` of them.
    Readonly { budget: Option<u32> },
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Mmio => write!(f, "mmio"),
            Mode::PciHole => write!(f, "pci-hole"),
            Mode::Readonly { budget: None } => write!(f, "readonly"),
            Mode::Readonly { budget: Some(b) } => write!(f, "readonly, budget {}", b),
        }
    }
}

/// Exit counts of one guest run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exits {
    pub hole_reads: u64,
    pub hole_writes: u64,
    pub dev_reads: u64,
    pub dev_writes: u64,
    pub total: u64,
}

/// A hole slot the VMM created: its id, the run, the host mapping backing it.
struct HoleSlot {
    slot: u32,
    run: pcihole_run,
    /// None for a PCI_HOLE slot (no host memory).
    map: Option<AllOnesMapping>,
    flags: u32,
}

pub struct Vm {
    pub vm: VmFd,
    pub mem: GuestMemoryMmap,
    pub layout: Layout,
    pub devices: Vec<Device>,
    pub slots: SlotAllocator,
    allones: Option<AllOnes>,
    holes: Vec<HoleSlot>,
    pub mode: Mode,
    pub nr_runs: u32,
}

impl Vm {
    /// Create the VM, its RAM (one slot per vm-memory region) and the layout.
    pub fn new(kvm: &Kvm, segment: &str, devices: &[Device], mode: Mode) -> Result<Self> {
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        vm.set_tss_address(0xfffb_d000)
            .map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM_SIZE)])
            .map_err(|e| Error::Memory(format!("{:?}", e)))?;
        let slots = SlotAllocator::default();
        for r in mem.iter() {
            let host = r
                .get_host_address(MemoryRegionAddress(0))
                .map_err(|e| Error::Memory(format!("{:?}", e)))?;
            let region = kvm_userspace_memory_region {
                slot: slots.next_slot(),
                flags: 0,
                guest_phys_addr: r.start_addr().raw_value(),
                memory_size: r.len(),
                userspace_addr: host as u64,
            };
            // Safety: `mem` lives as long as the VM (same struct, dropped after the fd).
            unsafe { vm.set_user_memory_region(region) }
                .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION (RAM)"))?;
        }
        let seg = ffi::parse_segment(segment)?;
        let mut layout = Layout::new(&[seg], 0)?;
        for d in devices {
            layout.set_present(&d.bdf, true)?;
        }
        let mut vm = Vm {
            vm,
            mem,
            layout,
            devices: devices.to_vec(),
            slots,
            allones: None,
            holes: Vec::new(),
            mode,
            nr_runs: 0,
        };
        vm.apply_plan()?;
        Ok(vm)
    }

    /// Ask libpcihole for the plan and create the slots ourselves.
    fn apply_plan(&mut self) -> Result<()> {
        let budget = match self.mode {
            Mode::Mmio => return Ok(()),
            Mode::PciHole => None,
            Mode::Readonly { budget } => budget,
        };
        if self.allones.is_none() && self.mode != Mode::PciHole {
            self.allones = Some(AllOnes::new(0)?);
        }
        let (runs, info) = self.layout.plan(budget)?;
        self.nr_runs = info.nr_runs;
        for run in runs {
            self.add_hole_slot(run)?;
        }
        Ok(())
    }

    fn add_hole_slot(&mut self, run: pcihole_run) -> Result<()> {
        let (flags, map) = if self.mode == Mode::PciHole {
            // The flag the probe saw work: the 7.2 series' or the 6.12 backport's.
            let flag = ffi::probe(-1)
                .ok()
                .map(|c| c.pci_hole_flag)
                .filter(|&f| f != 0)
                .unwrap_or(PCIHOLE_KVM_MEM_PCI_HOLE);
            (flag, None)
        } else {
            let ones = self.allones.as_ref().expect("all-ones memfd");
            (KVM_MEM_READONLY, Some(ones.map_for_run(&run)?))
        };
        let uaddr = map.as_ref().map(|m| m.host_addr()).unwrap_or(0);
        let slot = self.slots.next_slot();
        let region = ffi::run_to_region(&run, slot, flags, uaddr)?;
        // Safety: the mapping is kept in `holes` until the slot is deleted.
        unsafe { self.vm.set_user_memory_region(region.into()) }
            .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION (hole)"))?;
        self.holes.push(HoleSlot {
            slot,
            run,
            map,
            flags,
        });
        Ok(())
    }

    fn delete_hole_slot(&mut self, idx: usize) -> Result<()> {
        let h = &self.holes[idx];
        let region = kvm_userspace_memory_region {
            slot: h.slot,
            flags: h.flags,
            guest_phys_addr: h.run.gpa,
            memory_size: 0,
            userspace_addr: 0,
        };
        unsafe { self.vm.set_user_memory_region(region) }
            .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION (delete)"))?;
        self.holes.remove(idx); // unmaps after the slot is gone
        Ok(())
    }

    pub fn hole_slots(&self) -> usize {
        self.holes.len()
    }

    /// Host address space of the all-ones mappings (whole chunks).
    pub fn hole_mapped_bytes(&self) -> u64 {
        self.holes
            .iter()
            .map(|h| h.map.as_ref().map(|m| m.size).unwrap_or(0))
            .sum()
    }

    pub fn backing_name(&self) -> &'static str {
        self.allones
            .as_ref()
            .map(|a| a.backing_name())
            .unwrap_or("none")
    }

    pub fn memfd_bytes(&self) -> u64 {
        self.allones.as_ref().map(|a| a.chunk).unwrap_or(0)
    }

    /// Hotplug the rust-vmm way: new plan, plan diff, delete-then-create exactly
    /// the slots that changed (new ids from our allocator).  Between the delete and
    /// the create a vCPU would fall through to KVM_EXIT_MMIO, where the mmio path
    /// still answers all-ones.  Returns (slots deleted, slots created).
    pub fn hotplug(&mut self, dev: Device) -> Result<(usize, usize)> {
        if let Mode::Mmio = self.mode {
            self.layout.set_present(&dev.bdf, true)?;
            self.devices.push(dev);
            return Ok((0, 0));
        }
        let old: Vec<pcihole_run> = self.holes.iter().map(|h| h.run).collect();
        self.layout.set_present(&dev.bdf, true)?;
        self.devices.push(dev);
        let budget = match self.mode {
            Mode::Readonly { budget } => budget,
            Mode::Mmio | Mode::PciHole => None,
        };
        let (new, info) = self.layout.plan(budget)?;
        self.nr_runs = info.nr_runs;
        let (del, add) = ffi::plan_diff(&old, &new)?;
        // Delete from the highest index so the others stay valid.
        for &i in del.iter().rev() {
            self.delete_hole_slot(i as usize)?;
        }
        for &i in &add {
            self.add_hole_slot(new[i as usize])?;
        }
        self.holes.sort_by_key(|h| h.run.gpa);
        let now: Vec<pcihole_run> = self.holes.iter().map(|h| h.run).collect();
        if now != new {
            return Err(Error::Guest(
                "slots after the diff differ from the new plan".into(),
            ));
        }
        Ok((del.len(), add.len()))
    }

    /// Is a guest-physical address inside one of our hole slots?
    pub fn in_hole_slot(&self, gpa: u64) -> bool {
        self.holes
            .iter()
            .any(|h| gpa >= h.run.gpa && gpa < h.run.gpa + h.run.size)
    }

    /// What the guest must read at `gpa`.
    pub fn expected(&self, gpa: u64) -> Option<u32> {
        let (bdf, off) = self.layout.gpa_to_bdf(gpa)?;
        if off != 0 {
            return None;
        }
        Some(match self.devices.iter().find(|d| d.bdf == bdf) {
            Some(d) => d.vendor as u32 | (d.device as u32) << 16,
            None => 0xffff_ffff,
        })
    }

    fn setup_vcpu(&self, vcpu: &VcpuFd) -> Result<()> {
        let mut s = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        let mut seg = crate::kvm::kvm_segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x10,
            type_: 3, // data, read/write, accessed
            present: 1,
            dpl: 0,
            db: 1,
            s: 1,
            l: 0,
            g: 1,
            avl: 0,
            unusable: 0,
            padding: 0,
        };
        s.ds = seg;
        s.es = seg;
        s.fs = seg;
        s.gs = seg;
        s.ss = seg;
        seg.selector = 0x8;
        seg.type_ = 11; // code, execute/read, accessed
        s.cs = seg;
        s.cr0 |= 1; // PE; paging stays off
        s.cr4 = 0;
        s.efer = 0;
        vcpu.set_sregs(&s).map_err(kvm_err("KVM_SET_SREGS"))?;
        let r = crate::kvm::kvm_regs {
            rip: CODE_GPA,
            rflags: 2,
            rsp: 0x8000,
            ..Default::default()
        };
        vcpu.set_regs(&r).map_err(kvm_err("KVM_SET_REGS"))?;
        Ok(())
    }

    /// Load the scan code, run a fresh vCPU to HLT, answer its exits.  Returns the
    /// exit counts and the values the guest stored (one per read).
    pub fn run_guest(
        &self,
        vcpu_id: u64,
        scans: &[Scan],
        write_gpa: u32,
        timeout: Duration,
    ) -> Result<(Exits, Vec<u32>)> {
        let code = guest_code(scans, write_gpa);
        self.mem
            .write_slice(&code, GuestAddress(CODE_GPA))
            .map_err(|e| Error::Memory(format!("{:?}", e)))?;
        let nr_reads: u32 = scans.iter().map(|s| s.count).sum();
        let poison = vec![0x5au8; nr_reads as usize * 4];
        self.mem
            .write_slice(&poison, GuestAddress(RESULTS_GPA))
            .map_err(|e| Error::Memory(format!("{:?}", e)))?;

        let mut vcpu = self
            .vm
            .create_vcpu(vcpu_id)
            .map_err(kvm_err("KVM_CREATE_VCPU"))?;
        self.setup_vcpu(&vcpu)?;
        let mut ex = Exits::default();
        let start = Instant::now();
        watchdog_arm(timeout);
        let res = loop {
            let exit = match vcpu.run() {
                Ok(e) => e,
                Err(e) => break Err(Error::Kvm("KVM_RUN", e)),
            };
            ex.total += 1;
            match exit {
                VcpuExit::Hlt => break Ok(()),
                VcpuExit::Mmio(gpa, len, is_write) => {
                    if len == 0 || len > 8 {
                        break Err(Error::Guest(format!("MMIO of {} bytes at {:#x}", len, gpa)));
                    }
                    let data = &mut vcpu.mmio_data()[..len as usize];
                    // One call, one answer: no "is it present?" followed by a second question.
                    match self.layout.classify(gpa, data, is_write) {
                        Ok(Access::Hole) if is_write => ex.hole_writes += 1,
                        Ok(Access::Hole) => ex.hole_reads += 1,
                        Ok(Access::Function(bdf, off)) => {
                            let dev = match self.devices.iter().find(|d| d.bdf == bdf) {
                                Some(d) => d,
                                None => {
                                    break Err(Error::Guest(format!(
                                        "classify said present at {:#x} ({}) but no device is there",
                                        gpa, bdf
                                    )))
                                }
                            };
                            if is_write {
                                ex.dev_writes += 1;
                            } else {
                                dev.config_read(off, data);
                                ex.dev_reads += 1;
                            }
                        }
                        Ok(Access::None) => {
                            break Err(Error::Guest(format!("MMIO outside ECAM at {:#x}", gpa)))
                        }
                        Err(e) => break Err(e.into()),
                    }
                }
                VcpuExit::Interrupted => {
                    if start.elapsed() >= timeout {
                        let rip = vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
                        break Err(Error::Guest(format!(
                            "no HLT after {:?} (rip {:#x}, {} exits)",
                            timeout, rip, ex.total
                        )));
                    }
                    ex.total -= 1;
                }
                other => {
                    let rip = vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
                    break Err(Error::Guest(format!(
                        "unexpected exit {:?} at rip {:#x}",
                        other, rip
                    )));
                }
            }
        };
        watchdog_disarm();
        res?;
        let mut vals = Vec::with_capacity(nr_reads as usize);
        for i in 0..nr_reads as u64 {
            let v: u32 = self
                .mem
                .read_obj(GuestAddress(RESULTS_GPA + 4 * i))
                .map_err(|e| Error::Memory(format!("{:?}", e)))?;
            vals.push(v);
        }
        Ok((ex, vals))
    }

    /// Delete every hole slot (before the mappings go away).
    pub fn teardown(&mut self) -> Result<()> {
        while !self.holes.is_empty() {
            self.delete_hole_slot(self.holes.len() - 1)?;
        }
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// The reads of `scans`, in order.
pub fn scan_addresses(scans: &[Scan]) -> Vec<u64> {
    scans
        .iter()
        .flat_map(|s| (0..s.count as u64).map(move |i| s.start + i * s.stride as u64))
        .collect()
}

/// Summary of what a run showed, checked against the configuration.
#[derive(Debug, Default)]
pub struct Check {
    pub reads: usize,
    pub holes_seen: usize,
    pub devices_seen: BTreeMap<String, u32>,
    pub expected_hole_exits: u64,
    pub errors: Vec<String>,
}

pub fn check_run(vm: &Vm, scans: &[Scan], write_gpa: u32, ex: &Exits, vals: &[u32]) -> Check {
    let mut c = Check::default();
    let addrs = scan_addresses(scans);
    c.reads = addrs.len();
    let mut dev_reads = 0u64;
    for (gpa, &v) in addrs.iter().zip(vals) {
        let want = match vm.expected(*gpa) {
            Some(w) => w,
            None => {
                c.errors
                    .push(format!("read {:#x} is not a config-space offset 0", gpa));
                continue;
            }
        };
        let (bdf, _) = vm.layout.gpa_to_bdf(*gpa).unwrap();
        if v != want {
            c.errors.push(format!(
                "{} ({:#x}): guest read {:#010x}, expected {:#010x}",
                bdf, gpa, v, want
            ));
        }
        if want == 0xffff_ffff {
            c.holes_seen += (v == want) as usize;
            if !vm.in_hole_slot(*gpa) {
                c.expected_hole_exits += 1;
            }
        } else {
            dev_reads += 1;
            if v == want {
                c.devices_seen.insert(bdf.to_string(), v);
            }
        }
    }
    if ex.hole_reads != c.expected_hole_exits {
        c.errors.push(format!(
            "{} hole-read exits, expected {}",
            ex.hole_reads, c.expected_hole_exits
        ));
    }
    if ex.dev_reads != dev_reads {
        c.errors.push(format!(
            "{} device-read exits, expected {}",
            ex.dev_reads, dev_reads
        ));
    }
    // The write to a hole: one exit (readonly slot or none), dropped by the mmio path.
    let write_is_hole = vm.expected(write_gpa as u64) == Some(0xffff_ffff);
    if write_is_hole && (ex.hole_writes != 1 || ex.dev_writes != 0) {
        c.errors
            .push(format!("{} hole-write exits, expected 1", ex.hole_writes));
    }
    // Every configured device that the scans cover must have been seen.
    for d in &vm.devices {
        let covered = addrs.iter().any(|&a| {
            vm.layout
                .gpa_to_bdf(a)
                .map(|(b, _)| b == d.bdf)
                .unwrap_or(false)
        });
        if covered && !c.devices_seen.contains_key(&d.bdf.to_string()) {
            c.errors.push(format!("device {} not seen", d.bdf));
        }
    }
    c
}

// A SIGALRM that interrupts KVM_RUN (no SA_RESTART), so a guest that never
// reaches HLT ends the run with an error instead of hanging.
extern "C" fn on_alarm(_: libc::c_int) {}

fn watchdog_arm(timeout: Duration) {
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
        libc::alarm(timeout.as_secs().max(1) as libc::c_uint);
    }
}

fn watchdog_disarm() {
    unsafe {
        libc::alarm(0);
    }
}
