// SPDX-License-Identifier: GPL-2.0-only
/*
 * holebench: "why not KVM_MEM_READONLY over a shared memfd?" measured.
 *
 * One 256-bus ECAM window (256 MiB at 0xb0000000) with nothing in it, and a
 * guest (32-bit flat protected mode, no paging) that reads the vendor ID of
 * device 0 of each of the 8,192 (bus, device) slots, as Linux's
 * pcibios_fixup_peer_bridges() does.  The window is backed by one of:
 *
 *   readonly   a 2 MiB memfd filled with 0xff, mapped 128 times read-only
 *              over a 256 MiB reservation, one KVM_MEM_READONLY slot (what
 *              libpcihole's readonly backend does)
 *   pci-hole   one KVM_MEM_PCI_HOLE slot (KVM_SET_USER_MEMORY_REGION2), no
 *              memory, no mapping
 *
 * either optionally pre-faulted with KVM_PRE_FAULT_MEMORY at setup.
 * For each: setup ("attach") time, first and repeat scan time, nested page
 * faults (vCPU stat pf_taken) and exits in the first scan, VMAs added to the
 * process, host page tables of the process (VmPTE) and KVM's page tables
 * (SecPageTables) after the scans.  With --procs N, N processes each set up
 * their own VM (and, for readonly, their own memfd, as a VMM that runs one
 * jailed process per VM must), scan once and wait while the parent reads
 * /proc/meminfo, i.e. the host memory that N VMs cost.
 *
 * usage: holebench [--mode readonly|pci-hole] [--prefault] [--thp never|always]
 *                  [--procs N] [--repeat N]
 * Prints one line "RESULT key=value ..." per run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define ECAM_GPA	0xb0000000ull
#define ECAM_SIZE	(256ull << 20)
#define BLOCK		(2ull << 20)
#define RAM_SIZE	0x10000ull
#define CODE_GPA	0x1000ull
#define NR_READS	8192

/* The two numberings of the series: 7.2 (as posted) and the 6.12 backport. */
static const struct { uint32_t flag; long cap; } hole_abi[] = {
	{ 1u << 3, 250 }, { 1u << 15, 1024 },
};

#ifndef KVM_SET_USER_MEMORY_REGION2
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

static int kvm_fd;

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "holebench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long meminfo_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long status_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int nr_vmas(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* vCPU binary stats: offsets of the counters we want. */
struct stats {
	int fd;
	uint64_t data_off;
	long off_pf_taken, off_exits, off_mmio_exits, off_io_exits;
};

static void stats_open(struct stats *s, int vcpu_fd)
{
	struct kvm_stats_header h;
	size_t dsz;
	char *descs;
	uint32_t i;

	s->fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (s->fd < 0)
		die("KVM_GET_STATS_FD");
	if (pread(s->fd, &h, sizeof(h), 0) != sizeof(h))
		die("stats header");
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, dsz);
	if (!descs || pread(s->fd, descs, h.num_desc * dsz, h.desc_offset) !=
	    (ssize_t)(h.num_desc * dsz))
		die("stats descriptors");
	s->data_off = h.data_offset;
	s->off_pf_taken = s->off_exits = s->off_mmio_exits = s->off_io_exits = -1;
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(descs + i * dsz);

		if (!strcmp(d->name, "pf_taken"))
			s->off_pf_taken = d->offset;
		else if (!strcmp(d->name, "exits"))
			s->off_exits = d->offset;
		else if (!strcmp(d->name, "mmio_exits"))
			s->off_mmio_exits = d->offset;
		else if (!strcmp(d->name, "io_exits"))
			s->off_io_exits = d->offset;
	}
	free(descs);
}

static uint64_t stat_read(struct stats *s, long off)
{
	uint64_t v = 0;

	if (off < 0 || pread(s->fd, &v, sizeof(v), s->data_off + off) != sizeof(v))
		return 0;
	return v;
}

