// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The arm64 leg's numbers: an AArch64 guest does Linux's 256-bus scan
 * (a 32-bit read of function 0 of every device of every bus: 8,192 reads)
 * of one ECAM window, twice, in each mode libpcihole offers on this kernel,
 * each mode in a fresh VM.  Prints, per mode, the hole exits to userspace and
 * the time of the first and the repeat scan, and what the mode costs in
 * memory: the all-ones memfd, host mappings, slots, and the change in
 * SecPageTables (stage-2 page tables) over the run.  Exit 0 when every scan
 * read all-ones at every hole and the device value at present functions,
 * and the exit counts are the ones each mode promises (mmio: one per hole
 * read; readonly and pci-hole: none, except for holes that share a host page
 * with a present function on hosts with pages larger than 4 KiB, which the
 * library leaves to the mmio path); the times are printed, never judged.
 *
 * usage: pcihole-bench-arm64 [MODE...]   (default: mmio readonly pci-hole)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pcihole.h"

#define RAM_SIZE	(1u << 20)
#define CODE		0x1000u
#define OUT		0x80000u	/* read i stored at OUT + 4 i */
#define HALT_GPA	0x00f00000u
#define ECAM		0x40000000ull	/* one 256-bus window */
#define NR_READS	(256u * 32u)
#define DEV_VALUE	0x00011af4u	/* what present functions read as */

static const struct pcihole_bdf present[] = {
	{ .bus = 0, .dev = 0, .fn = 0 }, { .bus = 0, .dev = 1, .fn = 0 },
	{ .bus = 0, .dev = 2, .fn = 0 }, { .bus = 1, .dev = 0, .fn = 0 },
};
#define NR_PRESENT (sizeof(present) / sizeof(present[0]))

#define CORE_REG(name) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			KVM_REG_ARM_CORE_REG(regs.name))

static void die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long meminfo_kb(const char *key)
{
	char line[128];
	long kb = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			kb = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return kb;
}

static unsigned int nr_maps(void)
{
	char line[512];
	unsigned int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

static void put32(uint8_t *p, uint32_t insn)
{
	p[0] = (uint8_t)insn;
	p[1] = (uint8_t)(insn >> 8);
	p[2] = (uint8_t)(insn >> 16);
	p[3] = (uint8_t)(insn >> 24);
}

/* movz/movk x@rd = @val (32-bit values). */
static size_t mov32(uint8_t *p, unsigned int rd, uint32_t val)
{
	put32(p, 0xd2800000u | (val & 0xffff) << 5 | rd);
	put32(p + 4, 0xf2a00000u | (val >> 16) << 5 | rd);
	return 8;
}

/* The scan loop, then a store to HALT_GPA (and again, should it be resumed). */
static size_t guest_code(uint8_t *p, uint64_t ecam)
{
	size_t n = 0;

	n += mov32(p + n, 3, (uint32_t)ecam);
	n += mov32(p + n, 4, NR_READS);
	n += mov32(p + n, 5, OUT);
	n += mov32(p + n, 6, 1u << 15);
	put32(p + n, 0xb9400061u); n += 4;	/* loop: ldr w1, [x3] */
	put32(p + n, 0xb90000a1u); n += 4;	/* str w1, [x5] */
	put32(p + n, 0x910010a5u); n += 4;	/* add x5, x5, #4 */
	put32(p + n, 0x8b060063u); n += 4;	/* add x3, x3, x6 */
	put32(p + n, 0xf1000484u); n += 4;	/* subs x4, x4, #1 */
	put32(p + n, 0x54ffff61u); n += 4;	/* b.ne loop */
	n += mov32(p + n, 0, HALT_GPA);
	put32(p + n, 0xb900001fu); n += 4;	/* str wzr, [x0] */
	put32(p + n, 0x17ffffffu); n += 4;	/* b .-4 */
	return n;
}

struct vm {
	int kvm, fd, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;
};

static void set_reg(struct vm *vm, uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&val };

	if (ioctl(vm->vcpu, KVM_SET_ONE_REG, &reg))
		die("KVM_SET_ONE_REG");
}

static void vcpu_reset(struct vm *vm)
{
	struct kvm_vcpu_init init;

	memset(&init, 0, sizeof(init));
	if (ioctl(vm->fd, KVM_ARM_PREFERRED_TARGET, &init) ||
	    ioctl(vm->vcpu, KVM_ARM_VCPU_INIT, &init))
		die("KVM_ARM_VCPU_INIT");
	set_reg(vm, CORE_REG(pstate), 0x3c5);	/* EL1h, DAIF masked */
	set_reg(vm, CORE_REG(pc), CODE);
}

