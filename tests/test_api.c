// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The 1.0 API without KVM: the one-call classify, the plan with host-page
 * clipping against a page-walking oracle, the all-ones mapping checks and the
 * per-run mapping, the atomic presence count, and the context's local hotplug
 * driven through an apply callback (no vm fd at all) against the full planner
 * after every step.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "internal.h"	/* ph_plan() with split runs: what pci-hole contexts use */
#include "sys.h"
#include "testutil.h"

#define ECAM 0xb0000000ULL

static struct pcihole_bdf bdf_of(uint8_t bus, uint8_t dev, uint8_t fn)
{
	return (struct pcihole_bdf){ .bus = bus, .dev = dev, .fn = fn };
}

static uint64_t gpa_of(uint8_t bus, uint8_t dev, uint8_t fn)
{
	return ECAM + ((uint64_t)bus << 20 | (uint64_t)dev << 15 | (uint64_t)fn << 12);
}

/* ---- classify ----------------------------------------------------------- */

static void test_classify_kinds(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = bdf_of(0, 2, 0);
	struct pcihole_access acc;
	uint8_t buf[8];

	(void)state;
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);

	/* A hole: filled, bdf and offset of the first byte. */
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(pcihole_classify(l, gpa_of(3, 4, 5) + 0x10, buf, 4, false, &acc),
			 PCIHOLE_ACCESS_HOLE);
	assert_memory_equal(buf, "\xff\xff\xff\xff\x5a\x5a\x5a\x5a", 8);
	assert_int_equal(acc.kind, PCIHOLE_ACCESS_HOLE);
	assert_int_equal(acc.bdf.bus, 3);
	assert_int_equal(acc.bdf.dev, 4);
	assert_int_equal(acc.bdf.fn, 5);
	assert_int_equal(acc.offset, 0x10);

	/* A present function: data untouched, routed. */
	memset(buf, 0x5a, sizeof(buf));
	memset(&acc, 0xa5, sizeof(acc));
	assert_int_equal(pcihole_classify(l, gpa_of(0, 2, 0) + 0x3c, buf, 2, false, &acc),
			 PCIHOLE_ACCESS_FUNCTION);
	assert_memory_equal(buf, "\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a", 8);
	assert_int_equal(acc.kind, PCIHOLE_ACCESS_FUNCTION);
	assert_int_equal(acc.bdf.dev, 2);
	assert_int_equal(acc.offset, 0x3c);
	assert_int_equal(acc.reserved[0] | acc.reserved[1], 0);

	/* Writes: a hole write is handled and touches nothing. */
	assert_int_equal(pcihole_classify(l, gpa_of(9, 0, 0), NULL, 4, true, &acc),
			 PCIHOLE_ACCESS_HOLE);
	assert_int_equal(pcihole_classify(l, gpa_of(0, 2, 0) + 4, buf, 4, true, NULL),
			 PCIHOLE_ACCESS_FUNCTION);

	/* Outside every window. */
	assert_int_equal(pcihole_classify(l, ECAM - 4, buf, 4, false, &acc), PCIHOLE_ACCESS_NONE);
	assert_int_equal(acc.kind, PCIHOLE_ACCESS_NONE);
	assert_int_equal(pcihole_classify(l, ECAM + (256ULL << 20), buf, 1, false, NULL),
			 PCIHOLE_ACCESS_NONE);

	/* Straddles: present wins, then no window, then hole. */
	assert_int_equal(pcihole_classify(l, gpa_of(0, 1, 7) + 0xffe, buf, 4, false, NULL),
			 PCIHOLE_ACCESS_FUNCTION);	/* 00:01.7 is a hole, 00:02.0 present */
	assert_int_equal(pcihole_classify(l, gpa_of(5, 0, 0) + 0xffe, buf, 4, false, NULL),
			 PCIHOLE_ACCESS_HOLE);
	assert_int_equal(pcihole_classify(l, ECAM - 2, buf, 4, false, NULL), PCIHOLE_ACCESS_NONE);
	assert_int_equal(pcihole_classify(l, ECAM + (256ULL << 20) - 2, buf, 4, false, NULL),
			 PCIHOLE_ACCESS_NONE);
	assert_int_equal(pcihole_classify(l, UINT64_MAX - 1, buf, 4, false, NULL),
			 PCIHOLE_ACCESS_NONE);

	/* Bad arguments. */
	assert_int_equal(pcihole_classify(l, ECAM, buf, 0, false, NULL), -EINVAL);
	assert_int_equal(pcihole_classify(l, ECAM, buf, 9, false, NULL), -EINVAL);
	assert_int_equal(pcihole_classify(l, ECAM, NULL, 4, false, NULL), -EINVAL);
	assert_int_equal(pcihole_classify(NULL, ECAM, buf, 4, false, NULL), -EINVAL);

	/* pcihole_mmio_access is the same answer in one bit. */
	assert_int_equal(pcihole_mmio_access(l, gpa_of(3, 0, 0), buf, 4, false), 1);
	assert_int_equal(pcihole_mmio_access(l, gpa_of(0, 2, 0), buf, 4, false), 0);
	assert_int_equal(pcihole_mmio_access(l, ECAM - 4, buf, 4, false), 0);
	pcihole_layout_free(l);
}

/*
 * Defect 3 of the API issue: during a hotplug, "is it present?" and then
 * "is it a hole?" could both say no.  One classify call always gives one of
 * the two for an address inside the window, and fills data exactly when it
 * says hole.
 */
struct churn {
	struct pcihole_layout *l;
	struct pcihole_bdf b;
	bool stop;		/* __atomic */
	uint64_t flips;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	bool p = true;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		pcihole_layout_set_present(c->l, &c->b, p);
		p = !p;
		c->flips++;
	}
	return NULL;
}

static void test_classify_one_answer_under_churn(void **state)
{
	struct churn c = { .l = tu_q35_layout(), .b = bdf_of(7, 3, 0) };
	uint64_t i, holes = 0, funcs = 0;
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, churn_thread, &c), 0);
	for (i = 0; i < 2000000; i++) {
		uint32_t v = 0x12345678;
		struct pcihole_access acc;
		int k = pcihole_classify(c.l, gpa_of(7, 3, 0), &v, 4, false, &acc);

		if (k == PCIHOLE_ACCESS_HOLE) {
			assert_int_equal(v, 0xffffffffu);
			holes++;
		} else {
			assert_int_equal(k, PCIHOLE_ACCESS_FUNCTION);
			assert_int_equal(v, 0x12345678u);
			assert_int_equal(acc.bdf.bus, 7);
			funcs++;
		}
	}
	__atomic_store_n(&c.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	print_message("2M classifications during %llu flips: %llu hole, %llu function, 0 neither\n",
		      (unsigned long long)c.flips, (unsigned long long)holes,
		      (unsigned long long)funcs);
	pcihole_layout_free(c.l);
}

/* Defect 6: the presence count is read from other threads (TSan sees a plain RMW). */
static void *count_reader(void *arg)
{
	struct churn *c = arg;
	size_t max = 0;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		size_t n = pcihole_layout_nr_present(c->l);

		if (n > max)
			max = n;
	}
	return (void *)max;
}

