// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * libFuzzer harness for the planner: segments, layout, plan, budget, diff,
 * the mmio path and the address conversions.
 *
 * The input is a small program.  Its first bytes describe 1-4 segments
 * (mostly valid: adjacent, gapped, out of gpa order, at the top of the
 * physical address space; sometimes overlapping, unaligned, reversed or raw)
 * and a phys_bits value; a reference validator here predicts which errors
 * pcihole_layout_new() may return.  The rest is a sequence of operations:
 * single and bulk presence changes, invalid addresses, budget changes and
 * damaged diff inputs.  After every operation the harness rebuilds the plan
 * by walking every page of a model presence map it keeps itself, and checks
 * pcihole_plan_count(), pcihole_plan() (runs, order, budget choice, info),
 * pcihole_plan_diff() against the previous plan, pcihole_run_to_region(),
 * pcihole_mmio_access() and the bdf/gpa conversions against that model.
 */
#include <errno.h>
#include <stdbool.h>

#include "pcihole.h"
#include "fuzz_common.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

#define FL_MAX_SEGS 4
#define FL_MAX_OPS 48
/* Past this many pages an operation's full check costs ~1 ms: do fewer. */
#define FL_BIG_PAGES 16384
#define FL_MAX_OPS_BIG 6
#define FL_MIB (1ULL << 20)
#define FL_PAGE 4096ULL

typedef unsigned __int128 fl_u128;

/* Allowed errors of a segment set, as bits. */
#define FL_EINVAL 1u
#define FL_ERANGE 2u
#define FL_EEXIST 4u
#define FL_E2BIG 8u

struct fl_seg {
	struct pcihole_segment s;
	uint32_t npages;
	uint8_t *present;	/* the model: one byte per function page */
};

/* A run as the oracle sees it: page numbers, not bytes. */
struct fl_run {
	uint64_t pfn;
	uint64_t pages;
	uint64_t fn0;
};

struct fl {
	struct fz_in in;
	uint64_t rng;
	struct fl_seg seg[FL_MAX_SEGS];
	size_t nr;
	uint32_t order[FL_MAX_SEGS];	/* seg indexes by ascending base */
	uint64_t total_pages;
	uint64_t npresent;		/* model pages marked present */
	struct pcihole_layout *l;
	uint32_t budget;

	struct fl_run *oruns;		/* the oracle's maximal runs */
	size_t noruns;
	uint64_t oholes;
	uint32_t *rank;			/* scratch for the budget choice */
	bool *chosen;

	struct pcihole_run *prev;	/* the last plan, for the diff */
	size_t nprev;
	bool prev_full;			/* it held every maximal run */
};

/* ------------------------------------------------------------------------ */
/* Segments                                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t fl_wsize(const struct pcihole_segment *s)
{
	return ((uint64_t)s->bus_end - s->bus_start + 1) * FL_MIB;
}

static uint32_t fl_budget(uint8_t b)
{
	switch (b & 3) {
	case 0:
		return PCIHOLE_NO_BUDGET;
	case 1:
		return b >> 6;		/* 0..3: tight budgets */
	case 2:
		return b >> 2;		/* 0..63 */
	default:
		return b & 0x80 ? UINT32_MAX - 1 : (b >> 2) * 97u;
	}
}

static unsigned int fl_phys_bits(uint8_t b)
{
	switch (b & 15) {
	case 10:
		return 32;
	case 11:
		return 64;
	case 12:
		return 39;
	case 13:
		return 48;
	case 14:
		return 32 + (b >> 4) * 2;	/* 32..62 */
	case 15:
		return b & 0x10 ? 31 : 65 + (b >> 5);	/* invalid */
	default:
		return 0;	/* the usual: 52 */
	}
}

/* The segment description language; see the file comment. */
static void fl_gen_segment(struct fl *f, size_t i, unsigned int pb,
			   struct pcihole_segment *s)
{
	const struct pcihole_segment *prev = i ? s - 1 : NULL;
	uint8_t kind = fz_u8(&f->in), sz = fz_u8(&f->in);
	unsigned int nb, start;
	uint64_t size, top;

	if (sz == 0xff)
		nb = 256;
	else if ((sz & 0xc0) == 0xc0)
		nb = 1 + (sz & 0x0f);
	else
		nb = 1 + (sz & 3);
	start = fz_u8(&f->in) % (257 - nb);
	memset(s, 0, sizeof(*s));
	s->bus_start = (uint8_t)start;
	s->bus_end = (uint8_t)(start + nb - 1);
	s->segment = kind & 0x10 ? fz_u8(&f->in) & 3 : (uint16_t)i;
	size = (uint64_t)nb * FL_MIB;
	top = pb >= 64 || pb < 32 ? 0 : 1ULL << pb;	/* 0 stands for 2^64 */

