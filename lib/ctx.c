// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * A context owns a range of KVM slot ids of one VM and keeps them equal to
 * the plan of a layout: one slot per planned hole run, at most the slot
 * budget.  Changes are all-or-nothing: the undo steps use the raw system
 * calls, not the fault-injection seam, because an undo that itself fails can
 * only be logged.
 *
 * In readonly mode every window group (windows adjacent in guest-physical
 * space, which is how far a run can reach) gets one all-ones host range at
 * attach, laid out so that host and guest addresses are congruent modulo the
 * chunk, in one reservation.  Hotplug then only creates and deletes slots
 * pointing into it: no mmap on the hotplug path, and detach unmaps everything
 * with one munmap, which either fails whole or succeeds whole.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include "internal.h"
#include "kvm.h"
#include "kvm_compat.h"
#include "prefault.h"
#include "sys.h"

/* Slot ids are the low 16 bits of kvm_userspace_memory_region.slot. */
#define PH_SLOT_ID_LIMIT 0x10000u

struct ph_group {
	uint64_t gpa;		/* chunk-aligned guest address the host range mirrors */
	uint64_t size;		/* whole chunks */
	uint8_t *hva;		/* host address of @gpa */
};

struct pcihole_ctx {
	pthread_mutex_t lock;
	int vm_fd;
	struct pcihole_layout *layout;
	enum pcihole_mode mode;
	uint32_t flags;
	uint32_t kvm_flags;	/* KVM_MEM_READONLY or KVM_MEM_PCI_HOLE */
	uint32_t slot_base;
	uint32_t nr_slots;
	struct pcihole_caps caps;
	pcihole_log_fn log;
	void *log_opaque;

	/* readonly backing */
	enum pcihole_backing backing;
	uint64_t chunk;
	uint8_t *map;		/* one reservation holding every group's range */
	uint64_t map_size;
	struct ph_group *groups;
	size_t nr_groups;

	/* the live plan: runs ascending by gpa, slot[i] backs runs[i] */
	struct pcihole_run *runs;
	uint32_t *slot;
	size_t nr;
	size_t cap;		/* of runs, slot and the scratch arrays below */
	struct pcihole_plan_info info;
	uint8_t *slot_used;	/* nr_slots entries */
	uint32_t slot_hint;	/* no free id below slot_base + slot_hint */

	/* scratch for set_present, kept to avoid allocating on every hotplug */
	struct pcihole_run *new_runs;
	uint32_t *new_slot, *del, *add;
};

__attribute__((format(printf, 3, 4)))
static void ph_log(const struct pcihole_ctx *ctx, enum pcihole_log_level level,
		   const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!ctx->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx->log(ctx->log_opaque, level, msg);
}

static uint64_t hva_of(const struct pcihole_ctx *ctx, uint64_t gpa)
{
	size_t i;

	for (i = 0; i < ctx->nr_groups; i++) {
		const struct ph_group *g = &ctx->groups[i];

		if (gpa >= g->gpa && gpa - g->gpa < g->size)
			return (uintptr_t)g->hva + (gpa - g->gpa);
	}
	return 0;	/* unreachable: every run lies in a group */
}

static void region_of(const struct pcihole_ctx *ctx, const struct pcihole_run *run,
		      uint32_t slot, uint64_t size, struct kvm_userspace_memory_region *r)
{
	r->slot = slot;
	r->flags = ctx->kvm_flags;
	r->guest_phys_addr = run->gpa;
	r->memory_size = size;
	r->userspace_addr = ctx->mode == PCIHOLE_MODE_READONLY && size ?
			    hva_of(ctx, run->gpa) : 0;
}

