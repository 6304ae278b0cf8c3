/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * pcihole-launch's shared definitions: the guest's memory map, the emulated
 * functions, the options, the VM, the backends and the results.  The files:
 *   main.c     one VM in one mode (run_one) and main()
 *   cli.c      options and the one-line messages
 *   guest.c    the built-in 32-bit guest that scans the ECAM windows
 *   devices.c  the emulated PCI functions, the layout, the scan check
 *   vm.c       the KVM VM, its vCPU and the exit loop (the mmio path)
 *   backend.c  libpcihole's context (or the naive baseline), hotplug, churn
 *   report.c   timing, memory accounting, the text and JSON reports
 *   bench.c    --bench: every mode side by side, each in a child process
 */
#ifndef PCIHOLE_LAUNCH_H
#define PCIHOLE_LAUNCH_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <linux/kvm.h>

#include "pcihole.h"

#define PROG "pcihole-launch"

/* Exit codes, see main.c. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_UNSUPPORTED = 3,
};

/* ------------------------------------------------------------------------ */
/* Guest physical memory map                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Everything the guest needs lives in the first 2 MiB of RAM, at fixed
 * addresses the guest code uses as absolute constants.  The numbers are
 * plain literals because the guest's assembly (guest.c) includes them as text.
 */
#define G_STACK_TOP	0x1000	/* stack grows down from here */
#define G_CODE		0x1000	/* guest code, at most 4 KiB */
#define G_PARAM		0x2000	/* parameters, written by the VMM: */
#define G_P_KIND	0x2000	/*   scan pattern */
#define G_P_REPEAT	0x2004	/*   scans left */
#define G_P_NSEGS	0x2008	/*   number of windows */
#define G_P_END		0x200c	/*   last (overflow) entry of the result area */
#define G_P_SEGS	0x2020	/*   { u32 base, u32 buses } per window */
#define G_RESULT	0x4000	/* results, written by the guest: */
#define G_R_COUNT	0x4000	/*   functions found by the last scan */
#define G_R_FULL	0x4004	/*   set when the result area overflowed */
#define G_R_ENTRIES	0x4010	/*   struct guest_entry[] */

/*
 * Offsets in struct guest_entry, for the guest's assembly (plain literals,
 * checked against the struct below).
 */
#define E_GPA		0
#define E_ID		4
#define E_HDR		8
#define E_CLASS		12
#define E_CMD		16
#define E_CMD_TOGGLED	20
#define E_IRQ		24
#define E_SUBSYS	28
#define E_CAPS		32
#define E_EXT		40
#define E_CAPINFO	44
#define E_SIZES		60
#define E_SIZE		96	/* sizeof(struct guest_entry) */

#define GUEST_RAM_SIZE	(2u << 20)
/*
 * Intel VMX without unrestricted guest needs a TSS (3 pages) and an identity
 * map page somewhere in guest-physical space; they sit right after RAM so
 * that no ECAM window can collide with KVM's defaults at 0xfffbc000.
 */
#define GUEST_TSS	GUEST_RAM_SIZE
#define GUEST_IDMAP	(GUEST_RAM_SIZE + 0x3000)
#define GUEST_LOW_END	(GUEST_RAM_SIZE + 0x4000)

/* Port I/O the guest uses to mark scans: each is one "other" exit. */
#define PORT_BEGIN	0x510
#define PORT_END	0x511
#define PORT_CALIBRATE	0x512

/*
 * Before scanning, the guest times an empty loop between exits, so the
 * report can say whether this KVM executes guest code or emulates it (then
 * the times are not representative).  Natively one iteration is ~1 ns, in a
 * KVM nested in QEMU's JIT 15-35 ns; KVM's instruction emulator takes 1000+.
 * Three rounds, the fastest counts: the first can pay for a cold JIT.
 */
#define CAL_LOOPS	5000
#define CAL_ROUNDS	3
#define CAL_EMULATED_NS	200	/* per iteration: above this, "emulated" */

#define SCAN_LINUX	0
#define SCAN_FIRMWARE	1
#define SCAN_BRUTE	2

struct guest_seg {
	uint32_t base;
	uint32_t buses;
};

/*
 * What the guest writes for every function it finds: what its reads
 * returned, for the VMM to check against the device model.  Fields a scan
 * does not read stay 0.
 */