struct vm {
	int fd, vcpu_fd;
	struct kvm_run *run;
	void *ram;
	struct stats st;
	uint32_t hole_flag;
};

/*
 *	mov esi, ECAM_GPA
 *	mov ecx, NR_READS
 * 1:	movzx eax, word [esi]
 *	add esi, 0x8000		; next device: 32 KiB, 32 of them per bus
 *	dec ecx
 *	jnz 1b
 *	hlt
 *	jmp <mov esi>		; every KVM_RUN after the hlt scans again
 */
static const uint8_t guest_code[] = {
	0xbe, 0x00, 0x00, 0x00, 0xb0,		/* mov esi, 0xb0000000 */
	0xb9, 0x00, 0x20, 0x00, 0x00,		/* mov ecx, 8192 */
	0x0f, 0xb7, 0x06,			/* movzx eax, word [esi] */
	0x81, 0xc6, 0x00, 0x80, 0x00, 0x00,	/* add esi, 0x8000 */
	0x49,					/* dec ecx */
	0x75, 0xf4,				/* jnz -12 */
	0xf4,					/* hlt */
	0xeb, 0xe7,				/* jmp -25 */
};

static void vm_create(struct vm *v)
{
	struct kvm_userspace_memory_region ram = { 0 };
	struct kvm_sregs sr;
	struct kvm_regs regs = { 0 };
	int sz;

	v->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (v->fd < 0)
		die("KVM_CREATE_VM");
	v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->ram == MAP_FAILED)
		die("mmap ram");
	memcpy((char *)v->ram + CODE_GPA, guest_code, sizeof(guest_code));
	ram.slot = 0;
	ram.memory_size = RAM_SIZE;
	ram.userspace_addr = (uintptr_t)v->ram;
	if (ioctl(v->fd, KVM_SET_USER_MEMORY_REGION, &ram))
		die("RAM slot");
	v->vcpu_fd = ioctl(v->fd, KVM_CREATE_VCPU, 0);
	if (v->vcpu_fd < 0)
		die("KVM_CREATE_VCPU");
	sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	v->run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu_fd, 0);
	if (v->run == MAP_FAILED)
		die("mmap kvm_run");
	if (ioctl(v->vcpu_fd, KVM_GET_SREGS, &sr))
		die("KVM_GET_SREGS");
	/* 32-bit flat protected mode, no paging: linear = physical. */
	sr.cs.base = 0; sr.cs.limit = 0xffffffff; sr.cs.g = 1; sr.cs.db = 1;
	sr.cs.selector = 8; sr.cs.type = 0xb; sr.cs.present = 1; sr.cs.s = 1;
	sr.ds = sr.cs;
	sr.ds.selector = 16; sr.ds.type = 3;
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.cr0 = 0x11;	/* PE | ET */
	if (ioctl(v->vcpu_fd, KVM_SET_SREGS, &sr))
		die("KVM_SET_SREGS");
	regs.rip = CODE_GPA;
	regs.rflags = 2;
	if (ioctl(v->vcpu_fd, KVM_SET_REGS, &regs))
		die("KVM_SET_REGS");
	stats_open(&v->st, v->vcpu_fd);
}

/* 0 if KVM_MEM_PCI_HOLE is not there; else its flag bit for this kernel. */
static uint32_t hole_flag(void)
{
	size_t i;

	for (i = 0; i < sizeof(hole_abi) / sizeof(hole_abi[0]); i++)
		if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, hole_abi[i].cap) == 1)
			return hole_abi[i].flag;
	return 0;
}

static int set_region2(struct vm *v, uint32_t slot, uint32_t flags, uint64_t gpa,
		       uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region2 r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)hva,
	};

	return ioctl(v->fd, KVM_SET_USER_MEMORY_REGION2, &r);
}

