// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Hotplug through a context while a guest runs, the slot budget, and the
 * invariants after every change: slots == plan runs (or the budget), the
 * regions are exactly the plan, ids stay in the reserved range, and the
 * ids KVM holds are exactly the ones the context reports.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "util_kvm.h"

#define ECAM 0xb0000000u
#define GPA(bus, dev, fn) (ECAM + ((uint32_t)(bus) << 20) + ((dev) << 15) + ((fn) << 12))
#define SLOT_BASE 4u

struct fix {
	struct tk_vm vm;
	struct pcihole_layout *layout;
	struct pcihole_ctx *ctx;
	struct pcihole_caps caps;
	uint32_t nr_slots;
};

static void fix_setup(struct fix *f, enum pcihole_mode mode, uint32_t nr_slots,
		      const struct pcihole_bdf *present, size_t np)
{
	struct pcihole_ctx_config cfg = {
		.mode = mode, .slot_base = SLOT_BASE, .nr_slots = nr_slots, .memfd = -1,
	};
	size_t i;

	memset(f, 0, sizeof(*f));
	tk_require_mode(mode, &f->caps);
	assert_int_equal(tk_vm_create(&f->vm), 0);
	f->layout = tu_q35_layout();
	for (i = 0; i < np; i++)
		assert_int_equal(pcihole_layout_set_present(f->layout, &present[i], true), 1);
	cfg.caps = &f->caps;
	f->nr_slots = nr_slots;
	assert_int_equal(pcihole_ctx_attach(f->vm.vm_fd, f->layout, &cfg, &f->ctx), 0);
	assert_int_equal(pcihole_ctx_mode(f->ctx), mode);
}

static void fix_teardown(struct fix *f)
{
	assert_int_equal(pcihole_ctx_detach(f->ctx), 0);
	pcihole_layout_free(f->layout);
	tk_vm_destroy(&f->vm);
}

/*
 * The context's slots are exactly the (budgeted) plan, with ids in range and
 * distinct, and KVM holds exactly those ids of our range.
 */
static void check_slots(struct fix *f, bool probe_kvm)
{
	struct pcihole_run *runs;
	struct pcihole_region *regs;
	struct pcihole_ctx_stats st;
	struct pcihole_plan_info info;
	size_t n = pcihole_plan_count(f->layout);
	uint8_t *used;
	int k, nr, i;
	enum pcihole_mode mode = pcihole_ctx_mode(f->ctx);

	runs = calloc(n + 1, sizeof(*runs));
	regs = calloc(n + 1, sizeof(*regs));
	used = calloc(f->nr_slots + 1, 1);
	k = pcihole_plan(f->layout, mode == PCIHOLE_MODE_MMIO ? 0 : f->nr_slots,
			 runs, n + 1, &info);
	assert_true(k >= 0);
	nr = pcihole_ctx_regions(f->ctx, NULL, 0);
	assert_int_equal(nr, k);
	if (k)
		assert_int_equal(pcihole_ctx_regions(f->ctx, regs, (size_t)k - 1), -ENOSPC);
	assert_int_equal(pcihole_ctx_regions(f->ctx, regs, n + 1), k);
	assert_int_equal(pcihole_ctx_stats(f->ctx, &st), 0);
	assert_int_equal(st.nr_slots, k);
	assert_int_equal(st.nr_runs, n);
	assert_int_equal(st.uncovered_pages, mode == PCIHOLE_MODE_MMIO ?
			 info.hole_pages : info.uncovered_pages);
	for (i = 0; i < k; i++) {
		assert_int_equal(regs[i].guest_phys_addr, runs[i].gpa);
		assert_int_equal(regs[i].memory_size, runs[i].size);
		assert_true(regs[i].slot >= SLOT_BASE && regs[i].slot < SLOT_BASE + f->nr_slots);
		assert_false(used[regs[i].slot - SLOT_BASE]);
		used[regs[i].slot - SLOT_BASE] = 1;
		if (mode == PCIHOLE_MODE_READONLY) {
			assert_int_equal(regs[i].flags, KVM_MEM_READONLY);
			/* Host and guest congruent modulo the chunk: huge mappings possible. */
			assert_int_equal((regs[i].userspace_addr ^ regs[i].guest_phys_addr) &
					 (st.memfd_bytes - 1), 0);
			assert_int_equal(*(volatile uint8_t *)(uintptr_t)regs[i].userspace_addr, 0xff);
		} else {
			/* The flag the probe saw work: the 7.2 series' or the 6.12 backport's. */
			assert_int_equal(regs[i].flags, f->caps.pci_hole_flag);
			assert_int_equal(regs[i].userspace_addr, 0);
		}
	}
	if (probe_kvm)
		for (i = 0; i < (int)f->nr_slots; i++)
			assert_int_equal(tk_slot_free(&f->vm, SLOT_BASE + (uint32_t)i), !used[i]);
	free(runs);
	free(regs);
	free(used);
}

