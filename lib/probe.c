// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * What the running kernel offers.  The capability numbers alone are not
 * trusted for KVM_MEM_PCI_HOLE: the flag is not upstream, so a kernel might
 * one day give bit 15 or capability 1024 another meaning.  A throwaway VM
 * must show the promised behaviour first.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"
#include "kvm_compat.h"
#include "sys.h"

#define PROBE_RAM 0x1000u

/*
 * Real mode, CS = DS = 0 until the guest loads DS = PH_PROBE_GPA >> 4:
 *	mov ax, PH_PROBE_GPA >> 4
 *	mov ds, ax
 *	mov eax, [0]		; must read 0xffffffff without an exit
 *	mov [0], eax		; must exit as a KVM_EXIT_MMIO write
 *	hlt
 */
static const uint8_t probe_code[] = {
	0xb8, (PH_PROBE_GPA >> 4) & 0xff, PH_PROBE_GPA >> 12,
	0x8e, 0xd8,
	0x66, 0xa1, 0x00, 0x00,
	0x66, 0xa3, 0x00, 0x00,
	0xf4,
};

static int set_slot(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
		    uint64_t size, uint64_t uaddr)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = uaddr,
	};

	return ph_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) ? ph_neg_errno() : 0;
}

/* Run the probe guest on @vcpu_fd; 1 if the slot behaved, 0 if not. */
static int run_guest(int vcpu_fd, struct kvm_run *run)
{
	struct kvm_regs regs;
	bool wrote = false;
	int i;

	for (i = 0; i < 16; i++) {
		if (ph_ioctl(vcpu_fd, KVM_RUN, NULL)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return ph_neg_errno();
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			/* A read that exits means the slot is not a PCI hole. */
			if (!run->mmio.is_write || run->mmio.phys_addr != PH_PROBE_GPA ||
			    run->mmio.len != 4 || wrote)
				return 0;
			wrote = true;
			break;
		case KVM_EXIT_HLT:
			if (!wrote)
				return 0;
			if (ph_ioctl(vcpu_fd, KVM_GET_REGS, &regs))
				return ph_neg_errno();
			return (uint32_t)regs.rax == 0xffffffffu;
		default:
			return 0;
		}
	}
	return 0;
}

int ph_probe_slot(int kvm_fd, uint32_t flags, uint64_t uaddr)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run = MAP_FAILED;
	int vm_fd, vcpu_fd = -1, ret;
	long run_size = 0;
	void *ram;

	ram = ph_mmap(NULL, PROBE_RAM, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		return ph_neg_errno();
	memcpy(ram, probe_code, sizeof(probe_code));
	vm_fd = ph_ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0) {
		ret = ph_neg_errno();
		goto out;
	}
	ret = set_slot(vm_fd, 0, 0, 0, PROBE_RAM, (uintptr_t)ram);
	if (ret)
		goto out;
	/* A kernel without the flag refuses the slot: not an error, just "no". */
	if (set_slot(vm_fd, 1, flags, PH_PROBE_GPA, PCIHOLE_PAGE_SIZE, uaddr)) {
		ret = 0;
		goto out;
	}
	vcpu_fd = ph_ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	run_size = ph_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (vcpu_fd < 0 || run_size <= 0) {
		ret = ph_neg_errno();
		goto out;
	}
	run = ph_mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      vcpu_fd, 0);
	if (run == MAP_FAILED || ph_ioctl(vcpu_fd, KVM_GET_SREGS, &sregs)) {
		ret = ph_neg_errno();
		goto out;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rflags = 2;
	regs.rax = 0x12345678;
	if (ph_ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) ||
	    ph_ioctl(vcpu_fd, KVM_SET_REGS, &regs)) {
		ret = ph_neg_errno();
		goto out;
	}
	ret = run_guest(vcpu_fd, run);
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	munmap(ram, PROBE_RAM);
	return ret;
}

static int check_ext(int kvm_fd, long cap)
{
	int ret = ph_ioctl(kvm_fd, KVM_CHECK_EXTENSION, (void *)cap);

	return ret > 0 ? ret : 0;
}

static int probe(int kvm_fd, struct pcihole_caps *caps)
{
	int ret;

	ret = ph_ioctl(kvm_fd, KVM_GET_API_VERSION, NULL);
	if (ret < 0)
		return ph_neg_errno();
	if (ret != KVM_API_VERSION)
		return -EOPNOTSUPP;
	memset(caps, 0, sizeof(*caps));
	caps->readonly_mem = (uint32_t)check_ext(kvm_fd, KVM_CAP_READONLY_MEM);
	caps->nr_memslots = (uint32_t)check_ext(kvm_fd, KVM_CAP_NR_MEMSLOTS);
	caps->pre_fault_memory = (uint32_t)check_ext(kvm_fd, KVM_CAP_PRE_FAULT_MEMORY);
	caps->pci_hole_cap = !!check_ext(kvm_fd, KVM_CAP_PCI_HOLE_MEM);
	if (caps->pci_hole_cap) {
		ret = ph_probe_slot(kvm_fd, KVM_MEM_PCI_HOLE, 0);
		if (ret < 0)
			return ret;
		caps->pci_hole_works = (uint32_t)ret;
	}
	return 0;
}

/* The only process-wide state of the library (besides the test-only seam). */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcihole_caps cache;
static bool cache_valid;

int pcihole_probe(int kvm_fd, bool fresh, struct pcihole_caps *caps)
{
	struct pcihole_caps c;
	int fd = kvm_fd, ret = 0;

	if (!caps)
		return -EINVAL;
	/* Held across the probe so that concurrent first callers probe once. */
	pthread_mutex_lock(&cache_lock);
	if (cache_valid && !fresh) {
		*caps = cache;
		goto out;
	}
	if (fd < 0) {
		fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			ret = ph_neg_errno();
			goto out;
		}
	}
	ret = probe(fd, &c);
	if (fd != kvm_fd)
		close(fd);
	if (!ret) {
		cache = c;
		cache_valid = true;
		*caps = c;
	}
out:
	pthread_mutex_unlock(&cache_lock);
	return ret;
}
