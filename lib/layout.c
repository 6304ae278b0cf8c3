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

/* (segment group, first bus) as one number: the order of by_bus. */
static uint32_t bus_key(uint16_t segment, uint8_t bus)
{
	return (uint32_t)segment << 8 | bus;
}

static int cmp_bus(const void *a, const void *b, void *arg)
{
	const struct ph_seg *segs = arg;
	const struct pcihole_segment *x = &segs[*(const uint32_t *)a].s;
	const struct pcihole_segment *y = &segs[*(const uint32_t *)b].s;
	uint32_t kx = bus_key(x->segment, x->bus_start), ky = bus_key(y->segment, y->bus_start);

	return kx < ky ? -1 : kx > ky;
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
	l->by_bus = calloc(nr, sizeof(*l->by_bus));
	/* One allocation for all bitmaps keeps pcihole_layout_free() trivial. */
	bits = calloc(words * 2, sizeof(*bits));
	if (!l->segs || !l->by_gpa || !l->by_bus || !bits) {
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
		l->by_bus[i] = (uint32_t)i;
	}
	/* The shadow bitmaps follow all presence bitmaps in the same allocation. */
	for (i = 0; i < nr; i++) {
		l->segs[i].shadow = bits;
		bits += l->segs[i].nwords;
	}
	qsort_r(l->by_gpa, nr, sizeof(*l->by_gpa), cmp_base, l->segs);
	qsort_r(l->by_bus, nr, sizeof(*l->by_bus), cmp_bus, l->segs);
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
	free(l->by_bus);
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
	uint32_t key = bus_key(segment, bus);
	size_t lo = 0, hi = l->nr;
	const struct ph_seg *s;

	/* The last window starting at or below (segment, bus); bus ranges never overlap. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		s = &l->segs[l->by_bus[mid]];
		if (bus_key(s->s.segment, s->s.bus_start) <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	s = &l->segs[l->by_bus[lo - 1]];
	return s->s.segment == segment && bus <= s->s.bus_end ? s : NULL;
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

/* Set or clear @bdf's bit in the presence (@shadow false) or shadow bitmap; 1 if it changed. */
static int flip_bit(struct pcihole_layout *l, const struct pcihole_bdf *bdf, bool shadow,
		    bool on, uint64_t *pfn)
{
	const struct ph_seg *s;
	uint64_t mask, old, *w;
	uint32_t idx;
	int ret;

	ret = locate(l, bdf, &s, &idx);
	if (ret)
		return ret;
	if (pfn)
		*pfn = s->first_pfn + idx;
	mask = 1ULL << (idx % 64);
	w = shadow ? &s->shadow[idx / 64] : &s->present[idx / 64];
	/* Release: a vCPU that sees the bit also sees what the VMM set up before. */
	if (on)
		old = __atomic_fetch_or(w, mask, __ATOMIC_RELEASE);
	else
		old = __atomic_fetch_and(w, ~mask, __ATOMIC_RELEASE);
	return !!(old & mask) != on;
}

int ph_layout_set_bit(struct pcihole_layout *l, const struct pcihole_bdf *bdf,
		      bool present, uint64_t *pfn)
{
	int ret = flip_bit(l, bdf, false, present, pfn);

	if (ret > 0)
		__atomic_add_fetch(&l->nr_present, present ? 1 : (uint64_t)-1, __ATOMIC_RELAXED);
	return ret;
}

int ph_layout_set_shadow_bit(struct pcihole_layout *l, const struct pcihole_bdf *bdf,
			     bool shadowed)
{
	return flip_bit(l, bdf, true, shadowed, NULL);
}

bool ph_layout_any_shadow(const struct pcihole_layout *l)
{
	size_t i;
	uint32_t w;

	for (i = 0; i < l->nr; i++)
		for (w = 0; w < l->segs[i].nwords; w++)
			if (ph_load_word(&l->segs[i].shadow[w]))
				return true;
	return false;
}

int pcihole_layout_set_shadowed(struct pcihole_layout *l,
				const struct pcihole_bdf *bdf, bool shadowed)
{
	if (l && __atomic_load_n(&l->attached, __ATOMIC_ACQUIRE))
		return -EBUSY;
	return ph_layout_set_shadow_bit(l, bdf, shadowed);
}

/* @bdf's bit in the presence (@shadow false) or shadow bitmap, or -errno. */
static int read_bit(const struct pcihole_layout *l, const struct pcihole_bdf *bdf,
		    bool shadow)
{
	const struct ph_seg *s;
	uint32_t idx;
	int ret;

	ret = locate(l, bdf, &s, &idx);
	if (ret)
		return ret;
	return (ph_load_word(shadow ? &s->shadow[idx / 64] : &s->present[idx / 64]) >>
		(idx % 64)) & 1;
}

int pcihole_layout_is_shadowed(const struct pcihole_layout *l,
			       const struct pcihole_bdf *bdf)
{
	return read_bit(l, bdf, true);
}

int pcihole_layout_set_present(struct pcihole_layout *l,
			       const struct pcihole_bdf *bdf, bool present)
{
	if (l && __atomic_load_n(&l->attached, __ATOMIC_ACQUIRE))
		return -EBUSY;
	return ph_layout_set_bit(l, bdf, present, NULL);
}

int ph_layout_claim(struct pcihole_layout *l, bool on)
{
	int expect = !on;

	if (__atomic_compare_exchange_n(&l->attached, &expect, on, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	return -EBUSY;
}

int pcihole_layout_is_present(const struct pcihole_layout *l,
			      const struct pcihole_bdf *bdf)
{
	return read_bit(l, bdf, false);
}

size_t pcihole_layout_nr_present(const struct pcihole_layout *l)
{
	return l ? (size_t)__atomic_load_n(&l->nr_present, __ATOMIC_RELAXED) : 0;
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

/* What one page is: an enum pcihole_access_kind. */
static uint32_t page_kind(const struct pcihole_layout *l, uint64_t gpa)
{
	const struct ph_seg *s = ph_seg_by_gpa(l, gpa);
	uint64_t idx;

	if (!s)
		return PCIHOLE_ACCESS_NONE;
	idx = (gpa - s->s.base) >> PCIHOLE_PAGE_SHIFT;
	if (!((ph_load_word(&s->present[idx / 64]) >> (idx % 64)) & 1))
		return PCIHOLE_ACCESS_HOLE;
	return (ph_load_word(&s->shadow[idx / 64]) >> (idx % 64)) & 1 ?
	       PCIHOLE_ACCESS_SHADOWED : PCIHOLE_ACCESS_FUNCTION;
}

static bool is_function(uint32_t kind)
{
	return kind == PCIHOLE_ACCESS_FUNCTION || kind == PCIHOLE_ACCESS_SHADOWED;
}

int pcihole_classify(const struct pcihole_layout *l, uint64_t gpa,
		     void *data, uint32_t len, bool is_write,
		     struct pcihole_access *acc)
{
	uint32_t kind, k2;
	uint64_t last;
	bool wraps;

	if (!l || !len || len > 8 || (!data && !is_write))
		return -EINVAL;
	/* Bytes past 2^64 lie in no window. */
	wraps = gpa > UINT64_MAX - (len - 1);
	last = wraps ? UINT64_MAX : gpa + len - 1;
	kind = page_kind(l, gpa);
	/* Straddling two pages: present wins, then no window, then hole. */
	if (!is_function(kind) &&
	    (wraps || (last >> PCIHOLE_PAGE_SHIFT) != (gpa >> PCIHOLE_PAGE_SHIFT))) {
		k2 = page_kind(l, last);
		if (wraps && !is_function(k2))
			k2 = PCIHOLE_ACCESS_NONE;
		if (is_function(k2) || kind == PCIHOLE_ACCESS_HOLE)
			kind = k2;
	}
	if (kind == PCIHOLE_ACCESS_HOLE && !is_write)
		memset(data, 0xff, len);
	if (acc) {
		memset(acc, 0, sizeof(*acc));
		acc->kind = kind;
		if (pcihole_layout_gpa_to_bdf(l, gpa, &acc->bdf, &acc->offset) &&
		    kind != PCIHOLE_ACCESS_NONE)
			/* First byte in no window, last in a present page. */
			pcihole_layout_gpa_to_bdf(l, last, &acc->bdf, &acc->offset);
	}
	return (int)kind;
}

int pcihole_mmio_access(const struct pcihole_layout *l, uint64_t gpa,
			void *data, uint32_t len, bool is_write)
{
	int ret = pcihole_classify(l, gpa, data, len, is_write, NULL);

	return ret < 0 ? ret : ret == PCIHOLE_ACCESS_HOLE;
}

uint32_t ph_page_kind(const struct pcihole_layout *l, uint64_t pfn, bool split)
{
	const struct ph_seg *s = ph_seg_by_gpa(l, pfn << PCIHOLE_PAGE_SHIFT);
	uint64_t idx = pfn - s->first_pfn, bit = 1ULL << (idx % 64);

	if (!(ph_load_word(&s->present[idx / 64]) & bit))
		return PH_KIND_HOLE;
	if (!(ph_load_word(&s->shadow[idx / 64]) & bit))
		return PH_KIND_TRAPPED;
	return split ? PH_KIND_SHADOW : PH_KIND_HOLE;
}
