// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
//! Hand-written FFI for the part of <pcihole.h> a rust-vmm VMM needs, plus a thin
//! safe wrapper.  The structs are #[repr(C)] mirrors; `cargo test` (src/abi.rs)
//! compares every size, alignment and offset with what the C compiler sees in the
//! installed pcihole.h.  Not generated with bindgen: the API is small, and the
//! mirrors stay readable (Debian's bindgen 0.60 works too, but needs libclang at
//! build time, which a VMM's build should not need for ten structs).

#![allow(non_camel_case_types)]

use std::ffi::CString;
use std::fmt;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::os::unix::io::RawFd;

pub const PCIHOLE_PAGE_SIZE: u64 = 4096;
pub const PCIHOLE_BUS_SIZE: u64 = 1 << 20;
pub const PCIHOLE_NO_BUDGET: u32 = u32::MAX;
pub const PCIHOLE_KVM_MEM_PCI_HOLE: u32 = 1 << 3;
pub const PCIHOLE_KVM_MEM_PCI_HOLE_612: u32 = 1 << 15;
pub const PCIHOLE_ALLONES_CHUNK_DEFAULT: u64 = 2 << 20;
pub const PCIHOLE_BDF_STRLEN: usize = 13;
pub const PCIHOLE_SEGMENT_STRLEN: usize = 33;

pub const PCIHOLE_BACKING_NONE: c_uint = 0;
pub const PCIHOLE_BACKING_HUGETLB: c_uint = 1;
pub const PCIHOLE_BACKING_THP: c_uint = 2;
pub const PCIHOLE_BACKING_4K: c_uint = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pcihole_segment {
    pub base: u64,
    pub segment: u16,
    pub bus_start: u8,
    pub bus_end: u8,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pcihole_bdf {
    pub segment: u16,
    pub bus: u8,
    pub dev: u8,
    pub fn_: u8,
    pub reserved: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pcihole_run {
    pub gpa: u64,
    pub size: u64,
    pub fn0_pages: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pcihole_plan_info {
    pub hole_pages: u64,
    pub covered_pages: u64,
    pub uncovered_pages: u64,
    pub uncovered_fn0_pages: u64,
    pub nr_runs: u32,
    pub nr_slots: u32,
    pub clipped_pages: u64,
    pub shadowed_pages: u64,
    pub reserved: [u64; 2],
}

/// Layout-identical to `struct kvm_userspace_memory_region` (and kvm-bindings').
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pcihole_region {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
}

/// What the running kernel offers (pcihole_probe).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pcihole_caps {
    pub readonly_mem: u32,
    pub nr_memslots: u32,
    pub pci_hole_cap: u32,
    pub pci_hole_works: u32,
    pub pre_fault_memory: u32,
    pub user_memory2: u32,
    pub pci_hole_tested: u32,
    pub pci_hole_flag: u32,
    pub reserved: [u32; 5],
}

/// What one config-space access addresses (pcihole_classify).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pcihole_access {
    pub kind: u32,
    pub offset: u32,
    pub bdf: pcihole_bdf,
    pub reserved: [u64; 2],
}

pub const PCIHOLE_ACCESS_NONE: u32 = 0;
pub const PCIHOLE_ACCESS_HOLE: u32 = 1;
pub const PCIHOLE_ACCESS_FUNCTION: u32 = 2;
pub const PCIHOLE_ACCESS_SHADOWED: u32 = 3;

/// The exit handler's one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// In no ECAM window: not config space.
    None,
    /// An absent function: the read is filled with all-ones, the write dropped.
    Hole,
    /// A present function (shadowed or not) and the register offset.
    Function(pcihole_bdf, u32),
}

/// One run's all-ones host range (pcihole_allones_map_run).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pcihole_allones_range {
    pub base: *mut c_void,
    pub len: u64,
    pub userspace_addr: u64,
}

/// Opaque.
#[repr(C)]
pub struct pcihole_layout {
    _private: [u8; 0],
}