	switch (kind & 15) {
	case 0: case 1: case 13: case 14: case 15:
		/* Right after the previous window: runs merge across them. */
		s->base = prev ? prev->base + fl_wsize(prev) : 0xb0000000ULL;
		break;
	case 2:
		s->base = prev ? prev->base + fl_wsize(prev) +
			  (1 + fz_u8(&f->in) % 8) * FL_MIB : 0xe0000000ULL;
		break;
	case 3:
		/* Right before it: the given order is not the gpa order. */
		s->base = prev ? prev->base - size : 0x80000000ULL;
		break;
	case 4: case 5:
		s->base = (uint64_t)fz_u16(&f->in) * FL_MIB;
		break;
	case 6:
		/* Flush with the top of the physical address space, or one bus past it. */
		s->base = top - size + (kind & 0x20 ? FL_MIB : 0);
		break;
	case 7:
		s->base = 0;
		break;
	case 8:
		/* Inside the previous window; a reversed one has no size, hence the | 1. */
		s->base = prev ? prev->base + fz_u8(&f->in) % ((fl_wsize(prev) / FL_MIB) | 1) * FL_MIB
			       : FL_MIB;
		break;
	case 9:
		s->base = (uint64_t)fz_u16(&f->in) * FL_MIB | ((fz_u32(&f->in) & (FL_MIB - 1)) | 1);
		break;
	case 10:
		s->base = (uint64_t)fz_u16(&f->in) * FL_MIB;
		if (s->bus_start == s->bus_end)
			s->bus_end = s->bus_start ^ 0xff;
		if (s->bus_start < s->bus_end) {
			uint8_t t = s->bus_start;

			s->bus_start = s->bus_end;
			s->bus_end = t;
		}
		break;
	case 11:
		s->base = (uint64_t)fz_u16(&f->in) * FL_MIB;
		s->reserved = fz_u8(&f->in) | 1u;
		break;
	default: /* 12 */
		s->base = fz_u64(&f->in);
		s->bus_start = fz_u8(&f->in);
		s->bus_end = fz_u8(&f->in);
		s->segment = fz_u16(&f->in);
		break;
	}
}

/* Which errors pcihole_segments_validate() may give; 0 if the set is valid. */
static unsigned int fl_ref_validate(const struct pcihole_segment *s, size_t nr,
				    unsigned int phys_bits)
{
	unsigned int pb = phys_bits ? phys_bits : 52, err = 0;
	size_t i, j;

	if (!nr || pb < 32 || pb > 64)
		return FL_EINVAL;
	if (nr > PCIHOLE_MAX_SEGMENTS)
		err |= FL_E2BIG;
	for (i = 0; i < nr; i++) {
		fl_u128 last = (fl_u128)s[i].base + fl_wsize(&s[i]) - 1;

		if (s[i].reserved || s[i].bus_start > s[i].bus_end ||
		    s[i].base % FL_MIB)
			err |= FL_EINVAL;
		else if (last > UINT64_MAX || (pb < 64 && last >> pb))
			err |= FL_ERANGE;
	}
	for (i = 0; i < nr; i++) {
		for (j = i + 1; j < nr; j++) {
			const struct pcihole_segment *a = &s[i], *b = &s[j];

			if (a->bus_start > a->bus_end || b->bus_start > b->bus_end)
				continue;
			if ((fl_u128)a->base < (fl_u128)b->base + fl_wsize(b) &&
			    (fl_u128)b->base < (fl_u128)a->base + fl_wsize(a))
				err |= FL_EEXIST;
			if (a->segment == b->segment && a->bus_start <= b->bus_end &&
			    b->bus_start <= a->bus_end)
				err |= FL_EEXIST;
		}
	}
	return err;
}

static unsigned int fl_err_bit(int ret)
{
	switch (ret) {
	case -EINVAL:
		return FL_EINVAL;
	case -ERANGE:
		return FL_ERANGE;
	case -EEXIST:
		return FL_EEXIST;
	case -E2BIG:
		return FL_E2BIG;
	default:
		return 0x100;	/* never allowed */
	}
}

/* pcihole_segment_from_mcfg() against its contract, from the first input bytes. */
static void fl_check_mcfg(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct pcihole_segment seg, untouched;
	uint16_t segno = fz_u16(&in);
	uint64_t mbase = fz_u64(&in);
	uint8_t s = fz_u8(&in), e = fz_u8(&in);
	int ret, want;

	/* Steer a quarter of the inputs to the interesting top of the space. */
	if ((segno & 3) == 3)
		mbase = UINT64_MAX - (mbase & 0x3fffffff) + 1;
	if (segno & 4)
		mbase &= ~(FL_MIB - 1);
	memset(&seg, 0xa5, sizeof(seg));
	untouched = seg;
	ret = pcihole_segment_from_mcfg(segno, mbase, s, e, &seg);
	if (s > e || mbase % FL_MIB)
		want = -EINVAL;
	else if ((fl_u128)mbase + ((fl_u128)e + 1) * FL_MIB - 1 > UINT64_MAX)
		want = -ERANGE;	/* the window's last byte would wrap */
	else
		want = 0;
	CHECK_EQ(ret, want);
	if (ret) {
		CHECK(!memcmp(&seg, &untouched, sizeof(seg)));
		return;
	}
	CHECK_EQ(seg.segment, segno);
	CHECK_EQ(seg.base, mbase + (uint64_t)s * FL_MIB);
	CHECK_EQ(seg.bus_start, s);
	CHECK_EQ(seg.bus_end, e);
	CHECK_EQ(seg.reserved, 0);
}

