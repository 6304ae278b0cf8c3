// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * What a guest sees through each backend, on a real VM: hole reads at every
 * width are all-ones, present functions reach the VMM as KVM_EXIT_MMIO at the
 * right gpa, writes to holes are dropped and never reach the shared memfd,
 * and the Linux peer-bridge scan (fn 0 of every device of 256 buses) costs 0
 * exits with slots and one per read with mmio.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "util_kvm.h"

#define ECAM 0xb0000000u
#define GPA(bus, dev, fn) (ECAM + ((uint32_t)(bus) << 20) + ((dev) << 15) + ((fn) << 12))
#define SLOT_BASE 1u
#define NR_SLOTS 64u

struct fix {
	struct tk_vm vm;
	struct pcihole_layout *layout;
	struct pcihole_ctx *ctx;
	struct pcihole_caps caps;
	int memfd;
};

/* A small q35-like machine: host bridge, two devices, LPC + SATA, two root-port children. */
static const struct pcihole_bdf present[] = {
	{ .bus = 0, .dev = 0, .fn = 0 }, { .bus = 0, .dev = 1, .fn = 0 },
	{ .bus = 0, .dev = 0x1f, .fn = 0 }, { .bus = 0, .dev = 0x1f, .fn = 2 },
	{ .bus = 1, .dev = 0, .fn = 0 }, { .bus = 2, .dev = 0, .fn = 0 },
};
#define NR_PRESENT_FN0 5u

static void log_cb(void *opaque, enum pcihole_log_level level, const char *msg)
{
	(void)opaque;
	if (getenv("PCIHOLE_TEST_VERBOSE"))
		print_message("[pcihole %d] %s\n", level, msg);
}

/* Attach in @mode (skips if this kernel cannot); -1 as @memfd makes the library create one. */
static void fix_setup(struct fix *f, enum pcihole_mode mode, int memfd, uint32_t flags)
{
	struct pcihole_ctx_config cfg = {
		.mode = mode, .flags = flags, .slot_base = SLOT_BASE, .nr_slots = NR_SLOTS,
		.memfd = memfd, .log = log_cb,
	};
	size_t i;
	int ret;

	memset(f, 0, sizeof(*f));
	f->memfd = memfd;
	tk_require_mode(mode, &f->caps);
	assert_int_equal(tk_vm_create(&f->vm), 0);
	f->layout = tu_q35_layout();
	for (i = 0; i < sizeof(present) / sizeof(present[0]); i++)
		assert_int_equal(pcihole_layout_set_present(f->layout, &present[i], true), 1);
	cfg.caps = &f->caps;
	ret = pcihole_ctx_attach(f->vm.vm_fd, f->layout, &cfg, &f->ctx);
	assert_int_equal(ret, 0);
	if (mode != PCIHOLE_MODE_AUTO)
		assert_int_equal(pcihole_ctx_mode(f->ctx), mode);
}

static void fix_teardown(struct fix *f)
{
	assert_int_equal(pcihole_ctx_detach(f->ctx), 0);
	pcihole_layout_free(f->layout);
	tk_vm_destroy(&f->vm);
}

static uint64_t ones(unsigned int width)
{
	return width == 8 ? UINT64_MAX : (1ULL << (8 * width)) - 1;
}