static int prefault(struct vm *v)
{
#ifdef KVM_PRE_FAULT_MEMORY
	struct kvm_pre_fault_memory r = { .gpa = ECAM_GPA, .size = ECAM_SIZE };
	int ret;

	do {
		ret = ioctl(v->vcpu_fd, KVM_PRE_FAULT_MEMORY, &r);
	} while (ret && (errno == EINTR || errno == EAGAIN));
	return ret;
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* The backing the VMM has to build; returns 0 or -1 (mode unavailable). */
static int attach(struct vm *v, const char *mode, bool pf)
{
	if (!strcmp(mode, "pci-hole")) {
		v->hole_flag = hole_flag();
		if (!v->hole_flag)
			return -1;
		if (set_region2(v, 1, v->hole_flag, ECAM_GPA, ECAM_SIZE, NULL))
			die("PCI hole slot");
	} else {
		int fd = memfd_create("allones", MFD_CLOEXEC);
		char *win, *blk;
		uint64_t off;

		if (fd < 0 || ftruncate(fd, BLOCK))
			die("memfd");
		blk = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (blk == MAP_FAILED)
			die("mmap memfd");
		memset(blk, 0xff, BLOCK);
		munmap(blk, BLOCK);
		/* 2 MiB aligned, so a THP memfd can be mapped with PMDs. */
		win = mmap(NULL, ECAM_SIZE + BLOCK, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (win == MAP_FAILED)
			die("reserve window");
		{
			char *res = win;

			/* Keep only the aligned 256 MiB: one VMA per block. */
			win = (char *)(((uintptr_t)res + BLOCK - 1) & ~(BLOCK - 1));
			if (win > res)
				munmap(res, win - res);
			munmap(win + ECAM_SIZE, res + ECAM_SIZE + BLOCK - (win + ECAM_SIZE));
		}
		for (off = 0; off < ECAM_SIZE; off += BLOCK)
			if (mmap(win + off, BLOCK, PROT_READ, MAP_SHARED | MAP_FIXED,
				 fd, 0) == MAP_FAILED)
				die("map block");
		close(fd);
		if (set_region2(v, 1, KVM_MEM_READONLY, ECAM_GPA, ECAM_SIZE, win))
			die("READONLY slot");
	}
	if (pf && prefault(v))
		die("KVM_PRE_FAULT_MEMORY");
	return 0;
}

struct scan {
	double us;
	uint64_t pf, exits, mmio;
};

static void scan(struct vm *v, struct scan *s)
{
	uint64_t pf0 = stat_read(&v->st, v->st.off_pf_taken);
	uint64_t ex0 = stat_read(&v->st, v->st.off_exits);
	uint64_t mm0 = stat_read(&v->st, v->st.off_mmio_exits);
	double t0 = now_us();

	for (;;) {
		if (ioctl(v->vcpu_fd, KVM_RUN, 0) && errno != EINTR)
			die("KVM_RUN");
		if (v->run->exit_reason == KVM_EXIT_HLT)
			break;
		if (v->run->exit_reason == KVM_EXIT_MMIO && !v->run->mmio.is_write) {
			/* Only a hole without a mapping would get here. */
			memset(v->run->mmio.data, 0xff, sizeof(v->run->mmio.data));
			continue;
		}
		if (v->run->exit_reason == KVM_EXIT_INTR)
			continue;
		fprintf(stderr, "holebench: unexpected exit %u\n", v->run->exit_reason);
		exit(1);
	}
	s->us = now_us() - t0;
	s->pf = stat_read(&v->st, v->st.off_pf_taken) - pf0;
	s->exits = stat_read(&v->st, v->st.off_exits) - ex0;
	s->mmio = stat_read(&v->st, v->st.off_mmio_exits) - mm0;
}

static void set_thp(const char *val)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "w");

	if (f) {
		fputs(val, f);
		fclose(f);
	}
}