/* ------------------------------------------------------------------------ */
/* The model and its oracle                                                  */
/* ------------------------------------------------------------------------ */

/* The window holding @gpa and the page index in it, or NULL. */
FZ_NOCOV static struct fl_seg *fl_find_gpa(struct fl *f, uint64_t gpa, uint32_t *idx)
{
	size_t i;

	for (i = 0; i < f->nr; i++) {
		struct fl_seg *s = &f->seg[i];

		if (gpa >= s->s.base && gpa - s->s.base < (uint64_t)s->npages * FL_PAGE) {
			*idx = (uint32_t)((gpa - s->s.base) / FL_PAGE);
			return s;
		}
	}
	return NULL;
}

FZ_NOCOV static struct fl_seg *fl_find_bus(struct fl *f, uint16_t segno, uint8_t bus)
{
	size_t i;

	for (i = 0; i < f->nr; i++) {
		struct fl_seg *s = &f->seg[i];

		if (s->s.segment == segno && bus >= s->s.bus_start && bus <= s->s.bus_end)
			return s;
	}
	return NULL;
}

FZ_NOCOV static struct pcihole_bdf fl_bdf_of(const struct fl_seg *s, uint32_t idx)
{
	struct pcihole_bdf b = { 0 };

	b.segment = s->s.segment;
	b.bus = (uint8_t)(s->s.bus_start + idx / 256);
	b.dev = (uint8_t)(idx / 8 % 32);
	b.fn = (uint8_t)(idx % 8);
	return b;
}

FZ_NOCOV static bool fl_byte_is_hole(struct fl *f, uint64_t gpa)
{
	uint32_t idx;
	struct fl_seg *s = fl_find_gpa(f, gpa, &idx);

	return s && !s->present[idx];
}

/* Walk every page in gpa order and collect the maximal runs of holes. */
FZ_NOCOV static void fl_oracle(struct fl *f)
{
	bool open = false;
	struct fl_run cur = { 0 };
	size_t i;
	uint32_t p;

	f->noruns = 0;
	f->oholes = 0;
	for (i = 0; i < f->nr; i++) {
		const struct fl_seg *s = &f->seg[f->order[i]];
		uint64_t pfn0 = s->s.base / FL_PAGE;

		for (p = 0; p < s->npages; p++) {
			if (s->present[p])
				continue;
			f->oholes++;
			if (open && cur.pfn + cur.pages == pfn0 + p) {
				cur.pages++;
				cur.fn0 += p % 8 == 0;
				continue;
			}
			if (open)
				f->oruns[f->noruns++] = cur;
			open = true;
			cur.pfn = pfn0 + p;
			cur.pages = 1;
			cur.fn0 = p % 8 == 0;
		}
	}
	if (open)
		f->oruns[f->noruns++] = cur;
}

static const struct fl_run *fl_sort_base;

/* The documented weight: function-0 pages, then pages, then the lower gpa. */
FZ_NOCOV static int fl_cmp_weight(const void *a, const void *b)
{
	const struct fl_run *x = &fl_sort_base[*(const uint32_t *)a];
	const struct fl_run *y = &fl_sort_base[*(const uint32_t *)b];

	if (x->fn0 != y->fn0)
		return x->fn0 > y->fn0 ? -1 : 1;
	if (x->pages != y->pages)
		return x->pages > y->pages ? -1 : 1;
	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/* ------------------------------------------------------------------------ */
/* Plan and diff checks                                                      */
/* ------------------------------------------------------------------------ */

/* The reference of what pcihole_plan_diff() accepts: sorted, disjoint, aligned, non-empty. */
FZ_NOCOV static bool fl_ref_plan_ok(const struct pcihole_run *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!r[i].size || r[i].gpa % FL_PAGE || r[i].size % FL_PAGE ||
		    (fl_u128)r[i].gpa + r[i].size - 1 > UINT64_MAX)
			return false;
		if (i && (fl_u128)r[i - 1].gpa + r[i - 1].size > r[i].gpa)
			return false;
	}
	return true;
}

