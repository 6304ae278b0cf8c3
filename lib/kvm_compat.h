/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The one place with uAPI definitions that <linux/kvm.h> may lack.  Debian 12
 * ships 6.1 headers; the values below are those of Linux 6.12
 * (include/uapi/linux/kvm.h) and, for PCI_HOLE, of kernel/patches, which
 * include/pcihole.h mirrors.  Each one is defined only if the installed
 * header does not define it, and a static assertion catches a header that
 * disagrees with us about PCI_HOLE.
 */
#ifndef PH_KVM_COMPAT_H
#define PH_KVM_COMPAT_H

#include <linux/kvm.h>

#include "pcihole.h"

#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif

#ifndef KVM_MEM_PCI_HOLE
#define KVM_MEM_PCI_HOLE PCIHOLE_KVM_MEM_PCI_HOLE
#endif
_Static_assert(KVM_MEM_PCI_HOLE == PCIHOLE_KVM_MEM_PCI_HOLE,
	       "<linux/kvm.h> and pcihole.h disagree on KVM_MEM_PCI_HOLE");

#ifndef KVM_CAP_PCI_HOLE_MEM
#define KVM_CAP_PCI_HOLE_MEM PCIHOLE_KVM_CAP_PCI_HOLE_MEM
#endif
_Static_assert(KVM_CAP_PCI_HOLE_MEM == PCIHOLE_KVM_CAP_PCI_HOLE_MEM,
	       "<linux/kvm.h> and pcihole.h disagree on KVM_CAP_PCI_HOLE_MEM");

#ifndef KVM_SET_USER_MEMORY_REGION2
/* Linux >= 6.8; the struct arrived with the ioctl, so both are guarded together. */
#define KVM_CAP_USER_MEMORY2 231
struct kvm_userspace_memory_region2 {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 guest_memfd_offset;
	__u32 guest_memfd;
	__u32 pad1;
	__u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
/* Linux >= 6.10; the struct arrived with the ioctl, so both are guarded together. */
struct kvm_pre_fault_memory {
	__u64 gpa;
	__u64 size;
	__u64 flags;
	__u64 padding[5];
};
#endif

#ifndef KVM_PRE_FAULT_MEMORY
#define KVM_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#endif

_Static_assert(sizeof(struct pcihole_region2) ==
	       sizeof(struct kvm_userspace_memory_region2),
	       "struct pcihole_region2 must mirror kvm_userspace_memory_region2");
_Static_assert(__builtin_offsetof(struct pcihole_region2, guest_memfd) ==
	       __builtin_offsetof(struct kvm_userspace_memory_region2, guest_memfd),
	       "struct pcihole_region2 must mirror kvm_userspace_memory_region2");
_Static_assert(sizeof(struct pcihole_region) ==
	       sizeof(struct kvm_userspace_memory_region),
	       "struct pcihole_region must mirror kvm_userspace_memory_region");
_Static_assert(__builtin_offsetof(struct pcihole_region, userspace_addr) ==
	       __builtin_offsetof(struct kvm_userspace_memory_region, userspace_addr),
	       "struct pcihole_region must mirror kvm_userspace_memory_region");

#endif
