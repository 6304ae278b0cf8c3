/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * sample-vmm: the whole life of libpcihole in a VMM, short enough to copy.
 *
 *   probe -> layout -> attach -> KVM_RUN loop (KVM_EXIT_MMIO: pcihole_classify)
 *         -> hotplug -> teardown (detach, then the VM's fds)
 *
 * One ECAM window (segment 0, bus 0 at 0xb0000000), functions 00:00.0 and
 * 00:02.0 present, 00:04.0 hotplugged while the guest runs.  The guest is a
 * few instructions of flat 32-bit code: it reads a hole (00:03.0), reads and
 * writes a present function, writes the hole, asks for the hotplug through
 * port 0x510, reads the new function and halts.  The VMM prints what it read.
 *
 *   sample-vmm                  teardown: pcihole_ctx_detach(), then close the VM
 *   sample-vmm --destroy-first  the other documented order: close the VM, then
 *                               pcihole_ctx_destroy()
 *   sample-vmm --mmio           no slots: every hole access exits to the VMM
 *
 * Exit: 0 when the guest read what it should and no fd is left open, 1
 * otherwise, 2 for a bad argument.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <pcihole.h>

#define RAM_SIZE	0x10000		/* guest RAM at 0; code at 0x1000 */
#define ECAM_BASE	0xb0000000ull	/* segment 0, bus 0 */
#define PORT_HOTPLUG	0x510
#define RESULTS		0x500		/* where the guest stores what it read */
#define NR_RESULTS	5
#define NR_DEVS		3

/* The guest: addresses are bus 0's config pages, dev << 15 | fn << 12. */
__asm__(".pushsection .rodata.sample_guest, \"a\"\n"
	".intel_syntax noprefix\n.code32\n"
	"sample_guest:\n"
	"	mov eax, dword ptr [0xb0018000]\n"	/* hole 00:03.0: vendor/device */
	"	mov dword ptr [0x500], eax\n"
	"	mov eax, dword ptr [0xb0010000]\n"	/* 00:02.0: vendor/device */
	"	mov dword ptr [0x504], eax\n"
	"	mov dword ptr [0xb001003c], 0x0b\n"	/* 00:02.0: interrupt line */
	"	mov dword ptr [0xb001803c], 0x0b\n"	/* the hole: dropped */
	"	mov eax, dword ptr [0xb001003c]\n"
	"	mov dword ptr [0x508], eax\n"
	"	mov eax, dword ptr [0xb001803c]\n"
	"	mov dword ptr [0x50c], eax\n"
	"	mov dx, 0x510\n"
	"	out dx, al\n"				/* please hotplug 00:04.0 */
	"	mov eax, dword ptr [0xb0020000]\n"	/* 00:04.0: vendor/device */
	"	mov dword ptr [0x510], eax\n"
	"	hlt\n"
	"sample_guest_end:\n"
	".code64\n.att_syntax prefix\n.popsection\n");
extern const unsigned char sample_guest[], sample_guest_end[];

/* The VMM's device model: config space bytes; only the interrupt line is writable. */
struct dev {
	struct pcihole_bdf bdf;
	uint8_t cfg[256];
};

static void __attribute__((noreturn)) die(const char *what, int err)
{
	fprintf(stderr, "sample-vmm: %s: %s\n", what, strerror(err));
	exit(1);
}

static struct dev *dev_find(struct dev *devs, const struct pcihole_bdf *bdf)
{
	for (int i = 0; i < NR_DEVS; i++)
		if (devs[i].bdf.segment == bdf->segment && devs[i].bdf.bus == bdf->bus &&
		    devs[i].bdf.dev == bdf->dev && devs[i].bdf.fn == bdf->fn)
			return &devs[i];
	return NULL;
}

/* Open fds of this process, to show that teardown closed every one. */
static int nr_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = -1;		/* the directory's own fd */

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;		/* . and .. */
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->db = 1;
	s->s = 1;
	s->g = 1;
}

