/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The hole backends: libpcihole's context (what a C VMM copies: probe once
 * per process, attach with a range of slot ids), or the naive baseline made
 * by hand; and hotplug, from the vCPU thread or a second one (--churn).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "launch.h"

/*
 * The seed thread's baseline: KVM_MEM_READONLY slots over private anonymous
 * memory, filled with 0xff.  Works on any KVM since 3.16 and costs 4 KiB of
 * real memory per hole page and per VM: 256 MiB for a 256-bus window (the
 * thread's "8192 pages, 32 MiB" counts only the pages one scan touches).
 * Slots made by hand from the plan, without the library's backend, the way
 * a VMM would do it without libpcihole.
 */
static void setup_naive_readonly(struct vm *vm, struct pcihole_layout *layout,
				 const struct options *o, struct backend *b)
{
	struct pcihole_plan_info info;
	struct pcihole_run *runs;
	size_t n = pcihole_plan_count(layout);
	uint32_t budget = vm->nr_memslots - 1;
	int nr;

	if (!kvm_check(vm->vm_fd, KVM_CAP_READONLY_MEM))
		die(EXIT_UNSUPPORTED, "mode naive-readonly: kernel lacks KVM_CAP_READONLY_MEM");
	if (o->slot_budget < budget)
		budget = o->slot_budget;

	runs = calloc(n ? n : 1, sizeof(*runs));
	b->regions = calloc(n ? n : 1, sizeof(*b->regions));
	b->naive_maps = calloc(n ? n : 1, sizeof(*b->naive_maps));
	if (!runs || !b->regions || !b->naive_maps)
		die(EXIT_FAIL, "out of memory");
	nr = pcihole_plan(layout, budget, runs, n, &info);
	if (nr < 0)
		die(EXIT_FAIL, "pcihole_plan: %s", strerror(-nr));

	for (int i = 0; i < nr; i++) {
		void *p = mmap(NULL, runs[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		int r;

		if (p == MAP_FAILED)
			die(EXIT_FAIL, "naive-readonly: %s", strerror(errno));
		memset(p, 0xff, runs[i].size);
		b->naive_maps[i] = p;
		r = pcihole_run_to_region(&runs[i], 1 + (uint32_t)i, KVM_MEM_READONLY,
					  (uintptr_t)p, &b->regions[i]);
		if (r < 0)
			die(EXIT_FAIL, "pcihole_run_to_region: %s", strerror(-r));
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &b->regions[i]) < 0)
			die(EXIT_FAIL, "naive-readonly slot %d: %s", i + 1, strerror(errno));
		b->allones_bytes += runs[i].size;
		b->mapped_bytes += runs[i].size;
		b->nr_mappings++;
	}
	b->backing = "anon";
	b->nr_slots = (uint32_t)nr;
	b->nr_runs = info.nr_runs;
	b->uncovered_pages = info.uncovered_pages;
	free(runs);
}

static const char *backing_name(uint32_t backing)
{
	switch (backing) {
	case PCIHOLE_BACKING_HUGETLB:
		return "hugetlb";
	case PCIHOLE_BACKING_THP:
		return "thp";
	case PCIHOLE_BACKING_4K:
		return "4k";
	default:
		return "none";
	}
}

/*
 * libpcihole's log: the last error is kept for our own one-line message
 * (exit 3 names the missing capability); everything is shown with -v.
 */
struct lib_log {
	bool verbose;
	char last_err[256];
};

static void lib_log_fn(void *opaque, enum pcihole_log_level level, const char *msg)
{
	struct lib_log *lg = opaque;

	if (level <= PCIHOLE_LOG_ERR)
		snprintf(lg->last_err, sizeof(lg->last_err), "%s", msg);
	if (lg->verbose)
		fprintf(stderr, "libpcihole: %s\n", msg);
}

