// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The planner against a brute-force oracle that walks every page, on seeded
 * random layouts: 1-4 segments (some adjacent in guest-physical space, some
 * invalid), random bus ranges, 0-300 present functions, random budgets, and
 * random hotplug sequences whose diffs must reproduce the new plan.
 *
 * PCIHOLE_TEST_SEED=N replays a run; PCIHOLE_PROPERTY_LAYOUTS=N changes how
 * many valid layouts are checked (default 10000).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAX_SEGS 4

static uint64_t cur_seed;
static unsigned int cur_layout;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			print_error("property failed: %s\n  layout seed %llu "  \
				    "(replay: PCIHOLE_TEST_SEED=%llu "         \
				    "PCIHOLE_PROPERTY_LAYOUTS=1)\n",           \
				    #cond, (unsigned long long)cur_seed,       \
				    (unsigned long long)cur_seed);             \
			fail();                                                \
		}                                                              \
	} while (0)

/* The oracle: one bool per function page, and the segments themselves. */
struct model {
	struct pcihole_segment segs[MAX_SEGS];
	size_t nr;
	bool *present[MAX_SEGS];
	uint32_t npages[MAX_SEGS];
};

static uint64_t wsize(const struct pcihole_segment *s)
{
	return (uint64_t)(s->bus_end - s->bus_start + 1) << 20;
}

/* What pcihole_segments_validate() must answer, decided the slow way. */
static int oracle_validate(const struct model *m)
{
	size_t i, j;
	int ret = 0;

	for (i = 0; i < m->nr; i++)
		for (j = 0; j < m->nr; j++) {
			const struct pcihole_segment *a = &m->segs[i], *b = &m->segs[j];
			unsigned int bus;

			if (i == j)
				continue;
			if (!(a->base + wsize(a) <= b->base || b->base + wsize(b) <= a->base))
				ret = -EEXIST;
			for (bus = a->bus_start; bus <= a->bus_end; bus++)
				if (a->segment == b->segment && bus >= b->bus_start &&
				    bus <= b->bus_end)
					ret = -EEXIST;
		}
	return ret;
}

static void random_segments(struct model *m, uint64_t *rng)
{
	uint64_t cursor = (0x80000ULL + tu_below(rng, 64)) << 20;
	size_t i;

	m->nr = 1 + tu_below(rng, MAX_SEGS);
	for (i = 0; i < m->nr; i++) {
		struct pcihole_segment *s = &m->segs[i];
		unsigned int nbus = tu_below(rng, 12) ? 1 + (unsigned int)tu_below(rng, 8)
						      : 1 + (unsigned int)tu_below(rng, 256);

		memset(s, 0, sizeof(*s));
		s->segment = (uint16_t)tu_below(rng, 3);
		s->bus_start = (uint8_t)tu_below(rng, 256 - nbus + 1);
		s->bus_end = (uint8_t)(s->bus_start + nbus - 1);
		s->base = cursor;
		/* one in 25 windows is moved back onto its predecessor: invalid */
		if (i && !tu_below(rng, 25))
			s->base -= (1 + tu_below(rng, 2)) << 20;
		/* windows touch a third of the time, so runs must merge across them */
		cursor = s->base + wsize(s) + (tu_below(rng, 3) ? tu_below(rng, 4) << 20 : 0);
	}
	/* the creation order is not the gpa order */
	for (i = m->nr; i > 1; i--) {
		size_t j = tu_below(rng, i);
		struct pcihole_segment t = m->segs[i - 1];

		m->segs[i - 1] = m->segs[j];
		m->segs[j] = t;
	}
}

static void model_free(struct model *m)
{
	size_t i;

	for (i = 0; i < m->nr; i++)
		free(m->present[i]);
}

static struct pcihole_bdf page_bdf(const struct model *m, size_t s, uint32_t idx)
{
	struct pcihole_bdf b = {
		.segment = m->segs[s].segment,
		.bus = (uint8_t)(m->segs[s].bus_start + idx / 256),
		.dev = (uint8_t)(idx / 8 % 32),
		.fn = (uint8_t)(idx % 8),
	};

