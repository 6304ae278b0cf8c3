// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The 1.0 contract with real VMs: the context owns a duplicate of the vm fd
 * (the VMM closes its own whenever it likes, and a reused fd number is never
 * touched), a context whose VM is gone is freed without KVM, VMM-owned slot
 * ids through the apply callback, REGION2 and address spaces, the VM's own
 * veto over caller-supplied caps, host-page clipping, and the hugetlb fill at
 * a 2 MiB-aligned address.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_compat.h"
#include "sys.h"
#include "testutil.h"
#include "util_kvm.h"

#define ECAM 0xb0000000u
#define SLOT_BASE 8u
#define MEMFD_MAPS "pcihole-allones"

static struct pcihole_ctx_config ro_cfg(const struct pcihole_caps *caps)
{
	return (struct pcihole_ctx_config){
		.mode = PCIHOLE_MODE_READONLY, .slot_base = SLOT_BASE, .nr_slots = 16,
		.memfd = -1, .caps = caps,
	};
}

/* Linux-style scan: hole exits it took (0 when every hole is in a slot). */
static uint64_t scan_hole_exits(struct tk_vm *vm, const struct pcihole_layout *l)
{
	struct tk_handlers h = { .layout = l };
	uint64_t before = vm->exits_hole;
	unsigned int i;

	tk_load_fn0_scan(vm, ECAM);
	assert_int_equal(tk_vm_run(vm, &h), 0);
	for (i = 0; i < 256 * 32; i++) {
		struct pcihole_bdf b = { .bus = (uint8_t)(i / 32), .dev = (uint8_t)(i % 32) };

		assert_int_equal(tk_scan_value(vm, i), pcihole_layout_is_present(l, &b) ?
				 (uint32_t)TK_DEV_VALUE : 0xffffffffu);
	}
	return vm->exits_hole - before;
}

/* Defect 1: the VMM closes its vm fd first; detach still works and frees everything. */
static void test_vm_fd_closed_before_detach(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_ctx *ctx;
	struct tk_vm vm;
	unsigned int fds;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	assert_int_equal(tk_vm_create(&vm), 0);
	fds = tk_count_fds();
	cfg = ro_cfg(&caps);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(tk_count_fds(), fds + 1);	/* our duplicate */
	assert_int_equal(scan_hole_exits(&vm, l), 0);
	close(vm.vm_fd);
	vm.vm_fd = -1;
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	assert_int_equal(tk_count_fds(), fds - 1);
	assert_int_equal(tk_count_maps(MEMFD_MAPS), 0);
	tk_vm_destroy(&vm);
	pcihole_layout_free(l);
}

/*
 * Defect 1, the dangerous half: the VMM's vm fd number is reused by another
 * VM.  Detaching the first context must not delete the second VM's slots
 * (it deleted 4 of 4 before 1.0).
 */
static void test_vm_fd_number_reused(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_ctx *ctx;
	struct tk_vm a, b;
	int num;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	assert_int_equal(tk_vm_create(&a), 0);
	cfg = ro_cfg(&caps);
	assert_int_equal(pcihole_ctx_attach(a.vm_fd, l, &cfg, &ctx), 0);
	num = a.vm_fd;
	close(a.vm_fd);
	a.vm_fd = -1;
	assert_int_equal(tk_vm_create(&b), 0);
	if (b.vm_fd != num) {
		/* tk_vm_create opens /dev/kvm first: move B's vm fd onto the old number. */
		assert_int_equal(dup2(b.vm_fd, num), num);
		close(b.vm_fd);
		b.vm_fd = num;
	}
	/* B uses the slot ids A's context holds. */
	{
		struct kvm_userspace_memory_region r = {
			.slot = SLOT_BASE, .guest_phys_addr = 0x40000000,
			.memory_size = 1 << 20, .userspace_addr = (uintptr_t)b.ram,
		};

		assert_int_equal(ioctl(b.vm_fd, KVM_SET_USER_MEMORY_REGION, &r), 0);
	}
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	/* B's slot survived: still taken. */
	assert_false(tk_slot_free(&b, SLOT_BASE));
	tk_vm_destroy(&b);
	tk_vm_destroy(&a);
	pcihole_layout_free(l);
}