static bool fl_run_eq(const struct pcihole_run *a, const struct pcihole_run *b)
{
	return a->gpa == b->gpa && a->size == b->size;
}

/* Is @r in plan @p?  @p is sorted and disjoint, so by gpa in O(log n). */
FZ_NOCOV static bool fl_in_plan(const struct pcihole_run *r, const struct pcihole_run *p,
		       size_t n)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p[mid].gpa < r->gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && fl_run_eq(r, &p[lo]);
}

/*
 * Diff @old to @new, apply the diff to @old and demand @new back.
 * @change: 0 none, 1 one function became present, 2 one became a hole,
 * -1 anything else; bounds the diff size when both plans are complete.
 */
FZ_NOCOV static void fl_check_diff(const struct pcihole_run *old, size_t nold,
			  const struct pcihole_run *new_runs, size_t nnew,
			  int change, bool both_full)
{
	uint32_t *del = malloc((nold ? nold : 1) * sizeof(*del));
	uint32_t *add = malloc((nnew ? nnew : 1) * sizeof(*add));
	size_t nd = 12345, na = 12345, i, j, k, o;
	bool *gone = calloc(nold + 1, 1);
	int ret;

	CHECK(del && add && gone);
	ret = pcihole_plan_diff(old, nold, new_runs, nnew, del, &nd, add, &na);
	if (!fl_ref_plan_ok(old, nold) || !fl_ref_plan_ok(new_runs, nnew)) {
		CHECK_EQ(ret, -EINVAL);
		goto out;
	}
	CHECK_EQ(ret, 0);
	CHECK(nd <= nold && na <= nnew);
	for (i = 0; i < nd; i++) {
		CHECK(del[i] < nold && (!i || del[i] > del[i - 1]));
		gone[del[i]] = true;
		/* Minimal: a run that is in both plans is never touched. */
		CHECK(!fl_in_plan(&old[del[i]], new_runs, nnew));
	}
	for (i = 0; i < na; i++) {
		CHECK(add[i] < nnew && (!i || add[i] > add[i - 1]));
		CHECK(!fl_in_plan(&new_runs[add[i]], old, nold));
	}
	/* Apply: the kept old runs and the added new ones, merged by gpa, are @new. */
	for (j = 0, k = 0, o = 0; o < nnew; o++) {
		const struct pcihole_run *next;

		while (j < nold && gone[j])
			j++;
		if (j < nold && (k == na || old[j].gpa < new_runs[add[k]].gpa))
			next = &old[j++];
		else
			next = k < na ? &new_runs[add[k++]] : NULL;
		CHECK(next && fl_run_eq(next, &new_runs[o]));
	}
	while (j < nold && gone[j])
		j++;
	CHECK(j == nold && k == na);

	if (change == 0 && both_full) {
		CHECK_EQ(nd, 0);
		CHECK_EQ(na, 0);
	} else if (change == 1 && both_full) {
		CHECK(nd <= 1 && na <= 2);
	} else if (change == 2 && both_full) {
		CHECK(nd <= 2 && na <= 1);
	}
out:
	free(gone);
	free(del);
	free(add);
}

FZ_NOCOV static void fl_check_region(const struct pcihole_run *r)
{
	struct pcihole_region reg, untouched;

	memset(&reg, 0x5a, sizeof(reg));
	untouched = reg;
	CHECK_EQ(pcihole_run_to_region(r, 7, PCIHOLE_KVM_MEM_PCI_HOLE, 0, &reg), 0);
	CHECK(reg.slot == 7 && reg.flags == PCIHOLE_KVM_MEM_PCI_HOLE &&
	      reg.guest_phys_addr == r->gpa && reg.memory_size == r->size &&
	      reg.userspace_addr == 0);
	reg = untouched;
	CHECK_EQ(pcihole_run_to_region(r, 7, PCIHOLE_KVM_MEM_PCI_HOLE, 0x1000, &reg), -EINVAL);
	CHECK(!memcmp(&reg, &untouched, sizeof(reg)));
}

