// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Fault injection through lib/sys.h: fail the Nth system call for every N
 * along attach, hotplug and detach.  After each failure: the error comes
 * back, no slot of ours is left in KVM beyond what the context reports (each
 * id of the range is probed by creating it), no mapping is left beyond the
 * context's, no fd leaked, the presence bit is as before, and the context
 * still works (a guest scan at the end).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "util_kvm.h"
#include "../lib/sys.h"

#define ECAM 0xb0000000u
#define SLOT_BASE 2u
#define NR_SLOTS 12u
#define MEMFD_MAPS "memfd:pcihole-allones"
#define INJECTED ENOMEM

struct fix {
	struct tk_vm vm;
	struct pcihole_layout *layout;
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	unsigned int fds;
};

static const struct pcihole_bdf present[] = {
	{ .bus = 0, .dev = 0, .fn = 0 }, { .bus = 0, .dev = 2, .fn = 0 },
	{ .bus = 1, .dev = 0, .fn = 0 }, { .bus = 9, .dev = 4, .fn = 5 },
};

static void fix_setup(struct fix *f, enum pcihole_mode mode, uint32_t nr_slots)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	tk_require_mode(mode, &f->caps);
	assert_int_equal(tk_vm_create(&f->vm), 0);
	f->layout = tu_q35_layout();
	for (i = 0; i < sizeof(present) / sizeof(present[0]); i++)
		assert_int_equal(pcihole_layout_set_present(f->layout, &present[i], true), 1);
	f->cfg = (struct pcihole_ctx_config){
		.mode = mode, .slot_base = SLOT_BASE, .nr_slots = nr_slots, .memfd = -1,
		.caps = &f->caps,
	};
	f->fds = tk_count_fds();
}

static void fix_teardown(struct fix *f)
{
	pcihole_layout_free(f->layout);
	tk_vm_destroy(&f->vm);
}

/* Nothing of a context is left: no slot id of our range is taken, no mapping, no fd. */
static void check_clean(struct fix *f)
{
	uint32_t i;

	for (i = 0; i < f->cfg.nr_slots; i++)
		if (!tk_slot_free(&f->vm, SLOT_BASE + i))
			fail_msg("slot %u left behind", SLOT_BASE + i);
	assert_int_equal(tk_count_maps(MEMFD_MAPS), 0);
	assert_int_equal(tk_count_fds(), f->fds);
}

struct snap {
	struct pcihole_region regs[64];
	int nr;
	struct pcihole_ctx_stats st;
	unsigned int maps;
	size_t present;
};

static void snap(struct pcihole_ctx *ctx, struct fix *f, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->nr = pcihole_ctx_regions(ctx, s->regs, 64);
	assert_true(s->nr >= 0);
	assert_int_equal(pcihole_ctx_stats(ctx, &s->st), 0);
	/* Counters of what happened, not state: a failed change may not move the rest. */
	s->st.nr_hotplugs = 0;
	s->st.nr_replans = 0;
	s->maps = tk_count_maps(MEMFD_MAPS);
	s->present = pcihole_layout_nr_present(f->layout);
}

/* The context, KVM and the process are exactly as in @before. */
static void check_same(struct pcihole_ctx *ctx, struct fix *f, const struct snap *before)
{
	struct snap now;
	uint32_t i;
	int j;

	snap(ctx, f, &now);
	assert_int_equal(now.nr, before->nr);
	assert_memory_equal(now.regs, before->regs, sizeof(now.regs));
	assert_memory_equal(&now.st, &before->st, sizeof(now.st));
	assert_int_equal(now.maps, before->maps);
	assert_int_equal(now.present, before->present);
	/* An attached context holds one fd: its own duplicate of the vm fd. */
	assert_int_equal(tk_count_fds(), f->fds + 1);
	for (i = 0; i < f->cfg.nr_slots; i++) {
		bool ours = false;

		for (j = 0; j < now.nr; j++)
			ours |= now.regs[j].slot == SLOT_BASE + i;
		if (tk_slot_free(&f->vm, SLOT_BASE + i) == ours)
			fail_msg("slot %u: KVM and the context disagree", SLOT_BASE + i);
	}
}

