// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The probe (capabilities, the functional PCI_HOLE probe, the per-process
 * cache), mode names, attach's argument and capability checks, the log
 * callback, and pre-faulting.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "util_kvm.h"
#include "../lib/kvm.h"
#include "../lib/sys.h"

static void test_mode_names(void **state)
{
	int m;

	(void)state;
	for (m = PCIHOLE_MODE_AUTO; m <= PCIHOLE_MODE_MMIO; m++)
		assert_int_equal(pcihole_mode_parse(pcihole_mode_name((enum pcihole_mode)m)), m);
	assert_string_equal(pcihole_mode_name(PCIHOLE_MODE_PCI_HOLE), "pci-hole");
	assert_string_equal(pcihole_mode_name(PCIHOLE_MODE_READONLY), "readonly");
	assert_null(pcihole_mode_name((enum pcihole_mode)4));
	assert_null(pcihole_mode_name((enum pcihole_mode)-1));
	assert_int_equal(pcihole_mode_parse("PCI-HOLE"), -EINVAL);
	assert_int_equal(pcihole_mode_parse(""), -EINVAL);
	assert_int_equal(pcihole_mode_parse("mmio "), -EINVAL);
	assert_int_equal(pcihole_mode_parse(NULL), -EINVAL);
}

static void test_probe(void **state)
{
	struct pcihole_caps a, b, c;
	int kfd, expect = tk_expect_mode();

	(void)state;
	tk_require_kvm();
	assert_int_equal(pcihole_probe(-1, false, &a), 0);
	kfd = tk_kvm_fd();
	assert_int_equal(a.readonly_mem, ioctl(kfd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM));
	assert_int_equal(a.nr_memslots, ioctl(kfd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS));
	assert_int_equal(a.pci_hole_cap,
			 ioctl(kfd, KVM_CHECK_EXTENSION, PCIHOLE_KVM_CAP_PCI_HOLE_MEM) > 0);
	assert_true(a.nr_memslots > 0);
	if (!a.pci_hole_cap)
		assert_int_equal(a.pci_hole_works, 0);
	assert_int_equal(a.reserved[0] | a.reserved[1] | a.reserved[2], 0);
	/* Cached, then fresh through the caller's fd: the same answers. */
	assert_int_equal(pcihole_probe(-1, false, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(pcihole_probe(kfd, true, &c), 0);
	assert_memory_equal(&a, &c, sizeof(a));
	assert_int_equal(fcntl(kfd, F_GETFD), FD_CLOEXEC);	/* the caller's fd stays open */
	print_message("probe: readonly_mem %u, nr_memslots %u, pci_hole cap %u works %u, "
		      "pre_fault_memory %u\n", a.readonly_mem, a.nr_memslots, a.pci_hole_cap,
		      a.pci_hole_works, a.pre_fault_memory);
	if (expect == PCIHOLE_MODE_PCI_HOLE)
		assert_int_equal(a.pci_hole_works, 1);
	if (expect == PCIHOLE_MODE_READONLY)
		assert_int_equal(a.pci_hole_works, 0);
	assert_int_equal(pcihole_probe(-1, false, NULL), -EINVAL);
	close(kfd);
}

/* A failed fresh probe reports the error and leaves the cache alone. */
static void test_probe_bad_fd(void **state)
{
	struct pcihole_caps a, b;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	(void)state;
	tk_require_kvm();
	assert_int_equal(pcihole_probe(-1, false, &a), 0);
	memset(&b, 0x5a, sizeof(b));
	assert_true(pcihole_probe(fd, true, &b) < 0);
	close(fd);
	assert_int_equal(pcihole_probe(-1, false, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void *probe_thread(void *arg)
{
	struct pcihole_caps *c = arg;

	return (void *)(intptr_t)pcihole_probe(-1, c->reserved[0] != 0, c);
}

/* Concurrent callers (some forcing a fresh probe) all get the same answer. */
static void test_probe_threads(void **state)
{
	struct pcihole_caps ref, c[6];
	pthread_t th[6];
	void *ret;
	int i;

	(void)state;
	tk_require_kvm();
	assert_int_equal(pcihole_probe(-1, false, &ref), 0);
	for (i = 0; i < 6; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].reserved[0] = i & 1;
		assert_int_equal(pthread_create(&th[i], NULL, probe_thread, &c[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], &ret);
		assert_int_equal((intptr_t)ret, 0);
		assert_memory_equal(&c[i], &ref, sizeof(ref));
	}
}

/*
 * The functional probe's guest, tried against slots whose behaviour we know:
 * it must accept only "reads all-ones without exit, write exits".
 */
static void test_probe_slot(void **state)
{
	struct pcihole_caps caps;
	void *ones, *zero, *ram;
	int kfd, fd, ret;

	(void)state;
	tk_require_kvm();
	kfd = tk_kvm_fd();
	assert_int_equal(pcihole_probe(kfd, false, &caps), 0);
	assert_int_equal(pcihole_allones_memfd(4096, &fd, NULL), 0);
	assert_int_equal(pcihole_allones_map(fd, 4096, 4096, &ones), 0);
	zero = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ram = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(ram, 0xff, 4096);
	/* READONLY over all-ones behaves like a PCI hole: accepted. */
	assert_int_equal(ph_probe_slot(kfd, KVM_MEM_READONLY, (uintptr_t)ones), 1);
	/* READONLY over zeros: the read is wrong. */
	assert_int_equal(ph_probe_slot(kfd, KVM_MEM_READONLY, (uintptr_t)zero), 0);
	/* Writable RAM full of 0xff: the read is right but the write never exits. */
	assert_int_equal(ph_probe_slot(kfd, 0, (uintptr_t)ram), 0);
	/* The real thing: refused (EINVAL) on kernels without it, else it must work. */
	ret = ph_probe_slot(kfd, caps.pci_hole_works ? caps.pci_hole_flag :
			    PCIHOLE_KVM_MEM_PCI_HOLE, 0);
	assert_int_equal(ret, (int)caps.pci_hole_works);
	/* An unknown flag bit is refused by every kernel: a clean "no". */
	assert_int_equal(ph_probe_slot(kfd, 1u << 14, 0), 0);
	munmap(zero, 4096);
	munmap(ram, 4096);
	pcihole_allones_unmap(ones, 4096);
	close(fd);
	close(kfd);
}

/* Every call of the probe failed in turn: an error or a clean answer, nothing leaked. */
static void test_probe_faults(void **state)
{
	unsigned int fds, maps;
	struct pcihole_caps ref, c;
	uint64_t n, calls = 0;
	void *ones;
	int kfd, fd, ret;

	(void)state;
	tk_require_kvm();
	kfd = tk_kvm_fd();
	assert_int_equal(pcihole_probe(kfd, true, &ref), 0);
	assert_int_equal(pcihole_allones_memfd(4096, &fd, NULL), 0);
	assert_int_equal(pcihole_allones_map(fd, 4096, 4096, &ones), 0);
	fds = tk_count_fds();
	maps = tk_count_maps("");
	for (n = 1;; n++) {
		ph_sys_fail_nth(n, EIO, PH_SYS_ALL);
		ret = ph_probe_slot(kfd, KVM_MEM_READONLY, (uintptr_t)ones);
		ph_sys_fail_nth(0, 0, 0);
		assert_int_equal(tk_count_fds(), fds);
		assert_int_equal(tk_count_maps(""), maps);
		if (!ph_sys_fired()) {
			assert_int_equal(ret, 1);
			break;
		}
		assert_true(ret == -EIO || ret == 0);
	}
	calls += n - 1;
	for (n = 1;; n++) {
		ph_sys_fail_nth(n, EIO, PH_SYS_ALL);
		ret = pcihole_probe(kfd, true, &c);
		ph_sys_fail_nth(0, 0, 0);
		assert_int_equal(tk_count_fds(), fds);
		if (!ph_sys_fired()) {
			assert_int_equal(ret, 0);
			break;
		}
		/* A failed capability check reads as "absent"; anything else is an error. */
		assert_true(ret == -EIO || ret == 0);
	}
	calls += n - 1;
	assert_int_equal(pcihole_probe(kfd, true, &c), 0);
	assert_memory_equal(&c, &ref, sizeof(c));
	print_message("probe: %llu system calls failed one at a time\n", (unsigned long long)calls);
	pcihole_allones_unmap(ones, 4096);
	close(fd);
	close(kfd);
}

struct logbuf {
	char last[256];
	int n, errs;
};

static void log_cb(void *opaque, enum pcihole_log_level level, const char *msg)
{
	struct logbuf *l = opaque;

	snprintf(l->last, sizeof(l->last), "%s", msg);
	l->n++;
	l->errs += level == PCIHOLE_LOG_ERR;
}

static struct pcihole_ctx_config base_cfg(struct logbuf *lb)
{
	return (struct pcihole_ctx_config){
		.memfd = -1, .slot_base = 1, .nr_slots = 8, .log = log_cb, .log_opaque = lb,
	};
}

static void test_attach_checks(void **state)
{
	struct pcihole_caps caps, none = { .nr_memslots = 100 };
	struct pcihole_ctx_config cfg;
	struct pcihole_layout *l;
	struct pcihole_ctx *ctx = NULL;
	struct logbuf lb = { { 0 }, 0, 0 };
	struct tk_vm vm;
	int fd;

	(void)state;
	tk_require_kvm();
	assert_int_equal(pcihole_probe(-1, false, &caps), 0);
	assert_int_equal(tk_vm_create(&vm), 0);
	l = tu_q35_layout();
	cfg = base_cfg(&lb);
	assert_int_equal(pcihole_ctx_attach(-1, l, &cfg, &ctx), -EINVAL);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, NULL, &cfg, &ctx), -EINVAL);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, NULL, &ctx), -EINVAL);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, NULL), -EINVAL);
	cfg = base_cfg(&lb);
	cfg.mode = 4;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	cfg = base_cfg(&lb);
	cfg.flags = 1u << 3;	/* the first unknown flag */
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	cfg = base_cfg(&lb);
	cfg.reserved[7] = 1;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	cfg = base_cfg(&lb);
	cfg.page_size = 3 << 12;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	cfg = base_cfg(&lb);
	cfg.reserved0 = 1;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	/* Slot ids beyond what KVM offers, or beyond 16 bits. */
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.slot_base = caps.nr_memslots - 4;
	cfg.nr_slots = 5;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	assert_true(lb.errs > 0);
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.slot_base = 0xfffe;
	cfg.nr_slots = 3;
	cfg.caps = &none;
	none.readonly_mem = 1;
	none.nr_memslots = 0;	/* unknown: only the 16-bit limit applies */
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	/* The last ids of the range are fine. */
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.slot_base = caps.nr_memslots - 4;
	cfg.nr_slots = 4;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	/* mmio mode ignores the slot range. */
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_MMIO;
	cfg.slot_base = 0xffffff00;
	cfg.nr_slots = 0xffff;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_regions(ctx, NULL, 0), 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	/* Missing capabilities: the mode is refused and the log says why. */
	memset(&none, 0, sizeof(none));
	none.nr_memslots = 100;
	lb.errs = 0;
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.caps = &none;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EOPNOTSUPP);
	assert_non_null(strstr(lb.last, "READONLY_MEM"));
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_PCI_HOLE;
	cfg.caps = &none;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EOPNOTSUPP);
	assert_non_null(strstr(lb.last, "PCI_HOLE"));
	none.pci_hole_cap = 1;	/* answered, but failed the functional probe */
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EOPNOTSUPP);
	assert_non_null(strstr(lb.last, "functional probe"));
	assert_true(lb.errs == 3);
	/* caps override the probe: auto with nothing offered is mmio. */
	cfg = base_cfg(&lb);
	cfg.caps = &none;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_mode(ctx), PCIHOLE_MODE_MMIO);
	assert_non_null(strstr(lb.last, "attached"));
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	/* A caller's memfd that is not sealed all-ones; a bad chunk. */
	fd = memfd_create("x", MFD_CLOEXEC);
	assert_int_equal(ftruncate(fd, 4096), 0);
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.memfd = fd;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	close(fd);
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.chunk = 12345;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	/* A slot range that collides with the VMM's own RAM slot: KVM's error comes back. */
	cfg = base_cfg(&lb);
	cfg.mode = PCIHOLE_MODE_READONLY;
	cfg.slot_base = TK_RAM_SLOT;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), -EINVAL);
	assert_true(tk_slot_free(&vm, 1));
	/* NULL arguments elsewhere. */
	assert_int_equal(pcihole_ctx_detach(NULL), -EINVAL);
	assert_int_equal(pcihole_ctx_set_present(NULL, NULL, true), -EINVAL);
	assert_int_equal(pcihole_ctx_regions(NULL, NULL, 0), -EINVAL);
	assert_int_equal(pcihole_ctx_stats(NULL, NULL), -EINVAL);
	assert_int_equal(pcihole_ctx_prefault(NULL, 0), -EINVAL);
	pcihole_layout_free(l);
	tk_vm_destroy(&vm);
}