/* One full plan check against the oracle; keeps the plan for the next diff. */
FZ_NOCOV static void fl_check_plan(struct fl *f, int change)
{
	struct pcihole_plan_info info, info2;
	struct pcihole_run *runs, *scratch;
	size_t cnt, n, k, i, j;
	uint64_t covered = 0, unc_fn0 = 0;
	bool full;
	int ret;

	fl_oracle(f);
	n = f->noruns;
	cnt = pcihole_plan_count(f->l);
	CHECK_EQ(cnt, n);

	/* Exactly @cnt entries: ASan sees any write past them. */
	runs = malloc((n ? n : 1) * sizeof(*runs));
	CHECK(runs);
	memset(&info, 0xa5, sizeof(info));
	ret = pcihole_plan(f->l, f->budget, n ? runs : NULL, n, &info);
	k = n < f->budget ? n : f->budget;
	CHECK_EQ(ret, k);
	CHECK_EQ(info.nr_runs, n);
	CHECK_EQ(info.nr_slots, k);
	CHECK_EQ(info.hole_pages, f->oholes);

	/* The chosen set: the top k by weight, reported in gpa order. */
	for (i = 0; i < n; i++) {
		f->rank[i] = (uint32_t)i;
		f->chosen[i] = false;
	}
	if (k < n) {
		fl_sort_base = f->oruns;
		qsort(f->rank, n, sizeof(*f->rank), fl_cmp_weight);
	}
	for (i = 0; i < k; i++)
		f->chosen[f->rank[i]] = true;
	for (i = 0, j = 0; i < n; i++) {
		const struct fl_run *o = &f->oruns[i];

		if (!f->chosen[i]) {
			unc_fn0 += o->fn0;
			continue;
		}
		CHECK(j < k);
		CHECK_EQ(runs[j].gpa, o->pfn * FL_PAGE);
		CHECK_EQ(runs[j].size, o->pages * FL_PAGE);
		CHECK_EQ(runs[j].fn0_pages, o->fn0);
		CHECK_EQ(runs[j].reserved, 0);
		covered += o->pages;
		if (j < 16 || j + 16 >= k)	/* the same code for every run */
			fl_check_region(&runs[j]);
		j++;
	}
	CHECK_EQ(j, k);
	CHECK_EQ(info.covered_pages, covered);
	CHECK_EQ(info.uncovered_pages, f->oholes - covered);
	CHECK_EQ(info.uncovered_fn0_pages, unc_fn0);

	/* Too small an array: -ENOSPC, and info still sizes the next call. */
	if (n) {
		scratch = malloc(n * sizeof(*scratch));
		CHECK(scratch);
		memset(&info2, 0xa5, sizeof(info2));
		ret = pcihole_plan(f->l, f->budget, n > 1 ? scratch : NULL, n - 1, &info2);
		CHECK_EQ(ret, -ENOSPC);
		CHECK_EQ(info2.nr_runs, n);
		CHECK_EQ(info2.nr_slots, k);
		CHECK_EQ(info2.hole_pages, f->oholes);
		free(scratch);
	} else {
		CHECK_EQ(pcihole_plan(f->l, f->budget, NULL, 0, NULL), 0);
	}

	full = k == n;
	fl_check_diff(f->prev, f->nprev, runs, k, change, full && f->prev_full);
	free(f->prev);
	f->prev = runs;
	f->nprev = k;
	f->prev_full = full;
}

/* ------------------------------------------------------------------------ */
/* The mmio path and conversions                                             */
/* ------------------------------------------------------------------------ */

/*
 * pcihole_classify() against the model: any byte in a present page makes the
 * access a function's, else any byte outside every window (or past 2^64)
 * makes it none of ours, else it is a hole; data is filled exactly for hole
 * reads, and the bdf and offset are the first byte's.
 */
FZ_NOCOV static void fl_classify(struct fl *f, uint64_t gpa, uint32_t len, bool is_write)
{
	bool any_present = false, any_outside = false;
	struct pcihole_access acc;
	uint8_t buf[16];
	struct fl_seg *s;
	uint32_t i, idx;
	int want, ret;

	memset(buf, 0x5a, sizeof(buf));
	memset(&acc, 0xa5, sizeof(acc));
	ret = pcihole_classify(f->l, gpa, buf + 4, len, is_write, &acc);
	if (!len || len > 8) {
		CHECK_EQ(ret, -EINVAL);
		return;
	}
	for (i = 0; i < len; i++) {
		if ((fl_u128)gpa + i > UINT64_MAX) {
			any_outside = true;
			continue;
		}
		s = fl_find_gpa(f, gpa + i, &idx);
		if (!s)
			any_outside = true;
		else if (s->present[idx])
			any_present = true;
	}
	want = any_present ? PCIHOLE_ACCESS_FUNCTION : any_outside ? PCIHOLE_ACCESS_NONE :
	       PCIHOLE_ACCESS_HOLE;
	CHECK_EQ(ret, want);
	CHECK_EQ(acc.kind, (uint32_t)want);
	CHECK_EQ(acc.reserved[0] | acc.reserved[1], 0);
	for (i = 0; i < sizeof(buf); i++)
		CHECK_EQ(buf[i], want == PCIHOLE_ACCESS_HOLE && !is_write && i >= 4 && i < 4 + len ?
			 0xff : 0x5a);
	s = fl_find_gpa(f, gpa, &idx);
	if (s) {
		struct pcihole_bdf b = fl_bdf_of(s, idx);

		CHECK(!memcmp(&acc.bdf, &b, sizeof(b)));
		CHECK_EQ(acc.offset, gpa % FL_PAGE);
	}
}