#[link(name = "pcihole")]
extern "C" {
    pub fn pcihole_segment_parse(s: *const c_char, seg: *mut pcihole_segment) -> c_int;
    pub fn pcihole_bdf_parse(s: *const c_char, bdf: *mut pcihole_bdf) -> c_int;
    pub fn pcihole_bdf_format(bdf: *const pcihole_bdf, buf: *mut c_char, len: usize) -> c_int;
    pub fn pcihole_layout_new(
        segs: *const pcihole_segment,
        nr: usize,
        phys_bits: c_uint,
        out: *mut *mut pcihole_layout,
    ) -> c_int;
    pub fn pcihole_layout_free(layout: *mut pcihole_layout);
    pub fn pcihole_layout_set_present(
        layout: *mut pcihole_layout,
        bdf: *const pcihole_bdf,
        present: bool,
    ) -> c_int;
    pub fn pcihole_layout_is_present(
        layout: *const pcihole_layout,
        bdf: *const pcihole_bdf,
    ) -> c_int;
    pub fn pcihole_layout_gpa_to_bdf(
        layout: *const pcihole_layout,
        gpa: u64,
        bdf: *mut pcihole_bdf,
        offset: *mut u32,
    ) -> c_int;
    pub fn pcihole_mmio_access(
        layout: *const pcihole_layout,
        gpa: u64,
        data: *mut c_void,
        len: u32,
        is_write: bool,
    ) -> c_int;
    pub fn pcihole_classify(
        layout: *const pcihole_layout,
        gpa: u64,
        data: *mut c_void,
        len: u32,
        is_write: bool,
        acc: *mut pcihole_access,
    ) -> c_int;
    pub fn pcihole_plan_count(layout: *const pcihole_layout) -> usize;
    pub fn pcihole_plan(
        layout: *const pcihole_layout,
        budget: u32,
        runs: *mut pcihole_run,
        cap: usize,
        info: *mut pcihole_plan_info,
    ) -> c_int;
    pub fn pcihole_plan_diff(
        old: *const pcihole_run,
        nr_old: usize,
        new_runs: *const pcihole_run,
        nr_new: usize,
        del: *mut u32,
        nr_del: *mut usize,
        add: *mut u32,
        nr_add: *mut usize,
    ) -> c_int;
    pub fn pcihole_run_to_region(
        run: *const pcihole_run,
        slot: u32,
        flags: u32,
        userspace_addr: u64,
        region: *mut pcihole_region,
    ) -> c_int;
    pub fn pcihole_probe(kvm_fd: c_int, fresh: bool, caps: *mut pcihole_caps) -> c_int;
    pub fn pcihole_allones_memfd(chunk: u64, fd: *mut c_int, backing: *mut c_uint) -> c_int;
    pub fn pcihole_allones_check(fd: c_int) -> i64;
    pub fn pcihole_allones_map(fd: c_int, chunk: u64, size: u64, addr: *mut *mut c_void) -> c_int;
    pub fn pcihole_allones_map_run(
        fd: c_int,
        gpa: u64,
        size: u64,
        range: *mut pcihole_allones_range,
    ) -> c_int;
    pub fn pcihole_allones_unmap(addr: *mut c_void, size: u64) -> c_int;
}

/// A negative errno from libpcihole, with the call that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub call: &'static str,
    pub errno: i32,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.call,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn check(call: &'static str, rc: c_int) -> Result<c_int> {
    if rc < 0 {
        Err(Error { call, errno: -rc })
    } else {
        Ok(rc)
    }
}

fn cstring(call: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error {
        call,
        errno: libc::EINVAL,
    })
}

pub fn parse_segment(s: &str) -> Result<pcihole_segment> {
    let c = cstring("pcihole_segment_parse", s)?;
    let mut seg = pcihole_segment::default();
    check("pcihole_segment_parse", unsafe {
        pcihole_segment_parse(c.as_ptr(), &mut seg)
    })?;
    Ok(seg)
}

pub fn parse_bdf(s: &str) -> Result<pcihole_bdf> {
    let c = cstring("pcihole_bdf_parse", s)?;
    let mut bdf = pcihole_bdf::default();
    check("pcihole_bdf_parse", unsafe {
        pcihole_bdf_parse(c.as_ptr(), &mut bdf)
    })?;
    Ok(bdf)
}

impl fmt::Display for pcihole_bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0 as c_char; PCIHOLE_BDF_STRLEN];
        let rc = unsafe { pcihole_bdf_format(self, buf.as_mut_ptr(), buf.len()) };
        if rc < 0 {
            return write!(f, "<bad bdf {:?}>", self);
        }
        let s: String = buf[..rc as usize]
            .iter()
            .map(|&c| c as u8 as char)
            .collect();
        f.write_str(&s)
    }
}

