/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The VM: guest RAM in slot 0, one vCPU started straight in flat 32-bit
 * protected mode, and the exit loop.  handle_mmio() is the mmio path a VMM
 * copies.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "launch.h"

int kvm_check(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static void set_flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1;	/* 32-bit */
	s->s = 1;	/* code/data, not system */
	s->l = 0;
	s->g = 1;	/* 4 KiB granularity: 4 GiB limit */
}

void vm_create(struct vm *vm, const struct options *o)
{
	struct kvm_userspace_memory_region ram = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t idmap = GUEST_IDMAP;
	int r;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		die(EXIT_UNSUPPORTED, "cannot open /dev/kvm: %s", strerror(errno));
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die(EXIT_UNSUPPORTED, "/dev/kvm speaks an unknown API version");
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		die(EXIT_UNSUPPORTED, "KVM_CREATE_VM: %s", strerror(errno));
	vm->nr_memslots = (uint32_t)kvm_check(vm->vm_fd, KVM_CAP_NR_MEMSLOTS);
	if (vm->nr_memslots < 2)
		vm->nr_memslots = 32;	/* the minimum any x86 KVM ever had */

	/* Only Intel without unrestricted guest uses these; AMD ignores them. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)GUEST_TSS) < 0)
		die(EXIT_FAIL, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 && errno != ENOTTY)
		die(EXIT_FAIL, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));

	/* Slot 0 is RAM; the library gets slots from 1 on. */
	vm->ram = mmap(NULL, GUEST_RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->ram == MAP_FAILED)
		die(EXIT_FAIL, "guest RAM: %s", strerror(errno));
	/* Touch it all now, so the RSS baseline already holds it. */
	memset(vm->ram, 0, GUEST_RAM_SIZE);
	ram.slot = 0;
	ram.guest_phys_addr = 0;
	ram.memory_size = GUEST_RAM_SIZE;
	ram.userspace_addr = (uintptr_t)vm->ram;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &ram) < 0)
		die(EXIT_FAIL, "guest RAM slot: %s", strerror(errno));

	guest_load(vm->ram, o);

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0)
		die(EXIT_FAIL, "KVM_CREATE_VCPU: %s", strerror(errno));
	r = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run))
		die(EXIT_FAIL, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = (size_t)r;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED)
		die(EXIT_FAIL, "kvm_run: %s", strerror(errno));

	/* Straight into flat 32-bit protected mode: no real-mode trampoline. */
	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die(EXIT_FAIL, "KVM_GET_SREGS: %s", strerror(errno));
	set_flat_segment(&sregs.cs, 0x08, 0x0b);	/* code, execute/read, accessed */
	set_flat_segment(&sregs.ds, 0x10, 0x03);	/* data, read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11;				/* PE, ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die(EXIT_FAIL, "KVM_SET_SREGS: %s", strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rip = G_CODE;
	regs.rsp = G_STACK_TOP;
	regs.rflags = 0x2;
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		die(EXIT_FAIL, "KVM_SET_REGS: %s", strerror(errno));
}

/* Every fd and mapping of the VM; after the backend is gone. */
void vm_destroy(struct vm *vm)
{
	munmap(vm->run, vm->run_size);
	close(vm->vcpu_fd);
	close(vm->vm_fd);
	close(vm->kvm_fd);
	munmap(vm->ram, GUEST_RAM_SIZE);
}

/*
 * The heart of it, and the part a VMM copies: one pcihole_classify() call
 * per access says hole (already answered), present function (the VMM's own
 * device model gets it), shadowed function (the same; a write must also
 * bring the shadow page up to date, which function_write() does) or not
 * config space.  In the slot modes only present functions' accesses and
 * shadowed functions' writes (and hole writes, and runs a slot budget left
 * out) get here; in mmio mode every access does.  The answer comes from one
 * view of the presence map, so a --churn thread flipping a function cannot
 * make the access belong to nobody: there is nothing to retry.
 */