/* ---- hotplug at sync points of a running guest ---- */

static const struct pcihole_bdf base_present[] = {
	{ .bus = 0, .dev = 0, .fn = 0 }, { .bus = 0, .dev = 1, .fn = 0 },
	{ .bus = 0, .dev = 0x1f, .fn = 0 },
};
static const struct pcihole_bdf target = { .bus = 5, .dev = 3, .fn = 2 };

static void sync_cb(void *opaque, uint32_t val)
{
	struct fix *f = opaque;

	/* 1: plug the function in the middle of a run; 2: unplug it. */
	assert_int_equal(pcihole_ctx_set_present(f->ctx, &target, val == 1), 1);
	assert_int_equal(pcihole_ctx_set_present(f->ctx, &target, val == 1), 0);
	check_slots(f, true);
}

static void check_hotplug(enum pcihole_mode mode)
{
	struct tk_handlers h;
	struct tk_asm a;
	struct fix f;
	uint32_t t = GPA(5, 3, 2);

	fix_setup(&f, mode, 16, base_present, 3);
	check_slots(&f, true);
	h = (struct tk_handlers){ .layout = f.layout, .sync = sync_cb, .opaque = &f };
	tk_asm_init(&a);
	tk_asm_read(&a, 4, t, 0);
	tk_asm_sync(&a, 1);
	tk_asm_read(&a, 4, t, 1);
	tk_asm_read(&a, 2, t + 0x40, 2);
	tk_asm_sync(&a, 2);
	tk_asm_read(&a, 4, t, 3);
	tk_asm_read(&a, 8, t - 4096, 4);	/* the neighbour stayed a hole throughout */
	tk_asm_hlt(&a);
	tk_vm_load(&f.vm, a.buf, a.len);
	assert_int_equal(tk_vm_run(&f.vm, &h), 0);
	assert_int_equal(f.vm.exits_io, 2);
	assert_int_equal(tk_result(&f.vm, 0) & 0xffffffff, 0xffffffff);
	assert_int_equal(tk_result(&f.vm, 1) & 0xffffffff, TK_DEV_VALUE & 0xffffffff);
	assert_int_equal(tk_result(&f.vm, 2) & 0xffff, TK_DEV_VALUE & 0xffff);
	assert_int_equal(tk_result(&f.vm, 3) & 0xffffffff, 0xffffffff);
	assert_int_equal(tk_result(&f.vm, 4), UINT64_MAX);
	/* Both reads of the plugged function reached the VMM, at its address. */
	assert_int_equal(f.vm.exits_dev, 2);
	assert_int_equal(f.vm.exits_hole, mode == PCIHOLE_MODE_MMIO ? 3 : 0);
	fix_teardown(&f);
}

static void test_hotplug_readonly(void **state) { (void)state; check_hotplug(PCIHOLE_MODE_READONLY); }
static void test_hotplug_mmio(void **state) { (void)state; check_hotplug(PCIHOLE_MODE_MMIO); }
static void test_hotplug_pci_hole(void **state) { (void)state; check_hotplug(PCIHOLE_MODE_PCI_HOLE); }

/* ---- a vCPU thread scanning while the main thread plugs and unplugs ---- */

#define RACE_READS 4000u
#define RACE_TOGGLES 200u

struct race {
	struct fix *f;
	struct tk_handlers h;
	struct tk_asm a;
	int stop;
	int ret;
	uint64_t runs, devs, bad;
};

/*
 * Runs the scan of one register again and again until told to stop; checks
 * every value itself (cmocka's asserts belong to the main thread).
 */
static void *vcpu_thread(void *arg)
{
	struct race *r = arg;
	struct tk_vm *vm = &r->f->vm;
	bool last = false;

	while (!last) {
		uint32_t i;

		last = __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
		tk_vm_load(vm, r->a.buf, r->a.len);
		r->ret = tk_vm_run(vm, &r->h);
		if (r->ret)
			break;
		for (i = 0; i < RACE_READS; i++) {
			uint32_t v = tk_scan_value(vm, i);

			if (v == (uint32_t)TK_DEV_VALUE)
				r->devs++;
			else if (v != 0xffffffffu)
				r->bad++;
		}
		r->runs++;
	}
	return NULL;
}