/* Create (@on) or delete the slot @slot for @run. */
static int slot_set(struct pcihole_ctx *ctx, const struct pcihole_run *run,
		    uint32_t slot, bool on, bool undo)
{
	struct kvm_userspace_memory_region r;
	int ret;

	region_of(ctx, run, slot, on ? run->size : 0, &r);
	ret = undo ? ioctl(ctx->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) :
		     ph_ioctl(ctx->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
	if (!ret)
		return 0;
	ret = ph_neg_errno();
	ph_log(ctx, PCIHOLE_LOG_ERR, "%s%s slot %u gpa 0x%llx size 0x%llx: %s",
	       undo ? "undo: " : "", on ? "create" : "delete", slot,
	       (unsigned long long)run->gpa, (unsigned long long)run->size,
	       strerror(-ret));
	return ret;
}

static uint32_t slot_alloc(struct pcihole_ctx *ctx)
{
	uint32_t i;

	/* Lowest free id first, so deleted ids are the first reused. */
	for (i = ctx->slot_hint; i < ctx->nr_slots; i++)
		if (!ctx->slot_used[i]) {
			ctx->slot_used[i] = 1;
			ctx->slot_hint = i + 1;
			return ctx->slot_base + i;
		}
	return UINT32_MAX;	/* unreachable: plans never exceed the budget */
}

static void slot_free(struct pcihole_ctx *ctx, uint32_t slot)
{
	uint32_t i = slot - ctx->slot_base;

	ctx->slot_used[i] = 0;
	if (i < ctx->slot_hint)
		ctx->slot_hint = i;
}

static void slot_take(struct pcihole_ctx *ctx, uint32_t slot)
{
	ctx->slot_used[slot - ctx->slot_base] = 1;
}

/* Make the run and scratch arrays hold at least @n runs. */
static int reserve(struct pcihole_ctx *ctx, size_t n)
{
	struct pcihole_run *r, *nr;
	uint32_t *s, *ns, *d, *a;

	if (n <= ctx->cap)
		return 0;
	n += n / 2 + 8;
	r = realloc(ctx->runs, n * sizeof(*r));
	if (r)
		ctx->runs = r;
	s = realloc(ctx->slot, n * sizeof(*s));
	if (s)
		ctx->slot = s;
	nr = realloc(ctx->new_runs, n * sizeof(*nr));
	if (nr)
		ctx->new_runs = nr;
	ns = realloc(ctx->new_slot, n * sizeof(*ns));
	if (ns)
		ctx->new_slot = ns;
	d = realloc(ctx->del, n * sizeof(*d));
	if (d)
		ctx->del = d;
	a = realloc(ctx->add, n * sizeof(*a));
	if (a)
		ctx->add = a;
	/* The arrays that grew are merely bigger; the live plan is untouched. */
	if (!r || !s || !nr || !ns || !d || !a)
		return -ENOMEM;
	ctx->cap = n;
	return 0;
}

/*
 * Plan into ctx->runs (@scratch false) or ctx->new_runs.  The arrays normally
 * fit already, so the bitmap is walked once; only a plan that outgrew them
 * costs a second walk, after growing them to the size -ENOSPC reported.
 */
static int plan_into(struct pcihole_ctx *ctx, bool scratch,
		     struct pcihole_plan_info *info)
{
	for (;;) {
		struct pcihole_run *dst = scratch ? ctx->new_runs : ctx->runs;
		int k = pcihole_plan(ctx->layout, ctx->nr_slots, dst, ctx->cap, info);
		int ret;

		if (k != -ENOSPC)
			return k;
		ret = reserve(ctx, info->nr_runs);
		if (ret)
			return ret;
	}
}

/* Group the windows that touch in guest-physical space and map their ranges. */
static int map_groups(struct pcihole_ctx *ctx, int fd)
{
	const struct pcihole_layout *l = ctx->layout;
	uint64_t chunk = ctx->chunk, total = 0, prev_last = 0;
	size_t i, n = 0;
	int ret;

	ctx->groups = calloc(l->nr ? l->nr : 1, sizeof(*ctx->groups));
	if (!ctx->groups)
		return -ENOMEM;
	for (i = 0; i < l->nr; i++) {
		const struct ph_seg *s = &l->segs[l->by_gpa[i]];
		uint64_t last = s->s.base + ((uint64_t)s->npages << PCIHOLE_PAGE_SHIFT) - 1;
		struct ph_group *g;

		if (last > UINT64_MAX - chunk)
			return -EINVAL;	/* no KVM accepts such addresses anyway */
		/* Touching the previous window: a run may cross, so one range. */
		if (n && s->s.base == prev_last + 1) {
			g = &ctx->groups[n - 1];
		} else {
			g = &ctx->groups[n++];
			g->gpa = s->s.base & ~(chunk - 1);
		}
		g->size = ((last | (chunk - 1)) + 1) - g->gpa;
		prev_last = last;
	}
	ctx->nr_groups = n;
	for (i = 0; i < n; i++) {
		if (ctx->groups[i].size > (1ULL << 47) - total)
			return -ENOMEM;
		total += ctx->groups[i].size;
	}
	ret = pcihole_allones_map(fd, chunk, total, (void **)&ctx->map);
	if (ret)
		return ret;
	ctx->map_size = total;
	total = 0;
	for (i = 0; i < n; i++) {
		ctx->groups[i].hva = ctx->map + total;
		total += ctx->groups[i].size;
	}
	return 0;
}

/* Readonly: the caller's memfd or our own, then the host ranges.  The fd is not kept. */
static int setup_backing(struct pcihole_ctx *ctx, const struct pcihole_ctx_config *cfg)
{
	struct statfs sfs;
	int64_t size;
	int fd, ret;

	if (cfg->memfd >= 0) {
		size = pcihole_allones_check(cfg->memfd);
		if (size < 0) {
			ph_log(ctx, PCIHOLE_LOG_ERR, "memfd %d is not a sealed all-ones memfd",
			       cfg->memfd);
			return (int)size;
		}
		ctx->chunk = (uint64_t)size;
		ctx->backing = fstatfs(cfg->memfd, &sfs) == 0 &&
			       sfs.f_type == HUGETLBFS_MAGIC ?
			       PCIHOLE_BACKING_HUGETLB : PCIHOLE_BACKING_4K;
		fd = cfg->memfd;
	} else {
		ctx->chunk = cfg->chunk ? cfg->chunk : PCIHOLE_ALLONES_CHUNK_DEFAULT;
		ret = pcihole_allones_memfd(ctx->chunk, &fd, &ctx->backing);
		if (ret)
			return ret;
	}
	ret = map_groups(ctx, fd);
	/* The mappings keep the memfd alive; we need no fd of it. */
	if (fd != cfg->memfd)
		close(fd);
	return ret;
}

/* Delete the slots of runs [0, n) (undo of a partial create). */
static void undo_create(struct pcihole_ctx *ctx, const struct pcihole_run *runs,
			const uint32_t *slots, size_t n)
{
	while (n--)
		slot_set(ctx, &runs[n], slots[n], false, true);
}

static int choose_mode(struct pcihole_ctx *ctx, int vm_fd, uint32_t want,
		       const struct pcihole_caps *given)
{
	int ret;

	if (given) {
		ctx->caps = *given;
	} else if (want != PCIHOLE_MODE_MMIO) {
		ret = pcihole_probe(-1, false, &ctx->caps);
		if (!ret) {
			/*
			 * The system fd speaks for default VMs; this VM may be of
			 * a type that refuses read-only slots (protected state).
			 * A kernel too old to answer on a vm fd says nothing.
			 */
			if (!ph_ioctl(vm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_READONLY_MEM))
				ctx->caps.readonly_mem = 0;
			if (ctx->caps.pci_hole_works &&
			    !ph_ioctl(vm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_PCI_HOLE_MEM))
				ctx->caps.pci_hole_works = 0;
		} else {
			/* No /dev/kvm to probe with: ask the VM itself (no functional probe). */
			long ro = ph_ioctl(vm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_READONLY_MEM);
			long ns = ph_ioctl(vm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_NR_MEMSLOTS);

			ph_log(ctx, PCIHOLE_LOG_INFO, "probe failed (%s), using the vm fd's capabilities",
			       strerror(-ret));
			memset(&ctx->caps, 0, sizeof(ctx->caps));
			ctx->caps.readonly_mem = ro > 0;
			ctx->caps.nr_memslots = ns > 0 ? (uint32_t)ns : 0;
		}
	}
	switch (want) {
	case PCIHOLE_MODE_AUTO:
		ctx->mode = ctx->caps.pci_hole_works ? PCIHOLE_MODE_PCI_HOLE :
			    ctx->caps.readonly_mem ? PCIHOLE_MODE_READONLY :
			    PCIHOLE_MODE_MMIO;
		return 0;
	case PCIHOLE_MODE_PCI_HOLE:
		if (!ctx->caps.pci_hole_works) {
			ph_log(ctx, PCIHOLE_LOG_ERR, "pci-hole: %s",
			       ctx->caps.pci_hole_cap ? "KVM_MEM_PCI_HOLE failed the functional probe" :
			       "no KVM_CAP_PCI_HOLE_MEM");
			return -EOPNOTSUPP;
		}
		break;
	case PCIHOLE_MODE_READONLY:
		if (!ctx->caps.readonly_mem) {
			ph_log(ctx, PCIHOLE_LOG_ERR, "readonly: no KVM_CAP_READONLY_MEM");
			return -EOPNOTSUPP;
		}
		break;
	case PCIHOLE_MODE_MMIO:
		break;
	default:
		return -EINVAL;
	}
	ctx->mode = want;
	return 0;
}

static void ctx_free(struct pcihole_ctx *ctx)
{
	pthread_mutex_destroy(&ctx->lock);
	free(ctx->groups);
	free(ctx->runs);
	free(ctx->slot);
	free(ctx->new_runs);
	free(ctx->new_slot);
	free(ctx->del);
	free(ctx->add);
	free(ctx->slot_used);
	free(ctx);
}

int pcihole_ctx_attach(int vm_fd, struct pcihole_layout *layout,
		       const struct pcihole_ctx_config *cfg,
		       struct pcihole_ctx **out)
{
	struct pcihole_ctx *ctx;
	size_t i;
	int ret;

	if (vm_fd < 0 || !layout || !cfg || !out || cfg->reserved0 ||
	    (cfg->flags & ~PCIHOLE_CTX_PREFAULT) || cfg->mode > PCIHOLE_MODE_MMIO)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->vm_fd = vm_fd;
	ctx->layout = layout;
	ctx->flags = cfg->flags;
	ctx->log = cfg->log;
	ctx->log_opaque = cfg->log_opaque;
	ret = choose_mode(ctx, vm_fd, cfg->mode, cfg->caps);
	if (ret)
		goto err_free;
	if (ctx->mode != PCIHOLE_MODE_MMIO) {
		uint64_t end = (uint64_t)cfg->slot_base + cfg->nr_slots;

		if (end > PH_SLOT_ID_LIMIT ||
		    (ctx->caps.nr_memslots && end > ctx->caps.nr_memslots)) {
			ph_log(ctx, PCIHOLE_LOG_ERR, "slots %u..%llu beyond the %u KVM offers",
			       cfg->slot_base, (unsigned long long)end, ctx->caps.nr_memslots);
			ret = -EINVAL;
			goto err_free;
		}
		ctx->slot_base = cfg->slot_base;
		ctx->nr_slots = cfg->nr_slots;
		ctx->kvm_flags = ctx->mode == PCIHOLE_MODE_READONLY ?
				 KVM_MEM_READONLY : KVM_MEM_PCI_HOLE;
	}
	if (ctx->mode == PCIHOLE_MODE_MMIO) {
		/* No slots, no plan to keep: only the summary, for the log. */
		pcihole_plan(layout, 0, NULL, 0, &ctx->info);
		ctx->info.uncovered_pages = ctx->info.hole_pages;
		goto done;
	}
	ctx->slot_used = calloc(ctx->nr_slots ? ctx->nr_slots : 1, 1);
	if (!ctx->slot_used || reserve(ctx, 1)) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = plan_into(ctx, false, &ctx->info);
	if (ret < 0)
		goto err_free;
	ctx->nr = (size_t)ret;
	if (ctx->mode == PCIHOLE_MODE_READONLY) {
		ret = setup_backing(ctx, cfg);
		if (ret)
			goto err_unmap;
	}
	for (i = 0; i < ctx->nr; i++) {
		ctx->slot[i] = slot_alloc(ctx);
		ret = slot_set(ctx, &ctx->runs[i], ctx->slot[i], true, false);
		if (ret) {
			undo_create(ctx, ctx->runs, ctx->slot, i);
			goto err_unmap;
		}
	}
done:
	ph_log(ctx, PCIHOLE_LOG_INFO,
	       "attached: mode %s, %zu slots for %u runs, %llu hole pages left to mmio, %zu mappings",
	       pcihole_mode_name(ctx->mode), ctx->nr, ctx->info.nr_runs,
	       (unsigned long long)ctx->info.uncovered_pages,
	       ctx->chunk ? (size_t)(ctx->map_size / ctx->chunk) : (size_t)0);
	*out = ctx;
	return 0;
err_unmap:
	if (ctx->map)
		munmap(ctx->map, ctx->map_size);
err_free:
	ctx_free(ctx);
	return ret;
}

int pcihole_ctx_detach(struct pcihole_ctx *ctx)
{
	size_t i;
	int ret;

	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	for (i = 0; i < ctx->nr; i++) {
		ret = slot_set(ctx, &ctx->runs[i], ctx->slot[i], false, false);
		if (ret)
			goto undo;
	}
	if (ctx->map) {
		ret = pcihole_allones_unmap(ctx->map, ctx->map_size);
		if (ret)
			goto undo;
	}
	pthread_mutex_unlock(&ctx->lock);
	ctx_free(ctx);
	return 0;
undo:
	while (i--)
		slot_set(ctx, &ctx->runs[i], ctx->slot[i], true, true);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

/* Apply the diff from the live plan to ctx->new_runs[0, k); all-or-nothing. */
static int apply(struct pcihole_ctx *ctx, size_t k)
{
	size_t nd, na, i, j, o;
	int ret;

	ret = pcihole_plan_diff(ctx->runs, ctx->nr, ctx->new_runs, k,
				ctx->del, &nd, ctx->add, &na);
	if (ret)
		return ret;
	/* Delete first: a new run may overlap an old one. */
	for (i = 0; i < nd; i++) {
		ret = slot_set(ctx, &ctx->runs[ctx->del[i]], ctx->slot[ctx->del[i]],
			       false, false);
		if (ret)
			goto undo_del;
	}
	/* The ids just freed are the first reused. */
	for (i = 0; i < nd; i++)
		slot_free(ctx, ctx->slot[ctx->del[i]]);
	for (j = 0; j < na; j++) {
		ctx->new_slot[ctx->add[j]] = slot_alloc(ctx);
		ret = slot_set(ctx, &ctx->new_runs[ctx->add[j]],
			       ctx->new_slot[ctx->add[j]], true, false);
		if (ret) {
			slot_free(ctx, ctx->new_slot[ctx->add[j]]);
			goto undo_add;
		}
	}
	/* Kept runs keep their slots: walk both plans in gpa order. */
	for (i = 0, o = 0; i < k; i++) {
		bool added = false;

		for (j = 0; j < na && !added; j++)
			added = ctx->add[j] == i;
		if (added)
			continue;
		while (ctx->runs[o].gpa != ctx->new_runs[i].gpa ||
		       ctx->runs[o].size != ctx->new_runs[i].size)
			o++;
		ctx->new_slot[i] = ctx->slot[o++];
	}
	memcpy(ctx->runs, ctx->new_runs, k * sizeof(*ctx->runs));
	memcpy(ctx->slot, ctx->new_slot, k * sizeof(*ctx->slot));
	ctx->nr = k;
	return 0;
undo_add:
	while (j--) {
		slot_set(ctx, &ctx->new_runs[ctx->add[j]], ctx->new_slot[ctx->add[j]],
			 false, true);
		slot_free(ctx, ctx->new_slot[ctx->add[j]]);
	}
	for (i = 0; i < nd; i++)
		slot_take(ctx, ctx->slot[ctx->del[i]]);
	i = nd;
undo_del:
	while (i--)
		slot_set(ctx, &ctx->runs[ctx->del[i]], ctx->slot[ctx->del[i]], true, true);
	return ret;
}

int pcihole_ctx_set_present(struct pcihole_ctx *ctx,
			    const struct pcihole_bdf *bdf, bool present)
{
	struct pcihole_plan_info info;
	int ret, k;

	if (!ctx || !bdf)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	/*
	 * The bit goes first.  Added: reads of the function may still hit the
	 * old slot for a moment and see all-ones, as if the device were not yet
	 * there.  Removed: accesses exit and the mmio path calls them holes.
	 */
	ret = pcihole_layout_set_present(ctx->layout, bdf, present);
	/* mmio mode: the bit is all there is (stats plan on demand). */
	if (ret <= 0 || ctx->mode == PCIHOLE_MODE_MMIO)
		goto out;
	k = plan_into(ctx, true, &info);
	if (k < 0) {
		ret = k;
		goto revert;
	}
	ret = apply(ctx, (size_t)k);
	if (ret)
		goto revert;
	ph_log(ctx, PCIHOLE_LOG_DEBUG, "%04x:%02x:%02x.%u %s: %u -> %d slots, %u runs",
	       bdf->segment, bdf->bus, bdf->dev, bdf->fn, present ? "present" : "absent",
	       ctx->info.nr_slots, k, info.nr_runs);
	ctx->info = info;
	ret = 1;
	goto out;
revert:
	pcihole_layout_set_present(ctx->layout, bdf, !present);
out:
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

enum pcihole_mode pcihole_ctx_mode(const struct pcihole_ctx *ctx)
{
	return ctx ? ctx->mode : PCIHOLE_MODE_AUTO;
}

int pcihole_ctx_regions(const struct pcihole_ctx *cctx,
			struct pcihole_region *regions, size_t cap)
{
	struct pcihole_ctx *ctx = (struct pcihole_ctx *)cctx;	/* for the lock */
	size_t i;
	int ret;

	if (!ctx || (cap && !regions))
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	ret = (int)ctx->nr;
	if (cap < ctx->nr) {
		if (cap || regions)
			ret = -ENOSPC;
		goto out;
	}
	for (i = 0; i < ctx->nr; i++) {
		struct kvm_userspace_memory_region r;

		region_of(ctx, &ctx->runs[i], ctx->slot[i], ctx->runs[i].size, &r);
		memcpy(&regions[i], &r, sizeof(r));
	}
out:
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

int pcihole_ctx_stats(const struct pcihole_ctx *cctx,
		      struct pcihole_ctx_stats *st)
{
	struct pcihole_ctx *ctx = (struct pcihole_ctx *)cctx;	/* for the lock */

	if (!ctx || !st)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	memset(st, 0, sizeof(*st));
	st->mode = ctx->mode;
	st->backing = ctx->backing;
	st->nr_slots = (uint32_t)ctx->nr;
	if (ctx->mode == PCIHOLE_MODE_MMIO) {
		struct pcihole_plan_info info;

		/* Only the summary: -ENOSPC with @info filled is the expected answer. */
		pcihole_plan(ctx->layout, 0, NULL, 0, &info);
		st->nr_runs = info.nr_runs;
		st->uncovered_pages = info.hole_pages;
	} else {
		st->nr_runs = ctx->info.nr_runs;
		st->uncovered_pages = ctx->info.uncovered_pages;
	}
	if (ctx->mode == PCIHOLE_MODE_READONLY) {
		st->memfd_bytes = ctx->chunk;
		st->nr_mappings = ctx->map_size / ctx->chunk;
		st->mapped_bytes = ctx->map_size;
	}
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

int64_t pcihole_ctx_prefault(struct pcihole_ctx *ctx, int vcpu_fd)
{
	int64_t done = 0;
	size_t i;

	if (!ctx || vcpu_fd < 0)
		return -EINVAL;
	/* pci-hole slots pre-fault too: the kernel maps its host-wide all-ones block. */
	if (ctx->mode == PCIHOLE_MODE_MMIO || !(ctx->flags & PCIHOLE_CTX_PREFAULT))
		return 0;
	if (!ctx->caps.pre_fault_memory)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&ctx->lock);
	for (i = 0; i < ctx->nr; i++) {
		int ret = ph_prefault_range(vcpu_fd, ctx->runs[i].gpa, ctx->runs[i].size);

		if (ret) {
			done = ret;
			ph_log(ctx, PCIHOLE_LOG_ERR, "KVM_PRE_FAULT_MEMORY gpa 0x%llx: %s",
			       (unsigned long long)ctx->runs[i].gpa, strerror(-ret));
			goto out;
		}
		done += (int64_t)ctx->runs[i].size;
	}
out:
	pthread_mutex_unlock(&ctx->lock);
	return done;
}