static void test_nr_present_concurrent(void **state)
{
	struct churn c = { .l = tu_q35_layout() };
	pthread_t t;
	void *max;
	int i;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, count_reader, &c), 0);
	for (i = 0; i < 200000; i++) {
		struct pcihole_bdf b = bdf_of((uint8_t)(i % 4), (uint8_t)(i % 32), 0);

		pcihole_layout_set_present(c.l, &b, i % 3 != 0);
	}
	__atomic_store_n(&c.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, &max);
	assert_true((size_t)max <= 4 * 32);
	assert_true(pcihole_layout_nr_present(c.l) <= 4 * 32);
	pcihole_layout_free(c.l);
}

/* ---- plan2: host-page clipping against a page walk ------------------------ */

struct oracle_run {
	uint64_t gpa, size;
};

/* Maximal hole runs of a one-segment layout by walking pages, then clipped. */
static size_t oracle(const struct pcihole_layout *l, const struct pcihole_segment *seg,
		     uint64_t ps, struct oracle_run *out, uint64_t *holes, uint64_t *fn0)
{
	uint64_t npages = (uint64_t)(seg->bus_end - seg->bus_start + 1) * 256, p, start = 0;
	bool open = false;
	size_t n = 0;

	*holes = 0;
	*fn0 = 0;
	for (p = 0; p <= npages; p++) {
		bool hole = false;

		if (p < npages) {
			struct pcihole_bdf b = {
				.segment = seg->segment,
				.bus = (uint8_t)(seg->bus_start + p / 256),
				.dev = (uint8_t)(p / 8 % 32), .fn = (uint8_t)(p % 8),
			};

			hole = !pcihole_layout_is_present(l, &b);
			*holes += hole;
		}
		if (hole && !open) {
			open = true;
			start = p;
		} else if (!hole && open) {
			uint64_t a = seg->base + (start << 12), e = seg->base + (p << 12);

			open = false;
			a = (a + ps - 1) & ~(ps - 1);
			e &= ~(ps - 1);
			if (e > a) {
				out[n].gpa = a;
				out[n].size = e - a;
				*fn0 += ((e >> 12) + 7) / 8 - ((a >> 12) + 7) / 8;
				n++;
			}
		}
	}
	return n;
}

static void test_plan2_clipping_oracle(void **state)
{
	static const uint64_t sizes[] = { 4096, 8192, 16384, 65536, 1 << 20, 2 << 20 };
	uint64_t seed = tu_seed(0xc11b0001), st = seed;
	struct pcihole_run *runs = calloc(8192, sizeof(*runs));
	struct oracle_run *want = calloc(8192, sizeof(*want));
	unsigned int iter;

	(void)state;
	for (iter = 0; iter < 300; iter++) {
		uint8_t first = (uint8_t)tu_below(&st, 8);
		struct pcihole_segment seg = {
			.base = ECAM + ((uint64_t)tu_below(&st, 64) << 20), .segment = 0,
			.bus_start = first, .bus_end = (uint8_t)(first + tu_below(&st, 8)),
		};
		struct pcihole_plan_opts o = { .page_size = sizes[tu_below(&st, 6)] };
		struct pcihole_plan_info info;
		struct pcihole_layout *l;
		uint64_t holes, fn0, covered = 0;
		unsigned int i, n, k;

		assert_int_equal(pcihole_layout_new(&seg, 1, 0, &l), 0);
		n = (unsigned int)tu_below(&st, 60);
		for (i = 0; i < n; i++) {
			struct pcihole_bdf b = {
				.bus = (uint8_t)(seg.bus_start + tu_below(&st, seg.bus_end - seg.bus_start + 1u)),
				.dev = (uint8_t)tu_below(&st, 32), .fn = (uint8_t)tu_below(&st, 8),
			};

			pcihole_layout_set_present(l, &b, true);
		}
		k = (unsigned int)oracle(l, &seg, o.page_size, want, &holes, &fn0);
		assert_int_equal(pcihole_plan2(l, &o, runs, 8192, &info), (int)k);
		assert_int_equal(info.nr_runs, k);
		assert_int_equal(info.nr_slots, k);
		assert_true(info.hole_pages == holes);
		for (i = 0; i < k; i++) {
			if (runs[i].gpa != want[i].gpa || runs[i].size != want[i].size)
				fail_msg("seed 0x%llx iter %u page %llu: run %u is 0x%llx+0x%llx, want 0x%llx+0x%llx",
					 (unsigned long long)seed, iter,
					 (unsigned long long)o.page_size, i,
					 (unsigned long long)runs[i].gpa, (unsigned long long)runs[i].size,
					 (unsigned long long)want[i].gpa, (unsigned long long)want[i].size);
			assert_int_equal(runs[i].gpa % o.page_size, 0);
			assert_int_equal(runs[i].size % o.page_size, 0);
			covered += runs[i].size >> 12;
			fn0 -= runs[i].fn0_pages;
		}
		assert_true(fn0 == 0);
		assert_true(info.covered_pages == covered);
		assert_true(info.uncovered_pages == holes - covered);
		assert_true(info.clipped_pages == (o.page_size > 4096 ? holes - covered : 0));
		/* A budget chooses among the clipped runs. */
		if (k > 2) {
			o.budget = 2;
			assert_int_equal(pcihole_plan2(l, &o, runs, 8192, &info), 2);
			assert_int_equal(info.nr_runs, k);
			assert_true(runs[0].gpa % o.page_size == 0 && runs[1].gpa % o.page_size == 0);
		}
		pcihole_layout_free(l);
	}
	free(runs);
	free(want);
}

static void test_plan2_options(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_plan_opts o = { 0 };
	struct pcihole_run runs[8];
	struct pcihole_bdf b = bdf_of(0, 0, 0);

	(void)state;
	pcihole_layout_set_present(l, &b, true);
	/* NULL and zeroed options: pcihole_plan() without a budget. */
	assert_int_equal(pcihole_plan2(l, NULL, runs, 8, NULL), 1);
	assert_int_equal(pcihole_plan2(l, &o, runs, 8, NULL), 1);
	o.page_size = 3 << 12;
	assert_int_equal(pcihole_plan2(l, &o, runs, 8, NULL), -EINVAL);
	o.page_size = 2048;
	assert_int_equal(pcihole_plan2(l, &o, runs, 8, NULL), -EINVAL);
	o.page_size = 0;
	o.reserved0 = 1;
	assert_int_equal(pcihole_plan2(l, &o, runs, 8, NULL), -EINVAL);
	o.reserved0 = 0;
	o.reserved[3] = 1;
	assert_int_equal(pcihole_plan2(l, &o, runs, 8, NULL), -EINVAL);
	assert_int_equal(pcihole_plan2(NULL, NULL, runs, 8, NULL), -EINVAL);
	/* 64 KiB pages: 00:00.0 present costs the whole first 64 KiB page. */
	memset(&o, 0, sizeof(o));
	o.page_size = 65536;
	assert_int_equal(pcihole_plan2(l, &o, runs, 8, NULL), 1);
	assert_true(runs[0].gpa == ECAM + 65536);
	assert_true(runs[0].size == (256ULL << 20) - 65536);
	pcihole_layout_free(l);
}

