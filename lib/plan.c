// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* Hole runs, the slot budget, plan diffs and slot records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Run builder.  Pages are numbered by global pfn so that runs of windows that
 * touch in guest-physical space merge into one slot.
 */
struct walk {
	struct pcihole_run *runs;
	size_t cap;
	size_t n;		/* runs found, even past @cap */
	uint64_t holes;		/* pages in runs: holes and shadowed */
	uint64_t shadowed;	/* present and shadowed pages */
	bool open;
	bool split;		/* runs are of one kind each (hole or shadowed) */
	uint32_t kind;		/* PH_KIND_* of the open run */
	uint64_t start;		/* pfn of the open run's first page */
};

/* Function-0 pages in pfn range [a, b): windows are 1 MiB aligned, so fn == pfn % 8. */
static uint64_t fn0_in(uint64_t a, uint64_t b)
{
	return ((b + 7) >> 3) - ((a + 7) >> 3);
}

static void close_run(struct walk *w, uint64_t end)
{
	if (w->n < w->cap) {
		struct pcihole_run *r = &w->runs[w->n];

		r->gpa = w->start << PCIHOLE_PAGE_SHIFT;
		r->size = (end - w->start) << PCIHOLE_PAGE_SHIFT;
		r->fn0_pages = (uint32_t)fn0_in(w->start, end);
		r->reserved = w->kind;
	}
	w->holes += end - w->start;
	w->n++;
	w->open = false;
}

/*
 * Visit every change of page kind of one segment, 64 pages at a time.  Runs
 * are of the pages that need no exit on read: holes and shadowed pages, one
 * kind of run for both, or (@w->split) a run per kind, where one slot cannot
 * serve both (pci-hole mode: no host memory under a PCI_HOLE slot).
 */
static void walk_segment(struct walk *w, const struct ph_seg *s)
{
	uint32_t i;

	for (i = 0; i < s->nwords; i++) {
		uint64_t present = ph_load_word(&s->present[i]);
		uint64_t shadowed = present & ph_load_word(&s->shadow[i]);
		/* in[k]: the pages of kind k; all: the pages in some run */
		uint64_t in[2] = { ~present, shadowed };
		uint64_t all = ~present | shadowed;
		uint64_t pfn = s->first_pfn + (uint64_t)i * 64;
		unsigned int pos = 0;

		if (!w->split) {
			in[PH_KIND_HOLE] = all;
			in[PH_KIND_SHADOW] = 0;
		}
		if (shadowed)
			w->shadowed += (uint64_t)__builtin_popcountll(shadowed);
		/* The common words: all one kind inside a run, all trapped outside. */
		if ((w->open && in[w->kind] == UINT64_MAX) || (!w->open && !all))
			continue;
		while (pos < 64) {
			uint64_t m = (w->open ? ~in[w->kind] : all) >> pos;

			if (!m)
				break;
			pos += (unsigned int)__builtin_ctzll(m);
			if (w->open) {
				/* The page at @pos may open a run of the other kind. */
				close_run(w, pfn + pos);
			} else {
				w->open = true;
				w->start = pfn + pos;
				w->kind = (uint32_t)(in[PH_KIND_SHADOW] >> pos) & 1;
			}
		}
	}
}

static void walk_layout(const struct pcihole_layout *l, struct walk *w)
{
	uint64_t prev_end = 0;
	size_t i;

	for (i = 0; i < l->nr; i++) {
		const struct ph_seg *s = &l->segs[l->by_gpa[i]];

		/* A run reaching the end of a window continues only into an adjacent one. */
		if (w->open && prev_end != s->first_pfn)
			close_run(w, prev_end);
		walk_segment(w, s);
		prev_end = s->first_pfn + s->npages;
	}
	if (w->open)
		close_run(w, prev_end);
}

size_t pcihole_plan_count(const struct pcihole_layout *l)
{
	struct walk w = { 0 };

	if (!l)
		return 0;
	walk_layout(l, &w);
	return w.n;
}

static uint64_t pages_of(const struct pcihole_run *r)
{
	return r->size >> PCIHOLE_PAGE_SHIFT;
}

