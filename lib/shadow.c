// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Shadow pages (PCIHOLE_CTX_SHADOW): one page of a per-context sparse memfd
 * per shadowed function, writable by the VMM through one view, and mapped
 * read-only at the function's host address under the slots: over the
 * all-ones chunk in readonly mode, into a PROT_NONE mirror of the windows in
 * pci-hole mode (where the shadowed pages get KVM_MEM_READONLY slots of their
 * own beside the PCI_HOLE ones; see ctx.c).  Every change is all-or-nothing:
 * a failed MAP_FIXED is undone outside the fault-injection seam.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "internal.h"
#include "sys.h"

/* The shadow memfd (sparse: pages exist once written) and the VMM's view of it. */
int ph_shadow_setup(struct pcihole_ctx *ctx)
{
	size_t len = (size_t)PCIHOLE_SHADOW_MAX << PCIHOLE_PAGE_SHIFT;
	void *p;

	if (ctx->mode == PCIHOLE_MODE_PCI_HOLE && !ctx->caps.readonly_mem) {
		ph_log(ctx, PCIHOLE_LOG_ERR, "shadow pages in pci-hole mode: no KVM_CAP_READONLY_MEM");
		return -EOPNOTSUPP;
	}
	ctx->shadows = calloc(PCIHOLE_SHADOW_MAX, sizeof(*ctx->shadows));
	ctx->shadow_used = calloc(PCIHOLE_SHADOW_MAX, 1);
	if (!ctx->shadows || !ctx->shadow_used)
		return -ENOMEM;
	ctx->shadow_fd = ph_memfd_create("pcihole-shadow", MFD_CLOEXEC);
	if (ctx->shadow_fd < 0)
		return ph_neg_errno();
	if (ph_ftruncate(ctx->shadow_fd, (off_t)len))
		return ph_neg_errno();
	p = ph_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ctx->shadow_fd, 0);
	if (p == MAP_FAILED)
		return ph_neg_errno();
	ctx->shadow_rw = p;
	return 0;
}

/* Index into ctx->shadows of @pfn, or where it would go (*@found false). */
static size_t shadow_find(const struct pcihole_ctx *ctx, uint64_t pfn, bool *found)
{
	size_t lo = 0, hi = ctx->nr_shadows;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ctx->shadows[mid].pfn < pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < ctx->nr_shadows && ctx->shadows[lo].pfn == pfn;
	return lo;
}

/*
 * Put the shadow page @idx (@on) under the host address of @pfn, or what was
 * there before: all-ones (readonly mode) or the PROT_NONE mirror (pci-hole
 * mode, which maps it back as it was, so the VMAs merge again).  mmio mode
 * has no host range.  A failed MAP_FIXED may leave the page unmapped, so the
 * undo (@undo, outside the seam) maps the other one back.
 */
static int map_under(struct pcihole_ctx *ctx, uint64_t pfn, uint32_t idx, bool on,
		     bool undo)
{
	uint64_t gpa = pfn << PCIHOLE_PAGE_SHIFT;
	int fd, prot = PROT_READ;
	void *hva, *p;
	off_t off;

	if (ctx->mode == PCIHOLE_MODE_MMIO)
		return 0;
	hva = (void *)(uintptr_t)ph_hva_of(ctx, gpa);
	if (on) {
		fd = ctx->shadow_fd;
		off = (off_t)idx << PCIHOLE_PAGE_SHIFT;
	} else if (ctx->mode == PCIHOLE_MODE_READONLY) {
		fd = ctx->allones_fd;
		/* Group ranges start chunk-aligned in both spaces: the chunk offset is gpa's. */
		off = (off_t)(gpa & (ctx->chunk - 1));
	} else {
		fd = ctx->shadow_fd;
		off = (off_t)((uint8_t *)hva - ctx->map);
		prot = PROT_NONE;
	}
	p = undo ? mmap(hva, PCIHOLE_PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED, fd, off) :
		   ph_mmap(hva, PCIHOLE_PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED, fd, off);
	if (p != MAP_FAILED)
		return 0;
	ph_log(ctx, PCIHOLE_LOG_ERR, "%smap %s at gpa 0x%llx: %s", undo ? "undo: " : "",
	       on ? "shadow page" : "all-ones", (unsigned long long)gpa, strerror(errno));
	return ph_neg_errno();
}

