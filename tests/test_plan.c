// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* lib/plan.c: runs, budget, diff and slot records on hand-checked layouts. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

#define MAXR 64

static void present(struct pcihole_layout *l, const char *str, bool on)
{
	struct pcihole_bdf b;

	assert_int_equal(pcihole_bdf_parse(str, &b), 0);
	assert_true(pcihole_layout_set_present(l, &b, on) >= 0);
}

static const char *const q35_devices[] = {
	"00:00.0", "00:01.0", "00:02.0", "00:1f.0", "00:1f.2", "00:1f.3",
};

static void q35(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_run r[MAXR];
	struct pcihole_plan_info info;
	uint64_t pages = 0;
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < 6; i++)
		present(l, q35_devices[i], true);
	assert_int_equal(pcihole_plan_count(l), 5);
	n = pcihole_plan(l, PCIHOLE_NO_BUDGET, r, MAXR, &info);
	assert_int_equal(n, 5);
	for (i = 0; i < 5; i++)
		pages += r[i].size / PCIHOLE_PAGE_SIZE;
	assert_true(pages == 65530);
	assert_true(info.hole_pages == 65530 && info.covered_pages == 65530);
	assert_true(info.uncovered_pages == 0 && info.uncovered_fn0_pages == 0);
	assert_int_equal(info.nr_runs, 5);
	assert_int_equal(info.nr_slots, 5);
	/* the runs, by hand: between 00:00.0, 00:01.0, 00:02.0, 00:1f.0, 00:1f.2, 00:1f.3 */
	assert_true(r[0].gpa == 0xb0001000 && r[0].size == 7 * 4096 && r[0].fn0_pages == 0);
	assert_true(r[1].gpa == 0xb0009000 && r[1].size == 7 * 4096);
	assert_true(r[2].gpa == 0xb0011000 && r[2].size == (0xf8000 - 0x11000));
	assert_int_equal(r[2].fn0_pages, 28); /* devices 3..30 */
	assert_true(r[3].gpa == 0xb00f9000 && r[3].size == 4096);
	assert_true(r[4].gpa == 0xb00fc000 && r[4].gpa + r[4].size == 0xc0000000);
	assert_int_equal(r[4].fn0_pages, 255 * 32);
	pcihole_layout_free(l);
}

static void extremes(void **state)
{
	struct pcihole_segment s = { .base = 0xb0000000, .bus_end = 0 };
	struct pcihole_layout *l;
	struct pcihole_run r[MAXR];
	struct pcihole_plan_info info;
	struct pcihole_bdf b = { 0 };
	unsigned int d, f;

	(void)state;
	assert_int_equal(pcihole_layout_new(&s, 1, 0, &l), 0);
	/* nothing present: one run, the whole window */
	assert_int_equal(pcihole_plan(l, PCIHOLE_NO_BUDGET, r, MAXR, &info), 1);
	assert_true(r[0].gpa == 0xb0000000 && r[0].size == 1 << 20 && r[0].fn0_pages == 32);
	/* budget 0: everything to the mmio path */
	assert_int_equal(pcihole_plan(l, 0, r, MAXR, &info), 0);
	assert_true(info.uncovered_pages == 256 && info.uncovered_fn0_pages == 32);
	assert_true(info.covered_pages == 0 && info.nr_runs == 1 && info.nr_slots == 0);
	/* everything present: no runs */
	for (d = 0; d < 32; d++)
		for (f = 0; f < 8; f++) {
			b.dev = (uint8_t)d;
			b.fn = (uint8_t)f;
			assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
		}
	assert_int_equal(pcihole_plan_count(l), 0);
	assert_int_equal(pcihole_plan(l, PCIHOLE_NO_BUDGET, NULL, 0, &info), 0);
	assert_true(info.hole_pages == 0);
	/* every other page: the worst case, 128 runs of one page */
	for (d = 0; d < 32; d++)
		for (f = 0; f < 8; f += 2) {
			b.dev = (uint8_t)d;
			b.fn = (uint8_t)f;
			assert_int_equal(pcihole_layout_set_present(l, &b, false), 1);
		}
	assert_int_equal(pcihole_plan_count(l), 128);
	pcihole_layout_free(l);
}

static void size_query(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_run r[MAXR];
	struct pcihole_plan_info info;

	(void)state;
	present(l, "00:01.0", true);
	present(l, "00:03.0", true);
	memset(r, 0x5a, sizeof(r));
	assert_int_equal(pcihole_plan(l, PCIHOLE_NO_BUDGET, r, 2, &info), -ENOSPC);
	assert_int_equal(info.nr_runs, 3);
	assert_true(info.hole_pages == 65534);
	/* even with a budget, the array must hold every run: it is the work space */
	assert_int_equal(pcihole_plan(l, 1, r, 2, &info), -ENOSPC);
	assert_int_equal(info.nr_slots, 1);
	assert_int_equal(pcihole_plan(l, 1, r, 3, NULL), 1);
	assert_int_equal(pcihole_plan(NULL, 1, r, 3, NULL), -EINVAL);
	pcihole_layout_free(l);
}

