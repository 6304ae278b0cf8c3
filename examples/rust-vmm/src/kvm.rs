// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
//! The few KVM ioctls this example needs, through libc (kvm-ioctls and
//! kvm-bindings are not packaged in Debian 12).  Structs follow kvm-bindings'
//! names and layouts; `cargo test` checks sizes, offsets and ioctl numbers
//! against <linux/kvm.h> (src/abi.rs).  A real rust-vmm VMM replaces this file
//! with `kvm_ioctls::{Kvm, VmFd, VcpuFd}`: `VmFd::set_user_memory_region()` takes
//! exactly the `kvm_userspace_memory_region` built here.

#![allow(non_camel_case_types)]

use std::io;
use std::os::raw::{c_int, c_ulong};
use std::os::unix::io::RawFd;

const KVMIO: u64 = 0xAE;
const IOC_NONE: u64 = 0;
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (KVMIO << 8) | nr
}
const fn io(nr: u64) -> u64 {
    ioc(IOC_NONE, nr, 0)
}
const fn iow(nr: u64, size: usize) -> u64 {
    ioc(IOC_WRITE, nr, size as u64)
}
const fn ior(nr: u64, size: usize) -> u64 {
    ioc(IOC_READ, nr, size as u64)
}

pub const KVM_API_VERSION: u64 = 12;
pub const KVM_GET_API_VERSION: u64 = io(0x00);
pub const KVM_CREATE_VM: u64 = io(0x01);
pub const KVM_CHECK_EXTENSION: u64 = io(0x03);
pub const KVM_GET_VCPU_MMAP_SIZE: u64 = io(0x04);
pub const KVM_CREATE_VCPU: u64 = io(0x41);
pub const KVM_SET_USER_MEMORY_REGION: u64 =
    iow(0x46, std::mem::size_of::<kvm_userspace_memory_region>());
pub const KVM_SET_TSS_ADDR: u64 = io(0x47);
pub const KVM_RUN: u64 = io(0x80);
pub const KVM_GET_REGS: u64 = ior(0x81, std::mem::size_of::<kvm_regs>());
pub const KVM_SET_REGS: u64 = iow(0x82, std::mem::size_of::<kvm_regs>());
pub const KVM_GET_SREGS: u64 = ior(0x83, std::mem::size_of::<kvm_sregs>());
pub const KVM_SET_SREGS: u64 = iow(0x84, std::mem::size_of::<kvm_sregs>());

pub const KVM_CAP_USER_MEMORY: u64 = 3;
pub const KVM_CAP_NR_MEMSLOTS: u64 = 10;
pub const KVM_CAP_READONLY_MEM: u64 = 81;
pub const KVM_MEM_READONLY: u32 = 1 << 1;

pub const KVM_EXIT_IO: u32 = 2;
pub const KVM_EXIT_HLT: u32 = 5;
pub const KVM_EXIT_MMIO: u32 = 6;
pub const KVM_EXIT_SHUTDOWN: u32 = 8;
pub const KVM_EXIT_FAIL_ENTRY: u32 = 9;
pub const KVM_EXIT_INTERNAL_ERROR: u32 = 17;

/// struct kvm_run: the offsets this example reads and writes.
pub const RUN_EXIT_REASON: usize = 8;
pub const RUN_MMIO_PHYS_ADDR: usize = 32;
pub const RUN_MMIO_DATA: usize = 40;
pub const RUN_MMIO_LEN: usize = 48;
pub const RUN_MMIO_IS_WRITE: usize = 52;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct kvm_userspace_memory_region {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
}