/// An owned `struct pcihole_layout`.  `mmio_access` takes `&self` and is
/// lock-free in C, so a `Layout` may be shared with vCPU threads (Sync);
/// presence changes need `&mut self`, which serialises them as the C API asks.
pub struct Layout {
    ptr: *mut pcihole_layout,
}

unsafe impl Send for Layout {}
unsafe impl Sync for Layout {}

impl Layout {
    pub fn new(segs: &[pcihole_segment], phys_bits: u32) -> Result<Self> {
        let mut ptr = std::ptr::null_mut();
        check("pcihole_layout_new", unsafe {
            pcihole_layout_new(segs.as_ptr(), segs.len(), phys_bits, &mut ptr)
        })?;
        Ok(Layout { ptr })
    }

    /// Returns whether the bit changed.
    pub fn set_present(&mut self, bdf: &pcihole_bdf, present: bool) -> Result<bool> {
        check("pcihole_layout_set_present", unsafe {
            pcihole_layout_set_present(self.ptr, bdf, present)
        })
        .map(|r| r == 1)
    }

    pub fn is_present(&self, bdf: &pcihole_bdf) -> Result<bool> {
        check("pcihole_layout_is_present", unsafe {
            pcihole_layout_is_present(self.ptr, bdf)
        })
        .map(|r| r == 1)
    }

    /// The function and register offset a guest-physical address hits.
    pub fn gpa_to_bdf(&self, gpa: u64) -> Option<(pcihole_bdf, u32)> {
        let mut bdf = pcihole_bdf::default();
        let mut off = 0u32;
        let rc = unsafe { pcihole_layout_gpa_to_bdf(self.ptr, gpa, &mut bdf, &mut off) };
        if rc == 0 {
            Some((bdf, off))
        } else {
            None
        }
    }

    /// The mmio path: true if the access hit only hole pages (a read got all-ones,
    /// a write was dropped); false if it belongs to the VMM.
    pub fn mmio_access(&self, gpa: u64, data: &mut [u8], is_write: bool) -> Result<bool> {
        check("pcihole_mmio_access", unsafe {
            pcihole_mmio_access(
                self.ptr,
                gpa,
                data.as_mut_ptr() as *mut c_void,
                data.len() as u32,
                is_write,
            )
        })
        .map(|r| r == 1)
    }

    /// The exit handler's one question, answered from one consistent view of
    /// the presence map (lock-free; safe against a concurrent hotplug).
    pub fn classify(&self, gpa: u64, data: &mut [u8], is_write: bool) -> Result<Access> {
        let mut acc = pcihole_access::default();
        let kind = check("pcihole_classify", unsafe {
            pcihole_classify(
                self.ptr,
                gpa,
                data.as_mut_ptr() as *mut c_void,
                data.len() as u32,
                is_write,
                &mut acc,
            )
        })? as u32;
        Ok(match kind {
            PCIHOLE_ACCESS_HOLE => Access::Hole,
            PCIHOLE_ACCESS_FUNCTION | PCIHOLE_ACCESS_SHADOWED => {
                Access::Function(acc.bdf, acc.offset)
            }
            _ => Access::None,
        })
    }

    /// All maximal hole runs (`budget` None) or the `budget` most useful ones.
    pub fn plan(&self, budget: Option<u32>) -> Result<(Vec<pcihole_run>, pcihole_plan_info)> {
        let cap = unsafe { pcihole_plan_count(self.ptr) };
        let mut runs = vec![pcihole_run::default(); cap];
        let mut info = pcihole_plan_info::default();
        let n = check("pcihole_plan", unsafe {
            pcihole_plan(
                self.ptr,
                budget.unwrap_or(PCIHOLE_NO_BUDGET),
                runs.as_mut_ptr(),
                runs.len(),
                &mut info,
            )
        })?;
        runs.truncate(n as usize);
        Ok((runs, info))
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        unsafe { pcihole_layout_free(self.ptr) }
    }
}