static void __attribute__((noreturn))
mode_unavailable(enum launch_mode mode, const struct pcihole_caps *caps,
		 const struct lib_log *lg, bool shadow)
{
	if (mode == LM_PCI_HOLE && shadow && caps->pci_hole_works)
		die(EXIT_UNSUPPORTED, "mode pci-hole: no --shadow (shadowed runs would need "
		    "KVM_MEM_READONLY slots beside the PCI_HOLE ones); use --mode readonly");
	if (mode == LM_PCI_HOLE && !caps->pci_hole_cap)
		die(EXIT_UNSUPPORTED, "mode pci-hole: the kernel lacks KVM_CAP_PCI_HOLE_MEM "
		    "(capability %d, KVM_MEM_PCI_HOLE from kernel/patches)",
		    PCIHOLE_KVM_CAP_PCI_HOLE_MEM);
	if (mode == LM_PCI_HOLE)
		die(EXIT_UNSUPPORTED, "mode pci-hole: KVM_CAP_PCI_HOLE_MEM is answered, but a "
		    "KVM_MEM_PCI_HOLE slot failed the functional probe (no all-ones without an exit)");
	if (mode == LM_READONLY && !caps->readonly_mem)
		die(EXIT_UNSUPPORTED, "mode readonly: the kernel lacks KVM_CAP_READONLY_MEM");
	die(EXIT_UNSUPPORTED, "mode %s: not available: %s", mode_names[mode],
	    lg->last_err[0] ? lg->last_err : "(no reason given)");
}

/*
 * Shadow pages cannot be mapped inside a 2 MiB hugetlb mapping, so with
 * --shadow a hugetlb all-ones memfd (what pcihole_allones_memfd() prefers
 * where the admin reserved huge pages) is replaced by an ordinary one, made
 * the way the library makes it: 0xff, then sealed.
 */
