/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Helpers for the KVM tests: a tiny VM with one vCPU whose guest addresses
 * are guest physical, a guest code assembler for the few operations the tests
 * need, and process inspection (mappings, fds) for the leak checks.
 *
 * The guest is architecture-specific (util_kvm_<arch>.c), the API is not: the
 * same test source gives the same exits on every architecture.
 *   x86:   32-bit protected mode, flat 4 GiB segments, no paging; a sync
 *          point is "out TK_SYNC_PORT", the end is "hlt".
 *   arm64: EL1 with the MMU off; a sync point is a 32-bit store to
 *          TK_SYNC_GPA, the end a store to TK_HALT_GPA.  Both are
 *          KVM_EXIT_MMIO that tk_vm_run() consumes: they count in exits_io
 *          (sync points) or nowhere (the end), never in exits_mmio.
 */
#ifndef PCIHOLE_UTIL_KVM_H
#define PCIHOLE_UTIL_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "pcihole.h"

/* Mappings in /proc/self/maps whose line contains @needle. */
unsigned int tk_count_maps(const char *needle);
/* Open fds of this process. */
unsigned int tk_count_fds(void);

/* Skip the calling cmocka test (skip()) unless /dev/kvm can be opened. */
void tk_require_kvm(void);
/*
 * tk_require_kvm(), then probe into @caps, and skip if @mode is pci-hole and
 * this kernel has no working KVM_MEM_PCI_HOLE.
 */
void tk_require_mode(enum pcihole_mode mode, struct pcihole_caps *caps);
/* /dev/kvm opened, or -1. */
int tk_kvm_fd(void);

/* Guest RAM: slot TK_RAM_SLOT at gpa 0, TK_RAM_SIZE bytes; code at TK_CODE. */
#define TK_RAM_SLOT 0u
#define TK_RAM_SIZE (1u << 20)
#define TK_CODE 0x1000u
#define TK_DATA 0x80000u	/* results area the guest stores to */
#define TK_SYNC_PORT 0x10	/* x86: guest "out" to this port = a sync point */
/*
 * Where guests without port I/O (arm64) store for a sync point and for the
 * end.  Outside the RAM slot and below every test's ECAM windows; never a
 * KVM memslot.
 */
#define TK_SYNC_GPA 0x00f00000u
#define TK_HALT_GPA 0x00f00008u

/* The value a present function reads as, in the default mmio handler (low @len bytes). */
#define TK_DEV_VALUE 0x1234abcd5a5a1af4ULL
/* tk_asm_scan() stores the value of read i at TK_SCAN_OUT + 4 * i. */
#define TK_SCAN_OUT 0x90000u
#define TK_SCAN_MAX ((TK_RAM_SIZE - TK_SCAN_OUT) / 4)

struct tk_vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;
	/* counters kept by tk_vm_run(), cumulative */
	uint64_t exits_mmio;		/* every KVM_EXIT_MMIO */
	uint64_t exits_mmio_write;	/* of those, writes */
	uint64_t exits_hole;		/* default handler: pcihole_mmio_access() said hole */
	uint64_t exits_dev;		/* default handler: a present function (or no window) */
	uint64_t exits_io;		/* sync points */
	uint64_t last_gpa;		/* of the last KVM_EXIT_MMIO */
	uint32_t last_len;
};

/* Exit handler verdicts of the callbacks below. */
struct tk_handlers {
	/*
	 * KVM_EXIT_MMIO: fill @data for a read.  NULL: the layout's mmio helper
	 * answers holes, and anything else reads as 0x5a bytes.
	 */
	void (*mmio)(void *opaque, uint64_t gpa, uint8_t *data, uint32_t len,
		     bool is_write);
	/* A guest "out" to TK_SYNC_PORT (value in @val); NULL ignores it. */
	void (*sync)(void *opaque, uint32_t val);
	void *opaque;
	const struct pcihole_layout *layout;	/* for the default mmio answer */
};

/* Create a VM with RAM and one vCPU, ready for tk_vm_load(). */
int tk_vm_create(struct tk_vm *vm);
void tk_vm_destroy(struct tk_vm *vm);

/* Load @len code bytes at TK_CODE and reset the vCPU to run them. */
void tk_vm_load(struct tk_vm *vm, const uint8_t *code, size_t len);

/* Run until tk_asm_hlt()'s end; returns 0, or -1 on anything unexpected (printed). */
int tk_vm_run(struct tk_vm *vm, const struct tk_handlers *h);

/* Value of scan read @i. */
uint32_t tk_scan_value(const struct tk_vm *vm, unsigned int i);

/* Guest code builder. */
struct tk_asm {
	uint8_t buf[4096];
	size_t len;
};

void tk_asm_init(struct tk_asm *a);
/* Read @width (1, 2, 4 or 8) bytes at @gpa and store them at TK_DATA + @slot * 8. */
void tk_asm_read(struct tk_asm *a, unsigned int width, uint32_t gpa, unsigned int slot);
/* Write the 32-bit @val to @gpa. */
void tk_asm_write32(struct tk_asm *a, uint32_t gpa, uint32_t val);
/* A sync point: the run calls tk_handlers.sync with @val (exits_io counts it). */
void tk_asm_sync(struct tk_asm *a, uint32_t val);
/*
 * Loop: @count (<= TK_SCAN_MAX) 32-bit reads at @gpa, @gpa + @stride, ...;
 * read i stores its value at TK_SCAN_OUT + 4 * i.
 */
void tk_asm_scan(struct tk_asm *a, uint32_t gpa, uint32_t stride, uint32_t count);

/*
 * Load the Linux-style scan (pcibios_fixup_peer_bridges): a 32-bit read at
 * function 0 of every device of 256 buses from @ecam, 8,192 reads, value i at
 * tk_scan_value(vm, i).  Run it with tk_vm_run().
 */
void tk_load_fn0_scan(struct tk_vm *vm, uint32_t ecam);
/* The end of the guest code: tk_vm_run() returns 0 there. */
void tk_asm_hlt(struct tk_asm *a);

/* Result @slot stored by tk_asm_read(). */
uint64_t tk_result(const struct tk_vm *vm, unsigned int slot);

/* Is a KVM memslot id free?  Tries to create it (257 MiB, flags 0) and deletes it again. */
bool tk_slot_free(struct tk_vm *vm, uint32_t slot);

/* PCIHOLE_EXPECT_MODE parsed, or -1 if unset. */
int tk_expect_mode(void);

/* ---- between util_kvm.c and util_kvm_<arch>.c only ---- */

/* KVM_CREATE_VM's type argument. */
unsigned long tk_arch_vm_type(int kvm_fd);
/* Once, after KVM_CREATE_VCPU. */
void tk_arch_vcpu_setup(struct tk_vm *vm);
/* Set the vCPU up to run the code just copied to TK_CODE. */
void tk_arch_reset(struct tk_vm *vm);
/* What tk_vm_run() does with an exit: */
enum tk_arch_verdict {
	TK_ARCH_NOT_MINE,	/* the common code handles it (or fails) */
	TK_ARCH_CONTINUE,	/* handled, run on */
	TK_ARCH_HALT,		/* the end: tk_vm_run() returns 0 */
	TK_ARCH_ERROR,		/* printed: tk_vm_run() returns -1 */
};
enum tk_arch_verdict tk_arch_exit(struct tk_vm *vm, const struct tk_handlers *h);
/* Make guest RAM writes by the host visible to the guest and back (caches). */
void tk_arch_sync_ram(const struct tk_vm *vm);
/* Append @n bytes of code. */
void tk_emit(struct tk_asm *a, const void *p, size_t n);

#endif