/* Scan fn 0 of every device: right values, and no hole exit in slot modes with enough slots. */
static void scan(struct fix *f, enum pcihole_mode mode)
{
	struct tk_handlers h = { .layout = f->layout };
	uint64_t hole0 = f->vm.exits_hole;
	uint32_t i;

	tk_load_fn0_scan(&f->vm, ECAM);
	assert_int_equal(tk_vm_run(&f->vm, &h), 0);
	for (i = 0; i < 256 * 32; i++) {
		struct pcihole_bdf b = { .bus = (uint8_t)(i / 32), .dev = (uint8_t)(i % 32) };

		assert_int_equal(tk_scan_value(&f->vm, i),
				 pcihole_layout_is_present(f->layout, &b) ?
				 (uint32_t)TK_DEV_VALUE : 0xffffffffu);
	}
	/* Every hole covered by a slot: not a single exit for one. */
	if (mode != PCIHOLE_MODE_MMIO && pcihole_plan_count(f->layout) <= f->cfg.nr_slots)
		assert_int_equal(f->vm.exits_hole, hole0);
}

static uint64_t fault_attach(struct fix *f)
{
	struct pcihole_ctx *ctx;
	uint64_t n;
	int ret;

	for (n = 1;; n += tu_scale()) {
		ctx = NULL;
		ph_sys_fail_nth(n, INJECTED, PH_SYS_ALL);
		ret = pcihole_ctx_attach(f->vm.vm_fd, f->layout, &f->cfg, &ctx);
		ph_sys_fail_nth(0, 0, 0);
		if (!ph_sys_fired()) {
			assert_int_equal(ret, 0);
			assert_int_equal(pcihole_ctx_detach(ctx), 0);
			check_clean(f);
			return (n - 1) / tu_scale();
		}
		if (!ret) {
			/* The failed call had a fallback (hugetlb -> shmem). */
			assert_int_equal(pcihole_ctx_detach(ctx), 0);
		} else {
			assert_int_equal(ret, -INJECTED);
			assert_null(ctx);
		}
		check_clean(f);
	}
}

/* Fail each call of set_present(@b, @p) in turn; the successful run is undone again. */
static uint64_t fault_hotplug(struct fix *f, struct pcihole_ctx *ctx,
			      const struct pcihole_bdf *b, bool p)
{
	struct snap before;
	uint64_t n;
	int ret;

	snap(ctx, f, &before);
	for (n = 1;; n += tu_scale()) {
		ph_sys_fail_nth(n, INJECTED, PH_SYS_ALL);
		ret = pcihole_ctx_set_present(ctx, b, p);
		ph_sys_fail_nth(0, 0, 0);
		if (!ph_sys_fired()) {
			assert_int_equal(ret, 1);
			break;
		}
		assert_int_equal(ret, -INJECTED);
		assert_int_equal(pcihole_layout_is_present(f->layout, b), !p);
		check_same(ctx, f, &before);
	}
	return (n - 1) / tu_scale();
}

static uint64_t fault_detach(struct fix *f, struct pcihole_ctx *ctx)
{
	struct snap before;
	uint64_t n;
	int ret;

	snap(ctx, f, &before);
	for (n = 1;; n += tu_scale()) {
		ph_sys_fail_nth(n, INJECTED, PH_SYS_ALL);
		ret = pcihole_ctx_detach(ctx);
		ph_sys_fail_nth(0, 0, 0);
		if (!ph_sys_fired()) {
			assert_int_equal(ret, 0);
			check_clean(f);
			return (n - 1) / tu_scale();
		}
		assert_int_equal(ret, -INJECTED);
		check_same(ctx, f, &before);
		/* Still attached and serving: a hotplug round trip works. */
		assert_int_equal(pcihole_ctx_set_present(ctx, &present[3], false), 1);
		assert_int_equal(pcihole_ctx_set_present(ctx, &present[3], true), 1);
		check_same(ctx, f, &before);
	}
}