/*
 * @bdf's page and where its entry is (or would go) in ctx->shadows.  Returns
 * 0, -EINVAL / -ENOENT for @bdf, -EOPNOTSUPP without PCIHOLE_CTX_SHADOW.
 */
int ph_shadow_lookup(const struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf,
			 uint64_t *pfn, size_t *at, bool *found)
{
	uint64_t gpa;
	int ret;

	ret = pcihole_layout_bdf_to_gpa(ctx->layout, bdf, &gpa);
	if (ret)
		return ret;
	if (!(ctx->flags & PCIHOLE_CTX_SHADOW))
		return -EOPNOTSUPP;
	*pfn = gpa >> PCIHOLE_PAGE_SHIFT;
	*at = shadow_find(ctx, *pfn, found);
	return 0;
}

int pcihole_ctx_shadow(struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf,
		       const void *init, void **page)
{
	struct ph_shadow sh = { 0 };
	bool found, present, mapped;
	uint8_t *pp;
	size_t at;
	int ret;

	if (!ctx || !bdf || !page)
		return -EINVAL;
	ph_ctx_lock(ctx);
	ret = ph_shadow_lookup(ctx, bdf, &sh.pfn, &at, &found);
	if (ret)
		goto out;
	if (found) {
		*page = ctx->shadow_rw + ((size_t)ctx->shadows[at].idx << PCIHOLE_PAGE_SHIFT);
		ret = 0;
		goto out;
	}
	if (ctx->nr_shadows == PCIHOLE_SHADOW_MAX) {
		ret = -ENOSPC;
		goto out;
	}
	while (ctx->shadow_used[sh.idx])
		sh.idx++;
	pp = ctx->shadow_rw + ((size_t)sh.idx << PCIHOLE_PAGE_SHIFT);
	/* Filled before any guest can see it. */
	if (init)
		memcpy(pp, init, PCIHOLE_PAGE_SIZE);
	else
		memset(pp, 0xff, PCIHOLE_PAGE_SIZE);
	present = pcihole_layout_is_present(ctx->layout, bdf) == 1;
	/*
	 * Trapped until now: not under a slot yet, so the mapping shows nowhere.
	 * In pci-hole mode an absent function's page is under a PCI_HOLE slot,
	 * which has no host memory: the page is mapped now, so plugging it only
	 * changes slots.
	 */
	mapped = present || ctx->split;
	if (mapped) {
		ret = map_under(ctx, sh.pfn, sh.idx, true, false);
		if (ret) {
			map_under(ctx, sh.pfn, 0, false, true);
			goto out;
		}
	}
	ph_layout_set_shadow_bit(ctx->layout, bdf, true);
	if (present && ctx->mode != PCIHOLE_MODE_MMIO) {
		ret = ph_runs_changed(ctx, sh.pfn, 0, 1);
		if (ret) {
			ph_layout_set_shadow_bit(ctx->layout, bdf, false);
			map_under(ctx, sh.pfn, 0, false, true);
			goto out;
		}
	}
	ctx->shadow_used[sh.idx] = 1;
	memmove(&ctx->shadows[at + 1], &ctx->shadows[at],
		(ctx->nr_shadows - at) * sizeof(*ctx->shadows));
	ctx->shadows[at] = sh;
	ctx->nr_shadows++;
	*page = pp;
	ret = 1;
out:
	ph_ctx_unlock(ctx);
	return ret;
}

