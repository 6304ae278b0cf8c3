// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
//! ABI test: the hand-written mirrors in ffi.rs and kvm.rs against the C compiler's
//! view of <pcihole.h> and <linux/kvm.h> (csrc/abi_probe.c, built by build.rs).
//! Every name must exist on both sides with the same value.

#[cfg(test)]
mod tests {
    use crate::ffi::*;
    use crate::kvm::*;
    use std::collections::BTreeMap;
    use std::ffi::CStr;
    use std::mem::{align_of, size_of, MaybeUninit};
    use std::os::raw::c_char;

    #[repr(C)]
    struct Entry {
        name: *const c_char,
        value: u64,
    }

    extern "C" {
        fn phrs_abi_table(nr: *mut usize) -> *const Entry;
    }

    // offset_of! is Rust 1.77; Debian 12 has 1.63.
    macro_rules! off {
        ($t:ty, $($f:tt)+) => {{
            let u = MaybeUninit::<$t>::uninit();
            let b = u.as_ptr();
            #[allow(unused_unsafe)]
            let f = unsafe { std::ptr::addr_of!((*b).$($f)+) };
            (f as usize - b as usize) as u64
        }};
    }

    fn c_table() -> BTreeMap<String, u64> {
        let mut n = 0usize;
        let p = unsafe { phrs_abi_table(&mut n) };
        let s = unsafe { std::slice::from_raw_parts(p, n) };
        s.iter()
            .map(|e| {
                (
                    unsafe { CStr::from_ptr(e.name) }
                        .to_string_lossy()
                        .into_owned(),
                    e.value,
                )
            })
            .collect()
    }