static void handle_mmio(struct launcher *l)
{
	struct kvm_run *run = l->vm.run;
	uint64_t gpa = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;
	bool is_write = run->mmio.is_write;
	struct pcihole_access acc;
	struct function *f;
	int r;

	r = pcihole_classify(l->layout, gpa, run->mmio.data, len, is_write, &acc);
	if (r == PCIHOLE_ACCESS_HOLE) {
		if (is_write)
			l->cur.hole_writes++;
		else
			l->cur.hole_reads++;
		return;
	}
	if (r == PCIHOLE_ACCESS_FUNCTION || r == PCIHOLE_ACCESS_SHADOWED) {
		bool shadowed = r == PCIHOLE_ACCESS_SHADOWED;

		if (is_write)
			++*(shadowed ? &l->cur.shadow_writes : &l->cur.present_writes);
		else
			++*(shadowed ? &l->cur.shadow_reads : &l->cur.present_reads);
		/*
		 * An access across two function pages is not a config access a
		 * host bridge forwards: all-ones, as QEMU's pcie_mmcfg_data_read().
		 */
		if (acc.offset + len > PCIHOLE_PAGE_SIZE) {
			if (!is_write)
				memset(run->mmio.data, 0xff, len);
			return;
		}
		f = find_function(l->o, &acc.bdf);
		if (!f) {
			char a[PCIHOLE_BDF_STRLEN];

			die(EXIT_FAIL, "%s is present in the layout but has no device model",
			    bdf_str(&acc.bdf, a));
		}
		if (is_write)
			function_write(f, acc.offset, run->mmio.data, len);
		else
			function_read(f, acc.offset, run->mmio.data, len);
		return;
	}
	die(EXIT_FAIL, "guest %s of %u bytes at 0x%" PRIx64 " is outside every window (%s)",
	    is_write ? "write" : "read", len, gpa, r < 0 ? strerror(-r) : "not config space");
}

static void handle_io(struct launcher *l)
{
	struct kvm_run *run = l->vm.run;
	uint64_t t = now_ns();

	l->cur.other++;
	if (run->io.port == PORT_CALIBRATE) {
		double ns = (double)(t - l->cal_start_ns) / CAL_LOOPS;

		if (l->cal_start_ns && (!l->loop_ns || ns < l->loop_ns))
			l->loop_ns = ns;
		l->cal_start_ns = now_ns();
		return;
	}
	if (run->io.port == PORT_BEGIN) {
		memset(&l->cur, 0, sizeof(l->cur));
		l->cur.other = 1;	/* this exit */
		l->scan_start_ns = now_ns();
		return;
	}
	if (run->io.port == PORT_END && l->nr_scans < l->o->repeat) {
		struct scan_result *s = &l->scans[l->nr_scans++];

		s->wall_ns = t - l->scan_start_ns;
		s->exits = l->cur;
		s->ok = check_scan(l, l->nr_scans);
		if (!s->ok)
			l->failed = true;
		if (!l->o->json)
			print_scan(l, l->nr_scans);
		if (l->nr_scans == 1 && l->o->hotplug)
			do_hotplug(l);
		return;
	}
	die(EXIT_FAIL, "guest port I/O %s 0x%x (unexpected)",
	    run->io.direction == KVM_EXIT_IO_OUT ? "out to" : "in from", run->io.port);
}

void run_guest(struct launcher *l)
{
	struct kvm_run *run = l->vm.run;

	for (;;) {
		if (ioctl(l->vm.vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die(EXIT_FAIL, "KVM_RUN: %s", strerror(errno));
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			handle_mmio(l);
			break;
		case KVM_EXIT_IO:
			handle_io(l);
			break;
		case KVM_EXIT_HLT:
			if (l->nr_scans != l->o->repeat)
				die(EXIT_FAIL, "guest halted after %u of %u scans", l->nr_scans,
				    l->o->repeat);
			return;
		default: {
			struct kvm_regs regs;

			memset(&regs, 0, sizeof(regs));
			ioctl(l->vm.vcpu_fd, KVM_GET_REGS, &regs);
			die(EXIT_FAIL, "unexpected exit reason %u at rip 0x%llx",
			    run->exit_reason, (unsigned long long)regs.rip);
		}
		}
	}
}
