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

int tk_vm_create(struct tk_vm *vm)
{
	struct kvm_userspace_memory_region r;
	long sz;

	memset(vm, 0, sizeof(*vm));
	vm->vcpu_fd = vm->vm_fd = -1;
	vm->kvm_fd = tk_kvm_fd();
	if (vm->kvm_fd < 0)
		return -errno;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, tk_arch_vm_type(vm->kvm_fd));
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
	tk_arch_vcpu_setup(vm);
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

void tk_vm_load(struct tk_vm *vm, const uint8_t *code, size_t len)
{
	assert_true(len <= TK_DATA - TK_CODE);
	memcpy(vm->ram + TK_CODE, code, len);
	tk_arch_sync_ram(vm);
	tk_arch_reset(vm);
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
	int ret = -1;

	for (;;) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, NULL)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			print_message("KVM_RUN: %s\n", strerror(errno));
			break;
		}
		switch (tk_arch_exit(vm, h)) {
		case TK_ARCH_CONTINUE:
			continue;
		case TK_ARCH_HALT:
			ret = 0;
			goto out;
		case TK_ARCH_ERROR:
			goto out;
		case TK_ARCH_NOT_MINE:
			break;
		}
		if (run->exit_reason != KVM_EXIT_MMIO) {
			print_message("unexpected exit %u (internal error suberror %u)\n",
				      run->exit_reason, run->internal.suberror);
			break;
		}
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
	}
out:
	/* The guest's stores must be what the host reads next. */
	tk_arch_sync_ram(vm);
	return ret;
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

/* Guest code assembly: the encodings are in util_kvm_<arch>.c. */

void tk_emit(struct tk_asm *a, const void *p, size_t n)
{
	assert_true(a->len + n <= sizeof(a->buf));
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void tk_asm_init(struct tk_asm *a)
{
	memset(a, 0, sizeof(*a));
}

void tk_load_fn0_scan(struct tk_vm *vm, uint32_t ecam)
{
	struct tk_asm a;

	tk_asm_init(&a);
	tk_asm_scan(&a, ecam, 1u << 15, 256 * 32);
	tk_asm_hlt(&a);
	tk_vm_load(vm, a.buf, a.len);
}
