/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libpcihole: serve the empty parts of a PCIe ECAM (MMCONFIG) window to a
 * KVM guest without an exit to userspace per config-space read.
 *
 * Data flows one way:
 *
 *   layout (segments + present functions)  -> plan (hole runs, fewest slots)
 *                                           -> backend (KVM memory slots)
 *
 * The layout and the plan are pure: no syscalls, no global state.  A VMM
 * that owns its vm fd and slot numbers (the rust-vmm way) takes the plan as
 * struct kvm_userspace_memory_region-shaped records and applies them itself;
 * a C VMM can let a struct pcihole_ctx apply and maintain them.
 *
 * Conventions: every function that can fail returns 0 (or a count) on
 * success and a negative errno on failure, and leaves its outputs and the
 * objects it was given unchanged on failure.  Nothing prints; install a log
 * callback on a context to see what it does.  All structures are plain C
 * with explicit padding, so that #[repr(C)] mirrors are trivial.
 *
 * ABI (1.x): the library's SONAME is libpcihole.so.1 and every symbol is
 * versioned with the node of the release that added it (LIBPCIHOLE_1.0, ...);
 * a program built against 1.N runs with any 1.M, M >= N.  Structures never
 * change size or meaning within 1.x.  Those a caller fills in and that may
 * need new members (pcihole_ctx_config, pcihole_plan_opts) end in reserved
 * fields that must be zero: a later release gives a member a meaning where
 * zero means "as before", and an older library refuses non-zero reserved
 * fields with -EINVAL rather than ignoring a request it does not understand.
 * Structures the library fills (pcihole_caps, pcihole_ctx_stats,
 * pcihole_plan_info, pcihole_access) end in reserved fields written as zero,
 * which later releases may fill.  Check pcihole_version() at run time when a
 * feature of a later minor release matters.
 */
#ifndef PCIHOLE_H
#define PCIHOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this header, also the SONAME's full version. */
#define PCIHOLE_VERSION_MAJOR 1
#define PCIHOLE_VERSION_MINOR 0
#define PCIHOLE_VERSION_PATCH 0
#define PCIHOLE_VERSION_CODE(major, minor, patch) \
	(((uint32_t)(major) << 16) | ((uint32_t)(minor) << 8) | (uint32_t)(patch))

/*
 * Version of the library actually loaded, as PCIHOLE_VERSION_CODE(), so a
 * program can compare it with the header it was built against.
 */
uint32_t pcihole_version(void);

/* One function's config space in ECAM: 4 KiB. */
#define PCIHOLE_PAGE_SHIFT 12
#define PCIHOLE_PAGE_SIZE (1ULL << PCIHOLE_PAGE_SHIFT)
/* One bus in ECAM: 32 devices x 8 functions x 4 KiB = 1 MiB. */
#define PCIHOLE_BUS_SHIFT 20
#define PCIHOLE_BUS_SIZE (1ULL << PCIHOLE_BUS_SHIFT)
#define PCIHOLE_PAGES_PER_BUS 256u
#define PCIHOLE_MAX_DEV 31u
#define PCIHOLE_MAX_FN 7u

/*
 * Upper bound on segments in one layout.  Real machines use one (q35, microvm,
 * Firecracker) to a few dozen (Cloud Hypervisor allows 96); the bound keeps
 * every count in this API far from overflow.
 */
#define PCIHOLE_MAX_SEGMENTS 256u

/*
 * uAPI numbers of the KVM_MEM_PCI_HOLE series in kernel/ (not upstream).
 * They are defined here, and only here, for kernels whose <linux/kvm.h>
 * lacks them.  The series for Linux 7.2 (kernel/patches) takes the next free
 * memslot flag and capability, as it would be posted against kvm-x86/next;
 * the older experimental 6.12 series (kernel/patches-6.12) used bit 15 and
 * capability 1024, far from upstream's sequences.  The library recognises
 * both; a kernel that answers a capability is still not trusted until the
 * functional probe has seen a guest read all-ones from such a slot without
 * an exit (pcihole_caps.pci_hole_flag says which flag passed).
 */
#define PCIHOLE_KVM_MEM_PCI_HOLE (1u << 3)
#define PCIHOLE_KVM_CAP_PCI_HOLE_MEM 250
#define PCIHOLE_KVM_MEM_PCI_HOLE_612 (1u << 15)
#define PCIHOLE_KVM_CAP_PCI_HOLE_MEM_612 1024

/* ------------------------------------------------------------------------ */
/* Segments                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * One ECAM window.
 *
 * @base is the guest-physical address of the window START, i.e. of the
 * config page of bus @bus_start device 0 function 0.  The window is
 * (@bus_end - @bus_start + 1) MiB long.  Careful: ACPI MCFG (and Linux's
 * pci_mmconfig_add()) give the address of bus 0 even when the segment starts
 * at a higher bus; convert such values with pcihole_segment_from_mcfg().
 *
 * Valid when @base is 1 MiB aligned, @bus_start <= @bus_end, @reserved is 0
 * and the window ends below 2^phys_bits.
 */
struct pcihole_segment {
	uint64_t base;
	uint16_t segment;	/* PCI segment group number */
	uint8_t bus_start;
	uint8_t bus_end;
	uint32_t reserved;	/* must be 0 */
};

/*
 * Fill @seg from ACPI MCFG values (@mcfg_base = address of bus 0).
 * Returns 0, -EINVAL if @bus_start > @bus_end or @mcfg_base is not 1 MiB
 * aligned, -ERANGE if the window would wrap the 64-bit address space.
 */