FZ_NOCOV static void fl_probe(struct fl *f, uint64_t gpa, uint32_t len, bool is_write)
{
	uint8_t buf[16];
	struct pcihole_bdf bdf, want;
	struct fl_seg *s;
	uint32_t i, idx, off = 0xdead;
	uint64_t back;
	bool hole = true;
	int ret;

	memset(buf, 0x5a, sizeof(buf));
	ret = pcihole_mmio_access(f->l, gpa, buf + 4, len, is_write);
	if (!len || len > 8) {
		CHECK_EQ(ret, -EINVAL);
		hole = false;
	} else {
		for (i = 0; i < len && hole; i++)
			hole = (fl_u128)gpa + i <= UINT64_MAX && fl_byte_is_hole(f, gpa + i);
		CHECK_EQ(ret, hole);
	}
	for (i = 0; i < sizeof(buf); i++)
		CHECK_EQ(buf[i], hole && !is_write && i >= 4 && i < 4 + len ? 0xff : 0x5a);
	fl_classify(f, gpa, len, is_write);

	s = fl_find_gpa(f, gpa, &idx);
	memset(&bdf, 0xa5, sizeof(bdf));
	ret = pcihole_layout_gpa_to_bdf(f->l, gpa, &bdf, &off);
	if (!s) {
		CHECK_EQ(ret, -ENOENT);
		return;
	}
	CHECK_EQ(ret, 0);
	want = fl_bdf_of(s, idx);
	CHECK(!memcmp(&bdf, &want, sizeof(bdf)));
	CHECK_EQ(off, gpa % FL_PAGE);
	CHECK_EQ(pcihole_layout_gpa_to_bdf(f->l, gpa, &bdf, NULL), 0);
	CHECK_EQ(pcihole_layout_bdf_to_gpa(f->l, &bdf, &back), 0);
	CHECK_EQ(back, gpa - gpa % FL_PAGE);
	CHECK_EQ(pcihole_layout_is_present(f->l, &bdf), s->present[idx]);
}

/* Probe where answers change: run edges, window edges, a few anywhere. */
FZ_NOCOV static void fl_probes(struct fl *f)
{
	size_t i;

	for (i = 0; i < 4 && f->noruns; i++) {
		const struct fl_run *r = &f->oruns[fz_rand(&f->rng) % f->noruns];
		uint64_t a = r->pfn * FL_PAGE, e = a + r->pages * FL_PAGE;
		uint32_t len = 1 + (uint32_t)(fz_rand(&f->rng) % 8);

		fl_probe(f, a, len, false);
		fl_probe(f, a - 1, len, false);
		fl_probe(f, a - len + 1, len, i & 1);
		fl_probe(f, e - len, len, false);
		fl_probe(f, e - len + 1, len, false);
		fl_probe(f, e, len, i & 1);
	}
	for (i = 0; i < 4; i++) {
		const struct fl_seg *s = &f->seg[fz_rand(&f->rng) % f->nr];
		uint64_t span = (uint64_t)s->npages * FL_PAGE + 2 * FL_PAGE;
		uint64_t gpa = s->s.base - FL_PAGE + fz_rand(&f->rng) % span;

		fl_probe(f, gpa, 1 + (uint32_t)(fz_rand(&f->rng) % 8), i & 1);
	}
	fl_probe(f, fz_rand(&f->rng), 4, false);
	fl_probe(f, UINT64_MAX - fz_rand(&f->rng) % 8, 8, false);
}