	return b;
}

static void set_page(struct model *m, struct pcihole_layout *l, size_t s,
		     uint32_t idx, bool on)
{
	struct pcihole_bdf b = page_bdf(m, s, idx);
	int ret = pcihole_layout_set_present(l, &b, on);

	CHECK(ret == (m->present[s][idx] != on));
	m->present[s][idx] = on;
}

/* All maximal runs, walking pages in gpa order. */
static size_t oracle_runs(const struct model *m, struct pcihole_run *out,
			  uint64_t *holes)
{
	size_t order[MAX_SEGS], i, j, n = 0;
	bool open = false;

	for (i = 0; i < m->nr; i++)
		order[i] = i;
	for (i = 0; i < m->nr; i++)
		for (j = i + 1; j < m->nr; j++)
			if (m->segs[order[j]].base < m->segs[order[i]].base) {
				size_t t = order[i];

				order[i] = order[j];
				order[j] = t;
			}
	*holes = 0;
	for (i = 0; i < m->nr; i++) {
		size_t s = order[i];
		uint32_t p;

		for (p = 0; p < m->npages[s]; p++) {
			uint64_t gpa = m->segs[s].base + ((uint64_t)p << 12);

			if (m->present[s][p]) {
				open = false;
				continue;
			}
			(*holes)++;
			if (open && out[n - 1].gpa + out[n - 1].size == gpa) {
				out[n - 1].size += 4096;
			} else {
				memset(&out[n], 0, sizeof(out[n]));
				out[n].gpa = gpa;
				out[n].size = 4096;
				n++;
				open = true;
			}
			out[n - 1].fn0_pages += p % 8 == 0;
		}
	}
	return n;
}

/* Is @gpa a hole page of the model?  -1 if in no window. */
static int oracle_hole(const struct model *m, uint64_t gpa)
{
	size_t s;

	for (s = 0; s < m->nr; s++)
		if (gpa >= m->segs[s].base && gpa - m->segs[s].base < wsize(&m->segs[s]))
			return !m->present[s][(gpa - m->segs[s].base) >> 12];
	return -1;
}

/* Does @a save strictly more exits than @b: more function-0 pages, or as many and more pages? */
static bool beats(const struct pcihole_run *a, const struct pcihole_run *b)
{
	return a->fn0_pages > b->fn0_pages ||
	       (a->fn0_pages == b->fn0_pages && a->size > b->size);
}

/*
 * Is the choice of @k runs (@chosen[i] set) the best any @k of the @n runs
 * can be?  Few runs: compare with every subset of size @k.  Many: the exchange
 * argument (no left-out run beats a chosen one), which for this lexicographic
 * weighting is the same statement and needs no sort like the library's.
 */
static bool best_choice(const struct pcihole_run *runs, const bool *chosen,
			size_t n, size_t k)
{
	uint64_t fn0 = 0, pages = 0, best_fn0 = 0, best_pages = 0;
	size_t i, j;

	if (n > 12) {
		for (i = 0; i < n; i++)
			for (j = 0; j < n && !chosen[i]; j++)
				if (chosen[j] && beats(&runs[i], &runs[j]))
					return false;
		return true;
	}
	for (i = 0; i < n; i++)
		if (chosen[i]) {
			fn0 += runs[i].fn0_pages;
			pages += runs[i].size >> 12;
		}
	for (uint32_t mask = 0; mask < (1u << n); mask++) {
		uint64_t f = 0, p = 0;

		if ((size_t)__builtin_popcount(mask) != k)
			continue;
		for (i = 0; i < n; i++)
			if (mask & (1u << i)) {
				f += runs[i].fn0_pages;
				p += runs[i].size >> 12;
			}
		if (f > best_fn0 || (f == best_fn0 && p > best_pages)) {
			best_fn0 = f;
			best_pages = p;
		}
	}
	return fn0 == best_fn0 && pages == best_pages;
}