int pcihole_segment_from_mcfg(uint16_t segment, uint64_t mcfg_base,
			      uint8_t bus_start, uint8_t bus_end,
			      struct pcihole_segment *seg);

/*
 * Parse "SEG:BASE:START-END", e.g. "0:0xb0000000:0-255".  Each number is
 * decimal, or hexadecimal with a 0x/0X prefix; SEG <= 0xffff, buses <= 255,
 * BASE a 64-bit address.  "SEG:BASE:BUS" is a one-bus window.  Anything else
 * (empty fields, signs, spaces, trailing junk, overflow, > 64 characters)
 * gives -EINVAL.  Only the syntax is checked here; alignment and overlap are
 * checked by pcihole_segments_validate().
 */
int pcihole_segment_parse(const char *str, struct pcihole_segment *seg);

/* Longest string pcihole_segment_format() writes, with its NUL. */
#define PCIHOLE_SEGMENT_STRLEN 33

/*
 * Format @seg as "SEG:0xBASE:START-END" (decimal SEG and buses, hex base),
 * which pcihole_segment_parse() reads back.  Returns the length written
 * (without the NUL) or -ENOSPC if @len is too small (@buf then holds "").
 */
int pcihole_segment_format(const struct pcihole_segment *seg, char *buf,
			   size_t len);

/*
 * Check a set of segments: each one as in struct pcihole_segment, no two
 * overlapping in guest-physical space (-EEXIST) or claiming the same bus of
 * the same segment group (-EEXIST), at most PCIHOLE_MAX_SEGMENTS (-E2BIG),
 * windows ending below 2^@phys_bits (-ERANGE; @phys_bits 0 means 52, the
 * x86-64 architectural maximum; valid values are 32..64).  Other defects give
 * -EINVAL.  With @phys_bits 64 a window may end exactly at 2^64; the planner
 * and the mmio path handle it, but KVM refuses slots that reach the top of the
 * address space, so a context cannot attach such a layout in a slot mode.
 */
int pcihole_segments_validate(const struct pcihole_segment *segs, size_t nr,
			      unsigned int phys_bits);

/* ------------------------------------------------------------------------ */
/* Functions (bus/device/function addresses)                                */
/* ------------------------------------------------------------------------ */

struct pcihole_bdf {
	uint16_t segment;
	uint8_t bus;
	uint8_t dev;		/* 0..31 */
	uint8_t fn;		/* 0..7 */
	uint8_t reserved[3];	/* written as 0 by the parser; ignored on input */
};

/*
 * Parse a function address as lspci prints it: "BB:DD.F" (segment 0) or
 * "SSSS:BB:DD.F" (lspci -D).  Hexadecimal, case-insensitive; 1-4 digits of
 * segment, 1-2 of bus and device, one of function.  Device > 0x1f,
 * function > 7, empty fields, missing separators, signs, spaces, trailing
 * junk, overlong fields or strings: -EINVAL.
 */
int pcihole_bdf_parse(const char *str, struct pcihole_bdf *bdf);

/* Longest string pcihole_bdf_format() writes, with its NUL ("ssss:bb:dd.f"). */
#define PCIHOLE_BDF_STRLEN 13

/*
 * Format @bdf as "ssss:bb:dd.f" (lower-case hex, like lspci -D).  Returns 12,
 * -EINVAL for device > 31 or function > 7, -ENOSPC if @len < 13.
 */
