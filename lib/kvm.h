/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Internal KVM helpers shared by probe.c and ctx.c (and reachable by tests). */
#ifndef PH_KVM_H
#define PH_KVM_H

#include <stdbool.h>
#include <stdint.h>

#include "pcihole.h"

/*
 * The functional probe: a throwaway VM on the /dev/kvm fd @kvm_fd with one
 * slot of @flags and @uaddr (one host page, at least 4 KiB) at guest address
 * PH_PROBE_GPA (created with REGION2 where the kernel has it), and a
 * real-mode guest that reads it (32 bits), writes the value back, and halts.
 * The slot "works" when the read gave all-ones without an exit to userspace
 * and the write came out as KVM_EXIT_MMIO.  Returns 1 if it works, 0 if not
 * (including a kernel that refuses the slot), -errno if the VM itself could
 * not be built.  Leaves nothing behind.
 */
#define PH_PROBE_GPA 0x10000u
int ph_probe_slot(int kvm_fd, uint32_t flags, uint64_t uaddr);


/*
 * Create, change or (@size 0) delete slot @slot of @vm_fd through
 * KVM_SET_USER_MEMORY_REGION2 (@region2) or the v1 ioctl.  Goes through the
 * fault-injection seam.  Returns 0 or -errno.
 */
int ph_set_region(int vm_fd, bool region2, uint32_t slot, uint32_t flags,
		  uint64_t gpa, uint64_t size, uint64_t uaddr);

#endif
