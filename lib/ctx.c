// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * A context owns a range of KVM slot ids of one VM (or handles that the VMM's
 * apply callback maps to its own) and keeps them equal to the plan of a
 * layout: one slot per planned hole run, at most the slot budget.  Changes
 * are all-or-nothing: the undo steps bypass the fault-injection seam,
 * because an undo that itself fails can only be logged.
 *
 * In readonly mode every window group (windows adjacent in guest-physical
 * space, which is how far a run can reach) gets one all-ones host range at
 * attach, laid out so that host and guest addresses are congruent modulo the
 * chunk, in one reservation.  Hotplug then only creates and deletes slots
 * pointing into it: no mmap on the hotplug path, and detach unmaps everything
 * with one munmap, which either fails whole or succeeds whole.
 *
 * A hotplug changes one page, so it changes at most the run holding the page
 * (split in two) or the runs on either side of it (merged): found by binary
 * search and replaced locally.  The whole layout is re-planned only when the
 * slot budget binds or runs are clipped to large host pages, where one page
 * can move the choice of runs elsewhere.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include "allones.h"
#include "ctx.h"
#include "internal.h"
#include "kvm.h"
#include "kvm_compat.h"
#include "prefault.h"
#include "sys.h"

/* Slot ids are the low 16 bits of the slot field; the high 16 are the address space. */
#define PH_SLOT_ID_LIMIT 0x10000u

void ph_log(struct pcihole_ctx *ctx, enum pcihole_log_level level,
		   const char *fmt, ...)
{
	struct ph_logq *q = &ctx->logq;
	char msg[PH_LOG_LEN];
	va_list ap;

	if (!ctx->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!ctx->locked) {
		ctx->log(ctx->log_opaque, level, msg);
		return;
	}
	if (q->n == PH_LOGQ) {
		q->dropped++;
		return;
	}
	q->level[q->n] = level;
	memcpy(q->msg[q->n++], msg, sizeof(msg));
}

void ph_ctx_lock(struct pcihole_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->locked = true;
}

/*
 * Drop the lock, then deliver what was logged under it, so that a callback
 * may call back into the context.  With @ctx_gone the context is freed in
 * between (detach), and the queue travels on the stack.
 */
static void deliver(pcihole_log_fn log, void *opaque, const struct ph_logq *q)
{
	unsigned int i;
	char msg[64];

	for (i = 0; i < q->n; i++)
		log(opaque, q->level[i], q->msg[i]);
	if (q->dropped) {
		snprintf(msg, sizeof(msg), "%u more log lines dropped", q->dropped);
		log(opaque, PCIHOLE_LOG_INFO, msg);
	}
}

void ph_ctx_unlock(struct pcihole_ctx *ctx)
{
	struct ph_logq q;

	ctx->locked = false;
	if (!ctx->logq.n && !ctx->logq.dropped) {
		pthread_mutex_unlock(&ctx->lock);
		return;
	}
	q = ctx->logq;
	ctx->logq.n = 0;
	ctx->logq.dropped = 0;
	ctx->locked = false;
	pthread_mutex_unlock(&ctx->lock);
	if (ctx->log)
		deliver(ctx->log, ctx->log_opaque, &q);
}

uint64_t ph_hva_of(const struct pcihole_ctx *ctx, uint64_t gpa)
{
	size_t lo = 0, hi = ctx->nr_groups;

	/* Groups are disjoint and in gpa order (built from the layout's by_gpa). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ph_group *g = &ctx->groups[mid];

		if (gpa < g->gpa)
			hi = mid;
		else if (gpa - g->gpa >= g->size)
			lo = mid + 1;
		else
			return (uintptr_t)g->hva + (gpa - g->gpa);
	}
	return 0;	/* unreachable: every run lies in a group */
}