struct guest_entry {
	uint32_t gpa;		/* the function's config page */
	uint32_t id;		/* dword 0x00: device << 16 | vendor */
	uint32_t hdr;		/* byte 0x0e: header type */
	uint32_t class_rev;	/* dword 0x08 */
	uint32_t cmd;		/* word 0x04 as first read */
	uint32_t cmd_toggled;	/* linux: word 0x04 read back after flipping INTx disable */
	uint32_t irq;		/* interrupt pin | line << 8 (firmware: the line it wrote) */
	uint32_t subsys;	/* linux: words 0x2c, 0x2e */
	uint8_t caps[8];	/* capability positions found: CAPQ_* (0 = none) */
	uint32_t ext;		/* linux: dword 0x100 (extended config space) */
	uint32_t capinfo[4];	/* linux: EXP flags, EXP devcap, MSI flags, PM PMC */
	uint32_t sizes[9];	/* read back after all-ones at 0x10 + 4 * i (8: ROM) */
};

/* Which capability each caps[] byte looks for (literals: the guest uses them). */
#define CAPQ_EXP	0
#define CAPQ_EA		1
#define CAPQ_MSI	2
#define CAPQ_MSIX	3
#define CAPQ_PM		4

_Static_assert(sizeof(struct guest_entry) == E_SIZE, "guest entry layout");
_Static_assert(__builtin_offsetof(struct guest_entry, caps) == E_CAPS, "guest entry layout");
_Static_assert(__builtin_offsetof(struct guest_entry, ext) == E_EXT, "guest entry layout");
_Static_assert(__builtin_offsetof(struct guest_entry, capinfo) == E_CAPINFO, "guest entry layout");
_Static_assert(__builtin_offsetof(struct guest_entry, sizes) == E_SIZES, "guest entry layout");
_Static_assert(__builtin_offsetof(struct guest_entry, subsys) == E_SUBSYS, "guest entry layout");

#define GUEST_MAX_SEGS	((G_RESULT - G_P_SEGS) / sizeof(struct guest_seg))
_Static_assert(GUEST_MAX_SEGS >= PCIHOLE_MAX_SEGMENTS, "window table too small");
#define GUEST_MAX_ENTRIES ((GUEST_RAM_SIZE - G_R_ENTRIES) / sizeof(struct guest_entry) - 1)

/*
 * A type-0 PCIe endpoint (a root-complex integrated one, as QEMU's devices
 * on q35's bus 0), emulated QEMU-style: the config bytes plus a write mask,
 * so BAR sizing, the command register and the interrupt line behave without
 * per-register code, and writes to read-only bits are ignored.
 */
#define VENDOR_ID	0x1b36		/* Red Hat, as QEMU's own virtual devices */
#define DEVICE_ID_BASE	0x1000		/* + position on the command line */
#define CLASS_CODE	0x088000	/* system peripheral, other */
#define SUBSYS_ID	0x1100		/* subsystem: 1af4:1100, as QEMU's */
#define SUBSYS_VENDOR	0x1af4

/*
 * Command register at reset: memory decode on, as firmware leaves a device
 * it assigned.  Linux turns decoding off around each BAR it sizes, and
 * firmware turns I/O, memory and SERR# on.
 */
#define CMD_INITIAL	0x0002
#define CMD_WMASK	0x0547		/* I/O, mem, master, parity, SERR#, INTx disable */
#define CMD_FW_ENABLE	0x0103		/* SeaBIOS: I/O | memory | SERR# */
#define STATUS_CAP_LIST	0x0010

/*
 * BARs: a 4 KiB memory BAR, a 256-byte I/O BAR, a 1 MiB 64-bit prefetchable
 * one (BAR2 + BAR3); BAR4 and BAR5 unimplemented (read 0, writes ignored);
 * a 64 KiB expansion ROM, disabled.  Each function gets its own addresses.
 */
#define BAR0_FLAGS	0x00u
#define BAR0_SIZE	0x1000u
#define BAR1_FLAGS	0x01u		/* I/O */
#define BAR1_SIZE	0x100u
#define BAR2_FLAGS	0x0cu		/* memory, 64-bit, prefetchable */
#define BAR2_SIZE	0x100000u
#define ROM_SIZE	0x10000u
#define ROM_MASK	0xfffff800	/* PCI_ROM_ADDRESS_MASK: what enumerators write */

