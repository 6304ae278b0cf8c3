// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The C side of the Rust mirrors' ABI test: sizes, offsets and numbers as the C
 * compiler sees them in <pcihole.h> (the installed one, found by pkg-config)
 * and <linux/kvm.h>.  src/abi.rs lists the same names with the Rust values;
 * `cargo test` fails on any difference or any name missing on either side.
 * Linked only into the test and the example (a static archive built by build.rs).
 */
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>
#include <pcihole.h>

struct phrs_abi_entry {
	const char *name;
	uint64_t value;
};

#define SZ(t) { "sizeof " #t, sizeof(struct t) }
#define AL(t) { "alignof " #t, _Alignof(struct t) }
#define OFF(t, f) { #t "." #f, offsetof(struct t, f) }
#define NUM(n) { #n, (uint64_t)(n) }

static const struct phrs_abi_entry table[] = {
	/* libpcihole */
	SZ(pcihole_segment), AL(pcihole_segment),
	OFF(pcihole_segment, base), OFF(pcihole_segment, segment),
	OFF(pcihole_segment, bus_start), OFF(pcihole_segment, bus_end),
	OFF(pcihole_segment, reserved),
	SZ(pcihole_bdf), AL(pcihole_bdf),
	OFF(pcihole_bdf, segment), OFF(pcihole_bdf, bus), OFF(pcihole_bdf, dev),
	OFF(pcihole_bdf, fn), OFF(pcihole_bdf, reserved),
	SZ(pcihole_run), AL(pcihole_run),
	OFF(pcihole_run, gpa), OFF(pcihole_run, size), OFF(pcihole_run, fn0_pages),
	OFF(pcihole_run, reserved),
	SZ(pcihole_plan_info), AL(pcihole_plan_info),
	OFF(pcihole_plan_info, hole_pages), OFF(pcihole_plan_info, covered_pages),
	OFF(pcihole_plan_info, uncovered_pages),
	OFF(pcihole_plan_info, uncovered_fn0_pages),
	OFF(pcihole_plan_info, nr_runs), OFF(pcihole_plan_info, nr_slots),
	OFF(pcihole_plan_info, clipped_pages), OFF(pcihole_plan_info, shadowed_pages),
	OFF(pcihole_plan_info, reserved),
	SZ(pcihole_region), AL(pcihole_region),
	OFF(pcihole_region, slot), OFF(pcihole_region, flags),
	OFF(pcihole_region, guest_phys_addr), OFF(pcihole_region, memory_size),
	OFF(pcihole_region, userspace_addr),
	SZ(pcihole_caps), AL(pcihole_caps),
	OFF(pcihole_caps, readonly_mem), OFF(pcihole_caps, nr_memslots),
	OFF(pcihole_caps, pci_hole_cap), OFF(pcihole_caps, pci_hole_works),
	OFF(pcihole_caps, pre_fault_memory), OFF(pcihole_caps, user_memory2),
	OFF(pcihole_caps, pci_hole_tested), OFF(pcihole_caps, pci_hole_flag),
	OFF(pcihole_caps, reserved),
	SZ(pcihole_access), OFF(pcihole_access, offset), OFF(pcihole_access, bdf),
	OFF(pcihole_access, reserved), NUM(PCIHOLE_ACCESS_SHADOWED),
	SZ(pcihole_allones_range), OFF(pcihole_allones_range, len),
	OFF(pcihole_allones_range, userspace_addr),
	{ "sizeof enum pcihole_backing", sizeof(enum pcihole_backing) },
	NUM(PCIHOLE_BACKING_NONE), NUM(PCIHOLE_BACKING_HUGETLB),
	NUM(PCIHOLE_BACKING_THP), NUM(PCIHOLE_BACKING_4K),
	NUM(PCIHOLE_NO_BUDGET), NUM(PCIHOLE_KVM_MEM_PCI_HOLE), NUM(PCIHOLE_KVM_MEM_PCI_HOLE_612),
	NUM(PCIHOLE_ALLONES_CHUNK_DEFAULT), NUM(PCIHOLE_PAGE_SIZE),
	NUM(PCIHOLE_BUS_SIZE), NUM(PCIHOLE_BDF_STRLEN), NUM(PCIHOLE_SEGMENT_STRLEN),

	/* KVM, as the hand-written src/kvm.rs has it */
	SZ(kvm_userspace_memory_region), AL(kvm_userspace_memory_region),
	OFF(kvm_userspace_memory_region, slot), OFF(kvm_userspace_memory_region, flags),
	OFF(kvm_userspace_memory_region, guest_phys_addr),
	OFF(kvm_userspace_memory_region, memory_size),
	OFF(kvm_userspace_memory_region, userspace_addr),
	SZ(kvm_segment), OFF(kvm_segment, base), OFF(kvm_segment, limit),
	OFF(kvm_segment, selector), OFF(kvm_segment, type), OFF(kvm_segment, present),
	OFF(kvm_segment, dpl), OFF(kvm_segment, db), OFF(kvm_segment, s),
	OFF(kvm_segment, l), OFF(kvm_segment, g), OFF(kvm_segment, avl),
	OFF(kvm_segment, unusable),
	SZ(kvm_dtable),
	SZ(kvm_sregs), OFF(kvm_sregs, cs), OFF(kvm_sregs, ds), OFF(kvm_sregs, es),
	OFF(kvm_sregs, fs), OFF(kvm_sregs, gs), OFF(kvm_sregs, ss), OFF(kvm_sregs, tr),
	OFF(kvm_sregs, ldt), OFF(kvm_sregs, gdt), OFF(kvm_sregs, idt),
	OFF(kvm_sregs, cr0), OFF(kvm_sregs, cr4), OFF(kvm_sregs, efer),
	OFF(kvm_sregs, interrupt_bitmap),
	SZ(kvm_regs), OFF(kvm_regs, rsp), OFF(kvm_regs, rip), OFF(kvm_regs, rflags),
	OFF(kvm_run, exit_reason), OFF(kvm_run, mmio.phys_addr), OFF(kvm_run, mmio.data),
	OFF(kvm_run, mmio.len), OFF(kvm_run, mmio.is_write),
	NUM(KVM_GET_API_VERSION), NUM(KVM_CREATE_VM), NUM(KVM_CHECK_EXTENSION),
	NUM(KVM_GET_VCPU_MMAP_SIZE), NUM(KVM_CREATE_VCPU), NUM(KVM_SET_TSS_ADDR),
	NUM(KVM_SET_USER_MEMORY_REGION), NUM(KVM_RUN), NUM(KVM_GET_REGS),
	NUM(KVM_SET_REGS), NUM(KVM_GET_SREGS), NUM(KVM_SET_SREGS),
	NUM(KVM_API_VERSION), NUM(KVM_CAP_USER_MEMORY), NUM(KVM_CAP_NR_MEMSLOTS),
	NUM(KVM_CAP_READONLY_MEM), NUM(KVM_MEM_READONLY),
	NUM(KVM_EXIT_IO), NUM(KVM_EXIT_HLT), NUM(KVM_EXIT_MMIO), NUM(KVM_EXIT_SHUTDOWN),
	NUM(KVM_EXIT_FAIL_ENTRY), NUM(KVM_EXIT_INTERNAL_ERROR),
};

const struct phrs_abi_entry *phrs_abi_table(size_t *nr);

const struct phrs_abi_entry *phrs_abi_table(size_t *nr)
{
	*nr = sizeof(table) / sizeof(table[0]);
	return table;
}