static void check_widths(enum pcihole_mode mode)
{
	static const struct { unsigned int width; uint32_t gpa; } hole[] = {
		{ 1, GPA(0, 2, 0) }, { 2, GPA(0, 2, 0) + 2 }, { 4, GPA(0, 2, 0) + 0x100 },
		{ 8, GPA(0, 2, 0) + 0x8 }, { 1, GPA(0, 0x1f, 1) + 0xfff },
		{ 4, GPA(0, 0, 1) }, { 4, GPA(255, 31, 7) + 0xffc }, { 8, GPA(128, 5, 3) },
		{ 2, GPA(1, 0, 1) + 0x2e },
	};
	const unsigned int nh = sizeof(hole) / sizeof(hole[0]);
	struct tk_handlers h;
	struct tk_asm a;
	struct fix f;
	unsigned int i;

	fix_setup(&f, mode, -1, 0);
	h = (struct tk_handlers){ .layout = f.layout };
	tk_asm_init(&a);
	for (i = 0; i < nh; i++)
		tk_asm_read(&a, hole[i].width, hole[i].gpa, i);
	/* Present functions: 00:00.0 vendor/device (4), 00:1f.2 device ID (2). */
	tk_asm_read(&a, 4, GPA(0, 0, 0), nh);
	tk_asm_read(&a, 2, GPA(0, 0x1f, 2) + 2, nh + 1);
	tk_asm_hlt(&a);
	/* Poison the result area so a missing store shows. */
	memset(f.vm.ram + TK_DATA, 0x11, 8 * (nh + 2));
	tk_vm_load(&f.vm, a.buf, a.len);
	assert_int_equal(tk_vm_run(&f.vm, &h), 0);
	for (i = 0; i < nh; i++) {
		uint64_t v = tk_result(&f.vm, i) & ones(hole[i].width);

		if (v != ones(hole[i].width))
			fail_msg("read %u (width %u at 0x%x) gave 0x%llx", i, hole[i].width,
				 hole[i].gpa, (unsigned long long)v);
	}
	assert_int_equal(tk_result(&f.vm, nh) & 0xffffffff, TK_DEV_VALUE & 0xffffffff);
	assert_int_equal(tk_result(&f.vm, nh + 1) & 0xffff, TK_DEV_VALUE & 0xffff);
	/* The present reads, and only they, reached us (mmio: plus every hole read). */
	assert_int_equal(f.vm.exits_dev, 2);
	assert_int_equal(f.vm.last_gpa, GPA(0, 0x1f, 2) + 2);
	assert_int_equal(f.vm.last_len, 2);
	assert_int_equal(f.vm.exits_hole, mode == PCIHOLE_MODE_MMIO ? nh : 0);
	fix_teardown(&f);
}

static void test_widths_readonly(void **state) { (void)state; check_widths(PCIHOLE_MODE_READONLY); }
static void test_widths_mmio(void **state) { (void)state; check_widths(PCIHOLE_MODE_MMIO); }
static void test_widths_pci_hole(void **state) { (void)state; check_widths(PCIHOLE_MODE_PCI_HOLE); }

/* A write to a hole is dropped: it exits (all modes), the next read is all-ones, the memfd unchanged. */
static void check_write(enum pcihole_mode mode)
{
	struct tk_handlers h;
	struct tk_asm a;
	struct fix f;
	int fd = -1;

	if (mode == PCIHOLE_MODE_READONLY)
		assert_int_equal(pcihole_allones_memfd(0, &fd, NULL), 0);
	fix_setup(&f, mode, fd, 0);
	h = (struct tk_handlers){ .layout = f.layout };
	tk_asm_init(&a);
	tk_asm_write32(&a, GPA(3, 4, 0) + 0x10, 0x12345678);
	tk_asm_read(&a, 4, GPA(3, 4, 0) + 0x10, 0);
	tk_asm_write32(&a, GPA(0, 0, 1), 0);
	tk_asm_read(&a, 8, GPA(0, 0, 1), 1);
	tk_asm_hlt(&a);
	tk_vm_load(&f.vm, a.buf, a.len);
	assert_int_equal(tk_vm_run(&f.vm, &h), 0);
	assert_int_equal(tk_result(&f.vm, 0) & 0xffffffff, 0xffffffff);
	assert_int_equal(tk_result(&f.vm, 1), UINT64_MAX);
	assert_int_equal(f.vm.exits_mmio_write, 2);
	assert_int_equal(f.vm.exits_dev, 0);
	/* Writes were holes the helper dropped; mmio mode also exits for the reads. */
	assert_int_equal(f.vm.exits_hole, mode == PCIHOLE_MODE_MMIO ? 4 : 2);
	fix_teardown(&f);
	if (fd >= 0) {
		assert_int_equal(pcihole_allones_check(fd), PCIHOLE_ALLONES_CHUNK_DEFAULT);
		close(fd);
	}
}

static void test_write_readonly(void **state) { (void)state; check_write(PCIHOLE_MODE_READONLY); }
static void test_write_mmio(void **state) { (void)state; check_write(PCIHOLE_MODE_MMIO); }
static void test_write_pci_hole(void **state) { (void)state; check_write(PCIHOLE_MODE_PCI_HOLE); }