int main(int argc, char **argv)
{
	const struct pcihole_segment seg = { .segment = 0, .base = ECAM_BASE, .bus_end = 0 };
	struct dev devs[NR_DEVS] = {
		{ .bdf = { .dev = 0 } }, { .bdf = { .dev = 2 } }, { .bdf = { .dev = 4 } },
	};
	bool destroy_first = false, mmio = false;
	int fds_before = nr_fds();
	struct pcihole_ctx_config cfg = { 0 };
	struct kvm_userspace_memory_region mem = { 0 };
	unsigned int hole_exits = 0, dev_exits = 0;
	struct pcihole_ctx_stats st;
	struct pcihole_layout *layout;
	struct pcihole_caps caps;
	struct pcihole_ctx *ctx;
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 0x2 };
	struct kvm_run *run;
	uint32_t got[NR_RESULTS];
	int kvm, vm, vcpu, r, run_size, bad = 0;
	uint64_t idmap = RAM_SIZE + 0x3000;
	uint8_t *ram;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--destroy-first")) {
			destroy_first = true;
		} else if (!strcmp(argv[i], "--mmio")) {
			mmio = true;
		} else {
			fprintf(stderr, "usage: sample-vmm [--destroy-first] [--mmio]\n");
			return 2;
		}
	}

	/* The device model first: a function must answer before it is present. */
	for (int i = 0; i < NR_DEVS; i++) {
		uint32_t id = (uint32_t)(i + 1) << 16 | 0x1b36;

		memcpy(devs[i].cfg, &id, 4);
		devs[i].cfg[0x3d] = 1;		/* INTA# */
	}

	/* The VM: RAM in slot 0; the library gets slot ids 1..16. */
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm", errno);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM", errno);
	/* Intel without unrestricted guest needs these, out of the ECAM window's way. */
	if (ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)RAM_SIZE) < 0 ||
	    (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 && errno != ENOTTY))
		die("KVM_SET_TSS_ADDR", errno);
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap", errno);
	memcpy(ram + 0x1000, sample_guest, (size_t)(sample_guest_end - sample_guest));
	mem.memory_size = RAM_SIZE;
	mem.userspace_addr = (uintptr_t)ram;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mem) < 0)
		die("guest RAM", errno);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || run_size < 0)
		die("KVM_CREATE_VCPU", errno);
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run", errno);
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS", errno);
	flat_segment(&sregs.cs, 0x08, 0x0b);
	flat_segment(&sregs.ds, 0x10, 0x03);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11;		/* protected mode, no paging */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_SREGS", errno);

	/* libpcihole: probe once per process, the layout, then attach. */
	r = pcihole_probe(kvm, false, &caps);
	if (r < 0)
		die("pcihole_probe", -r);
	r = pcihole_layout_new(&seg, 1, 0, &layout);
	if (r < 0)
		die("pcihole_layout_new", -r);
	for (int i = 0; i < 2; i++)	/* 00:04.0 comes later */
		if ((r = pcihole_layout_set_present(layout, &devs[i].bdf, true)) < 0)
			die("pcihole_layout_set_present", -r);
	cfg.mode = mmio ? PCIHOLE_MODE_MMIO : PCIHOLE_MODE_AUTO;
	cfg.slot_base = 1;
	cfg.nr_slots = 16;
	cfg.memfd = -1;			/* a real VMM shares one memfd between its VMs */
	cfg.caps = &caps;
	r = pcihole_ctx_attach(vm, layout, &cfg, &ctx);
	if (r < 0)
		die("pcihole_ctx_attach", -r);
	if ((r = pcihole_ctx_stats(ctx, &st)) < 0)
		die("pcihole_ctx_stats", -r);
	printf("mode %s: %u slots for the holes\n", pcihole_mode_name(pcihole_ctx_mode(ctx)),
	       st.nr_slots);

	for (;;) {
		struct pcihole_access acc;
		struct dev *d;

		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN", errno);
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PORT_HOTPLUG) {
			/* Model ready (above), then the bit and the slots, in one call. */
			r = pcihole_ctx_set_present(ctx, &devs[2].bdf, true);
			if (r < 0 || (r = pcihole_ctx_stats(ctx, &st)) < 0)
				die("hotplug", -r);
			printf("hotplug 00:04.0: %u slots\n", st.nr_slots);
			continue;
		}
		if (run->exit_reason != KVM_EXIT_MMIO) {
			fprintf(stderr, "sample-vmm: unexpected exit %u\n", run->exit_reason);
			return 1;
		}
		/* One call, one consistent answer, even against a concurrent hotplug. */
		r = pcihole_classify(layout, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
				     run->mmio.is_write, &acc);
		if (r == PCIHOLE_ACCESS_HOLE) {
			hole_exits++;		/* answered: all-ones read, dropped write */
			continue;
		}
		d = r == PCIHOLE_ACCESS_FUNCTION ? dev_find(devs, &acc.bdf) : NULL;
		if (!d || acc.offset + run->mmio.len > sizeof(d->cfg)) {
			/* Not config space, or beyond our model: a VMM's other MMIO goes here. */
			fprintf(stderr, "sample-vmm: mmio at 0x%llx is not ours\n",
				(unsigned long long)run->mmio.phys_addr);
			return 1;
		}
		dev_exits++;
		if (!run->mmio.is_write)
			memcpy(run->mmio.data, d->cfg + acc.offset, run->mmio.len);
		else if (acc.offset == 0x3c)
			d->cfg[0x3c] = run->mmio.data[0];
	}

	memcpy(got, ram + RESULTS, sizeof(got));
	printf("hole 00:03.0 reads 0x%08x\n", got[0]);
	printf("00:02.0 reads 0x%08x\n", got[1]);
	printf("00:02.0 register 0x3c after writing 0x0b: 0x%08x\n", got[2]);
	printf("hole 00:03.0 register 0x3c after writing 0x0b: 0x%08x\n", got[3]);
	printf("hotplugged 00:04.0 reads 0x%08x\n", got[4]);
	printf("exits: %u hole accesses answered by pcihole_classify, %u to the device model\n",
	       hole_exits, dev_exits);
	bad = got[0] != 0xffffffff || got[1] != 0x00021b36 || got[2] != 0x0000010b ||
	      got[3] != 0xffffffff || got[4] != 0x00031b36;

	/*
	 * Teardown, vCPU stopped (it halted).  Documented order: detach while
	 * the VM lives (it deletes the slots), then close the VM's fds.  A VMM
	 * that closes the VM first frees the context with pcihole_ctx_destroy():
	 * the slots died with the VM.  The layout goes last: the context used it.
	 */
	if (!destroy_first && (r = pcihole_ctx_detach(ctx)) < 0) {
		fprintf(stderr, "sample-vmm: pcihole_ctx_detach: %s\n", strerror(-r));
		pcihole_ctx_destroy(ctx);	/* the slots go with the VM below */
	}
	munmap(run, (size_t)run_size);
	close(vcpu);
	close(vm);
	close(kvm);
	if (destroy_first)
		pcihole_ctx_destroy(ctx);
	munmap(ram, RAM_SIZE);
	pcihole_layout_free(layout);
	printf("teardown: %s; fds left open: %d\n",
	       destroy_first ? "VM closed, then pcihole_ctx_destroy()"
			     : "pcihole_ctx_detach(), then VM closed", nr_fds() - fds_before);
	bad |= nr_fds() != fds_before;
	printf("%s\n", bad ? "FAIL: the guest read something else" : "OK");
	return bad;
}