/* Check the plan of @l (with @budget) against the model; returns the run count. */
static size_t check_plan(const struct model *m, const struct pcihole_layout *l,
			 uint32_t budget, struct pcihole_run *plan,
			 struct pcihole_run *oracle, size_t cap)
{
	struct pcihole_plan_info info;
	uint64_t holes, fn0 = 0, pages = 0, all_fn0 = 0;
	bool *chosen, ok;
	size_t n, k, i, j;
	int ret;

	n = oracle_runs(m, oracle, &holes);
	CHECK(pcihole_plan_count(l) == n);
	ret = pcihole_plan(l, budget, plan, cap, &info);
	k = n < budget ? n : budget;
	CHECK(ret == (int)k);
	CHECK(info.nr_runs == n && info.nr_slots == k && info.hole_pages == holes);
	for (i = 0; i < k; i++) {
		/* sorted, disjoint, and never two adjacent: maximal */
		if (i)
			CHECK(plan[i - 1].gpa + plan[i - 1].size < plan[i].gpa);
		CHECK(plan[i].reserved == 0);
		fn0 += plan[i].fn0_pages;
		pages += plan[i].size >> 12;
	}
	if (k == n) {
		/* full coverage: exactly the oracle's maximal runs, so the fewest slots */
		CHECK(memcmp(plan, oracle, n * sizeof(*plan)) == 0);
		CHECK(info.covered_pages == holes && info.uncovered_pages == 0);
		return n;
	}
	/* a budget: each chosen run is one of the maximal runs, and the best choice */
	chosen = calloc(n, sizeof(*chosen));
	assert_non_null(chosen);
	for (i = 0, j = 0; i < k; i++) {
		while (j < n && oracle[j].gpa < plan[i].gpa)
			j++;
		CHECK(j < n && !memcmp(&oracle[j], &plan[i], sizeof(*plan)));
		chosen[j] = true;
	}
	ok = best_choice(oracle, chosen, n, k);
	free(chosen);
	CHECK(ok);
	CHECK(info.covered_pages == pages && info.uncovered_pages == holes - pages);
	for (i = 0; i < n; i++)
		all_fn0 += oracle[i].fn0_pages;
	CHECK(info.uncovered_fn0_pages + fn0 == all_fn0);
	return k;
}