static uint64_t status_kb(const char *key)
{
	char line[256];
	uint64_t v = 0;
	FILE *fp = fopen("/proc/self/status", "re");

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, key, strlen(key)))
			v = strtoull(line + strlen(key) + 1, NULL, 10);
	fclose(fp);
	return v;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Linux's pcibios_fixup_peer_bridges: a vendor-ID read at fn 0 of every
 * device of 256 buses, twice (the first scan takes the page faults).  With
 * @prefault, the slots are pre-faulted first (skipped without the ioctl).
 * Times are printed, not checked: on a host that emulates guest code they
 * mean little; in the QEMU leg they behave like hardware.
 */
static void check_scan(enum pcihole_mode mode, bool prefault)
{
	const uint32_t count = 256 * 32;
	struct pcihole_ctx_stats st;
	uint64_t rss0, rss1, hole[2];
	double ms[2], t0;
	struct tk_handlers h;
	struct tk_asm a;
	struct fix f;
	uint32_t i;
	int pass;

	fix_setup(&f, mode, -1, prefault ? PCIHOLE_CTX_PREFAULT : 0);
	if (prefault) {
		int64_t ret = pcihole_ctx_prefault(f.ctx, f.vm.vcpu_fd);

		if (ret == -EOPNOTSUPP) {
			fix_teardown(&f);
			print_message("no KVM_PRE_FAULT_MEMORY here: skipped\n");
			skip();
		}
		assert_true(ret > 0);
	}
	h = (struct tk_handlers){ .layout = f.layout };
	tk_asm_init(&a);
	tk_asm_scan(&a, ECAM, 1u << 15, count);
	tk_asm_hlt(&a);
	rss0 = status_kb("RssShmem:");
	for (pass = 0; pass < 2; pass++) {
		uint64_t h0 = f.vm.exits_hole, d0 = f.vm.exits_dev;

		memset(f.vm.ram + TK_SCAN_OUT, 0, count * 4);
		tk_vm_load(&f.vm, a.buf, a.len);
		t0 = now_ms();
		assert_int_equal(tk_vm_run(&f.vm, &h), 0);
		ms[pass] = now_ms() - t0;
		hole[pass] = f.vm.exits_hole - h0;
		for (i = 0; i < count; i++) {
			struct pcihole_bdf b = { .bus = (uint8_t)(i / 32), .dev = (uint8_t)(i % 32) };
			uint32_t want = pcihole_layout_is_present(f.layout, &b) ?
					(uint32_t)TK_DEV_VALUE : 0xffffffffu;

			if (tk_scan_value(&f.vm, i) != want)
				fail_msg("scan read %u (%02x:%02x.0) gave 0x%x", i, b.bus, b.dev,
					 tk_scan_value(&f.vm, i));
		}
		assert_int_equal(f.vm.exits_dev - d0, NR_PRESENT_FN0);
		assert_int_equal(hole[pass], mode == PCIHOLE_MODE_MMIO ? count - NR_PRESENT_FN0 : 0);
	}
	rss1 = status_kb("RssShmem:");
	assert_int_equal(pcihole_ctx_stats(f.ctx, &st), 0);
	assert_int_equal(st.nr_slots, mode == PCIHOLE_MODE_MMIO ? 0 : st.nr_runs);
	print_message("scan %s%s: %u reads, %llu exits for holes, %u for present functions; "
		      "%u slots for %u runs, memfd %llu bytes, %llu mappings over %llu MiB; "
		      "RssShmem +%llu KiB; first scan %.2f ms, repeat %.2f ms\n",
		      pcihole_mode_name(pcihole_ctx_mode(f.ctx)), prefault ? "+prefault" : "",
		      count, (unsigned long long)hole[0], NR_PRESENT_FN0,
		      st.nr_slots, st.nr_runs, (unsigned long long)st.memfd_bytes,
		      (unsigned long long)st.nr_mappings,
		      (unsigned long long)(st.mapped_bytes >> 20),
		      (unsigned long long)(rss1 - rss0), ms[0], ms[1]);
	fix_teardown(&f);
}

static void test_scan_readonly(void **state) { (void)state; check_scan(PCIHOLE_MODE_READONLY, false); }
static void test_scan_mmio(void **state) { (void)state; check_scan(PCIHOLE_MODE_MMIO, false); }
static void test_scan_pci_hole(void **state) { (void)state; check_scan(PCIHOLE_MODE_PCI_HOLE, false); }
static void test_scan_readonly_prefault(void **state) { (void)state; check_scan(PCIHOLE_MODE_READONLY, true); }
static void test_scan_pci_hole_prefault(void **state) { (void)state; check_scan(PCIHOLE_MODE_PCI_HOLE, true); }

