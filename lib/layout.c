// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* The layout: segments plus one presence bit per function page. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int cmp_base(const void *a, const void *b, void *arg)
{
	const struct ph_seg *segs = arg;
	uint64_t x = segs[*(const uint32_t *)a].s.base;
	uint64_t y = segs[*(const uint32_t *)b].s.base;

	return x < y ? -1 : x > y;
}

int pcihole_layout_new(const struct pcihole_segment *segs, size_t nr,
		       unsigned int phys_bits, struct pcihole_layout **out)
{
	struct pcihole_layout *l;
	uint64_t *bits;
	size_t i, words = 0;
	int ret;

	if (!out)
		return -EINVAL;
	ret = pcihole_segments_validate(segs, nr, phys_bits);
	if (ret)
		return ret;
	for (i = 0; i < nr; i++)
		words += (size_t)(segs[i].bus_end - segs[i].bus_start + 1) *
			 PCIHOLE_PAGES_PER_BUS / 64;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->segs = calloc(nr, sizeof(*l->segs));
	l->by_gpa = calloc(nr, sizeof(*l->by_gpa));
	/* One allocation for all bitmaps keeps pcihole_layout_free() trivial. */
	bits = calloc(words, sizeof(*bits));
	if (!l->segs || !l->by_gpa || !bits) {
		free(bits);
		pcihole_layout_free(l);
		return -ENOMEM;
	}
	l->nr = nr;
	l->phys_bits = phys_bits ? phys_bits : PH_DEFAULT_PHYS_BITS;
	for (i = 0; i < nr; i++) {
		struct ph_seg *s = &l->segs[i];

		s->s = segs[i];
		s->npages = (uint32_t)(segs[i].bus_end - segs[i].bus_start + 1) *
			    PCIHOLE_PAGES_PER_BUS;
		s->nwords = s->npages / 64;
		s->last = s->s.base + (((uint64_t)s->npages << PCIHOLE_PAGE_SHIFT) - 1);
		s->first_pfn = s->s.base >> PCIHOLE_PAGE_SHIFT;
		s->present = bits;
		bits += s->nwords;
		l->by_gpa[i] = (uint32_t)i;
	}
	qsort_r(l->by_gpa, nr, sizeof(*l->by_gpa), cmp_base, l->segs);
	*out = l;
	return 0;
}

void pcihole_layout_free(struct pcihole_layout *l)
{
	if (!l)
		return;
	if (l->segs)
		free(l->segs[0].present);
	free(l->segs);
	free(l->by_gpa);
	free(l);
}

size_t pcihole_layout_nr_segments(const struct pcihole_layout *l)
{
	return l ? l->nr : 0;
}

int pcihole_layout_segment(const struct pcihole_layout *l, size_t idx,
			   struct pcihole_segment *seg)
{
	if (!l || !seg || idx >= l->nr)
		return -EINVAL;
	*seg = l->segs[idx].s;
	return 0;
}

