/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#ifndef PH_PREFAULT_H
#define PH_PREFAULT_H

#include <stdint.h>

/*
 * KVM_PRE_FAULT_MEMORY over [@gpa, @gpa + @size) through @vcpu_fd, restarting
 * where the kernel stopped.  0, -EOPNOTSUPP without the ioctl, or -errno.
 */
int ph_prefault_range(int vcpu_fd, uint64_t gpa, uint64_t size);

#endif