/* ---- all-ones mappings --------------------------------------------------- */

/* Defect 8: allones_map took fds smaller than the chunk (SIGBUS), unsealed, or not all-ones. */
static void test_allones_map_checks_fd(void **state)
{
	int small = tu_filled_memfd(4096, 0xff, TU_SEALS_ALL);
	int unsealed = tu_filled_memfd(2 << 20, 0xff, 0);
	int zeros = tu_filled_memfd(2 << 20, 0, TU_SEALS_ALL);
	int good;
	void *p;

	(void)state;
	assert_int_equal(pcihole_allones_map(small, 2 << 20, 4 << 20, &p), -EINVAL);
	assert_int_equal(pcihole_allones_map(unsealed, 2 << 20, 4 << 20, &p), -EINVAL);
	assert_int_equal(pcihole_allones_map(zeros, 2 << 20, 4 << 20, &p), -EINVAL);
	assert_int_equal(pcihole_allones_map(-1, 2 << 20, 4 << 20, &p), -EINVAL);
	/* The right one, but a different chunk than its size. */
	assert_int_equal(pcihole_allones_memfd(0, &good, NULL), 0);
	assert_int_equal(pcihole_allones_map(good, 1 << 20, 4 << 20, &p), -EINVAL);
	assert_int_equal(pcihole_allones_map(good, 2 << 20, 4 << 20, &p), 0);
	assert_int_equal(((volatile uint8_t *)p)[(4 << 20) - 1], 0xff);
	assert_int_equal(pcihole_allones_unmap(p, 4 << 20), 0);
	/* A 4 KiB fd with a 4 KiB chunk is fine. */
	assert_int_equal(pcihole_allones_map(small, 4096, 8192, &p), 0);
	assert_int_equal(pcihole_allones_unmap(p, 8192), 0);
	close(small);
	close(unsealed);
	close(zeros);
	close(good);
}

static void test_allones_map_run(void **state)
{
	struct pcihole_allones_range r;
	uint64_t chunk = 2 << 20;
	int fd, zeros = tu_filled_memfd(2 << 20, 0, TU_SEALS_ALL);
	static const struct { uint64_t gpa, size; } cases[] = {
		{ 0xb0001000, 0x1000 },			/* one page */
		{ 0xb0001000, (2 << 20) - 0x1000 },	/* to the chunk end */
		{ 0xb01ff000, 0x2000 },			/* across a chunk boundary */
		{ 0xb0000000, 256 << 20 },		/* a whole window */
		{ 0xe0008000, 0x3f8000 },
	};
	size_t i;

	(void)state;
	assert_int_equal(pcihole_allones_memfd(chunk, &fd, NULL), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t g = cases[i].gpa, s = cases[i].size;
		const volatile uint8_t *p;

		memset(&r, 0, sizeof(r));
		assert_int_equal(pcihole_allones_map_run(fd, g, s, &r), 0);
		/* Congruent modulo the chunk: KVM can map 2 MiB at a time. */
		assert_int_equal(r.userspace_addr % chunk, g % chunk);
		assert_int_equal((uintptr_t)r.base % chunk, 0);
		assert_int_equal(r.len % chunk, 0);
		assert_true(r.userspace_addr >= (uintptr_t)r.base);
		assert_true(r.userspace_addr + s <= (uintptr_t)r.base + r.len);
		/* Whole chunks covering the run, no more. */
		assert_true(r.len == (((g + s - 1) | (chunk - 1)) + 1) - (g & ~(chunk - 1)));
		p = (const volatile uint8_t *)(uintptr_t)r.userspace_addr;
		assert_int_equal(p[0], 0xff);
		assert_int_equal(p[s - 1], 0xff);
		assert_int_equal(pcihole_allones_unmap_range(&r), 0);
	}
	assert_int_equal(pcihole_allones_map_run(fd, 0xb0000800, 0x1000, &r), -EINVAL);
	assert_int_equal(pcihole_allones_map_run(fd, 0xb0000000, 0, &r), -EINVAL);
	assert_int_equal(pcihole_allones_map_run(fd, 0xb0000000, 0x1000, NULL), -EINVAL);
	assert_int_equal(pcihole_allones_map_run(zeros, 0xb0000000, 0x1000, &r), -EINVAL);
	assert_int_equal(pcihole_allones_map_run(-1, 0xb0000000, 0x1000, &r), -EBADF);
	assert_int_equal(pcihole_allones_unmap_range(NULL), -EINVAL);
	close(fd);
	close(zeros);
}

/* ---- the context's local hotplug, through an apply callback (no KVM) ----- */

struct vmm_slots {
	/* handle -> run the VMM has for it (memory_size 0: free) */
	struct pcihole_region2 have[512];
	unsigned int calls, creates, deletes;
	unsigned int fail_at;	/* fail the call with this number (1-based), 0: never */
	bool bad;
};

static int vmm_apply(void *opaque, const struct pcihole_region2 *r)
{
	struct vmm_slots *v = opaque;

	v->calls++;
	if (v->fail_at && v->calls == v->fail_at)
		return -ENOSPC;
	if (r->slot >= 512 || r->pad1 || r->guest_memfd || r->guest_memfd_offset) {
		v->bad = true;
		return -EINVAL;
	}
	if (r->memory_size) {
		if (v->have[r->slot].memory_size)
			v->bad = true;	/* creating over a live handle */
		v->have[r->slot] = *r;
		v->creates++;
	} else {
		if (!v->have[r->slot].memory_size)
			v->bad = true;	/* deleting a free handle */
		v->have[r->slot].memory_size = 0;
		v->deletes++;
	}
	return 0;
}

/* The VMM's live slots equal pcihole_plan()'s runs exactly. */
static void check_vmm_matches_plan(const struct vmm_slots *v, const struct pcihole_layout *l,
				   struct pcihole_run *runs, uint32_t budget)
{
	int k = pcihole_plan(l, budget, runs, 65536, NULL);
	unsigned int i, live = 0;
	int j;

	assert_false(v->bad);
	assert_true(k >= 0);
	for (i = 0; i < 512; i++) {
		const struct pcihole_region2 *r = &v->have[i];
		bool found = false;

		if (!r->memory_size)
			continue;
		live++;
		for (j = 0; j < k && !found; j++)
			found = runs[j].gpa == r->guest_phys_addr && runs[j].size == r->memory_size;
		if (!found)
			fail_msg("handle %u: 0x%llx+0x%llx is not a planned run", i,
				 (unsigned long long)r->guest_phys_addr,
				 (unsigned long long)r->memory_size);
	}
	assert_int_equal(live, (unsigned int)k);
}

static const struct pcihole_caps readonly_caps = { .readonly_mem = 1, .nr_memslots = 32764 };