static int small_allones_memfd(int *out)
{
	uint64_t size = PCIHOLE_ALLONES_CHUNK_DEFAULT;
	int fd = memfd_create("pcihole-launch-allones", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t buf[4096];
	int r = 0;

	if (fd < 0)
		return -errno;
	memset(buf, 0xff, sizeof(buf));
	for (uint64_t off = 0; off < size && !r; off += sizeof(buf))
		if (pwrite(fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf))
			r = -EIO;
	if (!r && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW |
		       F_SEAL_SEAL) < 0)
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

/*
 * --shadow: every function gets its shadow page, filled from its device
 * model, the ones plugged in later too (until then they stay holes, and
 * plugging them changes a mapping under a slot, not a slot).
 */
static void setup_shadow(struct options *o, struct backend *b)
{
	uint64_t t0 = now_ns();
	char a[PCIHOLE_BDF_STRLEN];

	for (size_t i = 0; i < o->nr_fns; i++) {
		struct function *f = &o->fns[i];
		uint8_t page[PCIHOLE_PAGE_SIZE];
		void *p;
		int r;

		function_page(f, page);
		r = pcihole_ctx_shadow(b->ctx, &f->bdf, page, &p);
		if (r < 0)
			die(EXIT_FAIL, "pcihole_ctx_shadow(%s): %s", bdf_str(&f->bdf, a),
			    strerror(-r));
		f->shadow = p;
		b->nr_shadowed++;
	}
	b->shadow_ns = now_ns() - t0;
}

/*
 * The library way, and what a C VMM copies: probe once per process, then
 * attach a context to the VM with a range of slot ids of its own.  The
 * context creates one slot per hole run (readonly: over one sealed all-ones
 * memfd; pci-hole: no memory at all; mmio: none) and the mmio path covers
 * whatever the slots do not.
 */
static void setup_ctx(struct vm *vm, struct pcihole_layout *layout,
		      struct options *o, struct backend *b)
{
	static const uint32_t lib_mode[] = {
		[LM_AUTO] = PCIHOLE_MODE_AUTO,
		[LM_PCI_HOLE] = PCIHOLE_MODE_PCI_HOLE,
		[LM_READONLY] = PCIHOLE_MODE_READONLY,
		[LM_MMIO] = PCIHOLE_MODE_MMIO,
	};
	static struct lib_log lg;
	struct pcihole_ctx_config cfg = { 0 };
	struct pcihole_ctx_stats st;
	uint64_t t0 = now_ns();
	bool slots;
	int r;

	lg.verbose = o->verbose;
	r = pcihole_probe(vm->kvm_fd, false, &b->caps);
	if (r < 0)
		die(EXIT_UNSUPPORTED, "pcihole_probe: %s", strerror(-r));
	b->probe_ns = now_ns() - t0;

	/*
	 * With shadows, auto is the library's choice too: pci-hole (read-only
	 * slots for the shadow pages) where KVM has both kinds of slot.
	 */
	cfg.mode = lib_mode[o->mode];
	cfg.flags = o->prefault ? PCIHOLE_CTX_PREFAULT : 0;
	if (o->shadow)
		cfg.flags |= PCIHOLE_CTX_SHADOW;
	cfg.slot_base = 1;			/* slot 0 is RAM */
	cfg.nr_slots = vm->nr_memslots - 1;
	if (o->slot_budget < cfg.nr_slots)
		cfg.nr_slots = o->slot_budget;
	/*
	 * The all-ones memfd is a host-wide thing: a VMM makes it once (or
	 * gets it from a management daemon) and passes it to every VM's
	 * context, so it is made here, timed apart from the attach.  Only when
	 * readonly is what we will get: pci-hole needs no memory at all.
	 */
	cfg.memfd = -1;
	if (cfg.mode == PCIHOLE_MODE_READONLY ||
	    (cfg.mode == PCIHOLE_MODE_AUTO && !b->caps.pci_hole_works && b->caps.readonly_mem)) {
		enum pcihole_backing kind;

		t0 = now_ns();
		r = pcihole_allones_memfd(0, &cfg.memfd, &kind);
		if (r < 0)
			die(EXIT_FAIL, "pcihole_allones_memfd: %s", strerror(-r));
		/*
		 * PCIHOLE_LAUNCH_TEST_OWN_MEMFD: take this path on a host without
		 * huge pages too (tests/launch_shadow.sh).
		 */
		if (o->shadow && (kind == PCIHOLE_BACKING_HUGETLB ||
				  getenv("PCIHOLE_LAUNCH_TEST_OWN_MEMFD"))) {
			close(cfg.memfd);
			r = small_allones_memfd(&cfg.memfd);
			if (r < 0)
				die(EXIT_FAIL, "all-ones memfd for --shadow: %s", strerror(-r));
			kind = PCIHOLE_BACKING_4K;
		}
		b->memfd_ns = now_ns() - t0;
		b->memfd_backing = kind;
	}
	cfg.caps = &b->caps;
	cfg.log = lib_log_fn;
	cfg.log_opaque = &lg;

	t0 = now_ns();
	r = pcihole_ctx_attach(vm->vm_fd, layout, &cfg, &b->ctx);
	if (r == -EOPNOTSUPP)
		mode_unavailable(o->mode, &b->caps, &lg, o->shadow);
	if (r < 0)
		die(EXIT_FAIL, "pcihole_ctx_attach: %s%s%s", strerror(-r),
		    lg.last_err[0] ? ": " : "", lg.last_err);
	b->setup_ns = now_ns() - t0;
	/* The context's mappings keep the memory; a VMM keeps the fd for the next VM. */
	if (cfg.memfd >= 0)
		close(cfg.memfd);

	if (o->shadow)
		setup_shadow(o, b);
	r = pcihole_ctx_stats(b->ctx, &st);
	if (r < 0)
		die(EXIT_FAIL, "pcihole_ctx_stats: %s", strerror(-r));
	switch (pcihole_ctx_mode(b->ctx)) {
	case PCIHOLE_MODE_PCI_HOLE:
		b->mode = LM_PCI_HOLE;
		break;
	case PCIHOLE_MODE_READONLY:
		b->mode = LM_READONLY;
		break;
	default:
		b->mode = LM_MMIO;
		break;
	}
	/* A passed-in memfd's backing is what pcihole_allones_memfd() said. */
	b->backing = backing_name(b->memfd_backing ? b->memfd_backing : st.backing);
	b->nr_slots = st.nr_slots;
	b->nr_runs = st.nr_runs;
	b->uncovered_pages = st.uncovered_pages;
	b->allones_bytes = st.memfd_bytes;
	b->nr_mappings = st.nr_mappings;
	b->mapped_bytes = st.mapped_bytes;

	/*
	 * Pre-fault the slots (readonly: the memfd; pci-hole: the kernel's
	 * all-ones block) before the vCPU first runs, so the guest's first scan
	 * (its boot) takes no nested page faults.  Only where the kernel has
	 * KVM_PRE_FAULT_MEMORY (6.10+, TDP MMU).
	 */
	slots = pcihole_ctx_mode(b->ctx) == PCIHOLE_MODE_READONLY ||
		pcihole_ctx_mode(b->ctx) == PCIHOLE_MODE_PCI_HOLE;
	if (slots && !o->prefault)
		b->prefault_bytes = -ECANCELED;
	if (slots && o->prefault) {
		t0 = now_ns();
		b->prefault_bytes = pcihole_ctx_prefault(b->ctx, vm->vcpu_fd);
		b->prefault_ns = now_ns() - t0;
	}
}

void setup_backend(struct vm *vm, struct pcihole_layout *layout,
			  struct options *o, struct backend *b)
{
	memset(b, 0, sizeof(*b));
	b->mode = o->mode;
	b->prefault_bytes = -ENODATA;	/* nothing to pre-fault */
	if (o->mode == LM_NAIVE_READONLY) {
		uint64_t t0 = now_ns();

		setup_naive_readonly(vm, layout, o, b);
		b->setup_ns = now_ns() - t0;
	} else {
		setup_ctx(vm, layout, o, b);
	}
}

/*
 * Hotplug, the way a VMM does it while the vCPU is stopped (or from another
 * thread: the mmio path stays lock-free): the device model is ready first,
 * then the library marks the function present and swaps only the slots that
 * differ, delete-then-create; an access in between exits to the mmio path,
 * which answers from the presence map.
 */
void do_hotplug(struct launcher *l)
{
	struct pcihole_ctx_stats st;
	char a[PCIHOLE_BDF_STRLEN];
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < l->o->nr_fns; i++) {
		struct function *f = &l->o->fns[i];
		int r;

		if (!f->hotplug && !f->unplug)
			continue;
		r = pcihole_ctx_set_present(l->backend.ctx, &f->bdf, f->hotplug);
		if (r < 0)
			die(EXIT_FAIL, "pcihole_ctx_set_present(%s, %s): %s", bdf_str(&f->bdf, a),
			    f->hotplug ? "present" : "absent", strerror(-r));
		l->hotplug_changes++;
	}
	l->hotplug_ns = now_ns() - t0;
	if (pcihole_ctx_stats(l->backend.ctx, &st) == 0)
		l->slots_after_hotplug = st.nr_slots;
}

