// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Shadowed functions with a real guest, in readonly and pci-hole modes: the
 * guest reads exactly the bytes the VMM keeps in the shadow page, with no
 * exit, and sees updates without any slot change; its writes exit, are
 * classified PCIHOLE_ACCESS_SHADOWED and applied; hotplug of a shadowed
 * function changes no memslot in readonly mode and exactly the 4 records of
 * a kind change in pci-hole mode (KVM_SET_USER_MEMORY_REGION* calls counted
 * through the apply callback, which issues them); a vCPU reading a register
 * that another thread rewrites sees only whole values; every failing apply
 * call and system call of pcihole_ctx_shadow() leaves everything as it was.
 * The pci-hole cases need the kernel/ series (SKIPPED elsewhere).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_compat.h"
#include "sys.h"
#include "testutil.h"
#include "util_kvm.h"

#define ECAM 0xb0000000u
#define GPA(bus, dev, fn) (ECAM + ((uint32_t)(bus) << 20) + ((dev) << 15) + ((fn) << 12))
#define SLOT0 40u
#define INJECTED 1234

/* The VMM's slot ids and its count of memslot changes. */
struct vmm {
	int vm_fd;
	bool region2;		/* pci-hole: the 7.2 series' flag is REGION2's only */
	unsigned int fail_at;	/* fail this apply call (1-based), 0: never */
	unsigned int ioctls;
	struct pcihole_layout *layout;
	uint32_t *page;		/* 00:02.0's shadow page */
	unsigned int shadow_writes, other;
};

static int vmm_apply(void *opaque, const struct pcihole_region2 *r)
{
	struct vmm *v = opaque;
	struct kvm_userspace_memory_region k = {
		.slot = SLOT0 + r->slot, .flags = r->flags,
		.guest_phys_addr = r->guest_phys_addr, .memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
	};
	struct pcihole_region2 k2 = *r;

	if (v->fail_at && v->ioctls + 1 == v->fail_at) {
		v->fail_at = 0;
		return -INJECTED;
	}
	v->ioctls++;
	if (v->region2) {
		k2.slot = SLOT0 + r->slot;
		return ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION2, &k2) ? -errno : 0;
	}
	return ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &k) ? -errno : 0;
}

/* The exit handler of a VMM with shadowed functions. */
static void vmm_mmio(void *opaque, uint64_t gpa, uint8_t *data, uint32_t len, bool is_write)
{
	struct vmm *v = opaque;
	struct pcihole_access acc;
	int k = pcihole_classify(v->layout, gpa, data, len, is_write, &acc);

	if (k == PCIHOLE_ACCESS_SHADOWED && is_write && len == 4 && !(acc.offset & 3) &&
	    acc.bdf.dev == 2) {
		/* The device model applies the write; here every register is plain RW. */
		memcpy((uint8_t *)v->page + acc.offset, data, 4);
		v->shadow_writes++;
		return;
	}
	if (k != PCIHOLE_ACCESS_HOLE) {
		v->other++;
		if (!is_write)
			memset(data, 0x5a, len);
	}
}

struct fix {
	struct tk_vm vm;
	struct pcihole_layout *layout;
	struct pcihole_ctx *ctx;
	struct pcihole_caps caps;
	struct vmm v;
	struct tk_handlers h;
};

static void fix_setup(struct fix *f, enum pcihole_mode mode)
{
	struct pcihole_bdf b = { .dev = 2 };
	struct pcihole_ctx_config cfg = {
		.mode = mode, .nr_slots = 64, .memfd = -1,
		.flags = PCIHOLE_CTX_SHADOW, .apply = vmm_apply,
	};

	memset(f, 0, sizeof(*f));
	tk_require_mode(mode, &f->caps);
	assert_int_equal(tk_vm_create(&f->vm), 0);
	f->layout = tu_q35_layout();
	assert_int_equal(pcihole_layout_set_present(f->layout, &b, true), 1);
	f->v.vm_fd = f->vm.vm_fd;
	f->v.region2 = mode == PCIHOLE_MODE_PCI_HOLE;
	f->v.layout = f->layout;
	cfg.caps = &f->caps;
	cfg.apply_opaque = &f->v;
	assert_int_equal(pcihole_ctx_attach(f->vm.vm_fd, f->layout, &cfg, &f->ctx), 0);
	assert_int_equal(pcihole_ctx_mode(f->ctx), mode);
	f->h = (struct tk_handlers){ .mmio = vmm_mmio, .opaque = &f->v, .layout = f->layout };
}