/* Hotplug argument errors leave everything alone. */
static void test_set_present_errors(void **state)
{
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .slot_base = 1, .nr_slots = 8, .memfd = -1,
	};
	struct pcihole_bdf bad_fn = { .bus = 1, .dev = 0, .fn = 8 };
	struct pcihole_bdf bad_seg = { .segment = 1, .bus = 1 };
	struct pcihole_ctx *ctx;
	struct pcihole_layout *l;
	struct tk_vm vm;

	(void)state;
	tk_require_kvm();
	assert_int_equal(tk_vm_create(&vm), 0);
	l = tu_q35_layout();
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_set_present(ctx, &bad_fn, true), -EINVAL);
	assert_int_equal(pcihole_ctx_set_present(ctx, &bad_seg, true), -ENOENT);
	assert_int_equal(pcihole_ctx_set_present(ctx, NULL, true), -EINVAL);
	assert_int_equal(pcihole_ctx_regions(ctx, NULL, 0), 1);
	assert_int_equal(pcihole_layout_nr_present(l), 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	pcihole_layout_free(l);
	tk_vm_destroy(&vm);
}

static void check_prefault(enum pcihole_mode mode)
{
	struct pcihole_ctx_config cfg = {
		.mode = mode, .flags = PCIHOLE_CTX_PREFAULT,
		.slot_base = 1, .nr_slots = 8, .memfd = -1,
	};
	struct pcihole_bdf b = { .bus = 3, .dev = 1 };
	struct pcihole_caps caps;
	struct pcihole_ctx *ctx;
	struct pcihole_layout *l;
	struct tk_handlers h;
	struct tk_asm a;
	struct tk_vm vm;
	struct pcihole_region regions[8];
	int64_t ret;
	int n;

	tk_require_mode(mode, &caps);
	assert_int_equal(tk_vm_create(&vm), 0);
	l = tu_q35_layout();
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_prefault(ctx, -1), -EINVAL);
	ret = pcihole_ctx_prefault(ctx, vm.vcpu_fd);
	if (caps.pre_fault_memory)
		assert_int_equal(ret, (256ULL << 20) - 4096);
	else
		assert_int_equal(ret, -EOPNOTSUPP);
	print_message("prefault %s: %s\n", pcihole_mode_name(mode),
		      ret > 0 ? "pre-faulted 256 MiB - 4 KiB" :
		      "no KVM_CAP_PRE_FAULT_MEMORY on this kernel");
	/* The context-free form, on the context's own records, says the same. */
	n = pcihole_ctx_regions(ctx, regions, 8);
	assert_int_equal(n, 2);
	ret = pcihole_prefault(vm.vcpu_fd, regions, (size_t)n);
	if (caps.pre_fault_memory)
		assert_int_equal(ret, (256ULL << 20) - 4096);
	else
		assert_int_equal(ret, -EOPNOTSUPP);
	assert_int_equal(pcihole_prefault(-1, regions, 1), -EINVAL);
	assert_int_equal(pcihole_prefault(vm.vcpu_fd, NULL, 1), -EINVAL);
	assert_int_equal(pcihole_prefault(vm.vcpu_fd, NULL, 0), 0);
	regions[0].memory_size = 0;
	assert_int_equal(pcihole_prefault(vm.vcpu_fd, regions, 1), 0);
	/* The guest still reads all-ones (and the present function) afterwards. */
	h = (struct tk_handlers){ .layout = l };
	tk_asm_init(&a);
	tk_asm_read(&a, 4, 0xb0000000, 0);
	tk_asm_read(&a, 4, 0xb0000000 + (3u << 20) + (1u << 15), 1);
	tk_asm_hlt(&a);
	tk_vm_load(&vm, a.buf, a.len);
	assert_int_equal(tk_vm_run(&vm, &h), 0);
	assert_int_equal(tk_result(&vm, 0) & 0xffffffff, 0xffffffff);
	assert_int_equal(tk_result(&vm, 1) & 0xffffffff, (uint32_t)TK_DEV_VALUE);
	assert_int_equal(vm.exits_hole, 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	/* Without the flag, or in mmio mode: nothing to do. */
	cfg.flags = 0;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_prefault(ctx, vm.vcpu_fd), 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	cfg.flags = PCIHOLE_CTX_PREFAULT;
	cfg.mode = PCIHOLE_MODE_MMIO;
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	assert_int_equal(pcihole_ctx_prefault(ctx, vm.vcpu_fd), 0);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	pcihole_layout_free(l);
	tk_vm_destroy(&vm);
}

static void test_prefault_readonly(void **state) { (void)state; check_prefault(PCIHOLE_MODE_READONLY); }
static void test_prefault_pci_hole(void **state) { (void)state; check_prefault(PCIHOLE_MODE_PCI_HOLE); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_probe_bad_fd),
		cmocka_unit_test(test_probe_threads),
		cmocka_unit_test(test_probe_slot),
		cmocka_unit_test(test_probe_faults),
		cmocka_unit_test(test_attach_checks),
		cmocka_unit_test(test_set_present_errors),
		cmocka_unit_test(test_prefault_readonly),
		cmocka_unit_test(test_prefault_pci_hole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
