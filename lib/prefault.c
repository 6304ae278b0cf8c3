// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* KVM_PRE_FAULT_MEMORY over hole slots, for contexts and for VMMs that own their slots. */
#include <errno.h>

#include "internal.h"
#include "kvm_compat.h"
#include "prefault.h"
#include "sys.h"

int ph_prefault_range(int vcpu_fd, uint64_t gpa, uint64_t size)
{
	struct kvm_pre_fault_memory r = { .gpa = gpa, .size = size };

	/* The kernel advances gpa/size and may stop early to reschedule. */
	while (r.size) {
		if (!ph_ioctl(vcpu_fd, KVM_PRE_FAULT_MEMORY, &r))
			continue;
		if (errno == EINTR || errno == EAGAIN)
			continue;
		/* A kernel without the ioctl (< 6.10) or without the TDP MMU. */
		if (errno == ENOTTY || errno == EOPNOTSUPP)
			return -EOPNOTSUPP;
		return ph_neg_errno();
	}
	return 0;
}

int64_t pcihole_prefault(int vcpu_fd, const struct pcihole_region *regions,
			 size_t nr)
{
	struct pcihole_caps caps;
	int64_t done = 0;
	size_t i;
	int ret;

	if (vcpu_fd < 0 || (nr && !regions))
		return -EINVAL;
	/*
	 * The capability first: architectures without the ioctl answer it with
	 * EINVAL (arm64), not ENOTTY, which would look like a bad range.
	 */
	for (i = 0; i < nr && !regions[i].memory_size; i++)
		;
	if (i < nr && !pcihole_probe(-1, false, &caps) && !caps.pre_fault_memory)
		return -EOPNOTSUPP;
	for (i = 0; i < nr; i++) {
		if (!regions[i].memory_size)
			continue;
		ret = ph_prefault_range(vcpu_fd, regions[i].guest_phys_addr,
					regions[i].memory_size);
		if (ret)
			return ret;
		done += (int64_t)regions[i].memory_size;
	}
	return done;
}