static int one(const char *mode, bool pf, int repeat)
{
	long pte0 = status_kb("VmPTE"), sec0 = meminfo_kb("SecPageTables");
	long shm0 = meminfo_kb("Shmem");
	int vma0, vma1;
	struct scan first, rep = { 0 };
	struct vm v;
	double t0, setup;
	int i;

	vm_create(&v);
	vma0 = nr_vmas();
	t0 = now_us();
	if (attach(&v, mode, pf)) {
		printf("RESULT mode=%s prefault=%d unavailable=1\n", mode, pf);
		return 3;
	}
	setup = now_us() - t0;
	vma1 = nr_vmas();
	scan(&v, &first);
	for (i = 0; i < repeat; i++)
		scan(&v, &rep);
	printf("RESULT mode=%s prefault=%d setup_us=%.1f first_us=%.1f first_pf=%llu first_exits=%llu first_mmio=%llu repeat_us=%.1f repeat_pf=%llu vmas=%d vmpte_kb=%ld secpt_kb=%ld shmem_kb=%ld\n",
	       mode, pf, setup, first.us, (unsigned long long)first.pf,
	       (unsigned long long)first.exits, (unsigned long long)first.mmio,
	       rep.us, (unsigned long long)rep.pf, vma1 - vma0,
	       status_kb("VmPTE") - pte0, meminfo_kb("SecPageTables") - sec0,
	       meminfo_kb("Shmem") - shm0);
	return 0;
}

/* N processes, one VM each, each building its own backing. */
static int procs(const char *mode, bool pf, int n)
{
	long free0 = meminfo_kb("MemFree"), shm0 = meminfo_kb("Shmem");
	long pt0 = meminfo_kb("PageTables"), sec0 = meminfo_kb("SecPageTables");
	int ready[2], go[2], i, st, bad = 0;
	double setup_sum = 0, t0 = now_us();
	char c;

	if (pipe(ready) || pipe(go))
		die("pipe");
	for (i = 0; i < n; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork");
		if (!p) {
			struct scan s;
			struct vm v;
			double a;

			close(ready[0]);
			close(go[1]);
			vm_create(&v);
			a = now_us();
			if (attach(&v, mode, pf))
				_exit(3);
			a = now_us() - a;
			scan(&v, &s);
			if (write(ready[1], &a, sizeof(a)) != sizeof(a))
				_exit(1);
			/* Hold the VM until the parent has measured. */
			if (read(go[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (i = 0; i < n; i++) {
		double a;

		if (read(ready[0], &a, sizeof(a)) != sizeof(a)) {
			bad = 1;
			break;
		}
		setup_sum += a;
	}
	if (!bad)
		printf("RESULT mode=%s prefault=%d procs=%d wall_s=%.2f setup_avg_us=%.1f mem_used_kb=%ld shmem_kb=%ld pagetables_kb=%ld secpt_kb=%ld\n",
		       mode, pf, n, (now_us() - t0) / 1e6, setup_sum / n,
		       free0 - meminfo_kb("MemFree"), meminfo_kb("Shmem") - shm0,
		       meminfo_kb("PageTables") - pt0,
		       meminfo_kb("SecPageTables") - sec0);
	close(go[1]);	/* EOF releases every child */
	for (i = 0; i < n; i++) {
		if (wait(&st) < 0)
			break;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			bad = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (bad)
		printf("RESULT mode=%s prefault=%d procs=%d failed=%d\n", mode, pf, n, bad);
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "prefault", no_argument, NULL, 'p' },
		{ "thp", required_argument, NULL, 't' },
		{ "procs", required_argument, NULL, 'n' },
		{ "repeat", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode = "readonly";
	int o, n = 0, repeat = 1;
	bool pf = false;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'm': mode = optarg; break;
		case 'p': pf = true; break;
		case 't': set_thp(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'r': repeat = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: holebench [--mode readonly|pci-hole] [--prefault] [--thp never|always] [--procs N] [--repeat N]\n");
			return 2;
		}
	}
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		die("/dev/kvm");
	return n > 0 ? procs(mode, pf, n) : one(mode, pf, repeat);
}
