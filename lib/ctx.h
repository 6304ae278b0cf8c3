/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The context's state, shared by ctx.c (slots, plan, hotplug) and shadow.c
 * (shadow pages).  Library-internal: everything is ph_*.
 */
#ifndef PH_CTX_H
#define PH_CTX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pcihole.h"

/* Log lines queued under the lock and delivered after it is dropped. */
#define PH_LOGQ 8
#define PH_LOG_LEN 200

struct ph_group {
	uint64_t gpa;		/* chunk-aligned guest address the host range mirrors */
	uint64_t size;		/* whole chunks */
	uint8_t *hva;		/* host address of @gpa */
};

struct ph_shadow {
	uint64_t pfn;		/* the function's page */
	uint32_t idx;		/* its page in the shadow memfd */
	uint32_t reserved;
};

struct ph_logq {
	unsigned int n, dropped;
	enum pcihole_log_level level[PH_LOGQ];
	char msg[PH_LOGQ][PH_LOG_LEN];
};

struct pcihole_ctx {
	pthread_mutex_t lock;
	int vm_fd;		/* our own duplicate, or -1 */
	struct pcihole_layout *layout;
	enum pcihole_mode mode;
	uint32_t flags;
	uint32_t kvm_flags;	/* KVM_MEM_READONLY or the PCI hole flag that worked */
	uint32_t slot_base;	/* 0 with an apply callback: slots are handles */
	uint32_t nr_slots;
	uint32_t as_id;
	bool region2;		/* KVM_SET_USER_MEMORY_REGION2 for our slots */
	/*
	 * pci-hole mode: runs are split where hole and shadowed pages meet, the
	 * holes get PCI_HOLE slots, the shadowed pages KVM_MEM_READONLY slots
	 * over their shadow pages (run.reserved is the PH_KIND_*).
	 */
	bool split;
	uint64_t page_size;
	struct pcihole_caps caps;
	pcihole_log_fn log;
	void *log_opaque;
	pcihole_apply_fn apply;
	void *apply_opaque;
	struct ph_logq logq;	/* under @lock */
	bool locked;		/* ph_log queues instead of calling out */

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
	uint64_t nr_hotplugs, nr_replans;

	/* shadowed functions (PCIHOLE_CTX_SHADOW), sorted by pfn */
	int allones_fd;		/* readonly: to map all-ones back under a slot */
	int shadow_fd;
	uint8_t *shadow_rw;	/* the VMM's writable view of every shadow page */
	struct ph_shadow *shadows;
	size_t nr_shadows;
	uint8_t *shadow_used;	/* PCIHOLE_SHADOW_MAX entries */
	/*
	 * A mapping change that must come after a slot diff's deletes and before
	 * its creates (pci-hole unshadow: the READONLY slot over the page goes
	 * first, the page after), undone with them.
	 */
	struct {
		bool active, done;
		uint64_t pfn;
		uint32_t idx;
	} mid;

	/* scratch for re-planning, kept to avoid allocating on every hotplug */
	struct pcihole_run *new_runs;
	uint32_t *new_slot, *del, *add;
};

/* ctx.c */
__attribute__((format(printf, 3, 4)))
void ph_log(struct pcihole_ctx *ctx, enum pcihole_log_level level, const char *fmt, ...);
void ph_ctx_lock(struct pcihole_ctx *ctx);
void ph_ctx_unlock(struct pcihole_ctx *ctx);
/* Host address of @gpa in the groups' ranges (readonly, or pci-hole with shadows). */
uint64_t ph_hva_of(const struct pcihole_ctx *ctx, uint64_t gpa);
/*
 * The page @pfn changed kind: update the slots (the bits already say the new
 * kind; the caller restores them on failure).  Returns 0 or -errno (undone).
 */
int ph_runs_changed(struct pcihole_ctx *ctx, uint64_t pfn, int64_t holes, int64_t shadowed);
/* The plan summary's page counts after a change the walk did not see. */
void ph_count_pages(struct pcihole_ctx *ctx, int64_t holes, int64_t shadowed);

/* shadow.c */
/* The shadow memfd and the VMM's view of it, at attach. */
int ph_shadow_setup(struct pcihole_ctx *ctx);
/*
 * The pending mapping change between a slot diff's deletes and creates
 * (ctx->mid), or with @undo its reversal.  0 or -errno (nothing changed).
 */
int ph_shadow_mid_step(struct pcihole_ctx *ctx, bool undo);
/*
 * @bdf's page and where its entry is (or would go) in ctx->shadows.  Returns
 * 0, -EINVAL / -ENOENT for @bdf, -EOPNOTSUPP without PCIHOLE_CTX_SHADOW.
 */
int ph_shadow_lookup(const struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf,
		     uint64_t *pfn, size_t *at, bool *found);
/*
 * Hotplug of a shadowed function where the page under the slot changes and
 * no slot does (readonly, mmio).  Returns 1 or -errno (undone).
 */
int ph_shadow_set_present(struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf,
			  uint64_t pfn, uint32_t idx, bool present);

#endif