static uint64_t rollup_kb(const char *key)
{
	char line[256];
	uint64_t v = 0;
	FILE *fp = fopen("/proc/self/smaps_rollup", "re");

	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, key, strlen(key)))
			v = strtoull(line + strlen(key) + 1, NULL, 10);
	fclose(fp);
	return v;
}

/*
 * Memory of the readonly backend for a full segment after the guest's scan,
 * against a naive READONLY slot over anonymous memory filled with 0xff.
 * RSS counts a shared page once per mapping that maps it, so for our backend
 * it grows with the pages the guest touched although they are all the same
 * 2 MiB; PSS divides by the mappings and shows the real cost.
 */
static void test_memory(void **state)
{
	const uint64_t seg = 256ULL << 20;
	struct kvm_userspace_memory_region r;
	struct pcihole_ctx_stats st;
	uint64_t pss0, pss1, rss0, rss1, anon0, anon1;
	struct tk_handlers h;
	struct fix f;
	uint8_t *naive;

	(void)state;
	fix_setup(&f, PCIHOLE_MODE_READONLY, -1, 0);
	h = (struct tk_handlers){ .layout = f.layout };
	tk_load_fn0_scan(&f.vm, ECAM);
	pss0 = rollup_kb("Pss_Shmem:");
	rss0 = status_kb("RssShmem:");
	assert_int_equal(tk_vm_run(&f.vm, &h), 0);
	pss1 = rollup_kb("Pss_Shmem:");
	rss1 = status_kb("RssShmem:");
	assert_int_equal(pcihole_ctx_stats(f.ctx, &st), 0);
	/* One chunk of real memory, however many pages the guest touched. */
	assert_true(pss1 - pss0 <= st.memfd_bytes / 1024);
	fix_teardown(&f);

	/* The naive way: a 256 MiB anonymous region of 0xff behind one READONLY slot. */
	assert_int_equal(tk_vm_create(&f.vm), 0);
	naive = mmap(NULL, seg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(naive != MAP_FAILED);
	anon0 = status_kb("RssAnon:");
	memset(naive, 0xff, seg);
	r = (struct kvm_userspace_memory_region){
		.slot = 1, .flags = KVM_MEM_READONLY, .guest_phys_addr = ECAM,
		.memory_size = seg, .userspace_addr = (uintptr_t)naive,
	};
	assert_int_equal(ioctl(f.vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r), 0);
	tk_load_fn0_scan(&f.vm, ECAM);
	assert_int_equal(tk_vm_run(&f.vm, NULL), 0);
	assert_int_equal(f.vm.exits_mmio, 0);
	anon1 = status_kb("RssAnon:");
	print_message("memory, full 256-bus segment after the 8,192-read scan: readonly backend "
		      "memfd %llu KiB (%llu mappings), PSS +%llu KiB, RSS counter +%llu KiB "
		      "(shared page counted per mapping); naive 0xff READONLY region +%llu KiB "
		      "(%llu KiB of it are the 8,192 pages the scan reads)\n",
		      (unsigned long long)(st.memfd_bytes >> 10), (unsigned long long)st.nr_mappings,
		      (unsigned long long)(pss1 - pss0), (unsigned long long)(rss1 - rss0),
		      (unsigned long long)(anon1 - anon0), 8192ULL * 4);
	munmap(naive, seg);
	tk_vm_destroy(&f.vm);
}

/*
 * Several windows: two that touch in guest-physical space (runs cross from
 * one into the other: one slot), and one that starts off a 2 MiB boundary.
 * Every hole of every window reads all-ones without an exit, and each slot's
 * host address is congruent to its guest address modulo the chunk.
 */
static void test_multi_segment(void **state)
{
	static const struct pcihole_segment segs[] = {
		{ .base = 0xb0000000, .segment = 0, .bus_start = 0, .bus_end = 1 },
		{ .base = 0xc0100000, .segment = 2, .bus_start = 3, .bus_end = 4 },
		{ .base = 0xb0200000, .segment = 1, .bus_start = 0, .bus_end = 0 },
	};
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .slot_base = 1, .nr_slots = 16, .memfd = -1,
	};
	struct pcihole_bdf b = { .segment = 2, .bus = 4, .dev = 9, .fn = 0 };
	struct pcihole_region regs[16];
	struct pcihole_ctx_stats st;
	struct pcihole_layout *l;
	struct pcihole_ctx *ctx;
	struct tk_handlers h;
	struct tk_asm a;
	struct tk_vm vm;
	int n, i;

	(void)state;
	tk_require_kvm();
	assert_int_equal(tk_vm_create(&vm), 0);
	assert_int_equal(pcihole_layout_new(segs, 3, 0, &l), 0);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, l, &cfg, &ctx), 0);
	n = pcihole_ctx_regions(ctx, regs, 16);
	/* [0xb0000000, 0xb0300000) is one run over two windows; the third window is split by 04:09.0. */
	assert_int_equal(n, 3);
	assert_int_equal(regs[0].guest_phys_addr, 0xb0000000);
	assert_int_equal(regs[0].memory_size, 0x300000);
	assert_int_equal(pcihole_ctx_stats(ctx, &st), 0);
	for (i = 0; i < n; i++)
		assert_int_equal((regs[i].userspace_addr ^ regs[i].guest_phys_addr) &
				 (st.memfd_bytes - 1), 0);
	/* Whole chunks: 2 MiB + 1 MiB round up to 4 MiB; 0xc0100000 + 2 MiB spans two chunks. */
	assert_int_equal(st.nr_mappings, 4);
	h = (struct tk_handlers){ .layout = l };
	tk_asm_init(&a);
	tk_asm_scan(&a, 0xb0000000, 4096, 3 * 256);	/* every page of the touching windows */
	tk_asm_hlt(&a);
	tk_vm_load(&vm, a.buf, a.len);
	assert_int_equal(tk_vm_run(&vm, &h), 0);
	for (i = 0; i < 3 * 256; i++)
		assert_int_equal(tk_scan_value(&vm, (unsigned int)i), 0xffffffff);
	tk_asm_init(&a);
	tk_asm_scan(&a, 0xc0100000, 4096, 2 * 256);
	tk_asm_hlt(&a);
	tk_vm_load(&vm, a.buf, a.len);
	assert_int_equal(tk_vm_run(&vm, &h), 0);
	for (i = 0; i < 2 * 256; i++)
		assert_int_equal(tk_scan_value(&vm, (unsigned int)i),
				 i == 256 + 9 * 8 ? (uint32_t)TK_DEV_VALUE : 0xffffffffu);
	assert_int_equal(vm.exits_hole, 0);
	assert_int_equal(vm.exits_dev, 1);
	assert_int_equal(pcihole_ctx_detach(ctx), 0);
	pcihole_layout_free(l);
	tk_vm_destroy(&vm);
}