/// Indexes into `old` to delete and into `new` to create.
pub fn plan_diff(old: &[pcihole_run], new: &[pcihole_run]) -> Result<(Vec<u32>, Vec<u32>)> {
    let mut del = vec![0u32; old.len()];
    let mut add = vec![0u32; new.len()];
    let (mut nd, mut na) = (0usize, 0usize);
    check("pcihole_plan_diff", unsafe {
        pcihole_plan_diff(
            old.as_ptr(),
            old.len(),
            new.as_ptr(),
            new.len(),
            del.as_mut_ptr(),
            &mut nd,
            add.as_mut_ptr(),
            &mut na,
        )
    })?;
    del.truncate(nd);
    add.truncate(na);
    Ok((del, add))
}

pub fn run_to_region(
    run: &pcihole_run,
    slot: u32,
    flags: u32,
    uaddr: u64,
) -> Result<pcihole_region> {
    let mut r = pcihole_region::default();
    check("pcihole_run_to_region", unsafe {
        pcihole_run_to_region(run, slot, flags, uaddr, &mut r)
    })?;
    Ok(r)
}

/// Probe KVM through an open /dev/kvm: KVM_MEM_PCI_HOLE counts only when a
/// throwaway guest read all-ones from such a slot without an exit.
pub fn probe(kvm_fd: RawFd) -> Result<pcihole_caps> {
    let mut caps = pcihole_caps::default();
    check("pcihole_probe", unsafe {
        pcihole_probe(kvm_fd, false, &mut caps)
    })?;
    Ok(caps)
}

/// The sealed all-ones memfd (one per host is enough).
pub struct AllOnes {
    pub fd: RawFd,
    pub chunk: u64,
    pub backing: c_uint,
}

impl AllOnes {
    pub fn new(chunk: u64) -> Result<Self> {
        let mut fd: c_int = -1;
        let mut backing: c_uint = PCIHOLE_BACKING_NONE;
        check("pcihole_allones_memfd", unsafe {
            pcihole_allones_memfd(chunk, &mut fd, &mut backing)
        })?;
        let size = unsafe { pcihole_allones_check(fd) };
        if size <= 0 {
            unsafe { libc::close(fd) };
            return Err(Error {
                call: "pcihole_allones_check",
                errno: (-size) as i32,
            });
        }
        Ok(AllOnes {
            fd,
            chunk: size as u64,
            backing,
        })
    }

    pub fn backing_name(&self) -> &'static str {
        match self.backing {
            PCIHOLE_BACKING_HUGETLB => "hugetlb",
            PCIHOLE_BACKING_THP => "thp",
            PCIHOLE_BACKING_4K => "4k",
            _ => "none",
        }
    }

    /// A read-only host range of `size` bytes (a multiple of the chunk) that
    /// reads all-ones.
    pub fn map(&self, size: u64) -> Result<AllOnesMapping> {
        let mut addr: *mut c_void = std::ptr::null_mut();
        check("pcihole_allones_map", unsafe {
            pcihole_allones_map(self.fd, self.chunk, size, &mut addr)
        })?;
        Ok(AllOnesMapping {
            addr,
            size,
            offset: 0,
        })
    }

    /// The host range for a slot over `run`: host and guest addresses congruent
    /// modulo the chunk (so KVM can map huge pages), the mapping rounded up to
    /// whole chunks.  The slot's userspace_addr is `host_addr()`.
    pub fn map_for_run(&self, run: &pcihole_run) -> Result<AllOnesMapping> {
        let mut r = pcihole_allones_range {
            base: std::ptr::null_mut(),
            len: 0,
            userspace_addr: 0,
        };
        check("pcihole_allones_map_run", unsafe {
            pcihole_allones_map_run(self.fd, run.gpa, run.size, &mut r)
        })?;
        Ok(AllOnesMapping {
            addr: r.base,
            size: r.len,
            offset: r.userspace_addr - r.base as u64,
        })
    }
}

impl Drop for AllOnes {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// Unmapped on drop: drop it only after the slot using it is deleted.
pub struct AllOnesMapping {
    pub addr: *mut c_void,
    pub size: u64,
    /// Where the slot starts inside the mapping.
    pub offset: u64,
}

impl AllOnesMapping {
    /// The userspace_addr of the slot.
    pub fn host_addr(&self) -> u64 {
        self.addr as u64 + self.offset
    }
}

impl Drop for AllOnesMapping {
    fn drop(&mut self) {
        unsafe { pcihole_allones_unmap(self.addr, self.size) };
    }
}