static void fix_teardown(struct fix *f)
{
	assert_int_equal(pcihole_ctx_detach(f->ctx), 0);
	pcihole_layout_free(f->layout);
	tk_vm_destroy(&f->vm);
}

static void shadow_dev2(struct fix *f)
{
	uint32_t init[1024];
	unsigned int i;

	for (i = 0; i < 1024; i++)
		init[i] = 0xabcd0000u | i;
	init[0] = 0x00021b36;
	assert_int_equal(pcihole_ctx_shadow(f->ctx, &(struct pcihole_bdf){ .dev = 2 }, init,
					    (void **)&f->v.page), 1);
}

/* At the guest's sync point the VMM changes a register in its page. */
static void update_at_sync(void *opaque, uint32_t val)
{
	struct vmm *v = opaque;

	if (val == 1)
		v->page[0x40 / 4] = 0x11223344;
}

static void reads_writes_updates(enum pcihole_mode mode)
{
	struct pcihole_region regions[8];
	struct fix f;
	struct tk_asm a;
	unsigned int ioctls;
	int n, i, ro = 0;

	fix_setup(&f, mode);
	shadow_dev2(&f);
	ioctls = f.v.ioctls;
	/* readonly: one slot over the window; pci-hole: hole, the page read-only, hole. */
	n = pcihole_ctx_regions(f.ctx, regions, 8);
	assert_int_equal(n, mode == PCIHOLE_MODE_PCI_HOLE ? 3 : 1);
	for (i = 0; i < n; i++)
		ro += regions[i].flags == KVM_MEM_READONLY;
	assert_int_equal(ro, mode == PCIHOLE_MODE_PCI_HOLE ? 1 : n);
	/* Reads of the header, a register, the last dword; a hole; then a write and a read back. */
	tk_asm_init(&a);
	tk_asm_read(&a, 4, GPA(0, 2, 0), 0);
	tk_asm_read(&a, 2, GPA(0, 2, 0) + 0x3c, 1);
	tk_asm_read(&a, 4, GPA(0, 2, 0) + 0xffc, 2);
	tk_asm_read(&a, 4, GPA(0, 3, 0), 3);
	tk_asm_write32(&a, GPA(0, 2, 0) + 0x10, 0xfebc0000);
	tk_asm_read(&a, 4, GPA(0, 2, 0) + 0x10, 4);
	tk_asm_sync(&a, 1);
	tk_asm_read(&a, 4, GPA(0, 2, 0) + 0x40, 5);
	tk_asm_hlt(&a);
	tk_vm_load(&f.vm, a.buf, a.len);
	f.h.sync = update_at_sync;
	assert_int_equal(tk_vm_run(&f.vm, &f.h), 0);
	assert_int_equal((uint32_t)tk_result(&f.vm, 0), 0x00021b36);
	assert_int_equal((uint16_t)tk_result(&f.vm, 1), 0x000f);
	assert_int_equal((uint32_t)tk_result(&f.vm, 2), 0xabcd03ffu);
	assert_int_equal((uint32_t)tk_result(&f.vm, 3), 0xffffffffu);
	assert_int_equal((uint32_t)tk_result(&f.vm, 4), 0xfebc0000u);
	assert_int_equal((uint32_t)tk_result(&f.vm, 5), 0x11223344u);
	/* One exit: the write.  No read of the shadowed function or the hole exited. */
	assert_int_equal(f.vm.exits_mmio, 1);
	assert_int_equal(f.vm.exits_mmio_write, 1);
	assert_int_equal(f.v.shadow_writes, 1);
	assert_int_equal(f.v.other, 0);
	assert_int_equal(f.v.ioctls, ioctls);	/* no memslot change for any of it */
	print_message("%s: 6 guest reads of a shadowed function and a hole, 1 write: %llu exit\n",
		      pcihole_mode_name(mode), (unsigned long long)f.vm.exits_mmio);
	fix_teardown(&f);
}

static void test_reads_writes_updates(void **state)
{
	(void)state;
	reads_writes_updates(PCIHOLE_MODE_READONLY);
}

static void test_pci_hole_reads_writes_updates(void **state)
{
	(void)state;
	reads_writes_updates(PCIHOLE_MODE_PCI_HOLE);
}