static void region_of(const struct pcihole_ctx *ctx, const struct pcihole_run *run,
		      uint32_t slot, uint64_t size, struct pcihole_region2 *r)
{
	bool shadow = run->reserved == PH_KIND_SHADOW;

	memset(r, 0, sizeof(*r));
	r->slot = ctx->apply ? slot : ctx->as_id << 16 | slot;
	/* Split runs: shadowed pages need host memory, so a read-only slot. */
	r->flags = shadow ? KVM_MEM_READONLY : ctx->kvm_flags;
	r->guest_phys_addr = run->gpa;
	r->memory_size = size;
	r->userspace_addr = (ctx->mode == PCIHOLE_MODE_READONLY || shadow) && size ?
			    ph_hva_of(ctx, run->gpa) : 0;
}

/* Create (@on) or delete the slot @slot for @run. */
static int slot_set(struct pcihole_ctx *ctx, const struct pcihole_run *run,
		    uint32_t slot, bool on, bool undo)
{
	struct pcihole_region2 r;
	bool v2 = ctx->region2;
	int ret;

	region_of(ctx, run, slot, on ? run->size : 0, &r);
	if (ctx->apply) {
		ret = ctx->apply(ctx->apply_opaque, &r);
		if (ret > 0)
			ret = -EINVAL;	/* not an errno: a callback bug */
	} else if (undo) {
		/* Not through the seam: an undo must not be made to fail. */
		struct kvm_userspace_memory_region r1;

		memcpy(&r1, &r, sizeof(r1));
		ret = v2 ? ioctl(ctx->vm_fd, KVM_SET_USER_MEMORY_REGION2, &r) :
			   ioctl(ctx->vm_fd, KVM_SET_USER_MEMORY_REGION, &r1);
		ret = ret ? ph_neg_errno() : 0;
	} else {
		ret = ph_set_region(ctx->vm_fd, v2, r.slot, r.flags, r.guest_phys_addr,
				    r.memory_size, r.userspace_addr);
	}
	if (!ret)
		return 0;
	ph_log(ctx, PCIHOLE_LOG_ERR, "%s%s slot %u gpa 0x%llx size 0x%llx: %s",
	       undo ? "undo: " : "", on ? "create" : "delete", r.slot,
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
		int k, ret;

		k = ph_plan(ctx->layout, ctx->nr_slots, ctx->page_size, ctx->split, dst,
			    ctx->cap, info);
		if (k != -ENOSPC)
			return k;
		ret = reserve(ctx, info->nr_runs);
		if (ret)
			return ret;
	}
}

/*
 * Group the windows that touch in guest-physical space and map their ranges:
 * all-ones chunks from @fd (readonly), or with @fd -1 a PROT_NONE mirror of
 * the windows in the shadow memfd (pci-hole with shadows: the shadow pages
 * are mapped into it, so adjacent ones are one contiguous host range; a file
 * mapping, not anonymous, so that its VMAs are named and can be counted; no
 * page is ever touched through it).
 */