static void check_concurrent_guest(enum pcihole_mode mode)
{
	struct timespec ts = { 0, 200000 };
	struct race r = { 0 };
	struct fix f;
	pthread_t th;
	uint32_t i;

	fix_setup(&f, mode, 16, base_present, 3);
	r.f = &f;
	r.h = (struct tk_handlers){ .layout = f.layout };
	tk_asm_init(&r.a);
	tk_asm_scan(&r.a, GPA(5, 3, 2), 0, RACE_READS);	/* one register, again and again */
	tk_asm_hlt(&r.a);
	assert_int_equal(pthread_create(&th, NULL, vcpu_thread, &r), 0);
	for (i = 0; i < tu_scaled(RACE_TOGGLES); i++) {
		assert_int_equal(pcihole_ctx_set_present(f.ctx, &target, !(i & 1)), 1);
		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(r.ret, 0);
	/* Every read saw a hole or the device; every device value came from an exit. */
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.devs, f.vm.exits_dev);
	check_slots(&f, true);
	print_message("%s: %u hotplugs during %llu guest reads: %llu device reads, %llu hole exits\n",
		      pcihole_mode_name(mode), tu_scaled(RACE_TOGGLES),
		      (unsigned long long)(r.runs * RACE_READS), (unsigned long long)r.devs,
		      (unsigned long long)f.vm.exits_hole);
	fix_teardown(&f);
}

static void test_concurrent_guest_readonly(void **state) { (void)state; check_concurrent_guest(PCIHOLE_MODE_READONLY); }
static void test_concurrent_guest_mmio(void **state) { (void)state; check_concurrent_guest(PCIHOLE_MODE_MMIO); }
static void test_concurrent_guest_pci_hole(void **state) { (void)state; check_concurrent_guest(PCIHOLE_MODE_PCI_HOLE); }

/* ---- random hotplug: invariants after every step, then a scan ---- */

static void scan_and_check(struct fix *f, uint64_t want_hole_exits)
{
	struct tk_handlers h = { .layout = f->layout };
	uint32_t i;
	uint64_t dev0 = f->vm.exits_dev, hole0 = f->vm.exits_hole, devs = 0;

	tk_load_fn0_scan(&f->vm, ECAM);
	assert_int_equal(tk_vm_run(&f->vm, &h), 0);
	for (i = 0; i < 256 * 32; i++) {
		struct pcihole_bdf b = { .bus = (uint8_t)(i / 32), .dev = (uint8_t)(i % 32) };
		int p = pcihole_layout_is_present(f->layout, &b);

		devs += p;
		assert_int_equal(tk_scan_value(&f->vm, i), p ? (uint32_t)TK_DEV_VALUE : 0xffffffffu);
	}
	assert_int_equal(f->vm.exits_dev - dev0, devs);
	assert_int_equal(f->vm.exits_hole - hole0, want_hole_exits);
}

static void check_random(enum pcihole_mode mode)
{
	uint64_t seed = tu_seed(0x5eed0003), st = seed;
	struct fix f;
	int step;

	fix_setup(&f, mode, 256, NULL, 0);
	check_slots(&f, true);
	for (step = 0; step < (int)tu_scaled(300); step++) {
		/* Few buses, so plugs and unplugs meet and runs split and merge. */
		struct pcihole_bdf b = {
			.bus = (uint8_t)tu_below(&st, 4), .dev = (uint8_t)tu_below(&st, 32),
			.fn = (uint8_t)tu_below(&st, 8),
		};
		bool p = tu_below(&st, 3) != 0;
		int was = pcihole_layout_is_present(f.layout, &b);
		int ret = pcihole_ctx_set_present(f.ctx, &b, p);

		if (ret != (was != p))
			fail_msg("seed 0x%llx step %d: set_present gave %d", (unsigned long long)seed,
				 step, ret);
		check_slots(&f, step % 25 == 0);
	}
	check_slots(&f, true);
	{
		struct pcihole_plan_info info;
		uint64_t fn0_holes = 0;
		uint32_t i;

		pcihole_plan(f.layout, 0, NULL, 0, &info);
		for (i = 0; i < 256 * 32; i++) {
			struct pcihole_bdf b = { .bus = (uint8_t)(i / 32), .dev = (uint8_t)(i % 32) };

			fn0_holes += !pcihole_layout_is_present(f.layout, &b);
		}
		scan_and_check(&f, mode == PCIHOLE_MODE_MMIO ? fn0_holes : 0);
		print_message("%s: 300 random hotplugs (seed 0x%llx): %u runs, %zu present\n",
			      pcihole_mode_name(mode), (unsigned long long)seed, info.nr_runs,
			      pcihole_layout_nr_present(f.layout));
	}
	fix_teardown(&f);
}

