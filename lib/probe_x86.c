// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* x86 half of the functional probe (see probe_guest.h): a real-mode guest. */
#if defined(__x86_64__)
#include <string.h>

#include "kvm.h"
#include "kvm_compat.h"
#include "probe_guest.h"
#include "sys.h"

/*
 * Real mode, CS = DS = 0 until the guest loads DS = PH_PROBE_GPA >> 4:
 *	mov ax, PH_PROBE_GPA >> 4
 *	mov ds, ax
 *	mov eax, [0]		; must read 0xffffffff without an exit
 *	mov [0], eax		; must exit as a KVM_EXIT_MMIO write
 *	hlt
 */
const uint8_t ph_probe_code[] = {
	0xb8, (PH_PROBE_GPA >> 4) & 0xff, PH_PROBE_GPA >> 12,
	0x8e, 0xd8,
	0x66, 0xa1, 0x00, 0x00,
	0x66, 0xa3, 0x00, 0x00,
	0xf4,
};
const size_t ph_probe_code_len = sizeof(ph_probe_code);

unsigned long ph_probe_vm_type(int kvm_fd)
{
	(void)kvm_fd;
	return 0;
}

int ph_probe_vcpu_init(int vm_fd, int vcpu_fd)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	(void)vm_fd;
	if (ph_ioctl(vcpu_fd, KVM_GET_SREGS, &sregs))
		return ph_neg_errno();
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rflags = 2;
	/* Not all-ones, so a load that never happened cannot pass. */
	regs.rax = 0x12345678;
	if (ph_ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) ||
	    ph_ioctl(vcpu_fd, KVM_SET_REGS, &regs))
		return ph_neg_errno();
	return 0;
}
#endif