static void check_faults(enum pcihole_mode mode, uint32_t nr_slots)
{
	/* Split a run in its middle, plug at a run's edge, then merge both back. */
	static const struct pcihole_bdf mid = { .bus = 40, .dev = 17, .fn = 3 };
	static const struct pcihole_bdf edge = { .bus = 9, .dev = 4, .fn = 6 };
	uint64_t na, nh = 0, nd;
	struct pcihole_ctx *ctx;
	struct fix f;

	fix_setup(&f, mode, nr_slots);
	na = fault_attach(&f);
	assert_int_equal(pcihole_ctx_attach(f.vm.vm_fd, f.layout, &f.cfg, &ctx), 0);
	nh += fault_hotplug(&f, ctx, &mid, true);
	nh += fault_hotplug(&f, ctx, &edge, true);
	nh += fault_hotplug(&f, ctx, &mid, false);
	nh += fault_hotplug(&f, ctx, &edge, false);
	nh += fault_hotplug(&f, ctx, &present[0], false);
	nh += fault_hotplug(&f, ctx, &present[0], true);
	scan(&f, mode);
	nd = fault_detach(&f, ctx);
	/* A new context on the same ids works after all that. */
	assert_int_equal(pcihole_ctx_attach(f.vm.vm_fd, f.layout, &f.cfg, &ctx), 0);
	scan(&f, mode);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	check_clean(&f);
	print_message("%s, %u slots: failed %llu calls of attach, %llu of 6 hotplugs, %llu of "
		      "detach (every call from the first in steps of %u)\n", pcihole_mode_name(mode),
		      nr_slots, (unsigned long long)na, (unsigned long long)nh,
		      (unsigned long long)nd, tu_scale());
	fix_teardown(&f);
}

static void test_faults_readonly(void **state) { (void)state; check_faults(PCIHOLE_MODE_READONLY, NR_SLOTS); }
static void test_faults_readonly_budget(void **state) { (void)state; check_faults(PCIHOLE_MODE_READONLY, 3); }
static void test_faults_pci_hole(void **state) { (void)state; check_faults(PCIHOLE_MODE_PCI_HOLE, NR_SLOTS); }
static void test_faults_mmio(void **state) { (void)state; check_faults(PCIHOLE_MODE_MMIO, NR_SLOTS); }

/* A caller's memfd: still nothing left behind, and the caller's fd stays open. */
static void test_faults_caller_memfd(void **state)
{
	struct pcihole_ctx *ctx;
	struct fix f;
	uint64_t n;
	int fd, ret;

	(void)state;
	fix_setup(&f, PCIHOLE_MODE_READONLY, NR_SLOTS);
	assert_int_equal(pcihole_allones_memfd(0, &fd, NULL), 0);
	f.cfg.memfd = fd;
	f.fds++;
	for (n = 1;; n += tu_scale()) {
		ctx = NULL;
		ph_sys_fail_nth(n, INJECTED, PH_SYS_ALL);
		ret = pcihole_ctx_attach(f.vm.vm_fd, f.layout, &f.cfg, &ctx);
		ph_sys_fail_nth(0, 0, 0);
		if (!ph_sys_fired())
			break;
		assert_int_equal(ret, -INJECTED);
		check_clean(&f);
		assert_int_equal(pcihole_allones_check(fd), PCIHOLE_ALLONES_CHUNK_DEFAULT);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	check_clean(&f);
	assert_int_equal(pcihole_allones_check(fd), PCIHOLE_ALLONES_CHUNK_DEFAULT);
	close(fd);
	fix_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_readonly),
		cmocka_unit_test(test_faults_readonly_budget),
		cmocka_unit_test(test_faults_pci_hole),
		cmocka_unit_test(test_faults_mmio),
		cmocka_unit_test(test_faults_caller_memfd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