static void check_local_hotplug(uint32_t budget, uint64_t seed)
{
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .nr_slots = budget, .memfd = -1,
		.caps = &readonly_caps, .apply = vmm_apply, .page_size = 4096,
	};
	struct pcihole_run *runs = calloc(65536, sizeof(*runs));
	struct vmm_slots *v = calloc(1, sizeof(*v));
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_ctx_stats st;
	struct pcihole_ctx *ctx;
	uint64_t s = seed;
	int step;

	cfg.apply_opaque = v;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	check_vmm_matches_plan(v, l, runs, budget);
	for (step = 0; step < 3000; step++) {
		struct pcihole_bdf b = bdf_of((uint8_t)tu_below(&s, 3), (uint8_t)tu_below(&s, 32),
					      (uint8_t)tu_below(&s, 8));
		bool p = tu_below(&s, 2);
		int was = pcihole_layout_is_present(l, &b);
		unsigned int calls = v->calls;

		assert_int_equal(pcihole_ctx_set_present(ctx, &b, p), was != p);
		/* One page: at most three slot changes, usually fewer. */
		if (budget >= 512)
			assert_true(v->calls - calls <= 3);
		check_vmm_matches_plan(v, l, runs, budget);
	}
	assert_int_equal(pcihole_ctx_stats(ctx, &st), 0);
	print_message("budget %u: %llu hotplugs, %llu re-planned whole, %u creates, %u deletes\n",
		      budget, (unsigned long long)st.nr_hotplugs,
		      (unsigned long long)st.nr_replans, v->creates, v->deletes);
	if (budget >= 512)
		assert_true(st.nr_replans == 0);	/* never binds: always local */
	else
		assert_true(st.nr_replans > 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	assert_int_equal(v->creates, v->deletes);
	pcihole_layout_free(l);
	free(v);
	free(runs);
}

static void test_local_hotplug_matches_planner(void **state)
{
	(void)state;
	check_local_hotplug(512, tu_seed(0x10ca1001));
	check_local_hotplug(6, tu_seed(0x10ca1002));
}

/* Every failing apply call leaves the VMM's slots as they were. */
static void test_apply_failure_all_or_nothing(void **state)
{
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .nr_slots = 64, .memfd = -1,
		.caps = &readonly_caps, .apply = vmm_apply, .page_size = 4096,
	};
	struct pcihole_run *runs = calloc(65536, sizeof(*runs));
	struct vmm_slots *v = calloc(1, sizeof(*v)), before;
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf a = bdf_of(0, 0, 0), b = bdf_of(1, 4, 2);
	struct pcihole_ctx *ctx;
	unsigned int n, calls;

	(void)state;
	cfg.apply_opaque = v;
	pcihole_layout_set_present(l, &a, true);
	/* attach */
	for (n = 1;; n++) {
		memset(v, 0, sizeof(*v));
		v->fail_at = n;
		ctx = NULL;
		if (!pcihole_ctx_attach(-1, l, &cfg, &ctx))
			break;
		assert_null(ctx);
		assert_int_equal(v->creates, v->deletes);
		assert_false(v->bad);
	}
	v->fail_at = 0;
	check_vmm_matches_plan(v, l, runs, 64);
	/* hotplug: split a run, then merge it back */
	for (int dir = 1; dir >= 0; dir--) {
		before = *v;
		for (n = 1;; n++) {
			*v = before;
			calls = v->calls;
			v->fail_at = calls + n;
			if (pcihole_ctx_set_present(ctx, &b, dir) == 1)
				break;
			assert_int_equal(pcihole_layout_is_present(l, &b), !dir);
			assert_memory_equal(v->have, before.have, sizeof(v->have));
			assert_false(v->bad);
		}
		v->fail_at = 0;
		check_vmm_matches_plan(v, l, runs, 64);
	}
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	pcihole_layout_free(l);
	free(v);
	free(runs);
}

/* Defect 2: one layout, one context; its presence changes go through the context. */
static void test_layout_one_context(void **state)
{
	struct vmm_slots *v = calloc(1, sizeof(*v));
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .nr_slots = 64, .memfd = -1,
		.caps = &readonly_caps, .apply = vmm_apply, .apply_opaque = v,
	};
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = bdf_of(0, 3, 0);
	struct pcihole_ctx *ctx, *ctx2 = NULL;

	(void)state;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx2), -EBUSY);
	assert_null(ctx2);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), -EBUSY);
	assert_int_equal(pcihole_layout_is_present(l, &b), 0);
	assert_int_equal(pcihole_ctx_set_present(ctx, &b, true), 1);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	/* Released: the layout is the caller's again, and attachable again. */
	assert_int_equal(pcihole_layout_set_present(l, &b, false), 1);
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx2), 0);
	pcihole_ctx_destroy(ctx2);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	pcihole_ctx_destroy(NULL);
	pcihole_layout_free(l);
	free(v);
}

/* Defect 4: a log callback may call back into the context (it used to deadlock). */
struct reentry {
	struct pcihole_ctx *ctx;
	unsigned int lines, stats_ok;
};

static void reentrant_log(void *opaque, enum pcihole_log_level level, const char *msg)
{
	struct reentry *r = opaque;
	struct pcihole_ctx_stats st;

	(void)level;
	(void)msg;
	r->lines++;
	if (r->ctx && pcihole_ctx_stats(r->ctx, &st) == 0)
		r->stats_ok++;
}

struct reentry_run {
	struct reentry r;
	bool done;
};

static void *reentry_body(void *arg)
{
	struct reentry_run *run = arg;
	struct vmm_slots *v = calloc(1, sizeof(*v));
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .nr_slots = 64, .memfd = -1,
		.caps = &readonly_caps, .apply = vmm_apply, .apply_opaque = v,
		.log = reentrant_log, .log_opaque = &run->r,
	};
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = bdf_of(0, 3, 0);

	if (!pcihole_ctx_attach(-1, l, &cfg, &run->r.ctx)) {
		/* Debug lines from the hotplug, under the context's lock before 1.0. */
		pcihole_ctx_set_present(run->r.ctx, &b, true);
		pcihole_ctx_set_present(run->r.ctx, &b, false);
		pcihole_ctx_detach(run->r.ctx);
	}
	pcihole_layout_free(l);
	free(v);
	__atomic_store_n(&run->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void test_log_callback_reentry(void **state)
{
	struct reentry_run *run = calloc(1, sizeof(*run));
	pthread_t t;
	int i;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, reentry_body, run), 0);
	for (i = 0; i < 100 && !__atomic_load_n(&run->done, __ATOMIC_ACQUIRE); i++)
		usleep(50000);
	if (!__atomic_load_n(&run->done, __ATOMIC_ACQUIRE))
		fail_msg("a log callback calling pcihole_ctx_stats() deadlocked");
	pthread_join(t, NULL);
	assert_true(run->r.lines >= 3);	/* attached + two hotplugs */
	assert_true(run->r.stats_ok >= 2);
	free(run);
}

/* ---- shadowed functions ------------------------------------------------------- */