/// libpcihole's record and KVM's are the same 32 bytes (checked by src/abi.rs and
/// tests/test_abi.c); the conversion is a field copy, no transmute needed.
impl From<crate::ffi::pcihole_region> for kvm_userspace_memory_region {
    fn from(r: crate::ffi::pcihole_region) -> Self {
        kvm_userspace_memory_region {
            slot: r.slot,
            flags: r.flags,
            guest_phys_addr: r.guest_phys_addr,
            memory_size: r.memory_size,
            userspace_addr: r.userspace_addr,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct kvm_segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub type_: u8,
    pub present: u8,
    pub dpl: u8,
    pub db: u8,
    pub s: u8,
    pub l: u8,
    pub g: u8,
    pub avl: u8,
    pub unusable: u8,
    pub padding: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct kvm_dtable {
    pub base: u64,
    pub limit: u16,
    pub padding: [u16; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct kvm_sregs {
    pub cs: kvm_segment,
    pub ds: kvm_segment,
    pub es: kvm_segment,
    pub fs: kvm_segment,
    pub gs: kvm_segment,
    pub ss: kvm_segment,
    pub tr: kvm_segment,
    pub ldt: kvm_segment,
    pub gdt: kvm_dtable,
    pub idt: kvm_dtable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
    pub interrupt_bitmap: [u64; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct kvm_regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

fn cvt(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// An owned fd, closed on drop (std's OwnedFd needs Rust 1.66; Debian 12 has 1.63).
#[derive(Debug)]
pub struct Fd(pub RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        unsafe { libc::close(self.0) };
    }
}

fn ioctl_val(fd: RawFd, req: u64, arg: c_ulong) -> io::Result<c_int> {
    cvt(unsafe { libc::ioctl(fd, req as _, arg) })
}

fn ioctl_ptr<T>(fd: RawFd, req: u64, arg: *const T) -> io::Result<c_int> {
    cvt(unsafe { libc::ioctl(fd, req as _, arg) })
}

/// /dev/kvm.
pub struct Kvm {
    fd: Fd,
}

impl Kvm {
    pub fn open() -> io::Result<Self> {
        let fd = cvt(unsafe {
            libc::open(
                b"/dev/kvm\0".as_ptr() as *const _,
                libc::O_RDWR | libc::O_CLOEXEC,
            )
        })?;
        let kvm = Kvm { fd: Fd(fd) };
        let v = ioctl_val(fd, KVM_GET_API_VERSION, 0)?;
        if v as u64 != KVM_API_VERSION {
            return Err(io::Error::new(
                io::ErrorKind::Other,
                format!("KVM API version {}", v),
            ));
        }
        Ok(kvm)
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.0
    }

    pub fn check_extension(&self, cap: u64) -> i32 {
        ioctl_val(self.fd.0, KVM_CHECK_EXTENSION, cap as c_ulong).unwrap_or(0)
    }

    pub fn create_vm(&self) -> io::Result<VmFd> {
        let fd = ioctl_val(self.fd.0, KVM_CREATE_VM, 0)?;
        let run_size = ioctl_val(self.fd.0, KVM_GET_VCPU_MMAP_SIZE, 0)? as usize;
        Ok(VmFd {
            fd: Fd(fd),
            run_size,
        })
    }
}

/// A VM, owned by the VMM (as kvm_ioctls::VmFd).
pub struct VmFd {
    fd: Fd,
    run_size: usize,
}

impl VmFd {
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.0
    }

    /// As kvm_ioctls::VmFd::set_user_memory_region: the caller guarantees the host
    /// range stays mapped while the slot exists.
    ///
    /// # Safety
    /// `region.userspace_addr .. + memory_size` must be a valid mapping for as
    /// long as the slot exists (unless memory_size is 0 or the flags say no memory).
    pub unsafe fn set_user_memory_region(
        &self,
        region: kvm_userspace_memory_region,
    ) -> io::Result<()> {
        ioctl_ptr(self.fd.0, KVM_SET_USER_MEMORY_REGION, &region).map(|_| ())
    }

    pub fn set_tss_address(&self, addr: u64) -> io::Result<()> {
        ioctl_val(self.fd.0, KVM_SET_TSS_ADDR, addr as c_ulong).map(|_| ())
    }

    pub fn create_vcpu(&self, id: u64) -> io::Result<VcpuFd> {
        let fd = ioctl_val(self.fd.0, KVM_CREATE_VCPU, id as c_ulong)?;
        let fd = Fd(fd);
        let run = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.run_size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.0,
                0,
            )
        };
        if run == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(VcpuFd {
            fd,
            run: run as *mut u8,
            run_size: self.run_size,
        })
    }
}

/// What KVM_RUN returned, decoded as far as this example needs.
#[derive(Debug)]
pub enum VcpuExit {
    Hlt,
    /// phys_addr, len, is_write (the data is in the run page: see mmio_data()).
    Mmio(u64, u32, bool),
    Io,
    Shutdown,
    FailEntry,
    InternalError,
    Other(u32),
    /// KVM_RUN returned EINTR (a signal, e.g. our watchdog alarm).
    Interrupted,
}

pub struct VcpuFd {
    fd: Fd,
    run: *mut u8,
    run_size: usize,
}

impl VcpuFd {
    pub fn get_sregs(&self) -> io::Result<kvm_sregs> {
        let mut s = kvm_sregs::default();
        ioctl_ptr(self.fd.0, KVM_GET_SREGS, &mut s as *mut kvm_sregs).map(|_| s)
    }

    pub fn set_sregs(&self, s: &kvm_sregs) -> io::Result<()> {
        ioctl_ptr(self.fd.0, KVM_SET_SREGS, s).map(|_| ())
    }

    pub fn get_regs(&self) -> io::Result<kvm_regs> {
        let mut r = kvm_regs::default();
        ioctl_ptr(self.fd.0, KVM_GET_REGS, &mut r as *mut kvm_regs).map(|_| r)
    }

    pub fn set_regs(&self, r: &kvm_regs) -> io::Result<()> {
        ioctl_ptr(self.fd.0, KVM_SET_REGS, r).map(|_| ())
    }

    pub fn run(&self) -> io::Result<VcpuExit> {
        if let Err(e) = ioctl_val(self.fd.0, KVM_RUN, 0) {
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(VcpuExit::Interrupted);
            }
            return Err(e);
        }
        unsafe {
            let reason = std::ptr::read_volatile(self.run.add(RUN_EXIT_REASON) as *const u32);
            Ok(match reason {
                KVM_EXIT_HLT => VcpuExit::Hlt,
                KVM_EXIT_MMIO => VcpuExit::Mmio(
                    std::ptr::read_volatile(self.run.add(RUN_MMIO_PHYS_ADDR) as *const u64),
                    std::ptr::read_volatile(self.run.add(RUN_MMIO_LEN) as *const u32),
                    std::ptr::read_volatile(self.run.add(RUN_MMIO_IS_WRITE)) != 0,
                ),
                KVM_EXIT_IO => VcpuExit::Io,
                KVM_EXIT_SHUTDOWN => VcpuExit::Shutdown,
                KVM_EXIT_FAIL_ENTRY => VcpuExit::FailEntry,
                KVM_EXIT_INTERNAL_ERROR => VcpuExit::InternalError,
                r => VcpuExit::Other(r),
            })
        }
    }

    /// kvm_run.mmio.data: read it for a write exit, fill it for a read exit.
    pub fn mmio_data(&mut self) -> &mut [u8; 8] {
        unsafe { &mut *(self.run.add(RUN_MMIO_DATA) as *mut [u8; 8]) }
    }
}

impl Drop for VcpuFd {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.run as *mut _, self.run_size) };
    }
}
