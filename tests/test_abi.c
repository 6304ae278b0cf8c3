// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * ABI of the public structs.
 *
 * 1. struct pcihole_region must be layout-identical to the kernel's
 *    struct kvm_userspace_memory_region (what KVM_SET_USER_MEMORY_REGION and
 *    kvm-bindings' #[repr(C)] mirror take): checked at compile time against
 *    <linux/kvm.h>, size 32 and every offset and field size.  The same for
 *    struct pcihole_region2 and kvm_userspace_memory_region2 (Linux >= 6.8;
 *    Debian 12's 6.1 headers lack it, so against the library's copy of the
 *    uAPI definition in lib/kvm_compat.h and the absolute offsets of 6.8).
 * 2. Every other public struct has the size, alignment and offsets written
 *    below.  These numbers are the contract the hand-written Rust mirror in
 *    examples/rust-vmm/src/ffi.rs checks too (cargo test): if one changes,
 *    both sides must change, which is the point.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/kvm.h>

#include "kvm_compat.h"
#include "testutil.h"

#define FIELD_SIZE(type, member) sizeof(((type *)0)->member)

/* --- 1. struct pcihole_region == struct kvm_userspace_memory_region ------ */

#define SAME_FIELD(m)                                                          \
	_Static_assert(offsetof(struct pcihole_region, m) ==                   \
			       offsetof(struct kvm_userspace_memory_region, m), \
		       "offset of " #m " differs from kvm_userspace_memory_region"); \
	_Static_assert(FIELD_SIZE(struct pcihole_region, m) ==                 \
			       FIELD_SIZE(struct kvm_userspace_memory_region, m), \
		       "size of " #m " differs from kvm_userspace_memory_region")

_Static_assert(sizeof(struct pcihole_region) == 32, "pcihole_region is 32 bytes");
_Static_assert(sizeof(struct kvm_userspace_memory_region) == 32,
	       "kvm_userspace_memory_region is 32 bytes");
_Static_assert(sizeof(struct pcihole_region) ==
		       sizeof(struct kvm_userspace_memory_region),
	       "pcihole_region and kvm_userspace_memory_region differ in size");
_Static_assert(alignof(struct pcihole_region) ==
		       alignof(struct kvm_userspace_memory_region),
	       "pcihole_region and kvm_userspace_memory_region differ in alignment");
SAME_FIELD(slot);
SAME_FIELD(flags);
SAME_FIELD(guest_phys_addr);
SAME_FIELD(memory_size);
SAME_FIELD(userspace_addr);
/* And the absolute offsets kvm-bindings uses. */
_Static_assert(offsetof(struct pcihole_region, slot) == 0, "slot at 0");
_Static_assert(offsetof(struct pcihole_region, flags) == 4, "flags at 4");
_Static_assert(offsetof(struct pcihole_region, guest_phys_addr) == 8, "gpa at 8");
_Static_assert(offsetof(struct pcihole_region, memory_size) == 16, "size at 16");
_Static_assert(offsetof(struct pcihole_region, userspace_addr) == 24, "uaddr at 24");

/* --- 1b. struct pcihole_region2 == struct kvm_userspace_memory_region2 ---- */

#define SAME_FIELD2(m)                                                         \
	_Static_assert(offsetof(struct pcihole_region2, m) ==                  \
			       offsetof(struct kvm_userspace_memory_region2, m), \
		       "offset of " #m " differs from kvm_userspace_memory_region2"); \
	_Static_assert(FIELD_SIZE(struct pcihole_region2, m) ==                \
			       FIELD_SIZE(struct kvm_userspace_memory_region2, m), \
		       "size of " #m " differs from kvm_userspace_memory_region2")

_Static_assert(sizeof(struct pcihole_region2) == 160, "pcihole_region2 is 160 bytes");
_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160,
	       "kvm_userspace_memory_region2 is 160 bytes");
SAME_FIELD2(slot);
SAME_FIELD2(flags);
SAME_FIELD2(guest_phys_addr);
SAME_FIELD2(memory_size);
SAME_FIELD2(userspace_addr);
SAME_FIELD2(guest_memfd_offset);
SAME_FIELD2(guest_memfd);
SAME_FIELD2(pad1);
SAME_FIELD2(pad2);
_Static_assert(offsetof(struct pcihole_region2, guest_memfd_offset) == 32, "gmem offset at 32");
_Static_assert(offsetof(struct pcihole_region2, guest_memfd) == 40, "gmem fd at 40");
_Static_assert(offsetof(struct pcihole_region2, pad2) == 48, "pad2 at 48");

/* The flag the library carries must not collide with upstream flags of these headers. */
_Static_assert((PCIHOLE_KVM_MEM_PCI_HOLE & KVM_MEM_READONLY) == 0,
	       "PCI_HOLE flag collides with KVM_MEM_READONLY");
_Static_assert((PCIHOLE_KVM_MEM_PCI_HOLE & KVM_MEM_LOG_DIRTY_PAGES) == 0,
	       "PCI_HOLE flag collides with KVM_MEM_LOG_DIRTY_PAGES");
#ifdef KVM_MEM_GUEST_MEMFD
_Static_assert((PCIHOLE_KVM_MEM_PCI_HOLE & KVM_MEM_GUEST_MEMFD) == 0,
	       "PCI_HOLE flag collides with KVM_MEM_GUEST_MEMFD");
#endif
#ifdef KVM_MEM_PCI_HOLE
_Static_assert(KVM_MEM_PCI_HOLE == PCIHOLE_KVM_MEM_PCI_HOLE,
	       "installed <linux/kvm.h> has a different KVM_MEM_PCI_HOLE");
#endif
#ifdef KVM_CAP_PCI_HOLE_MEM
_Static_assert(KVM_CAP_PCI_HOLE_MEM == PCIHOLE_KVM_CAP_PCI_HOLE_MEM,
	       "installed <linux/kvm.h> has a different KVM_CAP_PCI_HOLE_MEM");
#endif

/* --- 2. the other public structs: the table the Rust mirror also checks --- */

struct field {
	const char *name;
	size_t offset;
	size_t size;
	size_t want_offset;
	size_t want_size;
};

struct layout_check {
	const char *name;
	size_t size;
	size_t align;
	size_t want_size;
	size_t want_align;
	const struct field *fields;
	size_t nr_fields;
};

#define F(type, m, off, sz) \
	{ #m, offsetof(struct type, m), FIELD_SIZE(struct type, m), (off), (sz) }
#define S(type, sz, al, arr) \
	{ #type, sizeof(struct type), alignof(struct type), (sz), (al), (arr), \
	  sizeof(arr) / sizeof((arr)[0]) }

static const struct field segment_fields[] = {
	F(pcihole_segment, base, 0, 8),
	F(pcihole_segment, segment, 8, 2),
	F(pcihole_segment, bus_start, 10, 1),
	F(pcihole_segment, bus_end, 11, 1),
	F(pcihole_segment, reserved, 12, 4),
};

static const struct field bdf_fields[] = {
	F(pcihole_bdf, segment, 0, 2),
	F(pcihole_bdf, bus, 2, 1),
	F(pcihole_bdf, dev, 3, 1),
	F(pcihole_bdf, fn, 4, 1),
	F(pcihole_bdf, reserved, 5, 3),
};

static const struct field run_fields[] = {
	F(pcihole_run, gpa, 0, 8),
	F(pcihole_run, size, 8, 8),
	F(pcihole_run, fn0_pages, 16, 4),
	F(pcihole_run, reserved, 20, 4),
};

static const struct field plan_info_fields[] = {
	F(pcihole_plan_info, hole_pages, 0, 8),
	F(pcihole_plan_info, covered_pages, 8, 8),
	F(pcihole_plan_info, uncovered_pages, 16, 8),
	F(pcihole_plan_info, uncovered_fn0_pages, 24, 8),
	F(pcihole_plan_info, nr_runs, 32, 4),
	F(pcihole_plan_info, nr_slots, 36, 4),
	F(pcihole_plan_info, clipped_pages, 40, 8),
	F(pcihole_plan_info, shadowed_pages, 48, 8),
	F(pcihole_plan_info, reserved, 56, 16),
};

static const struct field plan_opts_fields[] = {
	F(pcihole_plan_opts, budget, 0, 4),
	F(pcihole_plan_opts, reserved0, 4, 4),
	F(pcihole_plan_opts, page_size, 8, 8),
	F(pcihole_plan_opts, reserved, 16, 32),
};

static const struct field access_fields[] = {
	F(pcihole_access, kind, 0, 4),
	F(pcihole_access, offset, 4, 4),
	F(pcihole_access, bdf, 8, 8),
	F(pcihole_access, reserved, 16, 16),
};

static const struct field region2_fields[] = {
	F(pcihole_region2, slot, 0, 4),
	F(pcihole_region2, flags, 4, 4),
	F(pcihole_region2, guest_phys_addr, 8, 8),
	F(pcihole_region2, memory_size, 16, 8),
	F(pcihole_region2, userspace_addr, 24, 8),
	F(pcihole_region2, guest_memfd_offset, 32, 8),
	F(pcihole_region2, guest_memfd, 40, 4),
	F(pcihole_region2, pad1, 44, 4),
	F(pcihole_region2, pad2, 48, 112),
};

static const struct field allones_range_fields[] __attribute__((unused)) = {
	F(pcihole_allones_range, base, 0, 8),
	F(pcihole_allones_range, len, 8, 8),
	F(pcihole_allones_range, userspace_addr, 16, 8),
};

static const struct field region_fields[] = {
	F(pcihole_region, slot, 0, 4),
	F(pcihole_region, flags, 4, 4),
	F(pcihole_region, guest_phys_addr, 8, 8),
	F(pcihole_region, memory_size, 16, 8),
	F(pcihole_region, userspace_addr, 24, 8),
};

static const struct field caps_fields[] = {
	F(pcihole_caps, readonly_mem, 0, 4),
	F(pcihole_caps, nr_memslots, 4, 4),
	F(pcihole_caps, pci_hole_cap, 8, 4),
	F(pcihole_caps, pci_hole_works, 12, 4),
	F(pcihole_caps, pre_fault_memory, 16, 4),
	F(pcihole_caps, user_memory2, 20, 4),
	F(pcihole_caps, pci_hole_tested, 24, 4),
	F(pcihole_caps, pci_hole_flag, 28, 4),
	F(pcihole_caps, reserved, 32, 20),
};

static const struct field ctx_config_fields[] __attribute__((unused)) = {
	F(pcihole_ctx_config, mode, 0, 4),
	F(pcihole_ctx_config, flags, 4, 4),
	F(pcihole_ctx_config, slot_base, 8, 4),
	F(pcihole_ctx_config, nr_slots, 12, 4),
	F(pcihole_ctx_config, memfd, 16, 4),
	F(pcihole_ctx_config, as_id, 20, 2),
	F(pcihole_ctx_config, reserved0, 22, 2),
	F(pcihole_ctx_config, chunk, 24, 8),
	F(pcihole_ctx_config, caps, 32, 8),
	F(pcihole_ctx_config, log, 40, 8),
	F(pcihole_ctx_config, log_opaque, 48, 8),
	F(pcihole_ctx_config, apply, 56, 8),
	F(pcihole_ctx_config, apply_opaque, 64, 8),
	F(pcihole_ctx_config, page_size, 72, 8),
	F(pcihole_ctx_config, reserved, 80, 64),
};

static const struct field ctx_stats_fields[] = {
	F(pcihole_ctx_stats, mode, 0, 4),
	F(pcihole_ctx_stats, backing, 4, 4),
	F(pcihole_ctx_stats, nr_slots, 8, 4),
	F(pcihole_ctx_stats, nr_runs, 12, 4),
	F(pcihole_ctx_stats, uncovered_pages, 16, 8),
	F(pcihole_ctx_stats, memfd_bytes, 24, 8),
	F(pcihole_ctx_stats, nr_mappings, 32, 8),
	F(pcihole_ctx_stats, mapped_bytes, 40, 8),
	F(pcihole_ctx_stats, nr_hotplugs, 48, 8),
	F(pcihole_ctx_stats, nr_replans, 56, 8),
	F(pcihole_ctx_stats, nr_shadowed, 64, 8),
	F(pcihole_ctx_stats, reserved, 72, 40),
};

static const struct layout_check checks[] = {
	S(pcihole_segment, 16, 8, segment_fields),
	S(pcihole_bdf, 8, 2, bdf_fields),
	S(pcihole_run, 24, 8, run_fields),
	S(pcihole_plan_info, 72, 8, plan_info_fields),
	S(pcihole_plan_opts, 48, 8, plan_opts_fields),
	S(pcihole_access, 32, 8, access_fields),
	S(pcihole_region, 32, 8, region_fields),
	S(pcihole_region2, 160, 8, region2_fields),
	S(pcihole_caps, 52, 4, caps_fields),
#if UINTPTR_MAX == UINT64_MAX	/* pointers in them: the numbers are for LP64 */
	S(pcihole_ctx_config, 144, 8, ctx_config_fields),
	S(pcihole_allones_range, 24, 8, allones_range_fields),
#endif
	S(pcihole_ctx_stats, 112, 8, ctx_stats_fields),
};

static void test_struct_layouts(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		const struct layout_check *c = &checks[i];
		size_t end = 0;

		if (c->size != c->want_size || c->align != c->want_align) {
			print_error("struct %s: size %zu align %zu, expected %zu/%zu\n",
				    c->name, c->size, c->align, c->want_size, c->want_align);
			bad++;
		}
		for (size_t j = 0; j < c->nr_fields; j++) {
			const struct field *f = &c->fields[j];

			if (f->offset != f->want_offset || f->size != f->want_size) {
				print_error("struct %s.%s: offset %zu size %zu, expected %zu/%zu\n",
					    c->name, f->name, f->offset, f->size,
					    f->want_offset, f->want_size);
				bad++;
			}
			/* Fields listed in order, no implicit padding anywhere. */
			if (f->offset != end) {
				print_error("struct %s.%s: implicit padding before it (%zu != %zu)\n",
					    c->name, f->name, f->offset, end);
				bad++;
			}
			end = f->offset + f->size;
		}
		if (end != c->size) {
			print_error("struct %s: %zu bytes of fields, sizeof %zu (tail padding or a field missing from the table)\n",
				    c->name, end, c->size);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* Enums cross the FFI as C int; the Rust mirror uses these numbers. */
static void test_enum_values(void **state)
{
	(void)state;
	assert_int_equal(sizeof(enum pcihole_mode), 4);
	assert_int_equal(sizeof(enum pcihole_backing), 4);
	assert_int_equal(PCIHOLE_MODE_AUTO, 0);
	assert_int_equal(PCIHOLE_MODE_PCI_HOLE, 1);
	assert_int_equal(PCIHOLE_MODE_READONLY, 2);
	assert_int_equal(PCIHOLE_MODE_MMIO, 3);
	assert_int_equal(PCIHOLE_BACKING_NONE, 0);
	assert_int_equal(PCIHOLE_BACKING_HUGETLB, 1);
	assert_int_equal(PCIHOLE_BACKING_THP, 2);
	assert_int_equal(PCIHOLE_BACKING_4K, 3);
	assert_int_equal(PCIHOLE_NO_BUDGET, UINT32_MAX);
	assert_int_equal(PCIHOLE_ACCESS_NONE, 0);
	assert_int_equal(PCIHOLE_ACCESS_HOLE, 1);
	assert_int_equal(PCIHOLE_ACCESS_FUNCTION, 2);
	assert_int_equal(PCIHOLE_ACCESS_SHADOWED, 3);
	/* The 7.2 series' numbers, and the 6.12 backport's. */
	assert_true(PCIHOLE_KVM_MEM_PCI_HOLE == (1u << 3));
	assert_int_equal(PCIHOLE_KVM_CAP_PCI_HOLE_MEM, 250);
	assert_true(PCIHOLE_KVM_MEM_PCI_HOLE_612 == (1u << 15));
	assert_int_equal(PCIHOLE_KVM_CAP_PCI_HOLE_MEM_612, 1024);
	assert_true(PCIHOLE_CTX_REGION2 == (1u << 1));
	assert_true(PCIHOLE_ALLONES_CHUNK_DEFAULT == (2ULL << 20));
}

/*
 * The record pcihole_run_to_region() writes is usable as a
 * kvm_userspace_memory_region byte for byte (no ioctl here: the bytes only).
 */
static void test_region_bytes_are_kvm_record(void **state)
{
	struct pcihole_run run = { .gpa = 0xb0001000, .size = 7 * 4096, .fn0_pages = 0 };
	struct pcihole_region r;
	struct kvm_userspace_memory_region k;

	(void)state;
	memset(&r, 0xa5, sizeof(r));
	assert_int_equal(pcihole_run_to_region(&run, 42, KVM_MEM_READONLY,
					       0x7f0000200000ULL, &r), 0);
	memcpy(&k, &r, sizeof(k));
	assert_int_equal(k.slot, 42);
	assert_int_equal(k.flags, KVM_MEM_READONLY);
	assert_true(k.guest_phys_addr == 0xb0001000ULL);
	assert_true(k.memory_size == 7 * 4096ULL);
	assert_true(k.userspace_addr == 0x7f0000200000ULL);

	assert_int_equal(pcihole_run_to_region(&run, 7, PCIHOLE_KVM_MEM_PCI_HOLE, 0, &r), 0);
	memcpy(&k, &r, sizeof(k));
	assert_int_equal(k.slot, 7);
	assert_true(k.flags == PCIHOLE_KVM_MEM_PCI_HOLE);
	assert_true(k.userspace_addr == 0);
}

/* A v1 record widened to REGION2 keeps every byte and zeroes the rest. */
static void test_region2_widening(void **state)
{
	struct pcihole_region r = {
		.slot = 1u << 16 | 9, .flags = KVM_MEM_READONLY,
		.guest_phys_addr = 0xe0000000, .memory_size = 0x200000,
		.userspace_addr = 0x7f0000000000ULL,
	};
	struct pcihole_region2 r2;
	static const uint8_t zero[sizeof(r2) - sizeof(r)];

	(void)state;
	memset(&r2, 0xa5, sizeof(r2));
	pcihole_region_to_region2(&r, &r2);
	assert_memory_equal(&r2, &r, sizeof(r));
	assert_memory_equal((const uint8_t *)&r2 + sizeof(r), zero, sizeof(zero));
}

static void test_version(void **state)
{
	(void)state;
	assert_int_equal(pcihole_version(),
			 PCIHOLE_VERSION_CODE(PCIHOLE_VERSION_MAJOR, PCIHOLE_VERSION_MINOR,
					      PCIHOLE_VERSION_PATCH));
	assert_int_equal(pcihole_version() >> 16, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_struct_layouts),
		cmocka_unit_test(test_enum_values),
		cmocka_unit_test(test_region_bytes_are_kvm_record),
		cmocka_unit_test(test_region2_widening),
		cmocka_unit_test(test_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