/* Windows that touch in guest-physical space merge into one slot; others do not. */
static void adjacent_windows(void **state)
{
	struct pcihole_segment s[3] = {
		{ .base = 0xb0100000, .segment = 0, .bus_start = 1, .bus_end = 1 },
		{ .base = 0xb0000000, .segment = 0, .bus_start = 0, .bus_end = 0 },
		{ .base = 0xb0300000, .segment = 1, .bus_start = 0, .bus_end = 0 },
	};
	struct pcihole_layout *l;
	struct pcihole_run r[MAXR];
	struct pcihole_plan_info info;

	(void)state;
	assert_int_equal(pcihole_layout_new(s, 3, 0, &l), 0);
	assert_int_equal(pcihole_plan(l, PCIHOLE_NO_BUDGET, r, MAXR, &info), 2);
	assert_true(r[0].gpa == 0xb0000000 && r[0].size == 2 << 20 && r[0].fn0_pages == 64);
	assert_true(r[1].gpa == 0xb0300000 && r[1].size == 1 << 20);
	/* a present page at the very end of the first window splits at the boundary */
	present(l, "00:1f.7", true);
	assert_int_equal(pcihole_plan(l, PCIHOLE_NO_BUDGET, r, MAXR, &info), 3);
	assert_true(r[0].gpa == 0xb0000000 && r[0].size == (1 << 20) - 4096);
	assert_true(r[1].gpa == 0xb0100000 && r[1].size == 1 << 20);
	present(l, "00:1f.7", false);
	present(l, "01:00.0", true);
	assert_int_equal(pcihole_plan(l, PCIHOLE_NO_BUDGET, r, MAXR, &info), 3);
	assert_true(r[0].size == 1 << 20 && r[1].gpa == 0xb0101000);
	pcihole_layout_free(l);
}

static void budget(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_run r[MAXR];
	struct pcihole_plan_info info;
	size_t i;

	(void)state;
	for (i = 0; i < 6; i++)
		present(l, q35_devices[i], true);
	/*
	 * Runs: A 7 pages/0 fn0, B 7/0, C 231/28, D 1/0, E 65284/8160.
	 * Budget 1: E.  2: C, E.  3: the tie A/B on fn0 and size goes to the lower gpa.
	 */
	assert_int_equal(pcihole_plan(l, 1, r, MAXR, &info), 1);
	assert_true(r[0].gpa == 0xb00fc000);
	assert_true(info.uncovered_pages == 7 + 7 + 231 + 1);
	assert_true(info.uncovered_fn0_pages == 28);
	assert_true(info.covered_pages == 65284);
	assert_int_equal(pcihole_plan(l, 2, r, MAXR, &info), 2);
	assert_true(r[0].gpa == 0xb0011000 && r[1].gpa == 0xb00fc000);
	assert_true(info.uncovered_fn0_pages == 0 && info.uncovered_pages == 15);
	assert_int_equal(pcihole_plan(l, 3, r, MAXR, &info), 3);
	assert_true(r[0].gpa == 0xb0001000 && r[1].gpa == 0xb0011000 && r[2].gpa == 0xb00fc000);
	assert_int_equal(pcihole_plan(l, 4, r, MAXR, &info), 4);
	assert_true(r[0].gpa == 0xb0001000 && r[1].gpa == 0xb0009000);
	assert_true(info.uncovered_pages == 1);
	/* fn0 pages outweigh size: a 1-page function-0 hole beats a 7-page one */
	present(l, "00:03.0", true);
	present(l, "00:03.7", true);
	present(l, "00:04.1", true);
	/* now there is a run holding exactly page 00:04.0 (1 page, 1 fn0) */
	assert_int_equal(pcihole_plan(l, 3, r, MAXR, &info), 3);
	assert_true(r[0].gpa == 0xb0020000 && r[0].size == 4096 && r[0].fn0_pages == 1);
	pcihole_layout_free(l);
}

