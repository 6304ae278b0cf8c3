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
#include "probe_guest.h"
#include "sys.h"

/*
 * Run the probe guest; 1 if the slot behaved, 0 if not.  The first exit
 * decides: it must be the guest's store of what it loaded, all-ones, to the
 * probe page (see probe_guest.h).  A load that exited shows up as a read.
 */
static int run_guest(int vcpu_fd, struct kvm_run *run)
{
	static const uint8_t ones[4] = { 0xff, 0xff, 0xff, 0xff };
	int i;

	for (i = 0; i < 16; i++) {
		if (ph_ioctl(vcpu_fd, KVM_RUN, NULL)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return ph_neg_errno();
		}
		if (run->exit_reason != KVM_EXIT_MMIO)
			return 0;
		return run->mmio.is_write && run->mmio.phys_addr == PH_PROBE_GPA &&
		       run->mmio.len == 4 && !memcmp(run->mmio.data, ones, 4);
	}
	return 0;
}

#if PH_PROBE_HAVE_GUEST
int ph_probe_slot(int kvm_fd, uint32_t flags, uint64_t uaddr)
{
	/* Slots are whole host pages: 64 KiB on some arm64 hosts. */
	size_t ps = (size_t)sysconf(_SC_PAGESIZE) > PH_PROBE_RAM ?
		    (size_t)sysconf(_SC_PAGESIZE) : PH_PROBE_RAM;
	struct kvm_run *run = MAP_FAILED;
	int vm_fd, vcpu_fd = -1, ret;
	long run_size = 0;
	bool v2;
	void *ram;

	/*
	 * REGION2 where the kernel has it: the 7.2 series (like upstream)
	 * admits new memslot flags only there, the v1 ioctl's flags are frozen.
	 */
	v2 = ph_query(kvm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_USER_MEMORY2) > 0;
	ram = ph_mmap(NULL, ps, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		return ph_neg_errno();
	memcpy(ram, ph_probe_code, ph_probe_code_len);
	vm_fd = ph_ioctl(kvm_fd, KVM_CREATE_VM, (void *)ph_probe_vm_type(kvm_fd));
	if (vm_fd < 0) {
		ret = ph_neg_errno();
		goto out;
	}
	ret = ph_set_region(vm_fd, v2, 0, 0, 0, ps, (uintptr_t)ram);
	if (ret)
		goto out;
	/* A kernel without the flag refuses the slot: not an error, just "no". */
	if (ph_set_region(vm_fd, v2, 1, flags, PH_PROBE_GPA, ps, uaddr)) {
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
	if (run == MAP_FAILED) {
		ret = ph_neg_errno();
		goto out;
	}
	ret = ph_probe_vcpu_init(vm_fd, vcpu_fd);
	if (!ret)
		ret = run_guest(vcpu_fd, run);
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	munmap(ram, ps);
	return ret;
}
#else
int ph_probe_slot(int kvm_fd, uint32_t flags, uint64_t uaddr)
{
	(void)kvm_fd;
	(void)flags;
	(void)uaddr;
	(void)run_guest;
	return -EOPNOTSUPP;
}
#endif

static int check_ext(int kvm_fd, long cap)
{
	int ret = ph_ioctl(kvm_fd, KVM_CHECK_EXTENSION, (void *)cap);

	return ret > 0 ? ret : 0;
}

/* The two numberings of the series, newest first (see pcihole.h). */
static const struct {
	uint32_t flag;
	long cap;
} pci_hole_abi[] = {
	{ PCIHOLE_KVM_MEM_PCI_HOLE, PCIHOLE_KVM_CAP_PCI_HOLE_MEM },
	{ PCIHOLE_KVM_MEM_PCI_HOLE_612, PCIHOLE_KVM_CAP_PCI_HOLE_MEM_612 },
};

static int probe(int kvm_fd, struct pcihole_caps *caps)
{
	size_t i;
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
	caps->user_memory2 = !!check_ext(kvm_fd, KVM_CAP_USER_MEMORY2);
	caps->pci_hole_tested = PH_PROBE_HAVE_GUEST;
	for (i = 0; i < sizeof(pci_hole_abi) / sizeof(pci_hole_abi[0]); i++) {
		if (!check_ext(kvm_fd, pci_hole_abi[i].cap))
			continue;
		caps->pci_hole_cap = 1;
		/* No probe guest for this architecture: the capability must do. */
		ret = PH_PROBE_HAVE_GUEST ?
		      ph_probe_slot(kvm_fd, pci_hole_abi[i].flag, 0) : 1;
		if (ret < 0)
			return ret;
		if (ret) {
			caps->pci_hole_works = 1;
			caps->pci_hole_flag = pci_hole_abi[i].flag;
			break;
		}
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