int pcihole_ctx_unshadow(struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf)
{
	bool found, present;
	struct ph_shadow sh;
	uint64_t pfn;
	size_t at;
	int ret;

	if (!ctx || !bdf)
		return -EINVAL;
	ph_ctx_lock(ctx);
	ret = ph_shadow_lookup(ctx, bdf, &pfn, &at, &found);
	if (ret == -EOPNOTSUPP)
		ret = 0;	/* nothing is shadowed without the flag */
	if (ret || !found)
		goto out;
	sh = ctx->shadows[at];
	present = pcihole_layout_is_present(ctx->layout, bdf) == 1;
	/*
	 * Readonly: all-ones first, so for a moment the still-present function
	 * reads as absent (as when it is being plugged), never the other way
	 * round.  pci-hole: the page is under a READONLY slot of its own, which
	 * must go before the page does (a slot over PROT_NONE would fail the
	 * guest's read), so the mapping changes between the slot diff's deletes
	 * and creates; an absent function's page is under no such slot.
	 */
	if (present && ctx->split) {
		ctx->mid.active = true;
		ctx->mid.done = false;
		ctx->mid.pfn = sh.pfn;
		ctx->mid.idx = sh.idx;
	} else if (present || ctx->split) {
		ret = map_under(ctx, sh.pfn, sh.idx, false, false);
		if (ret) {
			map_under(ctx, sh.pfn, sh.idx, true, true);
			goto out;
		}
	}
	ph_layout_set_shadow_bit(ctx->layout, bdf, false);
	if (present && ctx->mode != PCIHOLE_MODE_MMIO) {
		/* Every diff makes the mid step, even one that deletes nothing. */
		ret = ph_runs_changed(ctx, sh.pfn, 0, -1);
		ctx->mid.active = false;
		if (ret) {
			ph_layout_set_shadow_bit(ctx->layout, bdf, true);
			if (!ctx->split)
				map_under(ctx, sh.pfn, sh.idx, true, true);
			goto out;
		}
	}
	/* Give the memory back; the page reads zeros if reused. */
	fallocate(ctx->shadow_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)sh.idx << PCIHOLE_PAGE_SHIFT, PCIHOLE_PAGE_SIZE);
	ctx->shadow_used[sh.idx] = 0;
	memmove(&ctx->shadows[at], &ctx->shadows[at + 1],
		(ctx->nr_shadows - at - 1) * sizeof(*ctx->shadows));
	ctx->nr_shadows--;
	ret = 1;
out:
	ph_ctx_unlock(ctx);
	return ret;
}

/* Hotplug of a shadowed function: the page under the slot changes, no slot does. */
int ph_shadow_set_present(struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf,
				uint64_t pfn, uint32_t idx, bool present)
{
	int ret;

	if (present) {
		/* The page first: the guest may see the device a moment before the bit. */
		ret = map_under(ctx, pfn, idx, true, false);
		if (ret) {
			map_under(ctx, pfn, idx, false, true);
			return ret;
		}
		ph_layout_set_bit(ctx->layout, bdf, true, NULL);
		ph_count_pages(ctx, -1, 1);
		return 1;
	}
	ph_layout_set_bit(ctx->layout, bdf, false, NULL);
	ret = map_under(ctx, pfn, idx, false, false);
	if (ret) {
		map_under(ctx, pfn, idx, true, true);
		ph_layout_set_bit(ctx->layout, bdf, true, NULL);
		return ret;
	}
	ph_count_pages(ctx, 1, -1);
	return 1;
}

/* The pending mapping change between a diff's deletes and creates (@undo: take it back). */
int ph_shadow_mid_step(struct pcihole_ctx *ctx, bool undo)
{
	int ret;

	if (!ctx->mid.active || ctx->mid.done == !undo)
		return 0;
	ret = map_under(ctx, ctx->mid.pfn, ctx->mid.idx, undo, undo);
	if (ret && !undo)
		map_under(ctx, ctx->mid.pfn, ctx->mid.idx, true, true);
	else
		ctx->mid.done = !undo;
	return ret;
}