int pcihole_bdf_format(const struct pcihole_bdf *bdf, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Layout: segments plus the presence map                                    */
/* ------------------------------------------------------------------------ */

/*
 * A validated set of segments and one presence bit per function page (8 KiB
 * per 256-bus segment).  Every function not marked present is a hole.
 *
 * Thread safety: the presence bits are read with atomic loads by
 * pcihole_classify() and pcihole_mmio_access(), so vCPU threads may call them
 * while one other thread changes presence (directly or through a context).
 * Changes themselves must be serialised by the caller (a context does that
 * for its own changes).
 *
 * A layout belongs to at most one context at a time (pcihole_ctx_attach()
 * refuses a second with -EBUSY): presence is the state of ONE VM's bus, and
 * two VMs with the same topology need two layouts.  While attached, change
 * presence through pcihole_ctx_set_present(); pcihole_layout_set_present()
 * then fails with -EBUSY, so the slots can never disagree with the bits.
 */
struct pcihole_layout;

/*
 * Validate @segs (see pcihole_segments_validate()) and create a layout with
 * no function present.  The layout keeps its own copy of @segs, in the order
 * given.  Returns 0, -errno from validation, or -ENOMEM.
 */
int pcihole_layout_new(const struct pcihole_segment *segs, size_t nr,
		       unsigned int phys_bits, struct pcihole_layout **out);

/* Free a layout; NULL is ignored.  No context may still use it. */
void pcihole_layout_free(struct pcihole_layout *layout);

/* Number of segments; the same as given to pcihole_layout_new(). */
size_t pcihole_layout_nr_segments(const struct pcihole_layout *layout);

/* Copy segment @idx (0-based, creation order) to @seg; -EINVAL if out of range. */
int pcihole_layout_segment(const struct pcihole_layout *layout, size_t idx,
			   struct pcihole_segment *seg);

/*
 * Mark (@present true) or unmark a function.  Returns 1 if the bit changed,
 * 0 if it already had that value, -EINVAL for device > 31 or function > 7,
 * -ENOENT if no segment of the layout holds (segment, bus), -EBUSY if a
 * context is attached (use pcihole_ctx_set_present()).
 */
int pcihole_layout_set_present(struct pcihole_layout *layout,
			       const struct pcihole_bdf *bdf, bool present);

/* 1 if present, 0 if a hole, -EINVAL / -ENOENT as for set_present. */
int pcihole_layout_is_present(const struct pcihole_layout *layout,
			      const struct pcihole_bdf *bdf);

/* Number of functions marked present in the whole layout (any thread). */
size_t pcihole_layout_nr_present(const struct pcihole_layout *layout);

/*
 * Shadowed functions (see pcihole_ctx_shadow()): a present function whose
 * config page the VMM keeps current in memory, so guest reads need no exit.
 * Page kinds: absent = hole; present and shadowed = shadowed; present and not
 * shadowed = trapped (every access exits).  Runs, and so slots, cover the
 * holes and the shadowed pages.  The bit may be set on an absent function:
 * it then takes effect when the function is plugged.  Returns 1 if changed,
 * 0 if not, -EINVAL / -ENOENT as for set_present, -EBUSY if attached (use
 * pcihole_ctx_shadow()).
 */
int pcihole_layout_set_shadowed(struct pcihole_layout *layout,
				const struct pcihole_bdf *bdf, bool shadowed);

/* 1 if shadowed, 0 if not, -EINVAL / -ENOENT as for set_present. */
int pcihole_layout_is_shadowed(const struct pcihole_layout *layout,
			       const struct pcihole_bdf *bdf);

/* Guest-physical address of @bdf's config page; -EINVAL / -ENOENT as above. */
int pcihole_layout_bdf_to_gpa(const struct pcihole_layout *layout,
			      const struct pcihole_bdf *bdf, uint64_t *gpa);

/*
 * Map a guest-physical address inside some window to the function and the
 * register offset (0..4095) it addresses.  @offset may be NULL.  Returns 0 or
 * -ENOENT if @gpa is in no window.  VMMs use it to route KVM_EXIT_MMIO.
 */
int pcihole_layout_gpa_to_bdf(const struct pcihole_layout *layout,
			      uint64_t gpa, struct pcihole_bdf *bdf,
			      uint32_t *offset);

/* What one config-space access addresses; see pcihole_classify(). */
enum pcihole_access_kind {
	PCIHOLE_ACCESS_NONE = 0,	/* in no ECAM window: not config space */
	PCIHOLE_ACCESS_HOLE = 1,	/* absent function: handled, nothing to do */
	PCIHOLE_ACCESS_FUNCTION = 2,	/* a present function: the VMM's device model */
	PCIHOLE_ACCESS_SHADOWED = 3,	/* a present, shadowed function: the device
					 * model (a write: apply it, update the page) */
};

struct pcihole_access {
	uint32_t kind;		/* enum pcihole_access_kind */
	uint32_t offset;	/* register offset (0..4095) of the first byte */
	struct pcihole_bdf bdf;	/* function of the first byte (all kinds but NONE) */
	uint64_t reserved[2];	/* written as 0 */
};

/*
 * The exit handler's one question: call it from the KVM_EXIT_MMIO handler
 * with the exit's (phys_addr, data, len, is_write).  The answer comes from
 * one atomic load of each presence word the access touches, so it is one
 * consistent view even while another thread hotplugs:
 *
 *   PCIHOLE_ACCESS_HOLE      every byte lies in hole pages: a read has had
 *                            @data filled with 0xff, a write is dropped;
 *                            the access is handled.
 *   PCIHOLE_ACCESS_FUNCTION  some byte lies in a present function's page:
 *                            @acc has the function and register offset of
 *                            the first byte, @data is untouched; hand it to
 *                            the device model.
 *   PCIHOLE_ACCESS_SHADOWED  the same for a shadowed function: normally a
 *                            write (reads are served from the shadow page
 *                            without an exit, except in mmio mode or during
 *                            a change); the VMM applies it and updates the
 *                            page.
 *   PCIHOLE_ACCESS_NONE      no byte in a present page and some byte in no
 *                            window: not config space.
 *
 * Returns the kind (>= 0), or -EINVAL for @len 0 or > 8, a NULL @layout, or
 * a read with NULL @data.  @acc may be NULL; it is written on success.
 * Lock-free and O(log segments); never blocks, allocates or makes a syscall.
 * A present function whose access raced a hotplug is answered as it was at
 * one instant during the call: the VMM never has to ask twice.
 */
int pcihole_classify(const struct pcihole_layout *layout, uint64_t gpa,
		     void *data, uint32_t len, bool is_write,
		     struct pcihole_access *acc);

/*
 * The mmio path in one bit: pcihole_classify() without the details.  Call it from the KVM_EXIT_MMIO handler with the exit's
 * (phys_addr, data, len, is_write).  If every byte of the access lies in hole
 * pages, a read fills @data with 0xff (len 1..8), a write is dropped, and the
 * call returns 1: the access is handled.  Otherwise it returns 0 and leaves
 * @data alone: the access belongs to a present function or to no ECAM window,
 * and the VMM handles it.  -EINVAL for @len 0 or > 8.
 *
 * Lock-free and O(number of segments): one atomic load per page touched.  An
 * answer always matches the presence map at some instant during the call.
 * It is also the safety net of the slot backends: runs left out by a slot
 * budget, writes to read-only hole slots, and the moment between deleting and
 * creating slots during a hotplug all arrive here.
 */
int pcihole_mmio_access(const struct pcihole_layout *layout, uint64_t gpa,
			void *data, uint32_t len, bool is_write);

/* ------------------------------------------------------------------------ */
/* Plan: the hole runs, fewest slots, slot budget                            */
/* ------------------------------------------------------------------------ */

/*
 * A maximal run of consecutive hole pages.  Runs are merged across device,
 * bus and even segment boundaries when windows are adjacent in guest-physical
 * space, so the number of runs is the fewest memory slots that cover exactly
 * the holes.
 */
struct pcihole_run {
	uint64_t gpa;		/* 4 KiB aligned */
	uint64_t size;		/* bytes, a multiple of 4 KiB, > 0 */
	uint32_t fn0_pages;	/* pages that are function 0 of a device */
	uint32_t reserved;
};

/*
 * Summary of one plan (see pcihole_plan() for what -ENOSPC fills).  With
 * shadowed functions, runs cover hole and shadowed pages alike: covered +
 * uncovered = hole_pages + shadowed_pages.
 */
struct pcihole_plan_info {
	uint64_t hole_pages;		/* all hole pages of the layout */
	uint64_t covered_pages;		/* hole pages inside the returned runs */
	uint64_t uncovered_pages;	/* hole pages left to the mmio path */
	uint64_t uncovered_fn0_pages;	/* of those, function-0 pages */
	uint32_t nr_runs;		/* maximal runs = slots for full coverage */
	uint32_t nr_slots;		/* runs returned: min(nr_runs, budget) */
	uint64_t clipped_pages;		/* pages lost to host-page clipping (in uncovered) */
	uint64_t shadowed_pages;	/* present, shadowed pages (in the runs' kind) */
	uint64_t reserved[2];		/* written as 0 */
};

/* Budget value meaning "as many slots as there are runs". */
#define PCIHOLE_NO_BUDGET UINT32_MAX

/*
 * Number of maximal hole runs of @layout: the size query for pcihole_plan().
 * O(pages / 64).
 */
size_t pcihole_plan_count(const struct pcihole_layout *layout);

/*
 * Compute the plan into @runs (caller-provided; no allocation).
 *
 * Without a budget (@budget >= number of runs, e.g. PCIHOLE_NO_BUDGET) all
 * maximal runs are returned in ascending gpa order.  With a smaller @budget,
 * the @budget runs that save the most exits are returned, still in gpa order,
 * and the rest is left to the mmio path (reported in @info).  Weighting: a
 * run's fn0_pages first, because function 0 of every device slot is what every
 * guest scan reads (Linux's pci_scan_slot and pcibios_fixup_peer_bridges,
 * SeaBIOS, OVMF read functions 1-7 only behind a multifunction function 0);
 * then its page count (brute-force scans and extended-register probes); then
 * the lower gpa, so the result is deterministic.  Covering a whole maximal
 * run always beats covering part of one, so this choice is optimal for that
 * weighting.
 *
 * @cap must hold pcihole_plan_count() entries even when a budget is given:
 * the array is the work space of the selection.  Returns the number of runs
 * written, or -ENOSPC if @cap is too small.  That failure is the one exception
 * to "outputs unchanged": the first @cap entries of @runs may have been
 * overwritten, and @info gets nr_runs, nr_slots and hole_pages (the covered and
 * uncovered counts are 0), so that nr_runs can size the next call.  @info may
 * be NULL.
 */
int pcihole_plan(const struct pcihole_layout *layout, uint32_t budget,
		 struct pcihole_run *runs, size_t cap,
		 struct pcihole_plan_info *info);

/* Options of pcihole_plan2(); zero-initialise. */
struct pcihole_plan_opts {
	uint32_t budget;	/* as in pcihole_plan(); 0 here means PCIHOLE_NO_BUDGET */
	uint32_t reserved0;	/* must be 0 */
	/*
	 * Host page size, a power of two; 0 means 4 KiB.  A KVM slot must start
	 * and end on host pages, but ECAM functions are 4 KiB: on a 64 KiB-page
	 * host (common on arm64) each run is clipped to the whole host pages
	 * inside it and the hole pages cut off stay with the mmio path
	 * (info->clipped_pages).  A run with no whole host page disappears.
	 */
	uint64_t page_size;
	uint64_t reserved[4];	/* must be 0 */
};

/*
 * pcihole_plan() with options: runs clipped to host pages first, then the
 * budget chosen among the clipped runs (the same weighting).  Returns as
 * pcihole_plan(), or -EINVAL for a bad @opts (NULL means all defaults).
 * With a page size above 4 KiB, nr_runs counts the clipped runs.
 */
int pcihole_plan2(const struct pcihole_layout *layout,
		  const struct pcihole_plan_opts *opts,
		  struct pcihole_run *runs, size_t cap,
		  struct pcihole_plan_info *info);

/*
 * The minimal change from plan @old to plan @new (both as returned by
 * pcihole_plan(): sorted, disjoint).  Runs present in both with the same gpa
 * and size stay untouched; @del receives the indexes into @old of the runs to
 * delete, @add the indexes into @new of the runs to create, both ascending.
 * @del must hold @nr_old entries and @add @nr_new.  Adding one function splits
 * at most one run (1 delete, up to 2 creates); removing one merges at most two
 * runs and the page (up to 2 deletes, 1 create).  Returns 0 or -EINVAL if
 * either plan is unsorted or overlapping.
 */
int pcihole_plan_diff(const struct pcihole_run *old, size_t nr_old,
		      const struct pcihole_run *new_runs, size_t nr_new,
		      uint32_t *del, size_t *nr_del,
		      uint32_t *add, size_t *nr_add);

/* ------------------------------------------------------------------------ */
/* Slot records                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Layout-identical to struct kvm_userspace_memory_region (and to kvm-bindings'
 * #[repr(C)] struct of the same name): cast or memcpy it and pass it to
 * KVM_SET_USER_MEMORY_REGION, or to kvm-ioctls' set_user_memory_region().
 * Deleting a slot is the same record with memory_size 0.
 */
struct pcihole_region {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
};

/*
 * Layout-identical to struct kvm_userspace_memory_region2 (Linux >= 6.8,
 * KVM_SET_USER_MEMORY_REGION2, KVM_CAP_USER_MEMORY2).  @slot's high 16 bits
 * are the address space id (x86: 1 is SMM), as in the v1 record.
 */
struct pcihole_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t guest_memfd_offset;	/* 0: hole slots are never guest_memfd */
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};