/* The VM is gone: pcihole_ctx_destroy() frees the context without KVM. */
static void test_destroy_after_vm(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_ctx *ctx, *ctx2;
	struct tk_vm vm;
	unsigned int fds;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	fds = tk_count_fds();
	assert_int_equal(tk_vm_create(&vm), 0);
	cfg = ro_cfg(&caps);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(tk_count_maps(MEMFD_MAPS), 128);
	tk_vm_destroy(&vm);
	pcihole_ctx_destroy(ctx);
	assert_int_equal(tk_count_fds(), fds);
	assert_int_equal(tk_count_maps(MEMFD_MAPS), 0);
	/* The layout is free for the next VM. */
	assert_int_equal(tk_vm_create(&vm), 0);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx2), 0);
	assert_int_equal(pcihole_ctx_detach(ctx2), 0);
	tk_vm_destroy(&vm);
	pcihole_layout_free(l);
}

/* ---- VMM-owned slot ids ---------------------------------------------------- */

struct vmm {
	int vm_fd;
	uint32_t id_of[64];	/* handle -> the VMM's own slot id (0: none) */
	uint32_t next_id;	/* the VMM's allocator, far from the library's ranges */
	unsigned int calls;
};

static int vmm_apply(void *opaque, const struct pcihole_region2 *r)
{
	struct vmm *v = opaque;
	struct kvm_userspace_memory_region k = {
		.flags = r->flags, .guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size, .userspace_addr = r->userspace_addr,
	};

	v->calls++;
	if (r->slot >= 64)
		return -EINVAL;
	if (r->memory_size)
		v->id_of[r->slot] = v->next_id++;
	k.slot = v->id_of[r->slot];
	if (ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &k))
		return -errno;
	if (!r->memory_size)
		v->id_of[r->slot] = 0;
	return 0;
}

static void test_vmm_owned_slot_ids(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = { .bus = 0, .dev = 5 };
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_ctx_stats st;
	struct pcihole_ctx *ctx;
	struct tk_vm vm;
	struct vmm v = { .next_id = 300 };
	unsigned int i, live = 0;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	assert_int_equal(tk_vm_create(&vm), 0);
	v.vm_fd = vm.vm_fd;
	cfg = ro_cfg(&caps);
	cfg.apply = vmm_apply;
	cfg.apply_opaque = &v;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(v.calls, 1);	/* one run: the whole window */
	assert_false(tk_slot_free(&vm, 300));
	/* The library's fixed range is untouched: it never issued an ioctl itself. */
	for (i = 0; i < 16; i++)
		assert_true(tk_slot_free(&vm, SLOT_BASE + i));
	assert_int_equal(scan_hole_exits(&vm, l), 0);
	assert_int_equal(pcihole_ctx_set_present(ctx, &b, true), 1);	/* split: 1 delete, 2 creates */
	assert_int_equal(v.calls, 4);
	assert_int_equal(scan_hole_exits(&vm, l), 0);
	assert_int_equal(pcihole_ctx_stats(ctx, &st), 0);
	assert_int_equal(st.nr_slots, 2);
	assert_true(st.nr_replans == 0);
	for (i = 0; i < 64; i++)
		live += v.id_of[i] != 0;
	assert_int_equal(live, 2);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	for (i = 0; i < 64; i++)
		assert_int_equal(v.id_of[i], 0);
	for (i = 300; i < v.next_id; i++)
		assert_true(tk_slot_free(&vm, i));
	tk_vm_destroy(&vm);
	pcihole_layout_free(l);
}

/* ---- REGION2 and address spaces ---------------------------------------------- */

static void test_region2(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_region r;
	struct pcihole_ctx *ctx;
	struct tk_vm vm;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	assert_int_equal(tk_vm_create(&vm), 0);
	cfg = ro_cfg(&caps);
	cfg.flags = PCIHOLE_CTX_REGION2;
	if (ioctl(vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2) <= 0) {
		assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EOPNOTSUPP);
		tk_vm_destroy(&vm);
		pcihole_layout_free(l);
		print_message("no KVM_CAP_USER_MEMORY2: refused as it must be; skipped\n");
		skip();
	}
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_regions(ctx, &r, 1), 1);
	assert_int_equal(r.slot, SLOT_BASE);
	assert_false(tk_slot_free(&vm, SLOT_BASE));
	assert_int_equal(scan_hole_exits(&vm, l), 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	assert_true(tk_slot_free(&vm, SLOT_BASE));
	tk_vm_destroy(&vm);
	pcihole_layout_free(l);
}

/*
 * Address space 1 (x86 SMM): the same slot ids and window as a context in
 * address space 0 do not collide; an address space KVM lacks is refused.
 */