/* Capabilities: PM at 0x40 -> MSI (64-bit) at 0x50 -> PCIe (v2, RCiEP) at 0x60. */
#define CAP_PM		0x40
#define CAP_MSI		0x50
#define CAP_EXP		0x60
#define PM_PMC		0x0003		/* version 3, no PME#, no D1/D2 */
#define MSI_FLAGS	0x0080		/* 64-bit address, 1 vector, disabled */
#define EXP_FLAGS	0x0092		/* version 2, root complex integrated endpoint */
#define EXP_DEVCAP	0x10008000u	/* role-based error reporting, FLR */

/* SeaBIOS-style interrupt line the firmware scan writes (see guest.c). */
static inline uint8_t fw_irq_line(uint8_t dev, uint8_t pin)
{
	return (uint8_t)(10 + ((dev + pin - 1) & 3));
}

#define CFG_SIZE	256		/* no extended capabilities: 0x100.. read 0 */

struct function {
	struct pcihole_bdf bdf;
	const char *opt;		/* "--device" or "--hotplug", for messages */
	const char *arg;		/* as given, for messages */
	bool multifunction;
	bool hotplug;			/* --hotplug: absent until after scan 1 */
	bool unplug;			/* --unplug: removed after scan 1 */
	bool churn;			/* --churn: toggled while the guest runs */
	bool fw_inited;			/* a firmware scan enabled it (command, line) */
	uint16_t device_id;
	uint8_t cfg[CFG_SIZE];
	uint8_t wmask[CFG_SIZE];
	uint8_t initial_bars[24];	/* to check that sizing restored them */
	uint32_t initial_rom;
	/*
	 * --shadow: the function's shadow page (pcihole_ctx_shadow()), which
	 * function_write() keeps equal to what function_read() returns.
	 */
	uint32_t *shadow;
	unsigned int found;		/* by the current scan */
};

static inline void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));	/* x86: little-endian, like PCI */
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* libpcihole's modes plus the baseline that needs no library at all. */
enum launch_mode {
	LM_AUTO,
	LM_PCI_HOLE,
	LM_READONLY,
	LM_MMIO,
	LM_NAIVE_READONLY,
};

struct options {
	struct pcihole_segment segs[PCIHOLE_MAX_SEGMENTS];
	const char *seg_args[PCIHOLE_MAX_SEGMENTS];
	size_t nr_segs;
	struct function *fns;
	size_t nr_fns;
	enum launch_mode mode;
	unsigned int scan;
	unsigned int repeat;
	uint32_t slot_budget;	/* PCIHOLE_NO_BUDGET: every slot KVM has */
	bool prefault;
	bool json;
	bool verbose;
	bool bench;		/* --bench: every mode side by side */
	const char *plot_data;	/* --plot-data FILE (with --bench) */
	const char *churn;	/* --churn BDF, as given */
	const char *unplug[256];	/* --unplug BDF, as given */
	size_t nr_unplug;
	bool hotplug;		/* any --hotplug or --unplug */
	bool shadow;		/* --shadow: every function on a shadow page */
};

struct vm {
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;
	uint32_t nr_memslots;
};

/*
 * Rss counts a page once per mapping of it, so the readonly backend's one
 * memfd mapped 128 times can show up to 128 times; Pss divides every page by
 * its number of mappings and so gives the memory really used.  Both are
 * reported: Rss is what top shows, Pss is the truth.
 */
struct mem_usage {
	int64_t rss_kib;
	int64_t pss_kib;
};

struct backend {
	enum launch_mode mode;		/* what runs (never AUTO) */
	const char *backing;		/* "hugetlb", "thp", "4k", "anon", "none" */
	uint32_t nr_slots;
	uint32_t nr_runs;
	uint64_t uncovered_pages;
	uint64_t allones_bytes;		/* memory holding all-ones (memfd or anon) */
	uint64_t nr_mappings;
	uint64_t mapped_bytes;
	uint64_t setup_ns;		/* attach: plan, mappings, slots */
	uint64_t memfd_ns;		/* making the host-wide all-ones memfd */
	uint32_t memfd_backing;		/* enum pcihole_backing of that memfd */
	int64_t prefault_bytes;		/* -ENODATA n/a, -ECANCELED off, other < 0: -errno */
	uint64_t prefault_ns;
	struct pcihole_region *regions;	/* naive-readonly: our own slots */
	void **naive_maps;
	struct pcihole_ctx *ctx;	/* every other mode */
	struct pcihole_caps caps;
	uint64_t probe_ns;
	uint32_t nr_shadowed;		/* --shadow: functions on shadow pages */
	uint64_t shadow_ns;		/* --shadow: pcihole_ctx_shadow() calls */
};

