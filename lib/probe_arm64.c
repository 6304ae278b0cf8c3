// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * AArch64 half of the functional probe (see probe_guest.h): an EL1 guest
 * with its MMU off, so guest virtual = guest physical.  With stage 1 off,
 * data accesses are Device memory, which is why the probe uses an aligned
 * 32-bit load and store only; both have a valid syndrome (ISV), so KVM can
 * hand the store to userspace as KVM_EXIT_MMIO.
 */
#if defined(__aarch64__)
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"
#include "kvm_compat.h"
#include "probe_guest.h"
#include "sys.h"

#define A64_MOVZ_X(rd, imm16, hw) \
	(0xd2800000u | ((uint32_t)(hw) << 21) | ((uint32_t)(imm16) << 5) | (rd))
#define A64_MOVK_X(rd, imm16, hw) \
	(0xf2800000u | ((uint32_t)(hw) << 21) | ((uint32_t)(imm16) << 5) | (rd))
#define A64_LDR_W(rt, rn) (0xb9400000u | ((uint32_t)(rn) << 5) | (rt))
#define A64_STR_W(rt, rn) (0xb9000000u | ((uint32_t)(rn) << 5) | (rt))
/* str wt, [xn, #off] (unsigned offset, a multiple of 4 below 16 KiB) */
#define A64_STR_W_OFF(rt, rn, off) \
	(0xb9000000u | ((uint32_t)(off) / 4u) << 10 | ((uint32_t)(rn) << 5) | (rt))
#define A64_B_SELF 0x14000000u

#define LE32(w) (uint8_t)(w), (uint8_t)((w) >> 8), (uint8_t)((w) >> 16), (uint8_t)((w) >> 24)

/*
 *	movz x0, #(PH_PROBE_GPA & 0xffff)
 *	movk x0, #(PH_PROBE_GPA >> 16), lsl #16
 *	ldr  w1, [x0]		// must read 0xffffffff without an exit
 *	str  w1, [x0]		// must exit as a KVM_EXIT_MMIO write
 *	str  w1, [x0, #0x1000]	// outside every slot: always exits
 *	b    .
 * The second store stands in for x86's hlt: there is no halt exit, and a
 * slot whose store does not exit (writable memory) must still end the run,
 * with an exit that is not the probe's.
 * Instructions are little endian whatever the data endianness.
 */
const uint8_t ph_probe_code[] = {
	LE32(A64_MOVZ_X(0, PH_PROBE_GPA & 0xffff, 0)),
	LE32(A64_MOVK_X(0, (PH_PROBE_GPA >> 16) & 0xffff, 1)),
	LE32(A64_LDR_W(1, 0)),
	LE32(A64_STR_W(1, 0)),
	LE32(A64_STR_W_OFF(1, 0, PCIHOLE_PAGE_SIZE)),
	LE32(A64_B_SELF),
};
const size_t ph_probe_code_len = sizeof(ph_probe_code);

/*
 * Type 0 asks for a 40-bit IPA space, which KVM refuses on hosts whose
 * limit is smaller; the probe only needs the low 32 bits (the smallest
 * size KVM accepts), so ask for that whenever the size can be chosen.
 */
unsigned long ph_probe_vm_type(int kvm_fd)
{
	/*
	 * A query with a fallback, not a change of state: around the
	 * fault-injection seam (sys.h), whose failures must surface as errors.
	 */
	int limit = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);

	return limit >= 32 ? KVM_VM_TYPE_ARM_IPA_SIZE(32) : 0;
}

#define CORE_REG(name) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			KVM_REG_ARM_CORE_REG(regs.name))

static int set_core_reg(int vcpu_fd, uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&val };

	return ph_ioctl(vcpu_fd, KVM_SET_ONE_REG, &reg) ? ph_neg_errno() : 0;
}

/* PSTATE: EL1 with SP_EL1, D, A, I and F masked (the vCPU reset value). */
#define PROBE_PSTATE 0x3c5u

int ph_probe_vcpu_init(int vm_fd, int vcpu_fd)
{
	struct kvm_vcpu_init init;
	int ret;

	memset(&init, 0, sizeof(init));
	if (ph_ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &init))
		return ph_neg_errno();
	if (ph_ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &init))
		return ph_neg_errno();
	ret = set_core_reg(vcpu_fd, CORE_REG(pstate), PROBE_PSTATE);
	if (!ret)
		ret = set_core_reg(vcpu_fd, CORE_REG(pc), 0);
	/* Not all-ones, so a load that never happened cannot pass. */
	if (!ret)
		ret = set_core_reg(vcpu_fd, CORE_REG(regs[1]), 0x12345678);
	return ret;
}
#endif