/*
 * --churn: hotplug from a thread other than the vCPU's, as a VMM's device
 * manager does, while the guest keeps scanning.  Each toggle deletes and
 * creates slots under the running guest; an access in between exits, and
 * handle_mmio() answers from the presence map, so the guest sees either the
 * device or all-ones, never anything else.
 */
static void *churn_main(void *arg)
{
	struct launcher *l = arg;
	struct function *f = NULL;

	for (size_t i = 0; i < l->o->nr_fns; i++)
		if (l->o->fns[i].churn)
			f = &l->o->fns[i];
	while (f && !__atomic_load_n(&l->churn_stop, __ATOMIC_ACQUIRE)) {
		int r = pcihole_ctx_set_present(l->backend.ctx, &f->bdf, false);

		if (r >= 0)
			r = pcihole_ctx_set_present(l->backend.ctx, &f->bdf, true);
		if (r < 0) {
			l->churn_error = r;
			break;
		}
		l->churn_toggles += 2;
	}
	return NULL;
}

void churn_start(struct launcher *l)
{
	int r = pthread_create(&l->churn_thread, NULL, churn_main, l);

	if (r)
		die(EXIT_FAIL, "--churn: pthread_create: %s", strerror(r));
}

void churn_stop(struct launcher *l)
{
	__atomic_store_n(&l->churn_stop, true, __ATOMIC_RELEASE);
	pthread_join(l->churn_thread, NULL);
	if (l->churn_error)
		die(EXIT_FAIL, "--churn: pcihole_ctx_set_present: %s", strerror(-l->churn_error));
}

void backend_free(struct backend *b)
{
	int r;

	/*
	 * Detach while the VM lives (it deletes the slots); if that fails for
	 * good, destroy: the slots go with the VM, which vm_destroy() closes.
	 */
	if (b->ctx && (r = pcihole_ctx_detach(b->ctx)) < 0) {
		fprintf(stderr, PROG ": pcihole_ctx_detach: %s\n", strerror(-r));
		pcihole_ctx_destroy(b->ctx);
	}
	for (uint32_t i = 0; b->naive_maps && i < b->nr_slots; i++)
		munmap(b->naive_maps[i], b->regions[i].memory_size);
	free(b->naive_maps);
	free(b->regions);
}
