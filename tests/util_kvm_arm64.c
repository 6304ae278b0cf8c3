// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * AArch64 guest of the KVM test helpers (util_kvm.h): EL1h, interrupts
 * masked, MMU off, so guest virtual = guest physical.  With stage 1 off the
 * guest's data accesses are Device memory: every access the tests make is
 * naturally aligned, and each load or store is a single instruction without
 * writeback, so its abort carries a valid syndrome and KVM can hand it to
 * userspace as KVM_EXIT_MMIO.  There is no port I/O and no exit for a wait
 * instruction that KVM does not absorb, so sync points and the end are
 * stores to TK_SYNC_GPA and TK_HALT_GPA.
 */
#if defined(__aarch64__)
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "testutil.h"
#include "util_kvm.h"

/* 40 bits is KVM's default; the tests' addresses need 34. */
unsigned long tk_arch_vm_type(int kvm_fd)
{
	int limit = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);

	if (limit <= 0)
		return 0;
	return KVM_VM_TYPE_ARM_IPA_SIZE(limit < 40 ? limit : 40);
}

void tk_arch_vcpu_setup(struct tk_vm *vm)
{
	tk_arch_reset(vm);
}

#define CORE_REG(name) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			KVM_REG_ARM_CORE_REG(regs.name))
/* EL1 with SP_EL1, D, A, I and F masked. */
#define TK_PSTATE 0x3c5u

static void set_reg(struct tk_vm *vm, uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)&val };

	assert_int_equal(ioctl(vm->vcpu_fd, KVM_SET_ONE_REG, &reg), 0);
}

/* KVM_ARM_VCPU_INIT may be repeated at any time: it resets the vCPU. */
void tk_arch_reset(struct tk_vm *vm)
{
	struct kvm_vcpu_init init;

	memset(&init, 0, sizeof(init));
	assert_int_equal(ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &init), 0);
	assert_int_equal(ioctl(vm->vcpu_fd, KVM_ARM_VCPU_INIT, &init), 0);
	set_reg(vm, CORE_REG(pstate), TK_PSTATE);
	set_reg(vm, CORE_REG(pc), TK_CODE);
}

/*
 * A guest with its MMU off reads and writes RAM non-cacheable, while the
 * host uses cacheable mappings: clean and invalidate the whole RAM to the
 * point of coherency around every run (1 MiB, a few thousand instructions),
 * or the guest could run stale code and the host read stale results.  KVM
 * does this only when it first maps a page.  A no-op in effect under TCG
 * and with FEAT_S2FWB, where KVM forces stage 2 cacheable.
 */
void tk_arch_sync_ram(const struct tk_vm *vm)
{
	uint64_t ctr, line, p;

	__asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
	line = 4u << ((ctr >> 16) & 0xf);
	for (p = (uintptr_t)vm->ram; p < (uintptr_t)vm->ram + TK_RAM_SIZE; p += line)
		__asm__ volatile("dc civac, %0" : : "r"(p) : "memory");
	__asm__ volatile("dsb sy" : : : "memory");
}

enum tk_arch_verdict tk_arch_exit(struct tk_vm *vm, const struct tk_handlers *h)
{
	struct kvm_run *run = vm->run;
	uint32_t val = 0;

	if (run->exit_reason != KVM_EXIT_MMIO)
		return TK_ARCH_NOT_MINE;
	if (run->mmio.phys_addr == TK_HALT_GPA && run->mmio.is_write)
		return TK_ARCH_HALT;
	if (run->mmio.phys_addr != TK_SYNC_GPA)
		return TK_ARCH_NOT_MINE;
	if (!run->mmio.is_write || run->mmio.len != 4) {
		print_message("unexpected %s of %u bytes at the sync address\n",
			      run->mmio.is_write ? "write" : "read", run->mmio.len);
		return TK_ARCH_ERROR;
	}
	vm->exits_io++;
	if (h && h->sync) {
		memcpy(&val, run->mmio.data, 4);
		h->sync(h->opaque, val);
	}
	return TK_ARCH_CONTINUE;
}

/* Guest code assembly: A64 encodings (instructions are always little endian). */

enum { X0, X1, X2, X3, X4, X5, X6, XZR = 31 };

static void ins(struct tk_asm *a, uint32_t insn)
{
	uint8_t b[4] = { (uint8_t)insn, (uint8_t)(insn >> 8), (uint8_t)(insn >> 16),
			 (uint8_t)(insn >> 24) };

	tk_emit(a, b, 4);
}

/* movz/movk: @rd = @val. */
static void mov_imm(struct tk_asm *a, unsigned int rd, uint64_t val)
{
	unsigned int hw;

	ins(a, 0xd2800000u | (uint32_t)(val & 0xffff) << 5 | rd);	/* movz */
	for (hw = 1; hw < 4; hw++)
		if ((val >> (16 * hw)) & 0xffff)
			ins(a, 0xf2800000u | hw << 21 |
			       (uint32_t)((val >> (16 * hw)) & 0xffff) << 5 | rd); /* movk */
}

/* ldr/str of @width bytes, [rn] with no offset and no writeback. */
static uint32_t ldst(unsigned int width, bool load, unsigned int rt, unsigned int rn)
{
	uint32_t size;

	switch (width) {
	case 1: size = 0; break;
	case 2: size = 1; break;
	case 4: size = 2; break;
	case 8: size = 3; break;
	default: fail(); return 0;
	}
	return 0x39000000u | size << 30 | (load ? 1u << 22 : 0) | rn << 5 | rt;
}

void tk_asm_read(struct tk_asm *a, unsigned int width, uint32_t gpa, unsigned int slot)
{
	mov_imm(a, X0, gpa);
	mov_imm(a, X2, TK_DATA + slot * 8u);
	ins(a, ldst(width, true, X1, X0));
	ins(a, ldst(width, false, X1, X2));
}

void tk_asm_write32(struct tk_asm *a, uint32_t gpa, uint32_t val)
{
	mov_imm(a, X0, gpa);
	mov_imm(a, X1, val);
	ins(a, ldst(4, false, X1, X0));
}

void tk_asm_sync(struct tk_asm *a, uint32_t val)
{
	tk_asm_write32(a, TK_SYNC_GPA, val);
}

void tk_asm_scan(struct tk_asm *a, uint32_t gpa, uint32_t stride, uint32_t count)
{
	assert_true(count > 0 && count <= TK_SCAN_MAX);
	mov_imm(a, X3, gpa);
	mov_imm(a, X4, count);
	mov_imm(a, X5, TK_SCAN_OUT);
	mov_imm(a, X6, stride);
	/* loop: */
	ins(a, ldst(4, true, X1, X3));				/* ldr w1, [x3] */
	ins(a, ldst(4, false, X1, X5));				/* str w1, [x5] */
	ins(a, 0x91000000u | 4u << 10 | X5 << 5 | X5);		/* add x5, x5, #4 */
	ins(a, 0x8b000000u | X6 << 16 | X3 << 5 | X3);		/* add x3, x3, x6 */
	ins(a, 0xf1000000u | 1u << 10 | X4 << 5 | X4);		/* subs x4, x4, #1 */
	ins(a, 0x54000001u | (uint32_t)(-5 & 0x7ffff) << 5);	/* b.ne loop */
}

void tk_asm_hlt(struct tk_asm *a)
{
	mov_imm(a, X0, TK_HALT_GPA);
	ins(a, ldst(4, false, XZR, X0));			/* str wzr, [x0] */
	/* Run again without a new load: end again. */
	ins(a, 0x14000000u | (uint32_t)(-1 & 0x3ffffff));	/* b .-4 */
}
#endif