/* Three kinds of pages: runs cover holes and shadowed pages, never trapped ones. */
static void test_three_kind_plan_oracle(void **state)
{
	uint64_t seed = tu_seed(0x5ad0e001), st = seed;
	struct pcihole_run *runs = calloc(8192, sizeof(*runs));
	struct pcihole_run *split = calloc(8192, sizeof(*split));
	unsigned int iter;

	(void)state;
	for (iter = 0; iter < 300; iter++) {
		struct pcihole_segment seg = { .base = ECAM, .bus_start = 0,
					       .bus_end = (uint8_t)tu_below(&st, 4) };
		uint64_t npages = (uint64_t)(seg.bus_end + 1) * 256, p, start = 0, sstart = 0;
		uint64_t holes = 0, shadowed = 0;
		struct pcihole_plan_info info, sinfo;
		struct pcihole_layout *l;
		unsigned int i, n, k = 0, ks, changes;
		int got, nsplit, kinds;
		bool open = false;

		assert_int_equal(pcihole_layout_new(&seg, 1, 0, &l), 0);
		n = (unsigned int)tu_below(&st, 80);
		for (i = 0; i < n; i++) {
			struct pcihole_bdf b = bdf_of((uint8_t)tu_below(&st, seg.bus_end + 1u),
						      (uint8_t)tu_below(&st, 32),
						      (uint8_t)tu_below(&st, 8));

			/* Any mix: present, shadowed, both (shadowed), shadow bit on a hole. */
			if (tu_below(&st, 3))
				pcihole_layout_set_present(l, &b, true);
			if (!tu_below(&st, 3))
				pcihole_layout_set_shadowed(l, &b, true);
		}
		got = pcihole_plan(l, PCIHOLE_NO_BUDGET, runs, 8192, &info);
		assert_true(got >= 0);
		/*
		 * The split plan of pci-hole contexts: a run per maximal stretch of
		 * one kind (hole or shadowed).  A slot is of one kind, so a slot
		 * list covering exactly the non-trapped pages has at least one slot
		 * per such stretch: this count is the fewest.  It is the unsplit
		 * count plus one per kind change inside an unsplit run.
		 */
		nsplit = ph_plan(l, PCIHOLE_NO_BUDGET, 4096, true, split, 8192, &sinfo);
		assert_true(nsplit >= got);
		assert_true(sinfo.covered_pages == info.covered_pages);
		for (p = 0, ks = 0, kinds = 0, changes = 0; p <= npages; p++) {
			int kd = -1;	/* trapped or past the end */

			if (p < npages) {
				struct pcihole_bdf b = bdf_of((uint8_t)(p / 256), (uint8_t)(p / 8 % 32),
							      (uint8_t)(p % 8));
				int pr = pcihole_layout_is_present(l, &b);

				kd = !pr ? 0 : pcihole_layout_is_shadowed(l, &b) ? 1 : -1;
			}
			if (kd != kinds - 1) {
				/* The stretch of kind kinds - 1 (if any) ends at p. */
				if (kinds) {
					if (ks >= (unsigned int)nsplit ||
					    split[ks].gpa != ECAM + (sstart << 12) ||
					    split[ks].size != (p - sstart) << 12 ||
					    split[ks].reserved != (uint32_t)(kinds - 1))
						fail_msg("seed 0x%llx iter %u: split run %u differs from the page walk",
							 (unsigned long long)seed, iter, ks);
					ks++;
					changes += kd >= 0;
				}
				kinds = kd + 1;
				sstart = p;
			}
		}
		assert_int_equal(ks, (unsigned int)nsplit);
		assert_int_equal((unsigned int)nsplit, (unsigned int)got + changes);
		for (p = 0; p <= npages; p++) {
			bool in = false;

			if (p < npages) {
				struct pcihole_bdf b = bdf_of((uint8_t)(p / 256), (uint8_t)(p / 8 % 32),
							      (uint8_t)(p % 8));
				int pr = pcihole_layout_is_present(l, &b);
				int sh = pcihole_layout_is_shadowed(l, &b);

				in = !pr || sh;
				holes += !pr;
				shadowed += pr && sh;
				/* classify agrees with the kind */
				assert_int_equal(pcihole_classify(l, ECAM + (p << 12), NULL, 4, true, NULL),
						 !pr ? PCIHOLE_ACCESS_HOLE : sh ? PCIHOLE_ACCESS_SHADOWED :
						 PCIHOLE_ACCESS_FUNCTION);
			}
			if (in && !open) {
				open = true;
				start = p;
			} else if (!in && open) {
				open = false;
				if (k >= (unsigned int)got || runs[k].gpa != ECAM + (start << 12) ||
				    runs[k].size != (p - start) << 12)
					fail_msg("seed 0x%llx iter %u: run %u differs from the page walk",
						 (unsigned long long)seed, iter, k);
				k++;
			}
		}
		assert_int_equal(k, (unsigned int)got);
		assert_true(info.hole_pages == holes);
		assert_true(info.shadowed_pages == shadowed);
		assert_true(info.covered_pages == holes + shadowed);
		pcihole_layout_free(l);
	}
	free(runs);
	free(split);
}

/* A shadowed function's pages through a readonly context, looked at from the host side. */
static const volatile uint32_t *host_word(const struct vmm_slots *v, uint64_t gpa)
{
	unsigned int i;

	for (i = 0; i < 512; i++) {
		const struct pcihole_region2 *r = &v->have[i];

		if (r->memory_size && gpa >= r->guest_phys_addr &&
		    gpa - r->guest_phys_addr < r->memory_size)
			return (const volatile uint32_t *)(uintptr_t)(r->userspace_addr +
								      (gpa - r->guest_phys_addr));
	}
	return NULL;
}