/* Widen a v1 record to REGION2 (the guest_memfd fields and padding zeroed). */
void pcihole_region_to_region2(const struct pcihole_region *region,
			       struct pcihole_region2 *region2);

/*
 * Turn @run into a slot record: slot @slot, flags @flags (pcihole_caps'
 * pci_hole_flag, or KVM_MEM_READONLY with @userspace_addr from
 * pcihole_allones_map()).  Returns 0 or -EINVAL for an empty or unaligned
 * run, or for either PCI hole flag with a non-zero @userspace_addr.
 */
int pcihole_run_to_region(const struct pcihole_run *run, uint32_t slot,
			  uint32_t flags, uint64_t userspace_addr,
			  struct pcihole_region *region);

/* ------------------------------------------------------------------------ */
/* All-ones backing for KVM_MEM_READONLY slots                               */
/* ------------------------------------------------------------------------ */

/* Default chunk: one 2 MiB huge page, 128 mappings for a 256 MiB window. */
#define PCIHOLE_ALLONES_CHUNK_DEFAULT (2ULL << 20)

/* How a chunk is backed, best first. */
enum pcihole_backing {
	PCIHOLE_BACKING_NONE = 0,	/* no memfd (pci-hole or mmio mode) */
	PCIHOLE_BACKING_HUGETLB = 1,	/* MFD_HUGETLB 2 MiB page */
	PCIHOLE_BACKING_THP = 2,	/* shmem transparent huge page */
	PCIHOLE_BACKING_4K = 3,		/* ordinary shmem pages */
};