static void test_address_space(void **state)
{
	struct pcihole_layout *l0 = tu_q35_layout(), *l1 = tu_q35_layout();
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_region r;
	struct pcihole_ctx *c0, *c1, *cx = NULL;
	struct tk_vm vm;
	int nas;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	assert_int_equal(tk_vm_create(&vm), 0);
	nas = ioctl(vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MULTI_ADDRESS_SPACE);
	cfg = ro_cfg(&caps);
	cfg.as_id = (uint16_t)(nas > 1 ? nas : 1);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l1, &cfg, &cx), -EINVAL);
	assert_null(cx);
	if (nas < 2) {
		tk_vm_destroy(&vm);
		pcihole_layout_free(l0);
		pcihole_layout_free(l1);
		print_message("one address space here: skipped\n");
		skip();
	}
	cfg.as_id = 1;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l1, &cfg, &c1), 0);
	assert_int_equal(pcihole_ctx_regions(c1, &r, 1), 1);
	assert_int_equal(r.slot, 1u << 16 | SLOT_BASE);
	/* Same ids, same window, address space 0: no overlap with as 1's slots. */
	cfg.as_id = 0;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l0, &cfg, &c0), 0);
	assert_int_equal(scan_hole_exits(&vm, l0), 0);
	assert_int_equal(pcihole_ctx_detach(c0), 0);
	assert_int_equal(pcihole_ctx_detach(c1), 0);
	tk_vm_destroy(&vm);
	pcihole_layout_free(l0);
	pcihole_layout_free(l1);
}

/* ---- the VM's veto over caller caps (defect 7) ------------------------------- */

/*
 * A VM type that refuses read-only slots (SEV-ES, TDX, pKVM guests) answers
 * KVM_CHECK_EXTENSION(KVM_CAP_READONLY_MEM) with 0 on its vm fd.  This host
 * cannot create one, so the test build's query hook plays it for our VM.
 */
static bool no_readonly(int fd, unsigned long req, void *arg, int *ret)
{
	long cap = (long)arg;

	/*
	 * Such a VM refuses every slot over host memory the hole backends use:
	 * read-only slots, and PCI hole slots (either numbering) too.
	 */
	(void)fd;
	if (req != KVM_CHECK_EXTENSION ||
	    (cap != KVM_CAP_READONLY_MEM && cap != PCIHOLE_KVM_CAP_PCI_HOLE_MEM &&
	     cap != PCIHOLE_KVM_CAP_PCI_HOLE_MEM_612))
		return false;
	*ret = 0;
	return true;
}

/* Whatever an assertion left behind: the kernel answers again. */
static int unfake(void **state)
{
	(void)state;
	ph_sys_query_fake = NULL;
	return 0;
}

static void test_vm_veto_over_caller_caps(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_ctx *ctx;
	struct tk_vm vm;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	assert_int_equal(tk_vm_create(&vm), 0);
	assert_int_equal(caps.readonly_mem, 1);	/* the caller's caps say yes */
	/* The probe itself (asked below when cfg.caps is NULL) runs unfaked, first. */
	assert_int_equal(pcihole_probe(-1, false, &caps), 0);
	ph_sys_query_fake = no_readonly;
	cfg = ro_cfg(&caps);
	cfg.mode = PCIHOLE_MODE_AUTO;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_mode(ctx), PCIHOLE_MODE_MMIO);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	cfg.mode = PCIHOLE_MODE_READONLY;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EOPNOTSUPP);
	/* Without caller caps the probe's answer gets the same veto. */
	cfg.mode = PCIHOLE_MODE_AUTO;
	cfg.caps = NULL;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_mode(ctx), PCIHOLE_MODE_MMIO);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	ph_sys_query_fake = NULL;
	tk_vm_destroy(&vm);
	pcihole_layout_free(l);
}

/* ---- host-page clipping in a context ---------------------------------------- */