/*
 * Hotplug of a shadowed function: the guest sees it come and go; readonly: no
 * memslot moves; pci-hole: the page changes kind, so the 3 slots around it
 * become 1 (unplug) or 1 becomes 3 (plug), 4 records each.
 */
static void hotplug_shadowed(enum pcihole_mode mode)
{
	struct pcihole_bdf b = { .dev = 2 };
	unsigned int per = mode == PCIHOLE_MODE_PCI_HOLE ? 4 : 0;
	struct fix f;
	struct tk_asm a;
	unsigned int ioctls, round;

	fix_setup(&f, mode);
	shadow_dev2(&f);
	ioctls = f.v.ioctls;
	tk_asm_init(&a);
	tk_asm_read(&a, 4, GPA(0, 2, 0), 0);
	tk_asm_hlt(&a);
	for (round = 0; round < 20; round++) {
		bool present = round % 2;

		assert_int_equal(pcihole_ctx_set_present(f.ctx, &b, present), 1);
		assert_int_equal(f.v.ioctls - ioctls, per * (round + 1));
		assert_int_equal(pcihole_ctx_regions(f.ctx, NULL, 0), per ? (present ? 3 : 1) : 1);
		tk_vm_load(&f.vm, a.buf, a.len);
		assert_int_equal(tk_vm_run(&f.vm, &f.h), 0);
		assert_int_equal((uint32_t)tk_result(&f.vm, 0), present ? 0x00021b36u : 0xffffffffu);
	}
	assert_int_equal(f.vm.exits_mmio, 0);
	assert_int_equal(f.v.ioctls - ioctls, 20 * per);
	print_message("%s: 20 hotplugs of a shadowed function: %u KVM_SET_USER_MEMORY_REGION%s, "
		      "%llu exits\n", pcihole_mode_name(mode), f.v.ioctls - ioctls,
		      f.v.region2 ? "2" : "", (unsigned long long)f.vm.exits_mmio);
	fix_teardown(&f);
}

static void test_hotplug_changes_no_memslot(void **state)
{
	(void)state;
	hotplug_shadowed(PCIHOLE_MODE_READONLY);
}

static void test_pci_hole_hotplug_slot_changes(void **state)
{
	(void)state;
	hotplug_shadowed(PCIHOLE_MODE_PCI_HOLE);
}

/* Aligned 4-byte stores by the VMM are seen whole by a concurrently reading vCPU. */
struct flipper {
	volatile uint32_t *reg;
	bool stop;		/* __atomic */
	uint64_t flips;
};

static void *flip(void *arg)
{
	struct flipper *fl = arg;

	while (!__atomic_load_n(&fl->stop, __ATOMIC_RELAXED)) {
		__atomic_store_n(fl->reg, fl->flips & 1 ? 0x22222222u : 0x11111111u,
				 __ATOMIC_RELAXED);
		fl->flips++;
	}
	return NULL;
}