/*
 * Create a memfd of @chunk bytes (0: the default; a power of two >= 4 KiB),
 * fill it with 0xff and seal it (F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|
 * F_SEAL_SEAL), so the page every VM maps can never change.  Tries hugetlb,
 * then shmem THP, then 4 KiB pages, and reports which in @backing (may be
 * NULL).  One such fd can back every VM on the host.  Returns 0 or -errno.
 */
int pcihole_allones_memfd(uint64_t chunk, int *fd,
			  enum pcihole_backing *backing);

/*
 * Check that @fd is a sealed all-ones memfd usable as backing: all four seals
 * set, size a power of two >= 4 KiB, contents all 0xff.  Returns its size
 * (> 0) or -EINVAL / -errno.
 */
int64_t pcihole_allones_check(int fd);

/*
 * Build a read-only host range of @size bytes (a multiple of @chunk) whose
 * every byte reads 0xff, by mapping the memfd @fd of @chunk bytes again and
 * again (MAP_SHARED|MAP_FIXED, PROT_READ) over one reserved range: @size /
 * @chunk mappings.  @fd must pass pcihole_allones_check() and be exactly
 * @chunk bytes (a smaller one would raise SIGBUS on access).  The range is
 * @chunk aligned so the kernel can use huge mappings; to let KVM use them
 * too, point a slot at guest address G to @addr + (G mod @chunk) + k * @chunk,
 * i.e. keep host and guest addresses congruent modulo @chunk (a context does;
 * pcihole_allones_map_run() does it for one run).  Returns 0 and the address
 * in @addr, or -EINVAL (bad @chunk, @size or @fd) / -errno with nothing left
 * mapped.  Release it with pcihole_allones_unmap().
 */
int pcihole_allones_map(int fd, uint64_t chunk, uint64_t size, void **addr);

/* Unmap a range from pcihole_allones_map() (same @size); returns 0 or -errno. */
int pcihole_allones_unmap(void *addr, uint64_t size);

/* One run's host range, from pcihole_allones_map_run(). */
struct pcihole_allones_range {
	void *base;		/* start of the mapping, for pcihole_allones_unmap_range() */
	uint64_t len;		/* its length: whole chunks */
	uint64_t userspace_addr;	/* host address of the run's first byte */
};

/*
 * The host range for ONE run, for VMMs that create their own slots or
 * memory regions (QEMU, rust-vmm): maps the whole chunks covering
 * [@gpa, @gpa + @size) from the sealed all-ones memfd @fd (checked like
 * pcihole_allones_check(); its size is the chunk) and sets
 * @range->userspace_addr so that it is congruent to @gpa modulo the chunk:
 * a slot (@gpa, @size, userspace_addr) lets KVM map a chunk at a time.
 * @gpa and @size must be 4 KiB aligned, @size > 0.  Returns 0, or -EINVAL /
 * -errno with nothing mapped.
 */
int pcihole_allones_map_run(int fd, uint64_t gpa, uint64_t size,
			    struct pcihole_allones_range *range);

/* Unmap a range from pcihole_allones_map_run(); returns 0 or -errno. */
int pcihole_allones_unmap_range(const struct pcihole_allones_range *range);

/* ------------------------------------------------------------------------ */
/* KVM: probe                                                                */
/* ------------------------------------------------------------------------ */