/* auto takes the best mode the probe allows (PCIHOLE_EXPECT_MODE pins what that must be). */
static void test_auto(void **state)
{
	enum pcihole_mode want;
	struct fix f;
	int expect = tk_expect_mode();

	(void)state;
	fix_setup(&f, PCIHOLE_MODE_AUTO, -1, 0);
	want = f.caps.pci_hole_works ? PCIHOLE_MODE_PCI_HOLE :
	       f.caps.readonly_mem ? PCIHOLE_MODE_READONLY : PCIHOLE_MODE_MMIO;
	assert_int_equal(pcihole_ctx_mode(f.ctx), want);
	if (expect >= 0)
		assert_int_equal(pcihole_ctx_mode(f.ctx), expect);
	print_message("auto chose %s\n", pcihole_mode_name(pcihole_ctx_mode(f.ctx)));
	fix_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auto),
		cmocka_unit_test(test_widths_readonly),
		cmocka_unit_test(test_widths_mmio),
		cmocka_unit_test(test_widths_pci_hole),
		cmocka_unit_test(test_write_readonly),
		cmocka_unit_test(test_write_mmio),
		cmocka_unit_test(test_write_pci_hole),
		cmocka_unit_test(test_scan_readonly),
		cmocka_unit_test(test_scan_mmio),
		cmocka_unit_test(test_scan_pci_hole),
		cmocka_unit_test(test_scan_readonly_prefault),
		cmocka_unit_test(test_scan_pci_hole_prefault),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_multi_segment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