static void no_torn_values(enum pcihole_mode mode)
{
	enum { READS = 50000 };
	struct flipper fl = { 0 };
	unsigned int i, ones = 0, twos = 0;
	struct fix f;
	struct tk_asm a;
	pthread_t t;

	fix_setup(&f, mode);
	shadow_dev2(&f);
	fl.reg = &f.v.page[0x10 / 4];
	*fl.reg = 0x11111111u;
	tk_asm_init(&a);
	tk_asm_scan(&a, GPA(0, 2, 0) + 0x10, 0, READS);
	tk_asm_hlt(&a);
	tk_vm_load(&f.vm, a.buf, a.len);
	assert_int_equal(pthread_create(&t, NULL, flip, &fl), 0);
	assert_int_equal(tk_vm_run(&f.vm, &f.h), 0);
	__atomic_store_n(&fl.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	for (i = 0; i < READS; i++) {
		uint32_t v = tk_scan_value(&f.vm, i);

		if (v == 0x11111111u)
			ones++;
		else if (v == 0x22222222u)
			twos++;
		else
			fail_msg("read %u: torn value 0x%08x", i, v);
	}
	assert_int_equal(f.vm.exits_mmio, 0);
	print_message("%s: %u guest reads during %llu VMM stores: %u + %u whole values, 0 torn\n",
		      pcihole_mode_name(mode), READS, (unsigned long long)fl.flips, ones, twos);
	fix_teardown(&f);
}

static void test_no_torn_values(void **state)
{
	(void)state;
	no_torn_values(PCIHOLE_MODE_READONLY);
}

static void test_pci_hole_no_torn_values(void **state)
{
	(void)state;
	no_torn_values(PCIHOLE_MODE_PCI_HOLE);
}

/* The function still traps; the neighbouring hole still reads all-ones. */
static void check_untouched(struct fix *f, const struct tk_asm *a,
			    const struct pcihole_region *before, int nb)
{
	struct pcihole_bdf b = { .dev = 2 };
	struct pcihole_region now[8];

	assert_int_equal(pcihole_layout_is_shadowed(f->layout, &b), 0);
	assert_int_equal(pcihole_ctx_regions(f->ctx, now, 8), nb);
	assert_memory_equal(now, before, sizeof(before[0]) * (size_t)nb);
	f->vm.exits_mmio = 0;
	tk_vm_load(&f->vm, a->buf, a->len);
	assert_int_equal(tk_vm_run(&f->vm, &f->h), 0);
	assert_int_equal((uint32_t)tk_result(&f->vm, 0), 0x5a5a5a5au);
	assert_int_equal((uint32_t)tk_result(&f->vm, 1), 0xffffffffu);
	assert_int_equal(f->vm.exits_mmio, 1);
}

/*
 * Every failing apply call (KVM_SET_USER_MEMORY_REGION*), then every failing
 * system call, along pcihole_ctx_shadow() of a present function leaves no
 * trace; the last round's success is taken back by unshadowing, which must
 * restore the same slots.
 */
static void shadow_fault_injection(enum pcihole_mode mode)
{
	struct pcihole_bdf b = { .dev = 2 };
	struct pcihole_region before[8];
	unsigned int failed[2] = { 0, 0 }, round;
	struct fix f;
	struct tk_asm a;
	uint64_t n;
	int nb, ret;
	void *page;

	fix_setup(&f, mode);
	nb = pcihole_ctx_regions(f.ctx, before, 8);
	assert_int_equal(nb, 2);
	tk_asm_init(&a);
	tk_asm_read(&a, 4, GPA(0, 2, 0), 0);
	tk_asm_read(&a, 4, GPA(0, 1, 0), 1);
	tk_asm_hlt(&a);
	for (round = 0; round < 2; round++) {
		for (n = 1;; n++) {
			unsigned int ioctls = f.v.ioctls;

			if (round)
				ph_sys_fail_nth(n, INJECTED, PH_SYS_ALL);
			else
				f.v.fail_at = ioctls + (unsigned int)n;
			ret = pcihole_ctx_shadow(f.ctx, &b, NULL, &page);
			if (round) {
				ph_sys_fail_nth(0, 0, 0);
				if (!ph_sys_fired())
					break;
			} else if (f.v.fail_at) {
				f.v.fail_at = 0;
				break;	/* fewer apply calls than n */
			}
			assert_int_equal(ret, -INJECTED);
			failed[round]++;
			check_untouched(&f, &a, before, nb);
		}
		assert_int_equal(ret, 1);
		/* Shadowed: the guest reads the page (all-ones from NULL init) without an exit. */
		assert_int_equal(pcihole_ctx_unshadow(f.ctx, &b), 1);
		check_untouched(&f, &a, before, nb);
	}
	print_message("%s shadow: failed each of %u apply calls and %u system calls, all undone\n",
		      pcihole_mode_name(mode), failed[0], failed[1]);
	fix_teardown(&f);
}

static void test_shadow_fault_injection(void **state)
{
	(void)state;
	shadow_fault_injection(PCIHOLE_MODE_READONLY);
}

static void test_pci_hole_shadow_fault_injection(void **state)
{
	(void)state;
	shadow_fault_injection(PCIHOLE_MODE_PCI_HOLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_writes_updates),
		cmocka_unit_test(test_hotplug_changes_no_memslot),
		cmocka_unit_test(test_no_torn_values),
		cmocka_unit_test(test_shadow_fault_injection),
		cmocka_unit_test(test_pci_hole_reads_writes_updates),
		cmocka_unit_test(test_pci_hole_hotplug_slot_changes),
		cmocka_unit_test(test_pci_hole_no_torn_values),
		cmocka_unit_test(test_pci_hole_shadow_fault_injection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