/* What the running kernel offers. */
struct pcihole_caps {
	uint32_t readonly_mem;		/* KVM_CAP_READONLY_MEM */
	uint32_t nr_memslots;		/* KVM_CAP_NR_MEMSLOTS */
	uint32_t pci_hole_cap;		/* KVM_CAP_PCI_HOLE_MEM answered non-zero */
	uint32_t pci_hole_works;	/* functional probe saw all-ones, no exit */
	uint32_t pre_fault_memory;	/* KVM_CAP_PRE_FAULT_MEMORY */
	uint32_t user_memory2;		/* KVM_CAP_USER_MEMORY2 (REGION2) */
	/*
	 * 1 if pci_hole_works comes from the functional probe; 0 on an
	 * architecture the library has no probe guest for, where it trusts
	 * the capability alone.
	 */
	uint32_t pci_hole_tested;
	uint32_t pci_hole_flag;		/* the memslot flag that worked (0 if none) */
	uint32_t reserved[5];		/* written as 0 */
};

/*
 * Probe KVM through @kvm_fd (an open /dev/kvm; -1 opens /dev/kvm itself).
 * KVM_MEM_PCI_HOLE counts only after a throwaway VM's guest read a hole
 * page and saw all-ones without an exit to userspace (on architectures with
 * a probe guest: x86-64, arm64).  The first successful
 * probe is cached for the process (later calls return the cached result); set
 * @fresh to probe again and replace the cache.  Returns 0, -ENOENT without
 * /dev/kvm, or -errno.
 */
int pcihole_probe(int kvm_fd, bool fresh, struct pcihole_caps *caps);

/* ------------------------------------------------------------------------ */
/* KVM: context (a C VMM lets the library own its slots)                     */
/* ------------------------------------------------------------------------ */

enum pcihole_mode {
	PCIHOLE_MODE_AUTO = 0,		/* best the probe allows: pci-hole, readonly, mmio */
	PCIHOLE_MODE_PCI_HOLE = 1,	/* KVM_MEM_PCI_HOLE slots, no memory */
	PCIHOLE_MODE_READONLY = 2,	/* KVM_MEM_READONLY slots over the all-ones memfd */
	PCIHOLE_MODE_MMIO = 3,		/* no slots; every hole access exits */
};

/* Name of a mode ("auto", "pci-hole", "readonly", "mmio"); NULL if unknown. */
const char *pcihole_mode_name(enum pcihole_mode mode);

/* Parse a mode name; returns the mode (>= 0) or -EINVAL. */
int pcihole_mode_parse(const char *name);

enum pcihole_log_level {
	PCIHOLE_LOG_ERR = 3,
	PCIHOLE_LOG_INFO = 6,
	PCIHOLE_LOG_DEBUG = 7,
};

/*
 * Log callback; @msg has no trailing newline.  A context calls it with no
 * lock held, after the call that logged has done its work, so the callback
 * may call back into the context (pcihole_ctx_stats(), ...).  It is called
 * on the thread of the context call that logged.
 */
typedef void (*pcihole_log_fn)(void *opaque, enum pcihole_log_level level,
			       const char *msg);

/* Context flags. */
/*
 * Let pcihole_ctx_prefault() pre-fault the slots (readonly and pci-hole
 * modes).  Without it that call does nothing and returns 0, so a VMM can call
 * it unconditionally and leave the choice to its configuration.
 */
#define PCIHOLE_CTX_PREFAULT (1u << 0)

/* Use KVM_SET_USER_MEMORY_REGION2 (needs KVM_CAP_USER_MEMORY2, Linux >= 6.8). */
#define PCIHOLE_CTX_REGION2 (1u << 1)
/*
 * Allow shadowed functions (pcihole_ctx_shadow()), in every mode.  Readonly:
 * shadow pages are mapped over the all-ones chunk under the slots, which
 * cover maximal runs of hole and shadowed pages alike.  pci-hole: a PCI_HOLE
 * slot has no host memory, so runs are split where hole and shadowed pages
 * meet: PCI_HOLE slots for the holes, KVM_MEM_READONLY slots over the shadow
 * pages (adjacent shadowed functions share one), so k isolated shadowed
 * functions cost up to 2k more slots than in readonly mode (a q35 layout
 * with its 6 functions shadowed: 10 slots instead of 1), and needs
 * KVM_CAP_READONLY_MEM (-EOPNOTSUPP without).  mmio: the VMM answers reads
 * from its page.  A hugetlb all-ones memfd refuses it (-EOPNOTSUPP: 4 KiB
 * shadow pages cannot be mapped inside a 2 MiB hugetlb mapping).  Costs one
 * fd and a 16 MiB sparse memfd (pages are allocated as functions are
 * shadowed); in pci-hole mode also address space (no memory) mirroring the
 * windows.  With PCIHOLE_MODE_AUTO: pci-hole where KVM has both PCI_HOLE and
 * read-only slots, else readonly, else mmio.
 */
#define PCIHOLE_CTX_SHADOW (1u << 2)
/* Most functions one context can shadow. */
#define PCIHOLE_SHADOW_MAX 4096u

/*
 * VMM-owned slots: a context with an apply callback never issues
 * KVM_SET_USER_MEMORY_REGION itself; it calls @apply with each record to
 * create (memory_size > 0) or delete (memory_size 0).  @region->slot is then
 * the context's own handle, 0 .. nr_slots - 1, not a KVM slot id: the VMM
 * maps it to a slot id from its own allocator (or to a memory region) and
 * applies the record its own way.  Return 0 or -errno; after a failure the
 * context calls @apply to undo what it had done, and the context call fails
 * all-or-nothing.  Called with the context's lock held: it must not call
 * back into the context.
 */
typedef int (*pcihole_apply_fn)(void *opaque, const struct pcihole_region2 *region);

