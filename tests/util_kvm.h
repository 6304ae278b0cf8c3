/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Helpers for the KVM tests: a tiny VM with a 32-bit protected-mode guest
 * (flat 4 GiB segments, no paging: guest linear = guest physical), a guest
 * code assembler for the few instructions the tests need, and process
 * inspection (mappings, fds) for the leak checks.
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
#define TK_SYNC_PORT 0x10	/* guest "out" to this port = a sync point */

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

/* Create a VM with RAM and one vCPU in 32-bit protected mode at TK_CODE. */
int tk_vm_create(struct tk_vm *vm);
void tk_vm_destroy(struct tk_vm *vm);

/* Load @len code bytes at TK_CODE and reset the vCPU to run them. */
void tk_vm_load(struct tk_vm *vm, const uint8_t *code, size_t len);

/* Run until hlt; returns 0, or -1 on anything unexpected (printed). */
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
/* out TK_SYNC_PORT with eax = @val. */
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
void tk_asm_hlt(struct tk_asm *a);

/* Result @slot stored by tk_asm_read(). */
uint64_t tk_result(const struct tk_vm *vm, unsigned int slot);

/* Is a KVM memslot id free?  Tries to create it (257 MiB, flags 0) and deletes it again. */
bool tk_slot_free(struct tk_vm *vm, uint32_t slot);

/* PCIHOLE_EXPECT_MODE parsed, or -1 if unset. */
int tk_expect_mode(void);

#endif
