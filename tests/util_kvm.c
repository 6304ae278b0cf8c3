// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "util_kvm.h"

unsigned int tk_count_maps(const char *needle)
{
	char line[512];
	unsigned int n = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

unsigned int tk_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

int tk_kvm_fd(void)
{
	return open("/dev/kvm", O_RDWR | O_CLOEXEC);
}

void tk_require_kvm(void)
{
	int fd = tk_kvm_fd();

	if (fd < 0) {
		print_message("no usable /dev/kvm (%s): skipped\n", strerror(errno));
		skip();
	}
	if (ioctl(fd, KVM_GET_API_VERSION, NULL) != KVM_API_VERSION) {
		close(fd);
		print_message("/dev/kvm is not KVM: skipped\n");
		skip();
	}
	close(fd);
}

void tk_require_mode(enum pcihole_mode mode, struct pcihole_caps *caps)
{
	tk_require_kvm();
	assert_int_equal(pcihole_probe(-1, false, caps), 0);
	if (mode == PCIHOLE_MODE_PCI_HOLE && !caps->pci_hole_works) {
		print_message("no working KVM_MEM_PCI_HOLE here (cap %u): skipped\n",
			      caps->pci_hole_cap);
		skip();
	}
}

int tk_expect_mode(void)
{
	const char *s = getenv("PCIHOLE_EXPECT_MODE");

	if (!s || !*s)
		return -1;
	return pcihole_mode_parse(s);
}

static void set_cpuid(struct tk_vm *vm)
{
	const uint32_t nent = 128;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

	assert_non_null(c);
	c->nent = nent;
	if (!ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c))
		ioctl(vm->vcpu_fd, KVM_SET_CPUID2, c);
	free(c);
}

int tk_vm_create(struct tk_vm *vm)
{
	struct kvm_userspace_memory_region r;
	long sz;

	memset(vm, 0, sizeof(*vm));
	vm->vcpu_fd = vm->vm_fd = -1;
	vm->kvm_fd = tk_kvm_fd();
	if (vm->kvm_fd < 0)
		return -errno;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	assert_true(vm->vm_fd >= 0);
	vm->ram = mmap(NULL, TK_RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(vm->ram != MAP_FAILED);
	r = (struct kvm_userspace_memory_region){
		.slot = TK_RAM_SLOT, .guest_phys_addr = 0, .memory_size = TK_RAM_SIZE,
		.userspace_addr = (uintptr_t)vm->ram,
	};
	assert_int_equal(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r), 0);
	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	assert_true(vm->vcpu_fd >= 0);
	sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	assert_true(sz > 0);
	vm->run_size = (size_t)sz;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu_fd, 0);
	assert_true(vm->run != MAP_FAILED);
	set_cpuid(vm);
	return 0;
}

void tk_vm_destroy(struct tk_vm *vm)
{
	if (vm->run && vm->run != MAP_FAILED)
		munmap(vm->run, vm->run_size);
	if (vm->ram && vm->ram != MAP_FAILED)
		munmap(vm->ram, TK_RAM_SIZE);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
}

static struct kvm_segment flat(uint16_t sel, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

void tk_vm_load(struct tk_vm *vm, const uint8_t *code, size_t len)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	assert_true(len <= TK_DATA - TK_CODE);
	memcpy(vm->ram + TK_CODE, code, len);
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

static void default_mmio(struct tk_vm *vm, const struct tk_handlers *h,
			 uint64_t gpa, uint8_t *data, uint32_t len, bool is_write)
{
	uint64_t v = TK_DEV_VALUE;
	int ret = h && h->layout ?
		  pcihole_mmio_access(h->layout, gpa, data, len, is_write) : 0;

	assert_true(ret >= 0);
	if (ret) {
		vm->exits_hole++;
		return;
	}
	vm->exits_dev++;
	if (!is_write)
		memcpy(data, &v, len);
}

int tk_vm_run(struct tk_vm *vm, const struct tk_handlers *h)
{
	struct kvm_run *run = vm->run;

	for (;;) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, NULL)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			print_message("KVM_RUN: %s\n", strerror(errno));
			return -1;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_HLT:
			return 0;
		case KVM_EXIT_MMIO:
			vm->exits_mmio++;
			vm->exits_mmio_write += run->mmio.is_write;
			vm->last_gpa = run->mmio.phys_addr;
			vm->last_len = run->mmio.len;
			if (h && h->mmio)
				h->mmio(h->opaque, run->mmio.phys_addr, run->mmio.data,
					run->mmio.len, run->mmio.is_write);
			else
				default_mmio(vm, h, run->mmio.phys_addr, run->mmio.data,
					     run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_IO:
			if (run->io.port != TK_SYNC_PORT ||
			    run->io.direction != KVM_EXIT_IO_OUT) {
				print_message("unexpected port I/O 0x%x\n", run->io.port);
				return -1;
			}
			vm->exits_io++;
			if (h && h->sync) {
				uint32_t val = 0;

				memcpy(&val, (uint8_t *)run + run->io.data_offset,
				       run->io.size < 4 ? run->io.size : 4);
				h->sync(h->opaque, val);
			}
			break;
		default:
			print_message("unexpected exit %u (internal error suberror %u)\n",
				      run->exit_reason, run->internal.suberror);
			return -1;
		}
	}
}

uint64_t tk_result(const struct tk_vm *vm, unsigned int slot)
{
	uint64_t v;

	memcpy(&v, vm->ram + TK_DATA + slot * 8u, sizeof(v));
	return v;
}

uint32_t tk_scan_value(const struct tk_vm *vm, unsigned int i)
{
	uint32_t v;

	memcpy(&v, vm->ram + TK_SCAN_OUT + i * 4u, sizeof(v));
	return v;
}

bool tk_slot_free(struct tk_vm *vm, uint32_t slot)
{
	/*
	 * 257 MiB: larger than any run of the tests' 256 MiB windows, so an
	 * existing slot of ours (whatever its flags) refuses the size change
	 * instead of being moved.  KVM checks only that the host range is a
	 * user address range, not that it is mapped.
	 */
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = 0x200000000ULL,
		.memory_size = 257ULL << 20, .userspace_addr = (uintptr_t)vm->ram,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r))
		return false;
	r.memory_size = 0;
	assert_int_equal(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r), 0);
	return true;
}

/* Guest code assembly: 32-bit protected mode encodings. */

static void emit(struct tk_asm *a, const void *p, size_t n)
{
	assert_true(a->len + n <= sizeof(a->buf));
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void emit8(struct tk_asm *a, uint8_t b)
{
	emit(a, &b, 1);
}

static void emit32(struct tk_asm *a, uint32_t v)
{
	emit(a, &v, 4);	/* x86 is little endian, so is the host */
}

void tk_asm_init(struct tk_asm *a)
{
	memset(a, 0, sizeof(*a));
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

void tk_load_fn0_scan(struct tk_vm *vm, uint32_t ecam)
{
	struct tk_asm a;

	tk_asm_init(&a);
	tk_asm_scan(&a, ecam, 1u << 15, 256 * 32);
	tk_asm_hlt(&a);
	tk_vm_load(vm, a.buf, a.len);
}