/*
 * Zero-initialise, then set what you need: memfd -1 and mode AUTO are the
 * usual.  reserved0 and reserved[] must be 0 (-EINVAL otherwise).
 */
struct pcihole_ctx_config {
	uint32_t mode;			/* enum pcihole_mode */
	uint32_t flags;			/* PCIHOLE_CTX_* */
	uint32_t slot_base;		/* first slot id reserved for the library
					 * (ignored with @apply) */
	uint32_t nr_slots;		/* slot ids reserved: also the slot budget */
	int32_t memfd;			/* all-ones memfd to share, or -1 to make one;
					 * used during attach only, no fd is kept */
	uint16_t as_id;			/* KVM address space of the slots (x86: 1 is SMM);
					 * ignored with @apply */
	uint16_t reserved0;
	uint64_t chunk;			/* memfd size when made here; 0 = default */
	const struct pcihole_caps *caps;	/* NULL: pcihole_probe(-1, false) */
	pcihole_log_fn log;		/* NULL: silent */
	void *log_opaque;
	pcihole_apply_fn apply;		/* NULL: the context issues the ioctls */
	void *apply_opaque;
	/*
	 * Host page size (power of two, >= 4 KiB); 0: the running system's.
	 * Runs are clipped to whole host pages (see struct pcihole_plan_opts).
	 */
	uint64_t page_size;
	uint64_t reserved[8];
};

struct pcihole_ctx;

/*
 * Attach to the VM @vm_fd: choose the mode, create the all-ones backing if
 * readonly, and create one slot per planned run (at most @cfg->nr_slots,
 * ids from @cfg->slot_base, or handles given to @cfg->apply).  Without
 * @cfg->caps the cached probe decides; with or without it, the VM's own
 * KVM_CHECK_EXTENSION answers veto a mode the VM refuses (VM types without
 * read-only slots), so AUTO falls back instead of failing.  If /dev/kvm
 * cannot be probed, the vm fd's answers are used and pci-hole (which needs
 * the functional probe) is off.
 *
 * The context keeps its own duplicate of @vm_fd (F_DUPFD_CLOEXEC): the VMM
 * may close its descriptor whenever it likes, and the context can never
 * touch another VM that reuses the number.  With @cfg->apply, @vm_fd may be
 * -1 (then no VM veto and no pcihole_ctx_prefault()).
 * In readonly mode every group of gpa-adjacent windows gets its all-ones
 * host range here, once, so hotplug never maps or unmaps anything.
 *
 * @layout stays owned by the caller and must outlive the context; while
 * attached, change presence only through pcihole_ctx_set_present() (a second
 * context on the same layout: -EBUSY).  The
 * other context calls may come from any thread (a mutex per context
 * serialises them), except that nothing may race pcihole_ctx_detach().
 * pcihole_mmio_access() on @layout stays lock-free throughout.
 *
 * All-or-nothing: on failure no slot or mapping
 * of ours is left.  Returns 0, -EOPNOTSUPP if the requested mode is not
 * available (the log says which capability is missing; also REGION2 without
 * KVM_CAP_USER_MEMORY2), -EBUSY if @layout already has a context, -EINVAL
 * for bad config (slot range beyond KVM_CAP_NR_MEMSLOTS or the 16-bit slot
 * id, unknown flags, non-zero reserved fields, a bad page size), or -errno
 * from KVM (an address space id KVM does not have: -EINVAL from KVM).
 *
 * Teardown, in this order: stop the vCPUs; pcihole_ctx_detach() (deletes the
 * slots, unmaps, frees); then close the VM's fds, in any order.  A VMM that
 * destroys the VM first (or whose detach failed for good) calls
 * pcihole_ctx_destroy() instead: the slots die with the VM.
 */
int pcihole_ctx_attach(int vm_fd, struct pcihole_layout *layout,
		       const struct pcihole_ctx_config *cfg,
		       struct pcihole_ctx **out);

/*
 * Delete every slot and mapping of the context and free it (closing its
 * duplicate vm fd and releasing the layout).  All-or-nothing: if a slot
 * cannot be deleted or the all-ones range cannot be unmapped (one munmap,
 * which fails whole), the deleted slots are re-created, the context stays
 * attached and usable, and -errno is returned; the VMM may retry, or give
 * up with pcihole_ctx_destroy().
 */
int pcihole_ctx_detach(struct pcihole_ctx *ctx);

/*
 * Free a context without touching KVM: for a VM that is gone (or about to
 * be destroyed with its slots).  Unmaps the all-ones ranges, closes the
 * duplicate vm fd, releases the layout for another context, frees.  Never
 * fails; NULL is ignored.  With an apply callback, the VMM's own records of
 * the handles are its business.
 */
void pcihole_ctx_destroy(struct pcihole_ctx *ctx);

/*
 * Hotplug: mark @bdf present or absent and apply only the plan diff
 * (delete-then-create; between the two the mmio path answers).  Serialised
 * against other changes of the same context.  On any failure the slots, the
 * mappings and the presence bit are as before, and -errno is returned.
 * Returns 1 if something changed, 0 if the bit already had that value.
 *
 * Cost: O(log runs) plus the 1-3 slot changes: the neighbouring runs are
 * found by binary search and the change derived locally.  Only when the
 * slot budget binds (more runs than slots) or runs are clipped to host
 * pages larger than 4 KiB is the whole layout re-planned.
 */
int pcihole_ctx_set_present(struct pcihole_ctx *ctx,
			    const struct pcihole_bdf *bdf, bool present);