static void test_random_readonly(void **state) { (void)state; check_random(PCIHOLE_MODE_READONLY); }
static void test_random_mmio(void **state) { (void)state; check_random(PCIHOLE_MODE_MMIO); }
static void test_random_pci_hole(void **state) { (void)state; check_random(PCIHOLE_MODE_PCI_HOLE); }

/* ---- slot budget smaller than the run count ---- */

static void check_budget(enum pcihole_mode mode)
{
	struct pcihole_bdf pres[40];
	struct pcihole_ctx_stats st;
	struct pcihole_plan_info info;
	struct fix f;
	uint64_t fn0_uncovered = 0;
	uint32_t i;

	/* 40 functions spread over the segment: 40 runs (00:00.0 is one), 5 slots. */
	for (i = 0; i < 40; i++)
		pres[i] = (struct pcihole_bdf){ .bus = (uint8_t)(i * 6), .dev = (uint8_t)(i % 32),
						.fn = (uint8_t)(i % 3) };
	fix_setup(&f, mode, 5, pres, 40);
	assert_int_equal(pcihole_ctx_stats(f.ctx, &st), 0);
	assert_int_equal(st.nr_runs, 40);
	assert_int_equal(st.nr_runs, pcihole_plan_count(f.layout));
	assert_int_equal(st.nr_slots, 5);
	assert_true(st.uncovered_pages > 0);
	check_slots(&f, true);
	/* Every uncovered fn-0 page the scan reads exits and the helper answers all-ones. */
	{
		struct pcihole_run runs[64];
		int k = pcihole_plan(f.layout, 5, runs, 64, &info);

		assert_int_equal(k, 5);
		for (i = 0; i < 256 * 32; i++) {
			struct pcihole_bdf b = { .bus = (uint8_t)(i / 32), .dev = (uint8_t)(i % 32) };
			uint64_t g;
			int j, covered = 0;

			if (pcihole_layout_is_present(f.layout, &b))
				continue;
			pcihole_layout_bdf_to_gpa(f.layout, &b, &g);
			for (j = 0; j < k; j++)
				covered |= g >= runs[j].gpa && g < runs[j].gpa + runs[j].size;
			fn0_uncovered += !covered;
		}
	}
	assert_true(fn0_uncovered > 0);
	scan_and_check(&f, fn0_uncovered);
	/* Hotplug under the budget keeps it. */
	for (i = 0; i < 10; i++) {
		struct pcihole_bdf b = { .bus = (uint8_t)(200 + i), .dev = 7, .fn = 1 };

		assert_int_equal(pcihole_ctx_set_present(f.ctx, &b, true), 1);
		check_slots(&f, i % 3 == 0);
		assert_int_equal(pcihole_ctx_set_present(f.ctx, &pres[i], false), 1);
		check_slots(&f, i % 3 == 1);
	}
	print_message("%s budget 5: %u runs, %llu uncovered pages, %llu fn-0 reads left to mmio\n",
		      pcihole_mode_name(mode), st.nr_runs, (unsigned long long)st.uncovered_pages,
		      (unsigned long long)fn0_uncovered);
	fix_teardown(&f);
}

static void test_budget_readonly(void **state) { (void)state; check_budget(PCIHOLE_MODE_READONLY); }
static void test_budget_pci_hole(void **state) { (void)state; check_budget(PCIHOLE_MODE_PCI_HOLE); }

/* Budget 0 in a slot mode: everything is left to the mmio path, and that is fine. */
static void test_budget_zero(void **state)
{
	struct fix f;

	(void)state;
	fix_setup(&f, PCIHOLE_MODE_READONLY, 0, base_present, 3);
	assert_int_equal(pcihole_ctx_regions(f.ctx, NULL, 0), 0);
	scan_and_check(&f, 256 * 32 - 3);
	assert_int_equal(pcihole_ctx_set_present(f.ctx, &target, true), 1);
	assert_int_equal(pcihole_ctx_regions(f.ctx, NULL, 0), 0);
	fix_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hotplug_readonly),
		cmocka_unit_test(test_hotplug_mmio),
		cmocka_unit_test(test_hotplug_pci_hole),
		cmocka_unit_test(test_concurrent_guest_readonly),
		cmocka_unit_test(test_concurrent_guest_mmio),
		cmocka_unit_test(test_concurrent_guest_pci_hole),
		cmocka_unit_test(test_random_readonly),
		cmocka_unit_test(test_random_mmio),
		cmocka_unit_test(test_random_pci_hole),
		cmocka_unit_test(test_budget_readonly),
		cmocka_unit_test(test_budget_pci_hole),
		cmocka_unit_test(test_budget_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
