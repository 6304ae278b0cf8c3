// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* Slot records: the v1 and REGION2 uAPI shapes, and the one ioctl path for both. */
#include <errno.h>
#include <string.h>

#include "kvm.h"
#include "kvm_compat.h"
#include "sys.h"

void pcihole_region_to_region2(const struct pcihole_region *r,
			       struct pcihole_region2 *r2)
{
	memset(r2, 0, sizeof(*r2));
	r2->slot = r->slot;
	r2->flags = r->flags;
	r2->guest_phys_addr = r->guest_phys_addr;
	r2->memory_size = r->memory_size;
	r2->userspace_addr = r->userspace_addr;
}

int ph_set_region(int vm_fd, bool region2, uint32_t slot, uint32_t flags,
		  uint64_t gpa, uint64_t size, uint64_t uaddr)
{
	int ret;

	if (region2) {
		struct kvm_userspace_memory_region2 r2 = {
			.slot = slot, .flags = flags, .guest_phys_addr = gpa,
			.memory_size = size, .userspace_addr = uaddr,
		};

		ret = ph_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &r2);
	} else {
		struct kvm_userspace_memory_region r = {
			.slot = slot, .flags = flags, .guest_phys_addr = gpa,
			.memory_size = size, .userspace_addr = uaddr,
		};

		ret = ph_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
	}
	return ret ? ph_neg_errno() : 0;
}