static void diff_hotplug(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_run a[MAXR], b[MAXR];
	uint32_t del[MAXR], add[MAXR];
	size_t nd, na;
	int n, m;

	(void)state;
	present(l, "00:1f.0", true);
	n = pcihole_plan(l, PCIHOLE_NO_BUDGET, a, MAXR, NULL);
	assert_int_equal(n, 2);
	/* add in the middle of a run: 1 delete, 2 creates, the other run stays */
	present(l, "05:03.0", true);
	m = pcihole_plan(l, PCIHOLE_NO_BUDGET, b, MAXR, NULL);
	assert_int_equal(m, 3);
	assert_int_equal(pcihole_plan_diff(a, n, b, m, del, &nd, add, &na), 0);
	assert_int_equal(nd, 1);
	assert_int_equal(na, 2);
	assert_int_equal(del[0], 1);
	assert_true(add[0] == 1 && add[1] == 2);
	/* remove it again: 2 deletes, 1 create */
	assert_int_equal(pcihole_plan_diff(b, m, a, n, del, &nd, add, &na), 0);
	assert_true(nd == 2 && na == 1 && del[0] == 1 && del[1] == 2 && add[0] == 1);
	/* add at the edge of a run: 1 delete, 1 create */
	present(l, "05:03.0", false);
	present(l, "00:1f.1", true);
	m = pcihole_plan(l, PCIHOLE_NO_BUDGET, b, MAXR, NULL);
	assert_int_equal(pcihole_plan_diff(a, n, b, m, del, &nd, add, &na), 0);
	assert_true(nd == 1 && na == 1);
	/* identical plans: nothing */
	assert_int_equal(pcihole_plan_diff(a, n, a, n, del, &nd, add, &na), 0);
	assert_true(nd == 0 && na == 0);
	/* from and to nothing */
	assert_int_equal(pcihole_plan_diff(NULL, 0, a, n, NULL, &nd, add, &na), 0);
	assert_true(nd == 0 && na == (size_t)n);
	assert_int_equal(pcihole_plan_diff(a, n, NULL, 0, del, &nd, NULL, &na), 0);
	assert_true(nd == (size_t)n && na == 0);
	pcihole_layout_free(l);
}

static void diff_invalid(void **state)
{
	struct pcihole_run a[2] = {
		{ .gpa = 0x2000, .size = 0x1000 },
		{ .gpa = 0x1000, .size = 0x1000 },
	};
	struct pcihole_run top[2] = { { 0 } };
	uint32_t del[2], add[2];
	size_t nd = 99, na = 99;

	(void)state;
	assert_int_equal(pcihole_plan_diff(a, 2, a, 1, del, &nd, add, &na), -EINVAL);
	a[1].gpa = 0x2800;
	assert_int_equal(pcihole_plan_diff(a, 1, a, 2, del, &nd, add, &na), -EINVAL);
	a[1].gpa = 0x3000;
	a[1].size = 0;
	assert_int_equal(pcihole_plan_diff(a, 2, a, 1, del, &nd, add, &na), -EINVAL);
	a[1].size = 0x1000;
	assert_int_equal(pcihole_plan_diff(a, 2, a, 1, NULL, &nd, add, &na), -EINVAL);
	/* a run may end exactly at 2^64 (found by fuzz_plan) */
	top[0].gpa = UINT64_MAX - 0x2fff;
	top[0].size = 0x1000;
	top[1].gpa = UINT64_MAX - 0xfff;
	top[1].size = 0x1000;
	assert_int_equal(pcihole_plan_diff(top, 2, top, 1, del, &nd, add, &na), 0);
	assert_true(nd == 1 && del[0] == 1 && na == 0);
	top[1].size = 0x2000;
	assert_int_equal(pcihole_plan_diff(top, 2, top, 1, del, &nd, add, &na), -EINVAL);
	nd = na = 99;
	assert_int_equal(pcihole_plan_diff(a, 2, a, 1, del, NULL, add, &na), -EINVAL);
	assert_true(nd == 99 && na == 99);
	assert_int_equal(pcihole_plan_diff(a, 2, a, 1, del, &nd, add, &na), 0);
	assert_true(nd == 1 && del[0] == 1 && na == 0);
}

static void regions(void **state)
{
	struct pcihole_run r = { .gpa = 0xb0001000, .size = 0x7000 };
	struct pcihole_region reg;

	(void)state;
	assert_int_equal(pcihole_run_to_region(&r, 7, 2, 0x7f0000000000, &reg), 0);
	assert_true(reg.slot == 7 && reg.flags == 2 && reg.guest_phys_addr == 0xb0001000);
	assert_true(reg.memory_size == 0x7000 && reg.userspace_addr == 0x7f0000000000);
	assert_int_equal(pcihole_run_to_region(&r, 7, PCIHOLE_KVM_MEM_PCI_HOLE, 0, &reg), 0);
	assert_true(reg.userspace_addr == 0 && reg.flags == PCIHOLE_KVM_MEM_PCI_HOLE);
	/* PCI_HOLE slots have no backing */
	assert_int_equal(pcihole_run_to_region(&r, 7, PCIHOLE_KVM_MEM_PCI_HOLE, 4096, &reg), -EINVAL);
	r.size = 0;
	assert_int_equal(pcihole_run_to_region(&r, 7, 2, 0, &reg), -EINVAL);
	r.size = 0x800;
	assert_int_equal(pcihole_run_to_region(&r, 7, 2, 0, &reg), -EINVAL);
	assert_int_equal(pcihole_run_to_region(NULL, 7, 2, 0, &reg), -EINVAL);
	assert_int_equal(sizeof(struct pcihole_region), 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(q35),
		cmocka_unit_test(extremes),
		cmocka_unit_test(size_query),
		cmocka_unit_test(adjacent_windows),
		cmocka_unit_test(budget),
		cmocka_unit_test(diff_hotplug),
		cmocka_unit_test(diff_invalid),
		cmocka_unit_test(regions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