static void vm_create(struct vm *vm)
{
	struct kvm_userspace_memory_region r;
	int limit;

	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm < 0)
		die("/dev/kvm");
	limit = ioctl(vm->kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	vm->fd = ioctl(vm->kvm, KVM_CREATE_VM,
		       limit > 0 ? KVM_VM_TYPE_ARM_IPA_SIZE(limit < 40 ? limit : 40) : 0);
	if (vm->fd < 0)
		die("KVM_CREATE_VM");
	vm->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->ram == MAP_FAILED)
		die("mmap");
	r = (struct kvm_userspace_memory_region){
		.slot = 0, .memory_size = RAM_SIZE, .userspace_addr = (uintptr_t)vm->ram,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r))
		die("RAM slot");
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		die("KVM_CREATE_VCPU");
	vm->run_size = (size_t)ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, NULL);
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run");
	guest_code(vm->ram + CODE, ECAM);
}

static void vm_destroy(struct vm *vm)
{
	munmap(vm->run, vm->run_size);
	munmap(vm->ram, RAM_SIZE);
	close(vm->vcpu);
	close(vm->fd);
	close(vm->kvm);
}

/* Run one scan; returns the hole exits, -1 on a wrong value or exit. */
static long scan(struct vm *vm, const struct pcihole_layout *layout, double *secs)
{
	long holes = 0, devs = 0;
	double t0;
	unsigned int i;

	memset(vm->ram + OUT, 0, NR_READS * 4);
	vcpu_reset(vm);
	t0 = now();
	for (;;) {
		struct kvm_run *run = vm->run;
		int ret;

		if (ioctl(vm->vcpu, KVM_RUN, NULL)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		if (run->exit_reason != KVM_EXIT_MMIO) {
			fprintf(stderr, "bench: exit %u\n", run->exit_reason);
			return -1;
		}
		if (run->mmio.phys_addr == HALT_GPA)
			break;
		ret = pcihole_mmio_access(layout, run->mmio.phys_addr, run->mmio.data,
					  run->mmio.len, run->mmio.is_write);
		if (ret < 0)
			return -1;
		if (ret) {
			holes++;
		} else {
			uint32_t v = DEV_VALUE;

			devs++;
			memcpy(run->mmio.data, &v, run->mmio.len < 4 ? run->mmio.len : 4);
		}
	}
	*secs = now() - t0;
	for (i = 0; i < NR_READS; i++) {
		struct pcihole_bdf b = { .segment = 0, .bus = (uint8_t)(i / 32),
					 .dev = (uint8_t)(i % 32), .fn = 0 };
		uint32_t v, want;

		memcpy(&v, vm->ram + OUT + 4 * i, 4);
		want = pcihole_layout_is_present(layout, &b) == 1 ? DEV_VALUE : 0xffffffffu;
		if (v != want) {
			fprintf(stderr, "bench: read %u (%02x:%02x.0) = 0x%08x, want 0x%08x\n",
				i, b.bus, b.dev, v, want);
			return -1;
		}
	}
	if (devs != (long)NR_PRESENT) {
		fprintf(stderr, "bench: %ld device exits, want %zu\n", devs, NR_PRESENT);
		return -1;
	}
	return holes;
}

/*
 * Hole reads that must exit: all of them in mmio mode; otherwise those in a
 * host page that also holds a present function, which no slot can cover
 * (one 4 KiB function per page on 4 KiB hosts: none).
 */
static long expected_exits(const struct pcihole_layout *layout, enum pcihole_mode mode)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	long n = 0;
	unsigned int i;
	size_t j;

	for (i = 0; i < NR_READS; i++) {
		struct pcihole_bdf b = { .bus = (uint8_t)(i / 32), .dev = (uint8_t)(i % 32) };
		uint64_t gpa = ECAM + ((uint64_t)i << 15);
		bool shared = false;

		if (pcihole_layout_is_present(layout, &b) == 1)
			continue;
		if (mode == PCIHOLE_MODE_MMIO) {
			n++;
			continue;
		}
		for (j = 0; j < NR_PRESENT; j++) {
			uint64_t p = ECAM + ((uint64_t)present[j].bus << 20) +
				     ((uint64_t)present[j].dev << 15) +
				     ((uint64_t)present[j].fn << 12);

			shared |= (p & ~(page - 1)) == (gpa & ~(page - 1));
		}
		n += shared;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const char *const all[] = { "mmio", "readonly", "pci-hole" };
	const char *const *modes = argc > 1 ? (const char *const *)argv + 1 : all;
	int nr = argc > 1 ? argc - 1 : 3, i, bad = 0;
	struct pcihole_segment seg = { .base = ECAM, .bus_start = 0, .bus_end = 255 };
	struct pcihole_caps caps;
	bool override = false;

	if (pcihole_probe(-1, false, &caps)) {
		printf("bench: no usable /dev/kvm: SKIPPED\n");
		return 4;
	}
	printf("bench: host page %ld, readonly_mem %u, pci_hole cap %u works %u (flag 0x%x), "
	       "user_memory2 %u; TCG: times are indicative only, compare them within this run\n",
	       sysconf(_SC_PAGESIZE), caps.readonly_mem, caps.pci_hole_cap,
	       caps.pci_hole_works, caps.pci_hole_flag, caps.user_memory2);
	/*
	 * A kernel that offers the capability but whose probe failed: the
	 * 7.2 series accepts the flag through KVM_SET_USER_MEMORY_REGION2
	 * only.  Try it anyway over REGION2; the scan itself checks that
	 * every hole read all-ones without an exit, so nothing is assumed.
	 */
	if (caps.pci_hole_cap && !caps.pci_hole_works && caps.user_memory2) {
		printf("bench: the library's probe rejected pci-hole: overriding its caps "
		       "(flag 0x%x, REGION2) for the pci-hole row; the scan checks it\n",
		       PCIHOLE_KVM_MEM_PCI_HOLE);
		caps.pci_hole_works = 1;
		caps.pci_hole_flag = PCIHOLE_KVM_MEM_PCI_HOLE;
		override = true;
	}
	printf("BENCH | mode | hole exits first/repeat (expected) | first scan ms | repeat scan ms |"
	       " memfd KiB | mappings | slots | SecPageTables +KiB | VMAs +\n");
	for (i = 0; i < nr; i++) {
		struct pcihole_ctx_config cfg = { .slot_base = 1, .nr_slots = 64, .memfd = -1 };
		int mode = pcihole_mode_parse(modes[i]);
		struct pcihole_ctx_stats st;
		struct pcihole_layout *layout;
		struct pcihole_ctx *ctx;
		long pt0, h1, h2;
		unsigned int maps0;
		double t1 = 0, t2 = 0;
		struct vm vm;
		size_t j;
		int ret;

		if (mode < 0) {
			fprintf(stderr, "bench: unknown mode %s\n", modes[i]);
			return 2;
		}
		if (pcihole_layout_new(&seg, 1, 40, &layout))
			die("layout");
		for (j = 0; j < NR_PRESENT; j++)
			pcihole_layout_set_present(layout, &present[j], true);
		pt0 = meminfo_kb("SecPageTables");
		maps0 = nr_maps();
		vm_create(&vm);
		cfg.mode = (uint32_t)mode;
		cfg.caps = &caps;
		if (caps.user_memory2)
			cfg.flags |= PCIHOLE_CTX_REGION2;
		ret = pcihole_ctx_attach(vm.fd, layout, &cfg, &ctx);
		if (ret == -EOPNOTSUPP) {
			printf("BENCH | %s | SKIPPED: not available on this kernel |\n", modes[i]);
			vm_destroy(&vm);
			pcihole_layout_free(layout);
			continue;
		}
		if (ret) {
			fprintf(stderr, "bench: attach %s: %s\n", modes[i], strerror(-ret));
			return 1;
		}
		h1 = scan(&vm, layout, &t1);
		h2 = scan(&vm, layout, &t2);
		pcihole_ctx_stats(ctx, &st);
		printf("BENCH | %s%s | %ld / %ld (%ld) | %.2f | %.2f | %llu | %llu | %u | %ld | %u |\n",
		       modes[i], override && mode == PCIHOLE_MODE_PCI_HOLE ? " (caps overridden)" : "",
		       h1, h2, expected_exits(layout, pcihole_ctx_mode(ctx)), t1 * 1e3, t2 * 1e3,
		       (unsigned long long)st.memfd_bytes >> 10,
		       (unsigned long long)st.nr_mappings, st.nr_slots,
		       meminfo_kb("SecPageTables") - pt0, nr_maps() - maps0);
		if (h1 < 0 || h2 < 0) {
			bad = 1;
		} else {
			long want = expected_exits(layout, pcihole_ctx_mode(ctx));

			if (h1 != want || h2 != want) {
				fprintf(stderr, "bench: %s: %ld/%ld hole exits, want %ld\n",
					modes[i], h1, h2, want);
				bad = 1;
			}
		}
		if (pcihole_ctx_detach(ctx))
			bad = 1;
		vm_destroy(&vm);
		pcihole_layout_free(layout);
	}
	return bad;
}