    fn rust_table() -> BTreeMap<String, u64> {
        let mut t: Vec<(&str, u64)> = vec![
            (
                "sizeof pcihole_segment",
                size_of::<pcihole_segment>() as u64,
            ),
            (
                "alignof pcihole_segment",
                align_of::<pcihole_segment>() as u64,
            ),
            ("pcihole_segment.base", off!(pcihole_segment, base)),
            ("pcihole_segment.segment", off!(pcihole_segment, segment)),
            (
                "pcihole_segment.bus_start",
                off!(pcihole_segment, bus_start),
            ),
            ("pcihole_segment.bus_end", off!(pcihole_segment, bus_end)),
            ("pcihole_segment.reserved", off!(pcihole_segment, reserved)),
            ("sizeof pcihole_bdf", size_of::<pcihole_bdf>() as u64),
            ("alignof pcihole_bdf", align_of::<pcihole_bdf>() as u64),
            ("pcihole_bdf.segment", off!(pcihole_bdf, segment)),
            ("pcihole_bdf.bus", off!(pcihole_bdf, bus)),
            ("pcihole_bdf.dev", off!(pcihole_bdf, dev)),
            ("pcihole_bdf.fn", off!(pcihole_bdf, fn_)),
            ("pcihole_bdf.reserved", off!(pcihole_bdf, reserved)),
            ("sizeof pcihole_run", size_of::<pcihole_run>() as u64),
            ("alignof pcihole_run", align_of::<pcihole_run>() as u64),
            ("pcihole_run.gpa", off!(pcihole_run, gpa)),
            ("pcihole_run.size", off!(pcihole_run, size)),
            ("pcihole_run.fn0_pages", off!(pcihole_run, fn0_pages)),
            ("pcihole_run.reserved", off!(pcihole_run, reserved)),
            (
                "sizeof pcihole_plan_info",
                size_of::<pcihole_plan_info>() as u64,
            ),
            (
                "alignof pcihole_plan_info",
                align_of::<pcihole_plan_info>() as u64,
            ),
            (
                "pcihole_plan_info.hole_pages",
                off!(pcihole_plan_info, hole_pages),
            ),
            (
                "pcihole_plan_info.covered_pages",
                off!(pcihole_plan_info, covered_pages),
            ),
            (
                "pcihole_plan_info.uncovered_pages",
                off!(pcihole_plan_info, uncovered_pages),
            ),
            (
                "pcihole_plan_info.uncovered_fn0_pages",
                off!(pcihole_plan_info, uncovered_fn0_pages),
            ),
            (
                "pcihole_plan_info.nr_runs",
                off!(pcihole_plan_info, nr_runs),
            ),
            (
                "pcihole_plan_info.nr_slots",
                off!(pcihole_plan_info, nr_slots),
            ),
            (
                "pcihole_plan_info.clipped_pages",
                off!(pcihole_plan_info, clipped_pages),
            ),
            (
                "pcihole_plan_info.shadowed_pages",
                off!(pcihole_plan_info, shadowed_pages),
            ),
            (
                "pcihole_plan_info.reserved",
                off!(pcihole_plan_info, reserved),
            ),
            ("sizeof pcihole_region", size_of::<pcihole_region>() as u64),
            (
                "alignof pcihole_region",
                align_of::<pcihole_region>() as u64,
            ),
            ("pcihole_region.slot", off!(pcihole_region, slot)),
            ("pcihole_region.flags", off!(pcihole_region, flags)),
            (
                "pcihole_region.guest_phys_addr",
                off!(pcihole_region, guest_phys_addr),
            ),
            (
                "pcihole_region.memory_size",
                off!(pcihole_region, memory_size),
            ),
            (
                "pcihole_region.userspace_addr",
                off!(pcihole_region, userspace_addr),
            ),
            ("sizeof pcihole_caps", size_of::<pcihole_caps>() as u64),
            ("alignof pcihole_caps", align_of::<pcihole_caps>() as u64),
            (
                "pcihole_caps.readonly_mem",
                off!(pcihole_caps, readonly_mem),
            ),
            ("pcihole_caps.nr_memslots", off!(pcihole_caps, nr_memslots)),
            (
                "pcihole_caps.pci_hole_cap",
                off!(pcihole_caps, pci_hole_cap),
            ),
            (
                "pcihole_caps.pci_hole_works",
                off!(pcihole_caps, pci_hole_works),
            ),
            (
                "pcihole_caps.pre_fault_memory",
                off!(pcihole_caps, pre_fault_memory),
            ),
            (
                "pcihole_caps.user_memory2",
                off!(pcihole_caps, user_memory2),
            ),
            (
                "pcihole_caps.pci_hole_tested",
                off!(pcihole_caps, pci_hole_tested),
            ),
            (
                "pcihole_caps.pci_hole_flag",
                off!(pcihole_caps, pci_hole_flag),
            ),
            ("pcihole_caps.reserved", off!(pcihole_caps, reserved)),
            ("sizeof pcihole_access", size_of::<pcihole_access>() as u64),
            ("pcihole_access.offset", off!(pcihole_access, offset)),
            ("pcihole_access.bdf", off!(pcihole_access, bdf)),
            ("pcihole_access.reserved", off!(pcihole_access, reserved)),
            ("PCIHOLE_ACCESS_SHADOWED", PCIHOLE_ACCESS_SHADOWED as u64),
            (
                "sizeof pcihole_allones_range",
                size_of::<pcihole_allones_range>() as u64,
            ),
            (
                "pcihole_allones_range.len",
                off!(pcihole_allones_range, len),
            ),
            (
                "pcihole_allones_range.userspace_addr",
                off!(pcihole_allones_range, userspace_addr),
            ),
            (
                "sizeof enum pcihole_backing",
                size_of::<std::os::raw::c_uint>() as u64,
            ),
            ("PCIHOLE_BACKING_NONE", PCIHOLE_BACKING_NONE as u64),
            ("PCIHOLE_BACKING_HUGETLB", PCIHOLE_BACKING_HUGETLB as u64),
            ("PCIHOLE_BACKING_THP", PCIHOLE_BACKING_THP as u64),
            ("PCIHOLE_BACKING_4K", PCIHOLE_BACKING_4K as u64),
            ("PCIHOLE_NO_BUDGET", PCIHOLE_NO_BUDGET as u64),
            ("PCIHOLE_KVM_MEM_PCI_HOLE", PCIHOLE_KVM_MEM_PCI_HOLE as u64),
            (
                "PCIHOLE_KVM_MEM_PCI_HOLE_612",
                PCIHOLE_KVM_MEM_PCI_HOLE_612 as u64,
            ),
            (
                "PCIHOLE_ALLONES_CHUNK_DEFAULT",
                PCIHOLE_ALLONES_CHUNK_DEFAULT,
            ),
            ("PCIHOLE_PAGE_SIZE", PCIHOLE_PAGE_SIZE),
            ("PCIHOLE_BUS_SIZE", PCIHOLE_BUS_SIZE),
            ("PCIHOLE_BDF_STRLEN", PCIHOLE_BDF_STRLEN as u64),
            ("PCIHOLE_SEGMENT_STRLEN", PCIHOLE_SEGMENT_STRLEN as u64),
            // KVM
            (
                "sizeof kvm_userspace_memory_region",
                size_of::<kvm_userspace_memory_region>() as u64,
            ),
            (
                "alignof kvm_userspace_memory_region",
                align_of::<kvm_userspace_memory_region>() as u64,
            ),
            (
                "kvm_userspace_memory_region.slot",
                off!(kvm_userspace_memory_region, slot),
            ),
            (
                "kvm_userspace_memory_region.flags",
                off!(kvm_userspace_memory_region, flags),
            ),
            (
                "kvm_userspace_memory_region.guest_phys_addr",
                off!(kvm_userspace_memory_region, guest_phys_addr),
            ),
            (
                "kvm_userspace_memory_region.memory_size",
                off!(kvm_userspace_memory_region, memory_size),
            ),
            (
                "kvm_userspace_memory_region.userspace_addr",
                off!(kvm_userspace_memory_region, userspace_addr),
            ),
            ("sizeof kvm_segment", size_of::<kvm_segment>() as u64),
            ("kvm_segment.base", off!(kvm_segment, base)),
            ("kvm_segment.limit", off!(kvm_segment, limit)),
            ("kvm_segment.selector", off!(kvm_segment, selector)),
            ("kvm_segment.type", off!(kvm_segment, type_)),
            ("kvm_segment.present", off!(kvm_segment, present)),
            ("kvm_segment.dpl", off!(kvm_segment, dpl)),
            ("kvm_segment.db", off!(kvm_segment, db)),
            ("kvm_segment.s", off!(kvm_segment, s)),
            ("kvm_segment.l", off!(kvm_segment, l)),
            ("kvm_segment.g", off!(kvm_segment, g)),
            ("kvm_segment.avl", off!(kvm_segment, avl)),
            ("kvm_segment.unusable", off!(kvm_segment, unusable)),
            ("sizeof kvm_dtable", size_of::<kvm_dtable>() as u64),
            ("sizeof kvm_sregs", size_of::<kvm_sregs>() as u64),
            ("kvm_sregs.cs", off!(kvm_sregs, cs)),
            ("kvm_sregs.ds", off!(kvm_sregs, ds)),
            ("kvm_sregs.es", off!(kvm_sregs, es)),
            ("kvm_sregs.fs", off!(kvm_sregs, fs)),
            ("kvm_sregs.gs", off!(kvm_sregs, gs)),
            ("kvm_sregs.ss", off!(kvm_sregs, ss)),
            ("kvm_sregs.tr", off!(kvm_sregs, tr)),
            ("kvm_sregs.ldt", off!(kvm_sregs, ldt)),
            ("kvm_sregs.gdt", off!(kvm_sregs, gdt)),
            ("kvm_sregs.idt", off!(kvm_sregs, idt)),
            ("kvm_sregs.cr0", off!(kvm_sregs, cr0)),
            ("kvm_sregs.cr4", off!(kvm_sregs, cr4)),
            ("kvm_sregs.efer", off!(kvm_sregs, efer)),
            (
                "kvm_sregs.interrupt_bitmap",
                off!(kvm_sregs, interrupt_bitmap),
            ),
            ("sizeof kvm_regs", size_of::<kvm_regs>() as u64),
            ("kvm_regs.rsp", off!(kvm_regs, rsp)),
            ("kvm_regs.rip", off!(kvm_regs, rip)),
            ("kvm_regs.rflags", off!(kvm_regs, rflags)),
            ("kvm_run.exit_reason", RUN_EXIT_REASON as u64),
            ("kvm_run.mmio.phys_addr", RUN_MMIO_PHYS_ADDR as u64),
            ("kvm_run.mmio.data", RUN_MMIO_DATA as u64),
            ("kvm_run.mmio.len", RUN_MMIO_LEN as u64),
            ("kvm_run.mmio.is_write", RUN_MMIO_IS_WRITE as u64),
            ("KVM_GET_API_VERSION", KVM_GET_API_VERSION),
            ("KVM_CREATE_VM", KVM_CREATE_VM),
            ("KVM_CHECK_EXTENSION", KVM_CHECK_EXTENSION),
            ("KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE),
            ("KVM_CREATE_VCPU", KVM_CREATE_VCPU),
            ("KVM_SET_TSS_ADDR", KVM_SET_TSS_ADDR),
            ("KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION),
            ("KVM_RUN", KVM_RUN),
            ("KVM_GET_REGS", KVM_GET_REGS),
            ("KVM_SET_REGS", KVM_SET_REGS),
            ("KVM_GET_SREGS", KVM_GET_SREGS),
            ("KVM_SET_SREGS", KVM_SET_SREGS),
            ("KVM_API_VERSION", KVM_API_VERSION),
            ("KVM_CAP_USER_MEMORY", KVM_CAP_USER_MEMORY),
            ("KVM_CAP_NR_MEMSLOTS", KVM_CAP_NR_MEMSLOTS),
            ("KVM_CAP_READONLY_MEM", KVM_CAP_READONLY_MEM),
            ("KVM_MEM_READONLY", KVM_MEM_READONLY as u64),
            ("KVM_EXIT_IO", KVM_EXIT_IO as u64),
            ("KVM_EXIT_HLT", KVM_EXIT_HLT as u64),
            ("KVM_EXIT_MMIO", KVM_EXIT_MMIO as u64),
            ("KVM_EXIT_SHUTDOWN", KVM_EXIT_SHUTDOWN as u64),
            ("KVM_EXIT_FAIL_ENTRY", KVM_EXIT_FAIL_ENTRY as u64),
            ("KVM_EXIT_INTERNAL_ERROR", KVM_EXIT_INTERNAL_ERROR as u64),
        ];
        let n = t.len();
        let m: BTreeMap<String, u64> = t.drain(..).map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(m.len(), n, "duplicate name in the Rust table");
        m
    }

    #[test]
    fn mirrors_match_c_headers() {
        let c = c_table();
        let r = rust_table();
        let mut bad = Vec::new();
        for (k, cv) in &c {
            match r.get(k) {
                None => bad.push(format!("{}: C {} but no Rust value", k, cv)),
                Some(rv) if rv != cv => bad.push(format!("{}: C {} Rust {}", k, cv, rv)),
                _ => {}
            }
        }
        for k in r.keys() {
            if !c.contains_key(k) {
                bad.push(format!("{}: Rust only", k));
            }
        }
        assert!(bad.is_empty(), "ABI mismatches:\n{}", bad.join("\n"));
        eprintln!(
            "abi: {} sizes, offsets and numbers agree with pcihole.h and linux/kvm.h",
            c.len()
        );
    }

    #[test]
    fn region_is_the_kvm_record() {
        assert_eq!(size_of::<pcihole_region>(), 32);
        assert_eq!(size_of::<kvm_userspace_memory_region>(), 32);
        let run = pcihole_run {
            gpa: 0xb000_1000,
            size: 7 * 4096,
            fn0_pages: 0,
            reserved: 0,
        };
        let r = run_to_region(&run, 9, KVM_MEM_READONLY, 0x7f00_0020_0000).unwrap();
        let k: kvm_userspace_memory_region = r.into();
        assert_eq!(
            k,
            kvm_userspace_memory_region {
                slot: 9,
                flags: KVM_MEM_READONLY,
                guest_phys_addr: 0xb000_1000,
                memory_size: 7 * 4096,
                userspace_addr: 0x7f00_0020_0000,
            }
        );
        // Byte for byte the same as the C record.
        let rb: [u8; 32] = unsafe { std::mem::transmute(r) };
        let kb: [u8; 32] = unsafe { std::mem::transmute(k) };
        assert_eq!(rb, kb);
        // PCI_HOLE slots carry no memory.
        assert!(run_to_region(&run, 9, PCIHOLE_KVM_MEM_PCI_HOLE, 0x1000).is_err());
    }

    #[test]
    fn q35_plan_from_rust() {
        let seg = parse_segment("0:0xb0000000:0-255").unwrap();
        let mut l = Layout::new(&[seg], 0).unwrap();
        for s in [
            "00:00.0", "00:01.0", "00:02.0", "00:1f.0", "00:1f.2", "00:1f.3",
        ] {
            assert!(l.set_present(&parse_bdf(s).unwrap(), true).unwrap());
        }
        let (runs, info) = l.plan(None).unwrap();
        assert_eq!(runs.len(), 5);
        assert_eq!(info.nr_runs, 5);
        assert_eq!(info.hole_pages, 65530);
        assert_eq!(info.covered_pages, 65530);
        assert_eq!(runs[0].gpa, 0xb000_1000);
        assert_eq!(runs[0].size, 7 * 4096);
        let (runs2, info2) = l.plan(Some(2)).unwrap();
        assert_eq!(runs2.len(), 2);
        assert_eq!(info2.covered_pages + info2.uncovered_pages, 65530);
        let mut d = [0u8; 4];
        assert!(l.mmio_access(0xb000_9000, &mut d, false).unwrap());
        assert_eq!(d, [0xff; 4]);
        let mut d = [0u8; 4];
        assert!(!l.mmio_access(0xb000_8000, &mut d, false).unwrap());
        assert_eq!(d, [0; 4]);
        assert_eq!(format!("{}", parse_bdf("00:1f.3").unwrap()), "0000:00:1f.3");
    }
}