static int cmp_gpa(const void *a, const void *b)
{
	const struct pcihole_run *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* old - del + add, sorted, must be exactly new. */
static void check_diff(const struct pcihole_run *old, size_t nold,
		       const struct pcihole_run *new_runs, size_t nnew,
		       int toggled_on, bool budgeted)
{
	uint32_t *del = malloc((nold + 1) * sizeof(*del));
	uint32_t *add = malloc((nnew + 1) * sizeof(*add));
	struct pcihole_run *res = malloc((nold + nnew + 1) * sizeof(*res));
	size_t nd, na, i, j, r = 0;

	assert_true(del && add && res);
	CHECK(pcihole_plan_diff(old, nold, new_runs, nnew, del, &nd, add, &na) == 0);
	for (i = 1; i < nd; i++)
		CHECK(del[i - 1] < del[i]);
	for (i = 1; i < na; i++)
		CHECK(add[i - 1] < add[i]);
	for (i = 0, j = 0; i < nold; i++) {
		if (j < nd && del[j] == i) {
			j++;
			continue;
		}
		res[r++] = old[i];
	}
	for (i = 0; i < na; i++)
		res[r++] = new_runs[add[i]];
	qsort(res, r, sizeof(*res), cmp_gpa);
	CHECK(r == nnew && memcmp(res, new_runs, r * sizeof(*res)) == 0);
	/* one hotplug: a split (1 delete, <= 2 creates) or a merge (<= 2 deletes, 1 create) */
	if (!budgeted && toggled_on > 0)
		CHECK(nd <= 1 && na <= 2);
	if (!budgeted && toggled_on == 0)
		CHECK(nd <= 2 && na <= 1);
	free(del);
	free(add);
	free(res);
}

static void one_layout(uint64_t seed, unsigned int *valid, unsigned int *invalid)
{
	struct model m = { 0 };
	struct pcihole_layout *l = NULL;
	struct pcihole_run *plan, *oracle, *prev;
	uint64_t rng = seed;
	size_t i, cap = 2, nprev, npresent = 0;
	unsigned int k, nfn, step;
	uint32_t budget;
	int expect, ret;

	cur_seed = seed;
	random_segments(&m, &rng);
	expect = oracle_validate(&m);
	ret = pcihole_layout_new(m.segs, m.nr, 0, &l);
	CHECK(ret == expect);
	if (ret) {
		(*invalid)++;
		return;
	}
	(*valid)++;
	for (i = 0; i < m.nr; i++) {
		m.npages[i] = (uint32_t)(wsize(&m.segs[i]) >> 12);
		m.present[i] = calloc(m.npages[i], 1);
		assert_non_null(m.present[i]);
		cap += m.npages[i] / 2 + 1;
	}
	plan = calloc(cap, sizeof(*plan));
	oracle = calloc(cap, sizeof(*oracle));
	prev = calloc(cap, sizeof(*prev));
	assert_true(plan && oracle && prev);

	/* 0-300 functions, half of them next to an earlier one (multifunction devices) */
	nfn = (unsigned int)tu_below(&rng, 301);
	for (k = 0; k < nfn; k++) {
		size_t s = tu_below(&rng, m.nr);
		uint32_t idx = (uint32_t)tu_below(&rng, m.npages[s]);

		if (k && tu_below(&rng, 2))
			idx = (idx & ~7u) | (uint32_t)tu_below(&rng, 8);
		set_page(&m, l, s, idx, true);
	}

	budget = tu_below(&rng, 4) ? PCIHOLE_NO_BUDGET : (uint32_t)tu_below(&rng, 12);
	nprev = check_plan(&m, l, budget, prev, oracle, cap);
	/* also the other kind of budget than the one the hotplugs use */
	check_plan(&m, l, budget == PCIHOLE_NO_BUDGET ? (uint32_t)tu_below(&rng, 8)
						      : PCIHOLE_NO_BUDGET,
		   plan, oracle, cap);

	/* mmio answers match the oracle, page and byte granularity alike */
	for (k = 0; k < 16; k++) {
		size_t s = tu_below(&rng, m.nr);
		uint64_t gpa = m.segs[s].base - 4096 + tu_below(&rng, wsize(&m.segs[s]) + 8192);
		uint64_t data = 0;
		int hole = oracle_hole(&m, gpa & ~4095ULL);

		ret = pcihole_mmio_access(l, gpa & ~3ULL, &data, 4, false);
		CHECK(ret == (hole == 1));
		CHECK(data == (hole == 1 ? 0xffffffffULL : 0));
	}

	/* a hotplug sequence: every diff turns the old plan into the new one */
	for (step = 0; step < 8; step++) {
		size_t s = tu_below(&rng, m.nr), n;
		uint32_t idx = (uint32_t)tu_below(&rng, m.npages[s]);
		bool on = !m.present[s][idx];

		set_page(&m, l, s, idx, on);
		n = check_plan(&m, l, budget, plan, oracle, cap);
		check_diff(prev, nprev, plan, n, on, budget != PCIHOLE_NO_BUDGET);
		memcpy(prev, plan, n * sizeof(*plan));
		nprev = n;
	}
	for (i = 0; i < m.nr; i++)
		for (k = 0; k < m.npages[i]; k++)
			npresent += m.present[i][k];
	CHECK(pcihole_layout_nr_present(l) == npresent);
	free(plan);
	free(oracle);
	free(prev);
	model_free(&m);
	pcihole_layout_free(l);
}

static void random_layouts(void **state)
{
	const char *env = getenv("PCIHOLE_PROPERTY_LAYOUTS");
	unsigned int want = env ? (unsigned int)strtoul(env, NULL, 0) : 10000;
	uint64_t seed = tu_seed(20261127);
	unsigned int valid = 0, invalid = 0;

	(void)state;
	while (valid < want) {
		cur_layout = valid + invalid;
		one_layout(seed + cur_layout, &valid, &invalid);
	}
	print_message("checked %u valid layouts (and %u invalid ones rejected as the oracle "
		      "expected), first seed %llu\n", valid, invalid, (unsigned long long)seed);
	assert_true(valid >= want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_layouts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