/* Most exits saved first: function-0 pages, then pages, then lower gpa. */
static int cmp_weight(const void *a, const void *b)
{
	const struct pcihole_run *x = a, *y = b;

	if (x->fn0_pages != y->fn0_pages)
		return x->fn0_pages > y->fn0_pages ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static int cmp_gpa(const void *a, const void *b)
{
	const struct pcihole_run *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/*
 * Shrink each run to the whole host pages of @page_size inside it; drop the
 * runs that keep none.  Returns the new count; *@lost gets the hole pages
 * cut off.  128-bit ends, because a run may end exactly at 2^64.
 */
static size_t clip(struct pcihole_run *runs, size_t n, uint64_t page_size,
		   uint64_t *lost)
{
	const unsigned __int128 mask = page_size - 1;
	size_t i, k = 0;

	*lost = 0;
	for (i = 0; i < n; i++) {
		unsigned __int128 a = runs[i].gpa;
		unsigned __int128 e = a + runs[i].size;

		a = (a + mask) & ~mask;
		e &= ~mask;
		if (e <= a) {
			*lost += pages_of(&runs[i]);
			continue;
		}
		*lost += pages_of(&runs[i]) - (uint64_t)((e - a) >> PCIHOLE_PAGE_SHIFT);
		runs[k].gpa = (uint64_t)a;
		runs[k].size = (uint64_t)(e - a);
		runs[k].fn0_pages = (uint32_t)fn0_in((uint64_t)(a >> PCIHOLE_PAGE_SHIFT),
						     (uint64_t)(e >> PCIHOLE_PAGE_SHIFT));
		runs[k].reserved = runs[i].reserved;	/* the kind */
		k++;
	}
	return k;
}

int ph_plan(const struct pcihole_layout *l, uint32_t budget, uint64_t page_size,
	    bool split, struct pcihole_run *runs, size_t cap,
	    struct pcihole_plan_info *info)
{
	struct walk w = { .runs = runs, .cap = runs ? cap : 0, .split = split };
	struct pcihole_plan_info i = { 0 };
	size_t n, k;

	walk_layout(l, &w);
	n = w.n;
	i.nr_runs = (uint32_t)n;
	i.hole_pages = w.holes - w.shadowed;
	i.shadowed_pages = w.shadowed;
	if (n > w.cap) {
		/* Nothing usable was written; report what the full plan would be. */
		i.nr_slots = (uint32_t)(n < budget ? n : budget);
		if (info)
			*info = i;
		return -ENOSPC;
	}
	if (page_size > PCIHOLE_PAGE_SIZE) {
		n = clip(runs, n, page_size, &i.clipped_pages);
		i.nr_runs = (uint32_t)n;
		i.uncovered_pages = i.clipped_pages;
	}
	k = n < budget ? n : budget;
	if (k < n) {
		size_t j;

		qsort(runs, n, sizeof(*runs), cmp_weight);
		for (j = k; j < n; j++) {
			i.uncovered_pages += pages_of(&runs[j]);
			i.uncovered_fn0_pages += runs[j].fn0_pages;
		}
		qsort(runs, k, sizeof(*runs), cmp_gpa);
	}
	i.nr_slots = (uint32_t)k;
	i.covered_pages = w.holes - i.uncovered_pages;
	if (info)
		*info = i;
	return (int)k;
}

int pcihole_plan(const struct pcihole_layout *l, uint32_t budget,
		 struct pcihole_run *runs, size_t cap,
		 struct pcihole_plan_info *info)
{
	if (!l)
		return -EINVAL;
	return ph_plan(l, budget, PCIHOLE_PAGE_SIZE, false, runs, cap, info);
}

int pcihole_plan2(const struct pcihole_layout *l,
		  const struct pcihole_plan_opts *opts,
		  struct pcihole_run *runs, size_t cap,
		  struct pcihole_plan_info *info)
{
	static const struct pcihole_plan_opts defaults;
	const struct pcihole_plan_opts *o = opts ? opts : &defaults;
	uint64_t ps = o->page_size ? o->page_size : PCIHOLE_PAGE_SIZE;
	size_t i;

	if (!l || o->reserved0 || ps < PCIHOLE_PAGE_SIZE || (ps & (ps - 1)))
		return -EINVAL;
	for (i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
		if (o->reserved[i])
			return -EINVAL;
	return ph_plan(l, o->budget ? o->budget : PCIHOLE_NO_BUDGET, ps, false, runs, cap,
		       info);
}

/*
 * Sorted, disjoint, non-empty and page aligned, as pcihole_plan() makes them.
 * Compared by last bytes: a run may end exactly at 2^64.
 */
static bool plan_ok(const struct pcihole_run *r, size_t n)
{
	size_t i;

	if (n && !r)
		return false;
	for (i = 0; i < n; i++) {
		if (!r[i].size || ((r[i].gpa | r[i].size) & (PCIHOLE_PAGE_SIZE - 1)) ||
		    r[i].gpa > UINT64_MAX - (r[i].size - 1))
			return false;
		if (i && r[i - 1].gpa + (r[i - 1].size - 1) >= r[i].gpa)
			return false;
	}
	return true;
}

int ph_plan_diff(const struct pcihole_run *old, size_t nr_old,
		 const struct pcihole_run *new_runs, size_t nr_new, bool kinds,
		 uint32_t *del, size_t *nr_del, uint32_t *add, size_t *nr_add)
{
	size_t i = 0, j = 0, d = 0, a = 0;

	if (!nr_del || !nr_add || (nr_old && !del) || (nr_new && !add) ||
	    nr_old > UINT32_MAX || nr_new > UINT32_MAX ||
	    !plan_ok(old, nr_old) || !plan_ok(new_runs, nr_new))
		return -EINVAL;
	while (i < nr_old || j < nr_new) {
		if (i < nr_old && j < nr_new && old[i].gpa == new_runs[j].gpa &&
		    old[i].size == new_runs[j].size &&
		    (!kinds || old[i].reserved == new_runs[j].reserved)) {
			i++;
			j++;
		} else if (j == nr_new ||
			   (i < nr_old && old[i].gpa <= new_runs[j].gpa)) {
			del[d++] = (uint32_t)i++;
		} else {
			add[a++] = (uint32_t)j++;
		}
	}
	*nr_del = d;
	*nr_add = a;
	return 0;
}

int pcihole_plan_diff(const struct pcihole_run *old, size_t nr_old,
		      const struct pcihole_run *new_runs, size_t nr_new,
		      uint32_t *del, size_t *nr_del,
		      uint32_t *add, size_t *nr_add)
{
	return ph_plan_diff(old, nr_old, new_runs, nr_new, false, del, nr_del, add, nr_add);
}

int pcihole_run_to_region(const struct pcihole_run *run, uint32_t slot,
			  uint32_t flags, uint64_t userspace_addr,
			  struct pcihole_region *region)
{
	if (!run || !region || !plan_ok(run, 1))
		return -EINVAL;
	if ((flags & (PCIHOLE_KVM_MEM_PCI_HOLE | PCIHOLE_KVM_MEM_PCI_HOLE_612)) &&
	    userspace_addr)
		return -EINVAL;
	region->slot = slot;
	region->flags = flags;
	region->guest_phys_addr = run->gpa;
	region->memory_size = run->size;
	region->userspace_addr = userspace_addr;
	return 0;
}