static int map_groups(struct pcihole_ctx *ctx, int fd, uint64_t chunk)
{
	const struct pcihole_layout *l = ctx->layout;
	uint64_t total = 0, prev_last = 0;
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
	if (fd >= 0) {
		ret = ph_allones_map_checked(fd, chunk, total, (void **)&ctx->map);
		if (ret)
			return ret;
	} else {
		void *p = ph_mmap(NULL, total, PROT_NONE, MAP_SHARED, ctx->shadow_fd, 0);

		if (p == MAP_FAILED)
			return ph_neg_errno();
		ctx->map = p;
	}
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
	ret = map_groups(ctx, fd, ctx->chunk);
	/*
	 * The mappings keep the memfd alive; we need no fd of it, unless shadow
	 * pages will have to be replaced by all-ones again.
	 */
	if (!ret && (ctx->flags & PCIHOLE_CTX_SHADOW)) {
		ctx->allones_fd = fd == cfg->memfd ? ph_fcntl(fd, F_DUPFD_CLOEXEC, 0) : fd;
		if (ctx->allones_fd < 0)
			ret = ph_neg_errno();
		if (fd != cfg->memfd || ret)
			return ret;
		return 0;
	}
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

/* KVM_CHECK_EXTENSION on the vm fd: > 0 yes, 0 no, < 0 the kernel would not say. */
static long vm_ext(int vm_fd, long cap)
{
	if (vm_fd < 0)
		return -1;
	/* A query, not a change: not failed by the fault-injection countdown. */
	return ph_query(vm_fd, KVM_CHECK_EXTENSION, (void *)cap);
}

static int choose_mode(struct pcihole_ctx *ctx, int vm_fd, uint32_t want,
		       const struct pcihole_caps *given)
{
	int ret;

	if (given) {
		ctx->caps = *given;
	} else if (want != PCIHOLE_MODE_MMIO) {
		ret = pcihole_probe(-1, false, &ctx->caps);
		if (ret) {
			/* No /dev/kvm to probe with: ask the VM itself (no functional probe). */
			long ro = vm_ext(vm_fd, KVM_CAP_READONLY_MEM);
			long ns = vm_ext(vm_fd, KVM_CAP_NR_MEMSLOTS);
			long m2 = vm_ext(vm_fd, KVM_CAP_USER_MEMORY2);

			ph_log(ctx, PCIHOLE_LOG_INFO, "probe failed (%s), using the vm fd's capabilities",
			       strerror(-ret));
			memset(&ctx->caps, 0, sizeof(ctx->caps));
			ctx->caps.readonly_mem = ro > 0;
			ctx->caps.nr_memslots = ns > 0 ? (uint32_t)ns : 0;
			ctx->caps.user_memory2 = m2 > 0;
		}
	}
	/*
	 * The system fd (or the caller) speaks for default VMs; this VM may be of
	 * a type that refuses read-only slots (protected state).  That veto holds
	 * for caller-supplied caps too.  A kernel too old to answer on a vm fd
	 * says nothing.
	 */
	if (!vm_ext(vm_fd, KVM_CAP_READONLY_MEM))
		ctx->caps.readonly_mem = 0;
	if (ctx->caps.pci_hole_works) {
		uint32_t flag = ctx->caps.pci_hole_flag ? ctx->caps.pci_hole_flag :
				PCIHOLE_KVM_MEM_PCI_HOLE;
		long cap = flag == PCIHOLE_KVM_MEM_PCI_HOLE_612 ?
			   PCIHOLE_KVM_CAP_PCI_HOLE_MEM_612 : PCIHOLE_KVM_CAP_PCI_HOLE_MEM;

		if (!vm_ext(vm_fd, cap))
			ctx->caps.pci_hole_works = 0;
		ctx->caps.pci_hole_flag = flag;
	}
	switch (want) {
	case PCIHOLE_MODE_AUTO:
		/*
		 * Shadow pages need read-only slots beside the PCI_HOLE ones:
		 * pci-hole then only where KVM has both.
		 */
		ctx->mode = ctx->caps.pci_hole_works &&
			    (ctx->caps.readonly_mem || !(ctx->flags & PCIHOLE_CTX_SHADOW)) ?
			    PCIHOLE_MODE_PCI_HOLE :
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
	if (ctx->shadow_rw)
		munmap(ctx->shadow_rw, (size_t)PCIHOLE_SHADOW_MAX << PCIHOLE_PAGE_SHIFT);
	if (ctx->shadow_fd >= 0)
		close(ctx->shadow_fd);
	if (ctx->allones_fd >= 0)
		close(ctx->allones_fd);
	free(ctx->shadows);
	free(ctx->shadow_used);
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


static bool config_ok(int vm_fd, const struct pcihole_ctx_config *cfg)
{
	size_t i;

	if (cfg->reserved0 ||
	    (cfg->flags & ~(PCIHOLE_CTX_PREFAULT | PCIHOLE_CTX_REGION2 | PCIHOLE_CTX_SHADOW)) ||
	    cfg->mode > PCIHOLE_MODE_MMIO || (vm_fd < 0 && !cfg->apply))
		return false;
	if (cfg->page_size && (cfg->page_size < PCIHOLE_PAGE_SIZE ||
			       (cfg->page_size & (cfg->page_size - 1))))
		return false;
	for (i = 0; i < sizeof(cfg->reserved) / sizeof(cfg->reserved[0]); i++)
		if (cfg->reserved[i])
			return false;
	return true;
}

/* Slot ids, address space and REGION2 against what KVM offers. */
static int check_slots(struct pcihole_ctx *ctx, const struct pcihole_ctx_config *cfg)
{
	uint64_t end = (uint64_t)cfg->slot_base + cfg->nr_slots;

	if (ctx->apply) {
		/* Handles, not ids: the VMM's allocator knows its own limits. */
		if (cfg->nr_slots > PH_SLOT_ID_LIMIT)
			return -EINVAL;
		return 0;
	}
	if (end > PH_SLOT_ID_LIMIT ||
	    (ctx->caps.nr_memslots && end > ctx->caps.nr_memslots)) {
		ph_log(ctx, PCIHOLE_LOG_ERR, "slots %u..%llu beyond the %u KVM offers",
		       cfg->slot_base, (unsigned long long)end, ctx->caps.nr_memslots);
		return -EINVAL;
	}
	if ((cfg->flags & PCIHOLE_CTX_REGION2) && vm_ext(ctx->vm_fd, KVM_CAP_USER_MEMORY2) <= 0) {
		ph_log(ctx, PCIHOLE_LOG_ERR, "REGION2: no KVM_CAP_USER_MEMORY2");
		return -EOPNOTSUPP;
	}
	if (cfg->as_id) {
		long n = vm_ext(ctx->vm_fd, KVM_CAP_MULTI_ADDRESS_SPACE);

		if (n >= 0 && cfg->as_id >= (n ? n : 1)) {
			ph_log(ctx, PCIHOLE_LOG_ERR, "address space %u: KVM has %ld",
			       cfg->as_id, n ? n : 1);
			return -EINVAL;
		}
	}
	return 0;
}

int pcihole_ctx_attach(int vm_fd, struct pcihole_layout *layout,
		       const struct pcihole_ctx_config *cfg,
		       struct pcihole_ctx **out)
{
	struct pcihole_ctx *ctx;
	size_t i;
	int ret;

	if (!layout || !cfg || !out || !config_ok(vm_fd, cfg))
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->vm_fd = -1;
	ctx->allones_fd = -1;
	ctx->shadow_fd = -1;
	ctx->log = cfg->log;
	ctx->log_opaque = cfg->log_opaque;
	if (vm_fd >= 0) {
		/* Our own reference: the VMM may close its fd, and a reused number is not ours. */
		ctx->vm_fd = ph_fcntl(vm_fd, F_DUPFD_CLOEXEC, 0);
		if (ctx->vm_fd < 0) {
			ret = ph_neg_errno();
			ctx_free(ctx);
			return ret;
		}
	}
	ret = ph_layout_claim(layout, true);
	if (ret) {
		ph_log(ctx, PCIHOLE_LOG_ERR, "layout already has a context");
		goto err_close;
	}
	ctx->layout = layout;
	ctx->flags = cfg->flags;
	ctx->apply = cfg->apply;
	ctx->apply_opaque = cfg->apply_opaque;
	ctx->as_id = cfg->as_id;
	ctx->page_size = cfg->page_size ? cfg->page_size : (uint64_t)sysconf(_SC_PAGESIZE);
	ret = choose_mode(ctx, ctx->vm_fd, cfg->mode, cfg->caps);
	if (ret)
		goto err_release;
	/* Shadow bits set on the bare layout have no pages behind them. */
	if (ph_layout_any_shadow(layout)) {
		ph_log(ctx, PCIHOLE_LOG_ERR, "layout has shadowed functions: shadow them through the context");
		ret = -EINVAL;
		goto err_release;
	}
	if (ctx->flags & PCIHOLE_CTX_SHADOW) {
		ret = ph_shadow_setup(ctx);
		if (ret)
			goto err_release;
	}
	if (ctx->mode != PCIHOLE_MODE_MMIO) {
		ret = check_slots(ctx, cfg);
		if (ret)
			goto err_release;
		ctx->slot_base = ctx->apply ? 0 : cfg->slot_base;
		ctx->nr_slots = cfg->nr_slots;
		ctx->kvm_flags = ctx->mode == PCIHOLE_MODE_READONLY ?
				 KVM_MEM_READONLY : ctx->caps.pci_hole_flag;
		/* The 7.2 series' flag exists for REGION2 only (v1's flags are frozen). */
		ctx->region2 = (ctx->flags & PCIHOLE_CTX_REGION2) ||
			       ctx->kvm_flags == PCIHOLE_KVM_MEM_PCI_HOLE;
		ctx->split = ctx->mode == PCIHOLE_MODE_PCI_HOLE;
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
		goto err_release;
	}
	ret = plan_into(ctx, false, &ctx->info);
	if (ret < 0)
		goto err_release;
	ctx->nr = (size_t)ret;
	if (ctx->mode == PCIHOLE_MODE_READONLY) {
		ret = setup_backing(ctx, cfg);
		if (!ret && ctx->allones_fd >= 0 && ctx->backing == PCIHOLE_BACKING_HUGETLB) {
			ph_log(ctx, PCIHOLE_LOG_ERR, "shadow pages need a non-hugetlb all-ones memfd");
			ret = -EOPNOTSUPP;
		}
		if (ret)
			goto err_unmap;
	} else if (ctx->flags & PCIHOLE_CTX_SHADOW) {
		ret = map_groups(ctx, -1, PCIHOLE_PAGE_SIZE);
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
err_release:
	ph_layout_claim(layout, false);
err_close:
	if (ctx->vm_fd >= 0)
		close(ctx->vm_fd);
	ctx_free(ctx);
	return ret;
}

void pcihole_ctx_destroy(struct pcihole_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->map)
		munmap(ctx->map, ctx->map_size);
	if (ctx->vm_fd >= 0)
		close(ctx->vm_fd);
	ph_layout_claim(ctx->layout, false);
	ctx_free(ctx);
}

int pcihole_ctx_detach(struct pcihole_ctx *ctx)
{
	pcihole_log_fn log;
	struct ph_logq q;
	void *opaque;
	size_t i;
	int ret;

	if (!ctx)
		return -EINVAL;
	ph_ctx_lock(ctx);
	for (i = 0; i < ctx->nr; i++) {
		ret = slot_set(ctx, &ctx->runs[i], ctx->slot[i], false, false);
		if (ret)
			goto undo;
	}
	if (ctx->map) {
		ret = pcihole_allones_unmap(ctx->map, ctx->map_size);
		if (ret)
			goto undo;
		ctx->map = NULL;
	}
	/* The queue outlives the context. */
	q = ctx->logq;
	log = ctx->log;
	opaque = ctx->log_opaque;
	ctx->locked = false;
	pthread_mutex_unlock(&ctx->lock);
	pcihole_ctx_destroy(ctx);
	if (log)
		deliver(log, opaque, &q);
	return 0;
undo:
	while (i--)
		slot_set(ctx, &ctx->runs[i], ctx->slot[i], true, true);
	ph_ctx_unlock(ctx);
	return ret;
}

/* Apply the diff from the live plan to ctx->new_runs[0, k); all-or-nothing. */
static int apply_diff(struct pcihole_ctx *ctx, size_t k)
{
	size_t nd, na, i, j, o;
	int ret;

	ret = ph_plan_diff(ctx->runs, ctx->nr, ctx->new_runs, k, ctx->split,
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
	ret = ph_shadow_mid_step(ctx, false);
	if (ret)
		goto undo_del;
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
	for (i = 0, o = 0, j = 0; i < k; i++) {
		if (j < na && ctx->add[j] == i) {
			j++;
			continue;
		}
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
	ph_shadow_mid_step(ctx, true);
	i = nd;
undo_del:
	while (i--)
		slot_set(ctx, &ctx->runs[ctx->del[i]], ctx->slot[ctx->del[i]], true, true);
	return ret;
}

/* Re-plan the whole layout and apply the diff. */
static int replan(struct pcihole_ctx *ctx)
{
	struct pcihole_plan_info info;
	int k, ret;

	k = plan_into(ctx, true, &info);
	if (k < 0)
		return k;
	ret = apply_diff(ctx, (size_t)k);
	if (ret)
		return ret;
	ctx->info = info;
	ctx->nr_replans++;
	return 0;
}

/* Index of the first run ending after page @pfn (ctx->nr if none). */
static size_t run_after(const struct pcihole_ctx *ctx, uint64_t pfn)
{
	size_t lo = 0, hi = ctx->nr;
	uint64_t gpa = pfn << PCIHOLE_PAGE_SHIFT;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct pcihole_run *r = &ctx->runs[mid];

		/* Last bytes, not ends: a run may end exactly at 2^64. */
		if (r->gpa + (r->size - 1) < gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void set_run(struct pcihole_run *r, uint64_t first_pfn, uint64_t end_pfn)
{
	r->gpa = first_pfn << PCIHOLE_PAGE_SHIFT;
	r->size = (end_pfn - first_pfn) << PCIHOLE_PAGE_SHIFT;
	/* Windows are 1 MiB aligned, so function 0 is every pfn divisible by 8. */
	r->fn0_pages = (uint32_t)(((end_pfn + 7) >> 3) - ((first_pfn + 7) >> 3));
	r->reserved = 0;
}

/*
 * Make runs [@at, @at + @nd) the @nn runs @nw (the same span, give or take
 * one page): delete the old runs that are not among the new, then create the
 * new that were not among the old (a run whose kind changed is both); undo on
 * failure.  Unchanged runs keep their slots, as does every other run.
 * Returns 1, 0 if the result would exceed the slot budget (nothing done), or
 * -errno (undone).
 */
static int replace(struct pcihole_ctx *ctx, size_t at, size_t nd,
		   const struct pcihole_run *nw, size_t nn)
{
	uint32_t del[3], add[3], slots[3], kept[3];
	size_t ndel, nadd, i, j, o;
	int ret;

	ret = ph_plan_diff(&ctx->runs[at], nd, nw, nn, ctx->split, del, &ndel, add, &nadd);
	if (ret)
		return ret;
	if (ctx->nr - ndel + nadd > ctx->nr_slots)
		return 0;
	ret = reserve(ctx, ctx->nr - ndel + nadd);
	if (ret)
		return ret;
	for (i = 0; i < ndel; i++) {
		ret = slot_set(ctx, &ctx->runs[at + del[i]], ctx->slot[at + del[i]], false, false);
		if (ret)
			goto undo_del;
	}
	ret = ph_shadow_mid_step(ctx, false);
	if (ret)
		goto undo_del;
	for (i = 0; i < ndel; i++)
		slot_free(ctx, ctx->slot[at + del[i]]);
	for (j = 0; j < nadd; j++) {
		slots[j] = slot_alloc(ctx);
		ret = slot_set(ctx, &nw[add[j]], slots[j], true, false);
		if (ret) {
			slot_free(ctx, slots[j]);
			goto undo_add;
		}
	}
	/* The new block's slots: created ones, or the kept run's own (both in order). */
	for (i = 0, j = 0, o = 0; i < nn; i++) {
		if (j < nadd && add[j] == i) {
			kept[i] = slots[j++];
			continue;
		}
		while (ctx->runs[at + o].gpa != nw[i].gpa || ctx->runs[at + o].size != nw[i].size)
			o++;
		kept[i] = ctx->slot[at + o++];
	}
	memmove(&ctx->runs[at + nn], &ctx->runs[at + nd],
		(ctx->nr - at - nd) * sizeof(*ctx->runs));
	memmove(&ctx->slot[at + nn], &ctx->slot[at + nd],
		(ctx->nr - at - nd) * sizeof(*ctx->slot));
	memcpy(&ctx->runs[at], nw, nn * sizeof(*nw));
	memcpy(&ctx->slot[at], kept, nn * sizeof(*kept));
	ctx->nr = ctx->nr - nd + nn;
	return 1;
undo_add:
	while (j--) {
		slot_set(ctx, &nw[add[j]], slots[j], false, true);
		slot_free(ctx, slots[j]);
	}
	for (i = 0; i < ndel; i++)
		slot_take(ctx, ctx->slot[at + del[i]]);
	ph_shadow_mid_step(ctx, true);
	i = ndel;
undo_del:
	while (i--)
		slot_set(ctx, &ctx->runs[at + del[i]], ctx->slot[at + del[i]], true, true);
	return ret;
}

static void push_piece(struct pcihole_run *p, size_t *n, uint64_t first, uint64_t end,
		       uint32_t kind)
{
	/* Touching pieces of one kind are one run. */
	if (*n && p[*n - 1].reserved == kind &&
	    (p[*n - 1].gpa + p[*n - 1].size) >> PCIHOLE_PAGE_SHIFT == first) {
		set_run(&p[*n - 1], p[*n - 1].gpa >> PCIHOLE_PAGE_SHIFT, end);
		p[*n - 1].reserved = kind;
		return;
	}
	set_run(&p[*n], first, end);
	p[(*n)++].reserved = kind;
}

/*
 * The local update after page @pfn changed kind (the bits already say the new
 * one): 1 if applied, 0 if the change needs a whole re-plan (the budget would
 * bind), -errno if a slot change failed (undone).
 *
 * Only the runs holding pages @pfn - 1 .. @pfn + 1 can change (at most
 * three): each keeps its pages but @pfn, which joins whatever it now touches
 * of its own kind.  Runs outside stay maximal: the run next to the block
 * differs in kind from the block's edge page, which did not change.
 */
static int local_update(struct pcihole_ctx *ctx, uint64_t pfn)
{
	uint32_t kind = ph_page_kind(ctx->layout, pfn, ctx->split), bk[2], ak[2];
	uint64_t bf[2], be[2], af[2], ae[2];
	struct pcihole_run nw[5];
	size_t at = run_after(ctx, pfn ? pfn - 1 : 0), i, nd = 0, nb = 0, na = 0, nn = 0;
	bool was_in = false;
	int ret;

	for (i = at; i < ctx->nr && ctx->runs[i].gpa >> PCIHOLE_PAGE_SHIFT <= pfn + 1; i++) {
		const struct pcihole_run *r = &ctx->runs[i];
		uint64_t first = r->gpa >> PCIHOLE_PAGE_SHIFT;
		uint64_t end = first + (r->size >> PCIHOLE_PAGE_SHIFT);

		if (first < pfn) {
			bf[nb] = first;
			be[nb] = end < pfn ? end : pfn;
			bk[nb++] = r->reserved;
		}
		if (end > pfn + 1) {
			af[na] = first > pfn + 1 ? first : pfn + 1;
			ae[na] = end;
			ak[na++] = r->reserved;
		}
		was_in |= first <= pfn && pfn < end;
		nd++;
	}
	for (i = 0; i < nb; i++)
		push_piece(nw, &nn, bf[i], be[i], bk[i]);
	if (kind != PH_KIND_TRAPPED)
		push_piece(nw, &nn, pfn, pfn + 1, kind);
	for (i = 0; i < na; i++)
		push_piece(nw, &nn, af[i], ae[i], ak[i]);
	ret = replace(ctx, at, nd, nw, nn);
	if (ret <= 0)
		return ret;
	ctx->info.covered_pages += (uint64_t)(kind != PH_KIND_TRAPPED) - was_in;
	ctx->info.nr_runs = (uint32_t)ctx->nr;
	ctx->info.nr_slots = (uint32_t)ctx->nr;
	return 1;
}

/* The plan summary's page counts after a change the walk did not see. */
void ph_count_pages(struct pcihole_ctx *ctx, int64_t holes, int64_t shadowed)
{
	ctx->info.hole_pages += (uint64_t)holes;
	ctx->info.shadowed_pages += (uint64_t)shadowed;
}

/*
 * The page @pfn changed kind: update the slots, locally where the whole plan
 * is in slots, else by re-planning.  The bits are already changed; the caller
 * restores them on failure.
 */
int ph_runs_changed(struct pcihole_ctx *ctx, uint64_t pfn, int64_t holes,
			int64_t shadowed)
{
	int ret = 0;

	/* Local only while the plan is every maximal run, unclipped. */
	if (!ctx->info.uncovered_pages && ctx->page_size <= PCIHOLE_PAGE_SIZE)
		ret = local_update(ctx, pfn);
	if (!ret)
		return replan(ctx);	/* the summary is the walk's */
	if (ret < 0)
		return ret;
	ph_count_pages(ctx, holes, shadowed);
	return 0;
}

int pcihole_ctx_set_present(struct pcihole_ctx *ctx,
			    const struct pcihole_bdf *bdf, bool present)
{
	uint32_t before;
	bool shadowed;
	uint64_t pfn;
	int ret;

	if (!ctx || !bdf)
		return -EINVAL;
	ph_ctx_lock(ctx);
	shadowed = ctx->nr_shadows && pcihole_layout_is_shadowed(ctx->layout, bdf) == 1;
	/* pci-hole mode: the shadow page is always mapped, a slot changes kind. */
	if (shadowed && !ctx->split) {
		bool found;
		size_t at;

		ret = pcihole_layout_is_present(ctx->layout, bdf);
		if (ret < 0 || ret == present) {
			ret = ret < 0 ? ret : 0;
			goto out;
		}
		ph_shadow_lookup(ctx, bdf, &pfn, &at, &found);
		ret = ph_shadow_set_present(ctx, bdf, pfn, ctx->shadows[at].idx, present);
		if (ret > 0)
			ctx->nr_hotplugs++;
		goto out;
	}
	/*
	 * The bit goes first.  Added: reads of the function may still hit the
	 * old slot for a moment and see all-ones, as if the device were not yet
	 * there.  Removed: accesses exit and the mmio path calls them holes.
	 */
	ret = ph_layout_set_bit(ctx->layout, bdf, present, &pfn);
	/* mmio mode: the bit is all there is (stats plan on demand). */
	if (ret <= 0 || ctx->mode == PCIHOLE_MODE_MMIO) {
		if (ret > 0)
			ctx->nr_hotplugs++;
		goto out;
	}
	before = (uint32_t)ctx->nr;
	ret = ph_runs_changed(ctx, pfn, present ? -1 : 1, !shadowed ? 0 : present ? 1 : -1);
	if (ret)
		goto revert;
	ctx->nr_hotplugs++;
	ph_log(ctx, PCIHOLE_LOG_DEBUG, "%04x:%02x:%02x.%u %s: %u -> %zu slots, %u runs",
	       bdf->segment, bdf->bus, bdf->dev, bdf->fn, present ? "present" : "absent",
	       before, ctx->nr, ctx->info.nr_runs);
	ret = 1;
	goto out;
revert:
	ph_layout_set_bit(ctx->layout, bdf, !present, NULL);
out:
	ph_ctx_unlock(ctx);
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
	ph_ctx_lock(ctx);
	ret = (int)ctx->nr;
	if (cap < ctx->nr) {
		if (cap || regions)
			ret = -ENOSPC;
		goto out;
	}
	for (i = 0; i < ctx->nr; i++) {
		struct pcihole_region2 r;

		region_of(ctx, &ctx->runs[i], ctx->slot[i], ctx->runs[i].size, &r);
		memcpy(&regions[i], &r, sizeof(regions[i]));
	}
out:
	ph_ctx_unlock(ctx);
	return ret;
}

int pcihole_ctx_stats(const struct pcihole_ctx *cctx,
		      struct pcihole_ctx_stats *st)
{
	struct pcihole_ctx *ctx = (struct pcihole_ctx *)cctx;	/* for the lock */

	if (!ctx || !st)
		return -EINVAL;
	ph_ctx_lock(ctx);
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
	st->nr_hotplugs = ctx->nr_hotplugs;
	st->nr_replans = ctx->nr_replans;
	st->nr_shadowed = ctx->nr_shadows;
	ph_ctx_unlock(ctx);
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
	ph_ctx_lock(ctx);
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
	ph_ctx_unlock(ctx);
	return done;
}