static unsigned int count_maps(const char *needle)
{
	char line[512];
	unsigned int n = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void test_shadow_readonly_host_view(void **state)
{
	struct vmm_slots *v = calloc(1, sizeof(*v));
	struct pcihole_run *runs = calloc(65536, sizeof(*runs));
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .nr_slots = 64, .memfd = -1,
		.caps = &readonly_caps, .apply = vmm_apply, .apply_opaque = v,
		.flags = PCIHOLE_CTX_SHADOW, .page_size = 4096,
	};
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf dev2 = bdf_of(0, 2, 0), dev9 = bdf_of(0, 9, 0);
	uint32_t init[1024], *page, *page9;
	struct pcihole_ctx_stats st;
	struct pcihole_ctx *ctx;
	unsigned int calls, maps0, i;

	(void)state;
	for (i = 0; i < 1024; i++)
		init[i] = 0xc0de0000u | i;
	init[0] = 0x00021b36;			/* vendor 1b36, device 0002 */
	pcihole_layout_set_present(l, &dev2, true);
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	check_vmm_matches_plan(v, l, runs, 64);
	assert_int_equal(v->creates, 2);	/* the window around 00:02.0 */
	assert_null(host_word(v, gpa_of(0, 2, 0)));
	maps0 = count_maps("pcihole-");

	/* Shadowing a present function merges the runs around it: 2 deletes, 1 create. */
	calls = v->calls;
	assert_int_equal(pcihole_ctx_shadow(ctx, &dev2, init, (void **)&page), 1);
	assert_int_equal(v->calls - calls, 3);
	check_vmm_matches_plan(v, l, runs, 64);
	assert_int_equal(*host_word(v, gpa_of(0, 2, 0)), 0x00021b36);
	assert_int_equal(host_word(v, gpa_of(0, 2, 0))[0x3c / 4], 0xc0de000fu);
	assert_int_equal(*host_word(v, gpa_of(0, 2, 1)), 0xffffffffu);	/* neighbours stay all-ones */
	assert_int_equal(*host_word(v, gpa_of(0, 1, 7) + 0xffc), 0xffffffffu);
	/* The VMM updates its page: the slot's host range sees it, no slot change. */
	calls = v->calls;
	page[1] = 0x00100007;
	assert_int_equal(host_word(v, gpa_of(0, 2, 0))[1], 0x00100007u);
	assert_int_equal(v->calls, calls);
	assert_int_equal(pcihole_ctx_shadow(ctx, &dev2, NULL, (void **)&page9), 0);
	assert_ptr_equal(page9, page);
	assert_int_equal(pcihole_classify(l, gpa_of(0, 2, 0) + 4, NULL, 4, true, NULL),
			 PCIHOLE_ACCESS_SHADOWED);

	/* Shadow an absent function, then plug and unplug it: mappings change, never a slot. */
	assert_int_equal(pcihole_ctx_shadow(ctx, &dev9, NULL, (void **)&page9), 1);
	page9[0] = 0x00031b36;
	assert_int_equal(*host_word(v, gpa_of(0, 9, 0)), 0xffffffffu);	/* absent: a hole */
	calls = v->calls;
	assert_int_equal(pcihole_ctx_set_present(ctx, &dev9, true), 1);
	assert_int_equal(*host_word(v, gpa_of(0, 9, 0)), 0x00031b36u);
	assert_int_equal(pcihole_classify(l, gpa_of(0, 9, 0), NULL, 4, true, NULL),
			 PCIHOLE_ACCESS_SHADOWED);
	assert_int_equal(pcihole_ctx_set_present(ctx, &dev9, false), 1);
	assert_int_equal(*host_word(v, gpa_of(0, 9, 0)), 0xffffffffu);
	assert_int_equal(pcihole_ctx_set_present(ctx, &dev9, true), 1);
	assert_int_equal(v->calls, calls);
	check_vmm_matches_plan(v, l, runs, 64);
	assert_int_equal(pcihole_ctx_stats(ctx, &st), 0);
	assert_true(st.nr_shadowed == 2);
	assert_int_equal(st.nr_slots, 1);	/* every function shadowed: one slot per window */
	/* VMAs stay bounded: at most three more per shadowed page (split + page). */
	assert_true(count_maps("pcihole-") <= maps0 + 2 * 3);

	/* Unshadow: trapped again (split), all-ones back under the host range. */
	calls = v->calls;
	assert_int_equal(pcihole_ctx_unshadow(ctx, &dev2), 1);
	assert_int_equal(v->calls - calls, 3);
	check_vmm_matches_plan(v, l, runs, 64);
	assert_null(host_word(v, gpa_of(0, 2, 0)));
	assert_int_equal(pcihole_ctx_unshadow(ctx, &dev2), 0);
	assert_int_equal(pcihole_classify(l, gpa_of(0, 2, 0), NULL, 4, true, NULL),
			 PCIHOLE_ACCESS_FUNCTION);
	/* Unplugged while shadowed, then unshadowed: a plain hole with all-ones under it. */
	assert_int_equal(pcihole_ctx_set_present(ctx, &dev9, false), 1);
	assert_int_equal(pcihole_ctx_unshadow(ctx, &dev9), 1);
	assert_int_equal(*host_word(v, gpa_of(0, 9, 0)), 0xffffffffu);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	assert_int_equal(count_maps("pcihole-"), 0);
	pcihole_layout_free(l);
	free(v);
	free(runs);
}

/* ---- shadowed functions in pci-hole mode ----------------------------------------- */

static const struct pcihole_caps hole_ro_caps = {
	.readonly_mem = 1, .nr_memslots = 32764, .pci_hole_works = 1,
	.pci_hole_flag = PCIHOLE_KVM_MEM_PCI_HOLE,
};

/* Buses 0-1 of the q35 window: where the random changes go. */
#define PH_NPAGES 512u

struct hole_fix {
	struct vmm_slots *v;
	struct pcihole_run *runs;
	struct pcihole_layout *l;
	struct pcihole_ctx *ctx;
	uint32_t *page[PH_NPAGES];	/* shadow page of each function, NULL if none */
};

static struct pcihole_bdf bdf_of_page(unsigned int p)
{
	return bdf_of((uint8_t)(p / 256), (uint8_t)(p / 8 % 32), (uint8_t)(p % 8));
}

/*
 * The VMM's live records against the page walk: one record per maximal
 * stretch of one kind (bus 0-1 here, and the rest of the window one hole
 * record, or its continuation); holes KVM_MEM_PCI_HOLE with no host address,
 * shadowed pages KVM_MEM_READONLY over host memory that reads exactly each
 * function's shadow page, in gpa order.
 */
static unsigned int check_hole_records(const struct hole_fix *f)
{
	const struct vmm_slots *v = f->v;
	uint64_t end = ECAM + (256ULL << 20), p = 0;
	unsigned int live = 0, want = 0, i;

	assert_false(v->bad);
	for (i = 0; i < 512; i++)
		live += v->have[i].memory_size != 0;
	while (p < 65536) {
		struct pcihole_bdf b = bdf_of_page((unsigned int)p);
		int pr = p < PH_NPAGES ? pcihole_layout_is_present(f->l, &b) : 0;
		int sh = pr && pcihole_layout_is_shadowed(f->l, &b);
		uint64_t gpa = ECAM + (p << 12);
		const struct pcihole_region2 *r = NULL;

		if (pr && !sh) {
			p++;
			continue;
		}
		for (i = 0; i < 512 && !r; i++)
			if (v->have[i].memory_size && v->have[i].guest_phys_addr == gpa)
				r = &v->have[i];
		if (!r)
			fail_msg("no record starts at page %llu (%s)", (unsigned long long)p,
				 sh ? "shadowed" : "hole");
		want++;
		assert_true(r->guest_phys_addr + r->memory_size <= end);
		if (!sh) {
			assert_int_equal(r->flags, PCIHOLE_KVM_MEM_PCI_HOLE);
			assert_true(r->userspace_addr == 0);
		} else {
			assert_int_equal(r->flags, KVM_MEM_READONLY);
			assert_true(r->userspace_addr != 0);
		}
		/* Every page of the record is of its kind, and the next one is not. */
		for (; p < 65536 && ECAM + (p << 12) < r->guest_phys_addr + r->memory_size; p++) {
			struct pcihole_bdf c = bdf_of_page((unsigned int)p);
			int cp = p < PH_NPAGES ? pcihole_layout_is_present(f->l, &c) : 0;

			assert_int_equal(cp && pcihole_layout_is_shadowed(f->l, &c), sh);
			assert_true(!cp || sh);
			if (sh) {
				const volatile uint32_t *host = (const volatile uint32_t *)(uintptr_t)
					(r->userspace_addr + ((ECAM + (p << 12)) - r->guest_phys_addr));

				assert_non_null(f->page[p]);
				assert_int_equal(host[0], f->page[p][0]);
				assert_int_equal(host[1023], f->page[p][1023]);
			}
		}
		/* Maximal: the next page is trapped, of the other kind, or past the window. */
		if (p < 65536) {
			struct pcihole_bdf c = bdf_of_page((unsigned int)p);
			int cp = p < PH_NPAGES ? pcihole_layout_is_present(f->l, &c) : 0;
			int cs = cp && pcihole_layout_is_shadowed(f->l, &c);

			assert_true((cp && !cs) || cs != sh);
		}
	}
	assert_int_equal(live, want);
	return live;
}