/* Exits to userspace by class, as pcihole_classify() answered them. */
struct exits {
	uint64_t hole_reads;	/* PCIHOLE_ACCESS_HOLE: answered by the library */
	uint64_t hole_writes;
	uint64_t present_reads;	/* PCIHOLE_ACCESS_FUNCTION: a trapped function */
	uint64_t present_writes;
	uint64_t shadow_reads;	/* PCIHOLE_ACCESS_SHADOWED (reads: mmio mode, */
	uint64_t shadow_writes;	/*   a slot budget, or during a change) */
	uint64_t other;		/* port I/O, anything else */
};

static inline uint64_t exits_present(const struct exits *e)
{
	return e->present_reads + e->present_writes + e->shadow_reads + e->shadow_writes;
}

static inline uint64_t exits_config(const struct exits *e)
{
	return e->hole_reads + e->hole_writes + exits_present(e);
}

struct scan_result {
	struct exits exits;
	uint64_t wall_ns;
	uint32_t found;
	uint32_t expected;	/* functions present during this scan */
	bool ok;
};

struct launcher {
	struct options *o;
	struct pcihole_layout *layout;
	struct vm vm;
	struct backend backend;
	struct scan_result *scans;
	unsigned int nr_scans;
	struct exits cur;
	uint64_t scan_start_ns;
	uint64_t cal_start_ns;
	double loop_ns;		/* calibration: ns per guest loop iteration */
	unsigned int hotplug_changes;
	uint64_t hotplug_ns;
	uint32_t slots_after_hotplug;
	pthread_t churn_thread;
	bool churn_stop;		/* __atomic */
	uint64_t churn_toggles;		/* written by the churn thread, read after join */
	int churn_error;
	bool failed;
};

/*
 * What one run reports, in numbers: run_one() fills it for --bench, whose
 * children write it to memory shared with the parent (no parsing of text).
 */
struct launch_result {
	bool valid;			/* the run got as far as its report */
	bool ok;
	enum launch_mode mode;		/* what ran (never LM_AUTO) */
	uint32_t slots;
	char backing[16];
	char prefault[48];		/* prefault_status() */
	uint64_t allones_bytes;
	int64_t pss_delta_kib;
	uint64_t hole_exits_first;
	struct exits first;		/* the first scan's exits by class */
	uint32_t nr_shadowed;
	double setup_us, memfd_us, prefault_us;
	double first_scan_us;
	double repeat_scan_us;		/* < 0: a single scan */
	double guest_loop_ns;
};

extern const char *const mode_names[];
extern const char *const scan_names[];
extern const unsigned char pcihole_guest[], pcihole_guest_end[];

/* cli.c */
void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...);
void __attribute__((noreturn, format(printf, 2, 3))) die(int code, const char *fmt, ...);
void parse_options(int argc, char **argv, struct options *o);

/* guest.c */
void guest_load(uint8_t *ram, const struct options *o);

/* devices.c */
void function_read(const struct function *f, uint32_t off, uint8_t *data, uint32_t len);
void function_write(struct function *f, uint32_t off, const uint8_t *data, uint32_t len);
void function_page(const struct function *f, uint8_t page[PCIHOLE_PAGE_SIZE]);
const char *bdf_str(const struct pcihole_bdf *bdf, char buf[PCIHOLE_BDF_STRLEN]);
struct function *find_function(struct options *o, const struct pcihole_bdf *bdf);
struct pcihole_layout *setup_layout(struct options *o);
bool check_scan(struct launcher *l, unsigned int idx);

/* vm.c */
int kvm_check(int fd, long cap);
void vm_create(struct vm *vm, const struct options *o);
void vm_destroy(struct vm *vm);
void run_guest(struct launcher *l);

/* backend.c */
void setup_backend(struct vm *vm, struct pcihole_layout *layout, struct options *o,
		   struct backend *b);
void backend_free(struct backend *b);
void do_hotplug(struct launcher *l);
void churn_start(struct launcher *l);
void churn_stop(struct launcher *l);

/* report.c */
uint64_t now_ns(void);
struct mem_usage mem_usage(void);
void print_scan(const struct launcher *l, unsigned int idx);
void report_text(const struct launcher *l, const struct mem_usage *d);
void report_json(const struct launcher *l, const struct mem_usage *d);
void report_result(const struct launcher *l, const struct mem_usage *d, struct launch_result *r);

/* main.c, bench.c */
int run_one(struct options *o, struct launch_result *res);
int run_bench(struct options *o);

#endif
