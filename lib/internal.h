/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Library-internal declarations.  Everything here is named ph_* so the
 * version script (pcihole_* only) keeps it out of the shared object.
 */
#ifndef PH_INTERNAL_H
#define PH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "pcihole.h"

#define PH_DEFAULT_PHYS_BITS 52u

struct ph_seg {
	struct pcihole_segment s;
	uint64_t last;		/* last GPA of the window (may be 2^64 - 1) */
	uint64_t first_pfn;	/* s.base >> PCIHOLE_PAGE_SHIFT */
	uint32_t npages;	/* 256 per bus */
	uint32_t nwords;	/* npages / 64 */
	/* One bit per function page, set = present.  Accessed with __atomic. */
	uint64_t *present;
	/* One bit per function page, set = shadowed (matters when present). */
	uint64_t *shadow;
};

struct pcihole_layout {
	size_t nr;
	struct ph_seg *segs;		/* creation order */
	uint32_t *by_gpa;		/* indexes into segs, ascending base */
	uint32_t *by_bus;		/* indexes into segs, ascending (segment, bus_start) */
	uint64_t nr_present;		/* __atomic: read from any thread */
	unsigned int phys_bits;
	int attached;			/* __atomic: a context owns the presence bits */
};

/*
 * The presence change itself, for pcihole_layout_set_present() and the
 * context that owns an attached layout.  Same returns, no -EBUSY.  On
 * success *@pfn is the page's global frame number.
 */
int ph_layout_set_bit(struct pcihole_layout *l, const struct pcihole_bdf *bdf,
		      bool present, uint64_t *pfn);

/* The shadow bit, like ph_layout_set_bit(). */
int ph_layout_set_shadow_bit(struct pcihole_layout *l, const struct pcihole_bdf *bdf,
			     bool shadowed);

/*
 * Kinds of the pages in runs.  Inside the library, pcihole_run.reserved of a
 * split plan holds the run's kind; unsplit plans (all the public ones) have
 * one kind, PH_KIND_HOLE, which is 0 as the header promises.
 */
#define PH_KIND_HOLE 0u		/* absent function (or, unsplit, any non-trapped page) */
#define PH_KIND_SHADOW 1u	/* present and shadowed */
#define PH_KIND_TRAPPED 2u	/* present, not shadowed: in no run */

/*
 * pcihole_plan2() with the budget as given (0 covers nothing) and @page_size
 * already checked (a power of two >= 4 KiB).  With @split, runs end where the
 * kind changes (hole / shadowed), so each is the fewest slots of one kind.
 */
int ph_plan(const struct pcihole_layout *l, uint32_t budget, uint64_t page_size,
	    bool split, struct pcihole_run *runs, size_t cap,
	    struct pcihole_plan_info *info);

/* pcihole_plan_diff(); with @kinds, a run whose kind changed is deleted and re-created. */
int ph_plan_diff(const struct pcihole_run *old, size_t nr_old,
		 const struct pcihole_run *new_runs, size_t nr_new, bool kinds,
		 uint32_t *del, size_t *nr_del, uint32_t *add, size_t *nr_add);

/* PH_KIND_* of the page @pfn (in some window); unsplit, shadowed pages are holes. */
uint32_t ph_page_kind(const struct pcihole_layout *l, uint64_t pfn, bool split);

/* Is any shadow bit set (present or not)? */
bool ph_layout_any_shadow(const struct pcihole_layout *l);

/* Claim (@on) or release the layout for a context; -EBUSY if already claimed. */
int ph_layout_claim(struct pcihole_layout *l, bool on);

/* The segment whose window holds @gpa, or NULL.  O(log nr). */
const struct ph_seg *ph_seg_by_gpa(const struct pcihole_layout *l,
				   uint64_t gpa);

/* The segment holding (@segment, @bus), or NULL.  O(log nr). */
const struct ph_seg *ph_seg_by_bus(const struct pcihole_layout *l,
				   uint16_t segment, uint8_t bus);

static inline uint64_t ph_load_word(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

#endif