static void hole_fix_setup(struct hole_fix *f, unsigned int flags)
{
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_PCI_HOLE, .nr_slots = 512, .memfd = -1,
		.caps = &hole_ro_caps, .apply = vmm_apply, .page_size = 4096,
		.flags = PCIHOLE_CTX_SHADOW | flags,
	};

	memset(f, 0, sizeof(*f));
	f->v = calloc(1, sizeof(*f->v));
	f->runs = calloc(65536, sizeof(*f->runs));
	f->l = tu_q35_layout();
	cfg.apply_opaque = f->v;
	assert_int_equal(pcihole_ctx_attach(-1, f->l, &cfg, &f->ctx), 0);
	assert_int_equal(pcihole_ctx_mode(f->ctx), PCIHOLE_MODE_PCI_HOLE);
}

static void hole_fix_teardown(struct hole_fix *f)
{
	assert_int_equal(pcihole_ctx_detach(f->ctx), 0);
	assert_int_equal(f->v->creates, f->v->deletes);
	assert_int_equal(count_maps("pcihole-"), 0);
	pcihole_layout_free(f->l);
	free(f->v);
	free(f->runs);
}

static int hole_shadow(struct hole_fix *f, unsigned int p)
{
	struct pcihole_bdf b = bdf_of_page(p);
	uint32_t init[1024];
	void *page;
	int ret;

	/* Unique words at both ends, so a page in the wrong place shows. */
	memset(init, 0x5c, sizeof(init));
	init[0] = 0x1b360000u | p;
	init[1023] = 0xe0d00000u | p;
	ret = pcihole_ctx_shadow(f->ctx, &b, init, &page);
	if (ret == 1)
		f->page[p] = page;
	return ret;
}

static int hole_unshadow(struct hole_fix *f, unsigned int p)
{
	struct pcihole_bdf b = bdf_of_page(p);
	int ret = pcihole_ctx_unshadow(f->ctx, &b);

	if (ret == 1)
		f->page[p] = NULL;
	return ret;
}

/*
 * pci-hole mode with shadows, no KVM: the records handed to the apply
 * callback against the page walk after every random shadow, unshadow, plug
 * and unplug; at most 4 records per change (one page: the 3 runs around it
 * become 1, or 1 becomes 3); VMAs bounded.
 */
static void test_shadow_pci_hole_records(void **state)
{
	uint64_t seed = tu_seed(0x5ad0e002), st = seed;
	unsigned int step, max_calls = 0, nshadow = 0, maxmaps = 0, maps0;
	struct pcihole_ctx_stats stats;
	struct hole_fix f;

	(void)state;
	hole_fix_setup(&f, 0);
	assert_int_equal(check_hole_records(&f), 1);	/* the whole window, one hole slot */
	maps0 = count_maps("pcihole-");
	for (step = 0; step < 3000; step++) {
		/* Mostly bus 0, devices 0-3: dense enough that kinds meet. */
		unsigned int p = (unsigned int)(tu_below(&st, 4) ? tu_below(&st, 32) :
					       tu_below(&st, PH_NPAGES));
		struct pcihole_bdf b = bdf_of_page(p);
		unsigned int calls = f.v->calls, op = (unsigned int)tu_below(&st, 4), maps;
		int was = pcihole_layout_is_present(f.l, &b), ret;
		bool had = f.page[p] != NULL;

		switch (op) {
		case 0:
			ret = hole_shadow(&f, p);
			assert_int_equal(ret, !had);
			nshadow += !had;
			break;
		case 1:
			ret = hole_unshadow(&f, p);
			assert_int_equal(ret, had);
			nshadow -= had;
			break;
		default:
			ret = pcihole_ctx_set_present(f.ctx, &b, op == 2);
			assert_int_equal(ret, was != (op == 2));
			break;
		}
		if (f.v->calls - calls > max_calls)
			max_calls = f.v->calls - calls;
		assert_true(f.v->calls - calls <= 4);
		check_hole_records(&f);
		/* The VMM's view, the mirror, and each shadowed page: at most 2 VMAs more. */
		maps = count_maps("pcihole-");
		assert_true(maps <= maps0 + 2 * nshadow);
		if (maps > maxmaps)
			maxmaps = maps;
	}
	assert_int_equal(pcihole_ctx_stats(f.ctx, &stats), 0);
	assert_true(stats.nr_shadowed == nshadow);
	assert_int_equal(stats.nr_replans, 0);
	print_message("pci-hole + shadow: 3000 random changes, records = page walk after each, "
		      "<= %u records per change, <= %u VMAs (%u at start), %u slots at the end\n",
		      max_calls, maxmaps, maps0, stats.nr_slots);
	hole_fix_teardown(&f);
}

/* Slot counts of the q35-like layout: readonly vs pci-hole, all six functions shadowed. */
static void test_shadow_pci_hole_slot_cost(void **state)
{
	static const unsigned int q35[] = { 0, 8, 16, 248, 250, 251 };	/* 00:00.0 .. 00:1f.3 */
	struct hole_fix f;
	unsigned int i, calls, before;

	(void)state;
	hole_fix_setup(&f, 0);
	for (i = 0; i < 6; i++)
		assert_int_equal(pcihole_ctx_set_present(f.ctx, &(struct pcihole_bdf){
			.dev = (uint8_t)(q35[i] / 8), .fn = (uint8_t)(q35[i] % 8) }, true), 1);
	before = check_hole_records(&f);
	assert_int_equal(before, 5);	/* trapped: the holes between them */
	for (i = 0; i < 6; i++)
		assert_int_equal(hole_shadow(&f, q35[i]), 1);
	/* 5 shadowed stretches (1f.2 and 1f.3 touch) between 5 hole stretches. */
	assert_int_equal(check_hole_records(&f), 10);
	/* Unplug 00:02.0 (shadowed): its page joins the holes on both sides, 3 -> 1. */
	calls = f.v->calls;
	assert_int_equal(pcihole_ctx_set_present(f.ctx, &(struct pcihole_bdf){ .dev = 2 }, false), 1);
	assert_int_equal(f.v->calls - calls, 4);
	assert_int_equal(check_hole_records(&f), 8);
	/* Plug it back: 1 -> 3. */
	calls = f.v->calls;
	assert_int_equal(pcihole_ctx_set_present(f.ctx, &(struct pcihole_bdf){ .dev = 2 }, true), 1);
	assert_int_equal(f.v->calls - calls, 4);
	assert_int_equal(check_hole_records(&f), 10);
	/* Unshadow 00:1f.3: the 1f.2-1f.3 slot shrinks, 1f.3 trapped, 2 records. */
	calls = f.v->calls;
	assert_int_equal(hole_unshadow(&f, 251), 1);
	assert_int_equal(f.v->calls - calls, 2);
	assert_int_equal(check_hole_records(&f), 10);
	/* Unshadow 00:00.0: trapped between trapped-nothing and a hole: 1 delete. */
	calls = f.v->calls;
	assert_int_equal(hole_unshadow(&f, 0), 1);
	assert_int_equal(f.v->calls - calls, 1);
	assert_int_equal(check_hole_records(&f), 9);
	hole_fix_teardown(&f);
}