/*
 * Shadow @bdf (PCIHOLE_CTX_SHADOW): allocate its 4 KiB shadow page, fill it
 * from @init (NULL: all-ones), and return a writable pointer to it in @page.
 * The VMM keeps the page equal to what a guest read of the function's config
 * space returns; guest reads are served from a read-only mapping of the same
 * page with no exit (readonly and pci-hole modes), guest writes exit as
 * KVM_EXIT_MMIO and pcihole_classify() says PCIHOLE_ACCESS_SHADOWED: apply
 * the write, update the page.  Aligned 4-byte stores of the VMM are seen
 * whole by the guest.
 *
 * Readonly mode: if @bdf is present, its page joins the neighbouring runs (at
 * most two slot deletes and one create); if absent it stays a hole until
 * plugged, and plugging or unplugging a shadowed function then changes the
 * mapping under the slot, never a slot.  pci-hole mode: a present @bdf gets a
 * read-only slot, or joins a neighbouring shadowed function's (at most 2
 * slot changes); an absent one stays under its PCI_HOLE slot until plugged,
 * and plugging or unplugging a shadowed function changes its page's kind: at
 * most 4 slot changes (one slot of each kind around it becomes three, or
 * three one).  Shadowing a shadowed function returns its page.
 * All-or-nothing.  Returns 1 if newly shadowed, 0 if it already was,
 * -EOPNOTSUPP without PCIHOLE_CTX_SHADOW, -ENOSPC past PCIHOLE_SHADOW_MAX,
 * -EINVAL / -ENOENT for @bdf, or -errno.
 */
int pcihole_ctx_shadow(struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf,
		       const void *init, void **page);

/*
 * Stop shadowing @bdf: a present function is trapped again (its page leaves
 * the runs: at most one slot delete and two creates, in pci-hole mode its
 * read-only slot shrinks, splits or goes) and its shadow page is freed (the
 * pointer is invalid from then on).  All-or-nothing.  Returns 1 if it was
 * shadowed, 0 if not, or -errno.
 */
int pcihole_ctx_unshadow(struct pcihole_ctx *ctx, const struct pcihole_bdf *bdf);

/* The mode in use (never AUTO). */
enum pcihole_mode pcihole_ctx_mode(const struct pcihole_ctx *ctx);

/*
 * Copy the context's live slot records (ascending gpa) into @regions.
 * Returns the number of slots in use, or -ENOSPC if @cap is smaller (nothing
 * copied).  @regions may be NULL with @cap 0 as a size query.
 */
int pcihole_ctx_regions(const struct pcihole_ctx *ctx,
			struct pcihole_region *regions, size_t cap);

struct pcihole_ctx_stats {
	uint32_t mode;			/* enum pcihole_mode */
	uint32_t backing;		/* enum pcihole_backing; a caller's memfd: HUGETLB or 4K */
	uint32_t nr_slots;		/* slots in use */
	uint32_t nr_runs;		/* maximal runs of the current plan */
	uint64_t uncovered_pages;	/* hole pages left to the mmio path */
	uint64_t memfd_bytes;		/* size of the all-ones memfd (0 if none) */
	uint64_t nr_mappings;		/* mmap()s of the memfd that are live */
	uint64_t mapped_bytes;		/* host address space they cover */
	uint64_t nr_hotplugs;		/* successful presence changes */
	uint64_t nr_replans;		/* of those, that re-planned the whole layout */
	uint64_t nr_shadowed;		/* functions with a shadow page */
	uint64_t reserved[5];		/* written as 0 */
};

/*
 * Fill @stats.  In readonly mode the all-ones ranges are mapped once at attach
 * for every window (whole chunks, host and guest addresses congruent modulo
 * the chunk), so nr_mappings is the window size / chunk (128 for a 256-bus
 * segment) however the holes change.  Returns 0 or -EINVAL.
 */
int pcihole_ctx_stats(const struct pcihole_ctx *ctx,
		      struct pcihole_ctx_stats *stats);

/*
 * Pre-fault every slot of the context through the vCPU @vcpu_fd
 * (KVM_PRE_FAULT_MEMORY, Linux >= 6.10 with the TDP MMU), so the guest's first
 * scan takes no nested page faults: readonly slots map the all-ones memfd,
 * pci-hole slots the kernel's all-ones block.  Call it before the vCPU runs
 * (the ioctl waits for a running vCPU to leave KVM_RUN) or from a thread
 * other than the vCPU's.  Slots created later by hotplug are not pre-faulted.
 * Returns the number of bytes pre-faulted, 0 in mmio mode or without
 * PCIHOLE_CTX_PREFAULT, -EOPNOTSUPP without KVM_CAP_PRE_FAULT_MEMORY, or
 * -errno from KVM.
 */
int64_t pcihole_ctx_prefault(struct pcihole_ctx *ctx, int vcpu_fd);

/*
 * The same for a VMM that owns its slots: pre-fault the @nr hole slots
 * @regions (KVM_MEM_READONLY over the all-ones memfd, or KVM_MEM_PCI_HOLE)
 * through the vCPU @vcpu_fd, with the same rules as pcihole_ctx_prefault().
 * Records with memory_size 0 are skipped.  Returns the bytes pre-faulted,
 * -EOPNOTSUPP if the kernel lacks KVM_PRE_FAULT_MEMORY (or the TDP MMU), or
 * -errno from KVM (regions before the failing one stay pre-faulted: this
 * only warms page tables, there is nothing to undo).
 */
int64_t pcihole_prefault(int vcpu_fd, const struct pcihole_region *regions,
			 size_t nr);

#ifdef __cplusplus
}
#endif

#endif /* PCIHOLE_H */