const struct ph_seg *ph_seg_by_gpa(const struct pcihole_layout *l,
				   uint64_t gpa)
{
	size_t lo = 0, hi = l->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ph_seg *s = &l->segs[l->by_gpa[mid]];

		if (gpa < s->s.base)
			hi = mid;
		else if (gpa > s->last)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

const struct ph_seg *ph_seg_by_bus(const struct pcihole_layout *l,
				   uint16_t segment, uint8_t bus)
{
	size_t i;

	for (i = 0; i < l->nr; i++) {
		const struct ph_seg *s = &l->segs[i];

		if (s->s.segment == segment && bus >= s->s.bus_start &&
		    bus <= s->s.bus_end)
			return s;
	}
	return NULL;
}

/* Resolve @bdf to its segment and page index; 0 or -EINVAL / -ENOENT. */
static int locate(const struct pcihole_layout *l, const struct pcihole_bdf *bdf,
		  const struct ph_seg **seg, uint32_t *idx)
{
	const struct ph_seg *s;

	if (!l || !bdf || bdf->dev > PCIHOLE_MAX_DEV || bdf->fn > PCIHOLE_MAX_FN)
		return -EINVAL;
	s = ph_seg_by_bus(l, bdf->segment, bdf->bus);
	if (!s)
		return -ENOENT;
	*seg = s;
	*idx = (uint32_t)(bdf->bus - s->s.bus_start) * PCIHOLE_PAGES_PER_BUS +
	       bdf->dev * 8u + bdf->fn;
	return 0;
}

int pcihole_layout_set_present(struct pcihole_layout *l,
			       const struct pcihole_bdf *bdf, bool present)
{
	const struct ph_seg *s;
	uint64_t mask, old;
	uint32_t idx;
	int ret;

	ret = locate(l, bdf, &s, &idx);
	if (ret)
		return ret;
	mask = 1ULL << (idx % 64);
	/* Release: a vCPU that sees the bit also sees what the VMM set up before. */
	if (present)
		old = __atomic_fetch_or(&s->present[idx / 64], mask, __ATOMIC_RELEASE);
	else
		old = __atomic_fetch_and(&s->present[idx / 64], ~mask, __ATOMIC_RELEASE);
	if (!!(old & mask) == present)
		return 0;
	l->nr_present += present ? 1 : (uint64_t)-1;
	return 1;
}

int pcihole_layout_is_present(const struct pcihole_layout *l,
			      const struct pcihole_bdf *bdf)
{
	const struct ph_seg *s;
	uint32_t idx;
	int ret;

	ret = locate(l, bdf, &s, &idx);
	if (ret)
		return ret;
	return (ph_load_word(&s->present[idx / 64]) >> (idx % 64)) & 1;
}

size_t pcihole_layout_nr_present(const struct pcihole_layout *l)
{
	return l ? (size_t)l->nr_present : 0;
}

int pcihole_layout_bdf_to_gpa(const struct pcihole_layout *l,
			      const struct pcihole_bdf *bdf, uint64_t *gpa)
{
	const struct ph_seg *s;
	uint32_t idx;
	int ret;

	if (!gpa)
		return -EINVAL;
	ret = locate(l, bdf, &s, &idx);
	if (ret)
		return ret;
	*gpa = s->s.base + ((uint64_t)idx << PCIHOLE_PAGE_SHIFT);
	return 0;
}

int pcihole_layout_gpa_to_bdf(const struct pcihole_layout *l, uint64_t gpa,
			      struct pcihole_bdf *bdf, uint32_t *offset)
{
	const struct ph_seg *s;
	uint64_t idx;

	if (!l || !bdf)
		return -EINVAL;
	s = ph_seg_by_gpa(l, gpa);
	if (!s)
		return -ENOENT;
	idx = (gpa - s->s.base) >> PCIHOLE_PAGE_SHIFT;
	memset(bdf, 0, sizeof(*bdf));
	bdf->segment = s->s.segment;
	bdf->bus = (uint8_t)(s->s.bus_start + idx / PCIHOLE_PAGES_PER_BUS);
	bdf->dev = (uint8_t)((idx / 8) % 32);
	bdf->fn = (uint8_t)(idx % 8);
	if (offset)
		*offset = (uint32_t)(gpa & (PCIHOLE_PAGE_SIZE - 1));
	return 0;
}

/* True if the page holding @gpa lies in a window and is not present. */
static bool page_is_hole(const struct pcihole_layout *l, uint64_t gpa)
{
	const struct ph_seg *s = ph_seg_by_gpa(l, gpa);
	uint64_t idx;

	if (!s)
		return false;
	idx = (gpa - s->s.base) >> PCIHOLE_PAGE_SHIFT;
	return !((ph_load_word(&s->present[idx / 64]) >> (idx % 64)) & 1);
}

int pcihole_mmio_access(const struct pcihole_layout *l, uint64_t gpa,
			void *data, uint32_t len, bool is_write)
{
	uint64_t last;

	if (!l || !len || len > 8 || (!data && !is_write))
		return -EINVAL;
	if (gpa > UINT64_MAX - (len - 1))
		return 0;
	last = gpa + len - 1;
	if (!page_is_hole(l, gpa))
		return 0;
	/* An access that straddles two pages is a hole only if both are. */
	if ((last >> PCIHOLE_PAGE_SHIFT) != (gpa >> PCIHOLE_PAGE_SHIFT) &&
	    !page_is_hole(l, last))
		return 0;
	if (!is_write)
		memset(data, 0xff, len);
	return 1;
}