/*
 * Every failing apply call, then every failing system call (mmap, ...), of
 * one change leaves the records, the bits and the host view as they were;
 * between the two rounds the change is taken back by its reverse.
 */
static void hole_fault_one(struct hole_fix *f, int (*op)(struct hole_fix *, unsigned int, bool),
			   unsigned int p, bool arg, const char *what)
{
	unsigned int n, round, failed[2] = { 0, 0 };
	struct vmm_slots before;
	uint32_t *page_before;
	int ret;

	for (round = 0; round < 2; round++) {
		before = *f->v;
		page_before = f->page[p];
		for (n = 1;; n++) {
			*f->v = before;
			if (round)
				ph_sys_fail_nth(n, ENOMEM, PH_SYS_ALL);
			else
				f->v->fail_at = before.calls + n;
			ret = op(f, p, arg);
			f->v->fail_at = 0;
			if (round) {
				ph_sys_fail_nth(0, 0, 0);
				if (!ph_sys_fired())
					break;
			} else if (f->v->calls < before.calls + n) {
				break;	/* fewer apply calls than n: nothing failed */
			}
			assert_true(ret < 0);
			failed[round]++;
			assert_memory_equal(f->v->have, before.have, sizeof(before.have));
			assert_true(f->page[p] == page_before);
			check_hole_records(f);
		}
		assert_int_equal(ret, 1);
		check_hole_records(f);
		if (!round)
			assert_int_equal(op(f, p, !arg), 1);
	}
	print_message("%s: each of %u apply calls and %u system calls failed, all undone\n",
		      what, failed[0], failed[1]);
}

static int op_shadow(struct hole_fix *f, unsigned int p, bool on)
{
	return on ? hole_shadow(f, p) : hole_unshadow(f, p);
}

static int op_present(struct hole_fix *f, unsigned int p, bool on)
{
	return pcihole_ctx_set_present(f->ctx, &(struct pcihole_bdf){
		.dev = (uint8_t)(p / 8), .fn = (uint8_t)(p % 8) }, on);
}

static void test_shadow_pci_hole_fault_injection(void **state)
{
	struct hole_fix f;

	(void)state;
	hole_fix_setup(&f, 0);
	/* 00:02.0 present between holes, 00:02.1 present and shadowed beside it. */
	assert_int_equal(op_present(&f, 16, true), 1);
	assert_int_equal(op_present(&f, 17, true), 1);
	assert_int_equal(hole_shadow(&f, 17), 1);
	check_hole_records(&f);
	hole_fault_one(&f, op_shadow, 16, true, "shadow a present function");
	hole_fault_one(&f, op_present, 16, false, "unplug a shadowed function");
	hole_fault_one(&f, op_present, 16, true, "plug a shadowed function");
	hole_fault_one(&f, op_shadow, 16, false, "unshadow a present function");
	hole_fault_one(&f, op_shadow, 24, true, "shadow an absent function");
	hole_fault_one(&f, op_shadow, 24, false, "unshadow an absent function");
	hole_fix_teardown(&f);
}

static void test_shadow_refusals(void **state)
{
	struct vmm_slots *v = calloc(1, sizeof(*v));
	static const struct pcihole_caps hole_caps = { .nr_memslots = 32764,
						       .pci_hole_works = 1 };
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_PCI_HOLE, .nr_slots = 64, .memfd = -1,
		.caps = &hole_caps, .apply = vmm_apply, .apply_opaque = v,
		.flags = PCIHOLE_CTX_SHADOW,
	};
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = bdf_of(0, 2, 0), bad = bdf_of(0, 32, 0);
	struct pcihole_ctx *ctx;
	void *page;

	(void)state;
	/* pci-hole shadows need read-only slots beside the hole slots. */
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), -EOPNOTSUPP);
	cfg.caps = &hole_ro_caps;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	pcihole_ctx_destroy(ctx);
	/* Auto with shadows: pci-hole where KVM has both, else mmio or readonly. */
	cfg.mode = PCIHOLE_MODE_AUTO;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_mode(ctx), PCIHOLE_MODE_PCI_HOLE);
	pcihole_ctx_destroy(ctx);
	cfg.caps = &hole_caps;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_mode(ctx), PCIHOLE_MODE_MMIO);
	pcihole_ctx_destroy(ctx);
	cfg.caps = &readonly_caps;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_mode(ctx), PCIHOLE_MODE_READONLY);
	pcihole_ctx_destroy(ctx);
	/* Without the flag: no shadow pages. */
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.caps = &readonly_caps;
	cfg.flags = 0;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_shadow(ctx, &b, NULL, &page), -EOPNOTSUPP);
	assert_int_equal(pcihole_ctx_shadow(ctx, &bad, NULL, &page), -EINVAL);
	assert_int_equal(pcihole_layout_set_shadowed(l, &b, true), -EBUSY);
	pcihole_ctx_destroy(ctx);
	/* Shadow bits on a bare layout have no pages: a context refuses them. */
	assert_int_equal(pcihole_layout_set_shadowed(l, &b, true), 1);
	assert_int_equal(pcihole_layout_is_shadowed(l, &b), 1);
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), -EINVAL);
	assert_int_equal(pcihole_layout_set_shadowed(l, &b, false), 1);
	/* mmio mode shadows too (the VMM answers reads from its page). */
	cfg.mode = PCIHOLE_MODE_MMIO;
	cfg.flags = PCIHOLE_CTX_SHADOW;
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_shadow(ctx, &b, NULL, &page), 1);
	assert_int_equal(((uint8_t *)page)[4095], 0xff);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	pcihole_layout_free(l);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_kinds),
		cmocka_unit_test(test_classify_one_answer_under_churn),
		cmocka_unit_test(test_nr_present_concurrent),
		cmocka_unit_test(test_plan2_options),
		cmocka_unit_test(test_plan2_clipping_oracle),
		cmocka_unit_test(test_allones_map_checks_fd),
		cmocka_unit_test(test_allones_map_run),
		cmocka_unit_test(test_local_hotplug_matches_planner),
		cmocka_unit_test(test_apply_failure_all_or_nothing),
		cmocka_unit_test(test_layout_one_context),
		cmocka_unit_test(test_log_callback_reentry),
		cmocka_unit_test(test_three_kind_plan_oracle),
		cmocka_unit_test(test_shadow_readonly_host_view),
		cmocka_unit_test(test_shadow_pci_hole_records),
		cmocka_unit_test(test_shadow_pci_hole_slot_cost),
		cmocka_unit_test(test_shadow_pci_hole_fault_injection),
		cmocka_unit_test(test_shadow_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
