// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * x86 guest of the KVM test helpers (util_kvm.h): 32-bit protected mode,
 * flat 4 GiB segments, no paging, so guest linear = guest physical.
 */
#if defined(__x86_64__) || defined(__i386__)
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "testutil.h"
#include "util_kvm.h"

unsigned long tk_arch_vm_type(int kvm_fd)
{
	(void)kvm_fd;
	return 0;
}

void tk_arch_vcpu_setup(struct tk_vm *vm)
{
	const uint32_t nent = 128;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

	assert_non_null(c);
	c->nent = nent;
	if (!ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c))
		ioctl(vm->vcpu_fd, KVM_SET_CPUID2, c);
	free(c);
}

static struct kvm_segment flat(uint16_t sel, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

void tk_arch_reset(struct tk_vm *vm)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	assert_int_equal(ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs), 0);
	/* 32-bit protected mode, flat segments, no paging; MMX usable (EM = TS = 0). */
	sregs.cr0 = (sregs.cr0 | 1u) & ~(uint64_t)((1u << 2) | (1u << 3) | (1u << 31));
	sregs.cr4 |= 1u << 9;	/* OSFXSR */
	sregs.cs = flat(8, 11);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat(16, 3);
	assert_int_equal(ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs), 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = TK_CODE;
	regs.rflags = 2;
	regs.rsp = TK_DATA;
	assert_int_equal(ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs), 0);
}

/* x86 caches are coherent with the guest's accesses. */
void tk_arch_sync_ram(const struct tk_vm *vm)
{
	(void)vm;
}

enum tk_arch_verdict tk_arch_exit(struct tk_vm *vm, const struct tk_handlers *h)
{
	struct kvm_run *run = vm->run;
	uint32_t val = 0;

	switch (run->exit_reason) {
	case KVM_EXIT_HLT:
		return TK_ARCH_HALT;
	case KVM_EXIT_IO:
		if (run->io.port != TK_SYNC_PORT ||
		    run->io.direction != KVM_EXIT_IO_OUT) {
			print_message("unexpected port I/O 0x%x\n", run->io.port);
			return TK_ARCH_ERROR;
		}
		vm->exits_io++;
		if (h && h->sync) {
			memcpy(&val, (uint8_t *)run + run->io.data_offset,
			       run->io.size < 4 ? run->io.size : 4);
			h->sync(h->opaque, val);
		}
		return TK_ARCH_CONTINUE;
	default:
		return TK_ARCH_NOT_MINE;
	}
}

/* Guest code assembly: 32-bit protected mode encodings. */

static void emit8(struct tk_asm *a, uint8_t b)
{
	tk_emit(a, &b, 1);
}

static void emit32(struct tk_asm *a, uint32_t v)
{
	tk_emit(a, &v, 4);	/* x86 is little endian, so is the host */
}

void tk_asm_read(struct tk_asm *a, unsigned int width, uint32_t gpa, unsigned int slot)
{
	uint32_t out = TK_DATA + slot * 8u;

	switch (width) {
	case 1:
		emit8(a, 0xa0); emit32(a, gpa);		/* mov al, [gpa] */
		emit8(a, 0xa2); emit32(a, out);		/* mov [out], al */
		break;
	case 2:
		emit8(a, 0x66); emit8(a, 0xa1); emit32(a, gpa);
		emit8(a, 0x66); emit8(a, 0xa3); emit32(a, out);
		break;
	case 4:
		emit8(a, 0xa1); emit32(a, gpa);
		emit8(a, 0xa3); emit32(a, out);
		break;
	case 8:
		/* movq mm0, [gpa]; movq [out], mm0 (MMX: one 8-byte access) */
		emit8(a, 0x0f); emit8(a, 0x6f); emit8(a, 0x05); emit32(a, gpa);
		emit8(a, 0x0f); emit8(a, 0x7f); emit8(a, 0x05); emit32(a, out);
		break;
	default:
		fail();
	}
}

void tk_asm_write32(struct tk_asm *a, uint32_t gpa, uint32_t val)
{
	emit8(a, 0xc7); emit8(a, 0x05); emit32(a, gpa); emit32(a, val);
}

void tk_asm_sync(struct tk_asm *a, uint32_t val)
{
	emit8(a, 0xb8); emit32(a, val);			/* mov eax, val */
	emit8(a, 0xe7); emit8(a, TK_SYNC_PORT);		/* out port, eax */
}

void tk_asm_scan(struct tk_asm *a, uint32_t gpa, uint32_t stride, uint32_t count)
{
	assert_true(count > 0 && count <= TK_SCAN_MAX);
	emit8(a, 0xbe); emit32(a, gpa);			/* mov esi, gpa */
	emit8(a, 0xb9); emit32(a, count);		/* mov ecx, count */
	emit8(a, 0xbf); emit32(a, TK_SCAN_OUT);		/* mov edi, out */
	/* loop: */
	emit8(a, 0x8b); emit8(a, 0x06);			/* mov eax, [esi] */
	emit8(a, 0x89); emit8(a, 0x07);			/* mov [edi], eax */
	emit8(a, 0x83); emit8(a, 0xc7); emit8(a, 4);	/* add edi, 4 */
	emit8(a, 0x81); emit8(a, 0xc6); emit32(a, stride); /* add esi, stride */
	emit8(a, 0x49);					/* dec ecx */
	emit8(a, 0x75); emit8(a, (uint8_t)-16);		/* jnz loop */
}

void tk_asm_hlt(struct tk_asm *a)
{
	emit8(a, 0xf4);
}
#endif