static void test_page_size_clipping(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = { .bus = 0, .dev = 0, .fn = 0 };
	struct pcihole_caps caps;
	struct pcihole_ctx_config cfg;
	struct pcihole_ctx_stats st;
	struct pcihole_region r[4];
	struct pcihole_ctx *ctx;
	struct tk_vm vm;
	int n, i;

	(void)state;
	tk_require_mode(PCIHOLE_MODE_READONLY, &caps);
	assert_int_equal(tk_vm_create(&vm), 0);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	cfg = ro_cfg(&caps);
	cfg.page_size = 64 << 10;	/* as on a 64 KiB-page arm64 host */
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	n = pcihole_ctx_regions(ctx, r, 4);
	assert_int_equal(n, 1);
	for (i = 0; i < n; i++) {
		assert_int_equal(r[i].guest_phys_addr % (64 << 10), 0);
		assert_int_equal(r[i].memory_size % (64 << 10), 0);
	}
	assert_int_equal(pcihole_ctx_stats(ctx, &st), 0);
	assert_true(st.uncovered_pages == 15);	/* 00:00.1-7 and 00:01.0-7 */
	/* The scan reads fn 0 of devices 0 and 1 in the clipped page: one hole exit (00:01.0). */
	assert_int_equal(scan_hole_exits(&vm, l), 1);
	/* Hotplug with clipping re-plans (a page can move a boundary). */
	b.dev = 9;
	assert_int_equal(pcihole_ctx_set_present(ctx, &b, true), 1);
	n = pcihole_ctx_regions(ctx, r, 4);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++)
		assert_int_equal(r[i].guest_phys_addr % (64 << 10), 0);
	assert_int_equal(scan_hole_exits(&vm, l), 1 + 1);	/* 00:01.0, and 00:08.0 shares 00:09.0's 64 KiB */
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	tk_vm_destroy(&vm);
	pcihole_layout_free(l);
}

/* ---- hugetlb fill alignment (defect 5) ---------------------------------------- */

struct mmap_log {
	unsigned int n;
	void *got[16];
	size_t len[16];
	int flags[16];
	int fd[16];
};

static struct mmap_log mlog;

static void trace(void *want, void *got, size_t len, int flags, int fd)
{
	(void)want;
	if (mlog.n < 16) {
		mlog.got[mlog.n] = got;
		mlog.len[mlog.n] = len;
		mlog.flags[mlog.n] = flags;
		mlog.fd[mlog.n] = fd;
		mlog.n++;
	}
}

static void test_hugetlb_fill_aligned(void **state)
{
	enum pcihole_backing backing;
	unsigned int i, hugefd_maps = 0;
	char old[32] = "";
	FILE *f;
	int fd;

	(void)state;
	/* Two reserved 2 MiB pages, as an admin would set vm.nr_hugepages. */
	f = fopen("/proc/sys/vm/nr_hugepages", "r");
	if (f) {
		if (!fgets(old, sizeof(old), f))
			old[0] = 0;
		fclose(f);
	}
	f = old[0] ? fopen("/proc/sys/vm/nr_hugepages", "w") : NULL;
	if (!f || fprintf(f, "%d\n", atoi(old) + 2) < 0 || fclose(f)) {
		print_message("cannot reserve hugetlb pages (not root?): skipped\n");
		skip();
	}
	memset(&mlog, 0, sizeof(mlog));
	ph_sys_mmap_trace = trace;
	fd = -1;
	i = (unsigned int)pcihole_allones_memfd(2 << 20, &fd, &backing);
	ph_sys_mmap_trace = NULL;
	f = fopen("/proc/sys/vm/nr_hugepages", "w");
	if (f) {
		fputs(old, f);
		fclose(f);
	}
	assert_int_equal(i, 0);
	if (backing != PCIHOLE_BACKING_HUGETLB) {
		close(fd);
		print_message("kernel gave no hugetlb page (backing %d): skipped\n", backing);
		skip();
	}
	/*
	 * The fill maps the hugetlb file MAP_FIXED into a reservation: that
	 * reservation must have room to align (2 MiB + 2 MiB - 4 KiB), not rely
	 * on the kernel aligning a 2 MiB anonymous mapping by itself, which
	 * Debian 12's 6.1 does not do.
	 */
	for (i = 0; i < mlog.n; i++) {
		if (mlog.fd[i] != fd || !(mlog.flags[i] & MAP_FIXED))
			continue;
		hugefd_maps++;
		assert_int_equal((uintptr_t)mlog.got[i] % (2 << 20), 0);
		assert_true(i > 0 && mlog.fd[i - 1] == -1 &&
			    mlog.len[i - 1] >= (4 << 20) - 4096);
	}
	assert_int_equal(hugefd_maps, 1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_fd_closed_before_detach),
		cmocka_unit_test(test_vm_fd_number_reused),
		cmocka_unit_test(test_destroy_after_vm),
		cmocka_unit_test(test_vmm_owned_slot_ids),
		cmocka_unit_test(test_region2),
		cmocka_unit_test(test_address_space),
		cmocka_unit_test_teardown(test_vm_veto_over_caller_caps, unfake),
		cmocka_unit_test(test_page_size_clipping),
		cmocka_unit_test(test_hugetlb_fill_aligned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