FZ_NOCOV static void fl_check_all(struct fl *f, int change)
{
	CHECK_EQ(pcihole_layout_nr_present(f->l), f->npresent);
	fl_check_plan(f, change);
	fl_probes(f);
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */
/* ------------------------------------------------------------------------ */

/* Set one page through the API and the model; returns whether it changed. */
FZ_NOCOV static bool fl_set(struct fl *f, struct fl_seg *s, uint32_t idx, bool present)
{
	struct pcihole_bdf bdf = fl_bdf_of(s, idx);
	bool changed = s->present[idx] != present;

	CHECK_EQ(pcihole_layout_set_present(f->l, &bdf, present), changed);
	s->present[idx] = present;
	if (changed)
		f->npresent += present ? 1 : (uint64_t)-1;
	return changed;
}

/* Give a whole window one of a few typical shapes. */
FZ_NOCOV static void fl_fill(struct fl *f, struct fl_seg *s, uint8_t mode,
			     uint64_t mask, bool present)
{
	uint32_t idx;

	for (idx = 0; idx < s->npages; idx++) {
		bool p;

		switch (mode & 3) {
		case 0:
			p = mask >> (idx % 64) & 1;
			break;
		case 1:
			p = present;
			break;
		case 2:
			p = idx % 8 == 0;	/* single-function devices */
			break;
		default:
			p = idx % 256 < 8 * (1u + (mode >> 4));	/* first devices of a bus */
			break;
		}
		fl_set(f, s, idx, p);
	}
}

/* An arbitrary, often invalid, function address: errors must match and change nothing. */
static void fl_op_any_bdf(struct fl *f, bool present)
{
	struct pcihole_bdf bdf = { 0 };
	struct fl_seg *s;
	uint64_t gpa = 0x1234;
	int want, ret;

	bdf.segment = fz_u8(&f->in) & 7;
	bdf.bus = fz_u8(&f->in);
	bdf.dev = fz_u8(&f->in) % 40;
	bdf.fn = fz_u8(&f->in) % 10;
	memset(bdf.reserved, 0xee, sizeof(bdf.reserved));	/* ignored */
	s = fl_find_bus(f, bdf.segment, bdf.bus);
	if (bdf.dev > 31 || bdf.fn > 7)
		want = -EINVAL;
	else if (!s)
		want = -ENOENT;
	else
		want = 0;
	ret = pcihole_layout_is_present(f->l, &bdf);
	if (want) {
		CHECK_EQ(ret, want);
		CHECK_EQ(pcihole_layout_set_present(f->l, &bdf, present), want);
		CHECK_EQ(pcihole_layout_bdf_to_gpa(f->l, &bdf, &gpa), want);
		CHECK_EQ(gpa, 0x1234);
		return;
	}
	{
		uint32_t idx = (uint32_t)(bdf.bus - s->s.bus_start) * 256 + bdf.dev * 8u + bdf.fn;

		CHECK_EQ(ret, s->present[idx]);
		CHECK_EQ(pcihole_layout_bdf_to_gpa(f->l, &bdf, &gpa), 0);
		CHECK_EQ(gpa, s->s.base + (uint64_t)idx * FL_PAGE);
		fl_set(f, s, idx, present);
	}
}

/* Damage a plan in one of the ways pcihole_plan_diff() must refuse, or not. */
static void fl_op_bad_diff(struct fl *f)
{
	size_t n = f->nprev + 2, i;
	struct pcihole_run *r = calloc(n, sizeof(*r));
	uint8_t how = fz_u8(&f->in);
	size_t at = fz_u8(&f->in);

	CHECK(r);
	if (f->nprev)
		memcpy(r, f->prev, f->nprev * sizeof(*r));
	n = f->nprev;
	at = n ? at % n : 0;
	switch (how % 8) {
	case 0:
		if (n >= 2) {
			struct pcihole_run t = r[at];

			r[at] = r[(at + 1) % n];
			r[(at + 1) % n] = t;
		}
		break;
	case 1:
		if (n)
			r[at].size = 0;
		break;
	case 2:
		if (n)
			r[at].gpa |= 1ULL << (how >> 4);	/* bits 0..15: some aligned */
		break;
	case 3:
		if (n)
			r[at].size += (uint64_t)(how >> 3) * FL_PAGE;	/* may overlap the next */
		break;
	case 4:
		if (n) {
			r[n] = r[n - 1];	/* duplicate */
			n++;
		}
		break;
	case 5:
		/* A run ending exactly at 2^64 is as valid as any other. */
		r[n].size = (uint64_t)(1 + (how >> 3)) * FL_PAGE;
		r[n].gpa = 0 - r[n].size;
		if (how & 4)
			r[n].gpa += FL_PAGE;	/* wraps */
		n++;
		break;
	case 6:
		/* A fresh plan from the input, at least sorted by construction. */
		n = 0;
		for (i = 0; i < 4; i++) {
			uint64_t gap = fz_u8(&f->in) * FL_PAGE, sz = fz_u8(&f->in) * FL_PAGE;

			r[n].gpa = (n ? r[n - 1].gpa + r[n - 1].size : 0) + gap;
			r[n].size = sz;
			n++;
			if (n == f->nprev + 2)
				break;
		}
		break;
	default:
		break;
	}
	if (how & 8)
		fl_check_diff(r, n, f->prev, f->nprev, -1, false);
	else
		fl_check_diff(f->prev, f->nprev, r, n, -1, false);
	free(r);
}

/* Run one operation; returns what fl_check_diff() should assume about it. */
static int fl_op(struct fl *f)
{
	uint8_t o = fz_u8(&f->in);
	bool present = o & 8;
	struct fl_seg *s = &f->seg[fz_u8(&f->in) % f->nr];
	uint32_t idx, i, count, stride;

	switch (o & 7) {
	case 0:
	case 1: {
		uint32_t bus = fz_u8(&f->in) % (s->npages / 256);
		uint8_t df = fz_u8(&f->in);

		idx = bus * 256 + df;
		if (!fl_set(f, s, idx, present))
			return 0;
		return present ? 1 : 2;
	}
	case 2:
		idx = fz_u16(&f->in) % s->npages;
		count = 1 + (o & 16 ? fz_u16(&f->in) : fz_u8(&f->in));
		stride = 1 + (fz_u8(&f->in) & 7);
		for (i = 0; i < count && idx < s->npages; i++, idx += stride)
			fl_set(f, s, idx, present);
		return -1;
	case 3: {
		uint8_t mode = fz_u8(&f->in);

		fl_fill(f, s, mode, mode & 3 ? 0 : fz_u64(&f->in), present);
		return -1;
	}
	case 4:
		fl_op_any_bdf(f, present);
		return -1;
	case 5:
		f->budget = fl_budget(fz_u8(&f->in));
		return -1;
	case 6:
		fl_op_bad_diff(f);
		return 0;
	default: {
		uint64_t gpa = s->s.base + fz_u32(&f->in) % ((uint64_t)s->npages * FL_PAGE + 16) - 8;

		fl_probe(f, gpa, fz_u8(&f->in) % 10, o & 16);
		return 0;
	}
	}
}

/* ------------------------------------------------------------------------ */

static void fl_check_layout_basics(struct fl *f, const struct pcihole_segment *segs)
{
	struct pcihole_segment s;
	size_t i;

	CHECK_EQ(pcihole_layout_nr_segments(f->l), f->nr);
	for (i = 0; i < f->nr; i++) {
		CHECK_EQ(pcihole_layout_segment(f->l, i, &s), 0);
		CHECK(!memcmp(&s, &segs[i], sizeof(s)));
	}
	memset(&s, 0x77, sizeof(s));
	CHECK_EQ(pcihole_layout_segment(f->l, f->nr, &s), -EINVAL);
	CHECK_EQ(s.reserved, 0x77777777u);
	CHECK_EQ(pcihole_layout_nr_present(f->l), 0);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct fl f;
	struct pcihole_segment segs[FL_MAX_SEGS];
	struct pcihole_layout *sentinel = (struct pcihole_layout *)&f;
	unsigned int phys_bits, pb, allowed;
	size_t i, j, ops, max_ops;
	uint8_t b;
	int ret;

	fl_check_mcfg(data, size);

	memset(&f, 0, sizeof(f));
	f.in.p = data;
	f.in.n = size;
	f.rng = size;
	for (i = 0; i < size; i++)
		f.rng = f.rng * 131 + data[i];
	b = fz_u8(&f.in);
	f.nr = 1 + (b & 3);
	phys_bits = fl_phys_bits(fz_u8(&f.in));
	pb = phys_bits ? phys_bits : 52;
	for (i = 0; i < f.nr; i++)
		fl_gen_segment(&f, i, pb, &segs[i]);
	f.budget = fl_budget(fz_u8(&f.in));

	allowed = fl_ref_validate(segs, f.nr, phys_bits);
	ret = pcihole_segments_validate(segs, f.nr, phys_bits);
	f.l = sentinel;
	CHECK_EQ(pcihole_layout_new(segs, f.nr, phys_bits, &f.l), ret);
	if (allowed) {
		CHECK(ret < 0 && (fl_err_bit(ret) & allowed));
		CHECK(f.l == sentinel);
		return 0;
	}
	CHECK_EQ(ret, 0);
	CHECK(f.l != sentinel && f.l);

	for (i = 0; i < f.nr; i++) {
		f.seg[i].s = segs[i];
		f.seg[i].npages = (uint32_t)(segs[i].bus_end - segs[i].bus_start + 1) * 256;
		f.seg[i].present = calloc(f.seg[i].npages, 1);
		CHECK(f.seg[i].present);
		f.total_pages += f.seg[i].npages;
		/* Insertion sort by base: the oracle's own idea of gpa order. */
		for (j = i; j && f.seg[f.order[j - 1]].s.base > segs[i].base; j--)
			f.order[j] = f.order[j - 1];
		f.order[j] = (uint32_t)i;
	}
	/* Alternating pages is the worst case: half the pages are runs. */
	f.oruns = malloc((f.total_pages / 2 + 1) * sizeof(*f.oruns));
	f.rank = malloc((f.total_pages / 2 + 1) * sizeof(*f.rank));
	f.chosen = malloc(f.total_pages / 2 + 1);
	CHECK(f.oruns && f.rank && f.chosen);
	fl_check_layout_basics(&f, segs);

	max_ops = f.total_pages > FL_BIG_PAGES ? FL_MAX_OPS_BIG : FL_MAX_OPS;
	fl_check_all(&f, -1);
	for (ops = 0; ops < max_ops && f.in.n; ops++)
		fl_check_all(&f, fl_op(&f));

	for (i = 0; i < f.nr; i++)
		free(f.seg[i].present);
	free(f.oruns);
	free(f.rank);
	free(f.chosen);
	free(f.prev);
	pcihole_layout_free(f.l);
	return 0;
}
