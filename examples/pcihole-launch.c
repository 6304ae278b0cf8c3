/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * pcihole-launch: a small VMM on /dev/kvm that wires libpcihole in the way
 * a VMM author would, and measures what it buys.
 *
 * It creates a VM with a little RAM, one or more ECAM windows and a few
 * emulated PCI functions, then runs a built-in 32-bit guest that scans the
 * windows the way Linux, firmware or a brute-force prober does.  The
 * guest reports what it found; the launcher checks it found exactly the
 * configured functions, and prints how many exits to userspace each scan
 * cost, how long it took, how many memory slots the holes use and how much
 * memory their all-ones backing costs.
 *
 * The parts a VMM copies:
 *   - setup_layout():   segments + present functions -> struct pcihole_layout
 *   - setup_backend():  pcihole_ctx_attach(), or the naive baseline by hand
 *   - handle_mmio():    present functions first (the VMM's own devices),
 *                       then pcihole_mmio_access() for everything else
 *
 * Examples:
 *   pcihole-launch --device 00:00.0 --device 00:1f.0,multifunction \
 *                  --device 00:1f.3 --mode readonly --scan linux --repeat 3
 *   pcihole-launch --bench          # every mode side by side, q35 layout
 *   examples/bench.sh --plot b.png  # the same, plus a chart
 *
 * Exit codes: 0 all scans found exactly the configured functions; 1 they did
 * not, or the VM failed; 2 bad arguments; 3 the kernel cannot do the asked
 * mode (the message names the missing capability).
 *
 * Self-contained on purpose (libc + libpcihole only) so it can run inside a
 * minimal initramfs, e.g. the kernel/ QEMU leg.  A static binary for that:
 *   cc -O2 -static -D_GNU_SOURCE -Iinclude -Ilib examples/pcihole-launch.c \
 *      lib/[a-z]*.c -lpthread -o pcihole-launch
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "pcihole.h"

#define PROG "pcihole-launch"

/* Exit codes, see the top of the file. */
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
 * plain literals because the guest's assembly below includes them as text.
 */
#define G_STACK_TOP	0x1000	/* stack grows down from here */
#define G_CODE		0x1000	/* guest code, at most 4 KiB */
#define G_PARAM		0x2000	/* parameters, written by the VMM: */
#define G_P_KIND	0x2000	/*   scan pattern */
#define G_P_REPEAT	0x2004	/*   scans left */
#define G_P_NSEGS	0x2008	/*   number of windows */
#define G_P_END		0x200c	/*   first byte after the result area */
#define G_P_BAR0	0x2010	/*   scratch: BAR0 sizing read-back (firmware) */
#define G_P_SEGS	0x2020	/*   { u32 base, u32 buses } per window */
#define G_RESULT	0x4000	/* results, written by the guest: */
#define G_R_COUNT	0x4000	/*   functions found by the last scan */
#define G_R_FULL	0x4004	/*   set when the result area overflowed */
#define G_R_ENTRIES	0x4010	/*   struct guest_entry[] */

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

/* What the guest writes for every function it finds. */
struct guest_entry {
	uint32_t gpa;		/* the function's config page */
	uint32_t id;		/* config dword 0x00: device << 16 | vendor */
	uint32_t hdr;		/* config dword 0x0c: BIST, header type, ... */
	uint32_t bar0;		/* firmware scan: BAR0 read back after writing ~0 */
};

#define GUEST_MAX_SEGS	((G_RESULT - G_P_SEGS) / sizeof(struct guest_seg))
_Static_assert(GUEST_MAX_SEGS >= PCIHOLE_MAX_SEGMENTS, "window table too small");
#define GUEST_MAX_ENTRIES ((GUEST_RAM_SIZE - G_R_ENTRIES) / sizeof(struct guest_entry) - 1)

/* ------------------------------------------------------------------------ */
/* The guest                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * 32-bit protected mode, flat segments, no paging, no interrupts.  The host
 * this was written on runs guest code through KVM's instruction emulator at
 * about 1 us per instruction, so the scan loops are kept to six
 * instructions per hole: on hardware that is noise next to an exit, here it
 * is what the guest costs.
 *
 * Register use in a scan: eax = config page being read, ecx = pages left in
 * this window, ebx = window table pointer, esi = windows left, edi = next
 * result entry, ebp/edx = scratch.
 *
 * Written in assembly (the compiler's own assembler, so there is no extra
 * tool and no hand-encoded bytes to get wrong); it only uses relative jumps
 * and absolute constants, so it runs wherever it is copied (G_CODE).
 */
#define S_(x) #x
#define S(x) S_(x)

__asm__(
	".pushsection .rodata.pcihole_guest, \"a\"\n"
	".intel_syntax noprefix\n"
	".code32\n"
	"pcihole_guest:\n"
	"	mov esp, " S(G_STACK_TOP) "\n"
	"	mov dx, " S(PORT_CALIBRATE) "\n"
	"	out dx, al\n"
	"	mov ebx, " S(CAL_ROUNDS) "\n"
	".Lg_cal_round:\n"
	"	mov ecx, " S(CAL_LOOPS) "\n"
	".Lg_cal:\n"
	"	dec ecx\n"
	"	jnz .Lg_cal\n"
	"	out dx, al\n"
	"	dec ebx\n"
	"	jnz .Lg_cal_round\n"
	".Lg_scan:\n"
	"	mov dx, " S(PORT_BEGIN) "\n"
	"	out dx, al\n"
	"	mov dword ptr [" S(G_R_FULL) "], 0\n"
	"	mov edi, " S(G_R_ENTRIES) "\n"
	"	mov ebx, " S(G_P_SEGS) "\n"
	"	mov esi, dword ptr [" S(G_P_NSEGS) "]\n"
	".Lg_seg:\n"
	"	test esi, esi\n"
	"	jz .Lg_done\n"
	"	mov eax, dword ptr [ebx]\n"
	"	mov ecx, dword ptr [ebx + 4]\n"
	"	mov edx, dword ptr [" S(G_P_KIND) "]\n"
	"	cmp edx, " S(SCAN_BRUTE) "\n"
	"	je .Lg_brute\n"
	"	cmp edx, " S(SCAN_FIRMWARE) "\n"
	"	je .Lg_fw\n"

	/*
	 * linux: pci_scan_slot / pcibios_fixup_peer_bridges.  One 32-bit
	 * vendor-ID read at function 0 of devices 0-31 of every bus; functions
	 * 1-7 only behind a multifunction function 0.
	 */
	"	shl ecx, 5\n"
	".Lg_lx:\n"
	"	mov ebp, dword ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	jne .Lg_lx_found\n"
	".Lg_lx_next:\n"
	"	add eax, 0x8000\n"
	"	dec ecx\n"
	"	jnz .Lg_lx\n"
	"	jmp .Lg_seg_next\n"
	".Lg_lx_found:\n"
	"	call .Lg_record\n"
	"	test edx, 0x800000\n"	/* header type bit 7: multifunction */
	"	jz .Lg_lx_next\n"
	"	push eax\n"
	"	push ecx\n"
	"	mov ecx, 7\n"
	".Lg_lx_fn:\n"
	"	add eax, 0x1000\n"
	"	mov ebp, dword ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	je .Lg_lx_fn_next\n"
	"	call .Lg_record\n"
	".Lg_lx_fn_next:\n"
	"	dec ecx\n"
	"	jnz .Lg_lx_fn\n"
	"	pop ecx\n"
	"	pop eax\n"
	"	jmp .Lg_lx_next\n"

	/*
	 * firmware: SeaBIOS/OVMF.  16-bit vendor reads, the same function
	 * skipping, and every BAR of a found function sized the classic way:
	 * save, write all-ones, read the mask back, restore.
	 */
	".Lg_fw:\n"
	"	shl ecx, 5\n"
	".Lg_fw_loop:\n"
	"	movzx ebp, word ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	jne .Lg_fw_found\n"
	".Lg_fw_next:\n"
	"	add eax, 0x8000\n"
	"	dec ecx\n"
	"	jnz .Lg_fw_loop\n"
	"	jmp .Lg_seg_next\n"
	".Lg_fw_found:\n"
	"	call .Lg_fw_function\n"
	"	test edx, 0x800000\n"
	"	jz .Lg_fw_next\n"
	"	push eax\n"
	"	push ecx\n"
	"	mov ecx, 7\n"
	".Lg_fw_fn:\n"
	"	add eax, 0x1000\n"
	"	movzx ebp, word ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	je .Lg_fw_fn_next\n"
	"	call .Lg_fw_function\n"
	".Lg_fw_fn_next:\n"
	"	dec ecx\n"
	"	jnz .Lg_fw_fn\n"
	"	pop ecx\n"
	"	pop eax\n"
	"	jmp .Lg_fw_next\n"
	".Lg_fw_function:\n"
	"	push ecx\n"
	"	push ebx\n"
	"	lea ebx, [eax + 0x10]\n"
	"	mov ecx, 6\n"
	".Lg_fw_bar:\n"
	"	mov edx, dword ptr [ebx]\n"
	"	mov dword ptr [ebx], 0xffffffff\n"
	"	mov ebp, dword ptr [ebx]\n"
	"	mov dword ptr [ebx], edx\n"
	"	cmp ecx, 6\n"
	"	jne .Lg_fw_bar_next\n"
	"	mov dword ptr [" S(G_P_BAR0) "], ebp\n"
	".Lg_fw_bar_next:\n"
	"	add ebx, 4\n"
	"	dec ecx\n"
	"	jnz .Lg_fw_bar\n"
	"	pop ebx\n"
	"	pop ecx\n"
	"	jmp .Lg_record\n"	/* tail call */

	/* brute: a 32-bit read of every function page, no skipping. */
	".Lg_brute:\n"
	"	shl ecx, 8\n"
	".Lg_br:\n"
	"	mov ebp, dword ptr [eax]\n"
	"	cmp bp, 0xffff\n"
	"	jne .Lg_br_found\n"
	".Lg_br_next:\n"
	"	add eax, 0x1000\n"
	"	dec ecx\n"
	"	jnz .Lg_br\n"
	"	jmp .Lg_seg_next\n"
	".Lg_br_found:\n"
	"	call .Lg_record\n"
	"	jmp .Lg_br_next\n"

	".Lg_seg_next:\n"
	"	add ebx, 8\n"
	"	dec esi\n"
	"	jmp .Lg_seg\n"

	/* Report the count and let the VMM look at the list. */
	".Lg_done:\n"
	"	mov eax, edi\n"
	"	sub eax, " S(G_R_ENTRIES) "\n"
	"	shr eax, 4\n"
	"	mov dword ptr [" S(G_R_COUNT) "], eax\n"
	"	mov dx, " S(PORT_END) "\n"
	"	out dx, eax\n"
	"	dec dword ptr [" S(G_P_REPEAT) "]\n"
	"	jnz .Lg_scan\n"
	"	hlt\n"
	"	jmp .Lg_done\n"

	/*
	 * Record the function at eax: its id and header dwords (two more
	 * config reads, as every real scan does next) and the BAR0 scratch.
	 * Returns the header dword in edx; clobbers ebp.  A full result area
	 * keeps overwriting its last entry and raises G_R_FULL.
	 */
	".Lg_record:\n"
	"	mov ebp, dword ptr [eax]\n"
	"	mov edx, dword ptr [eax + 0x0c]\n"
	"	mov dword ptr [edi], eax\n"
	"	mov dword ptr [edi + 4], ebp\n"
	"	mov dword ptr [edi + 8], edx\n"
	"	mov ebp, dword ptr [" S(G_P_BAR0) "]\n"
	"	mov dword ptr [edi + 12], ebp\n"
	"	cmp edi, dword ptr [" S(G_P_END) "]\n"
	"	jae .Lg_record_full\n"
	"	add edi, 16\n"
	"	ret\n"
	".Lg_record_full:\n"
	"	mov dword ptr [" S(G_R_FULL) "], 1\n"
	"	ret\n"
	"pcihole_guest_end:\n"
	".code64\n"
	".att_syntax prefix\n"
	".popsection\n");

extern const unsigned char pcihole_guest[], pcihole_guest_end[];

/* ------------------------------------------------------------------------ */
/* Emulated PCI functions                                                    */
/* ------------------------------------------------------------------------ */

/*
 * A plain type-0 function, emulated QEMU-style: the config bytes plus a
 * write mask, so BAR sizing, the command register and the interrupt line
 * behave without per-register code.
 */
#define VENDOR_ID	0x1b36		/* Red Hat, as QEMU's own virtual devices */
#define DEVICE_ID_BASE	0x1000		/* + position on the command line */
#define CLASS_CODE	0x088000	/* system peripheral, other */

/* BARs: a 4 KiB memory BAR, a 256-byte I/O BAR and a 1 MiB 64-bit prefetchable one. */
#define BAR0_SIZE_MASK	0xfffff000u
#define BAR1_FLAGS	0x01u		/* I/O */
#define BAR1_SIZE_MASK	0xffffff00u
#define BAR2_FLAGS	0x0cu		/* memory, 64-bit, prefetchable */
#define BAR2_SIZE_MASK	0xfff00000u

#define CFG_SIZE	256		/* no extended capabilities: 0x100.. read 0 */

struct function {
	struct pcihole_bdf bdf;
	const char *opt;		/* "--device" or "--hotplug", for messages */
	const char *arg;		/* as given, for messages */
	bool multifunction;
	bool hotplug;			/* --hotplug: absent until after scan 1 */
	bool unplug;			/* --unplug: removed after scan 1 */
	bool churn;			/* --churn: toggled while the guest runs */
	uint16_t device_id;
	uint8_t cfg[CFG_SIZE];
	uint8_t wmask[CFG_SIZE];
	uint8_t initial_bars[24];	/* to check that sizing restored them */
	unsigned int found;		/* by the current scan */
};

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));	/* x86: little-endian, like PCI */
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void function_init(struct function *f)
{
	uint8_t *c = f->cfg;

	memset(f->cfg, 0, sizeof(f->cfg));
	memset(f->wmask, 0, sizeof(f->wmask));
	put32(c + 0x00, (uint32_t)f->device_id << 16 | VENDOR_ID);
	put32(c + 0x08, CLASS_CODE << 8 | 0x01);	/* revision 1 */
	c[0x0e] = f->multifunction ? 0x80 : 0x00;	/* header type 0 */
	put32(c + 0x10, 0);
	put32(c + 0x14, BAR1_FLAGS);
	put32(c + 0x18, BAR2_FLAGS);
	put32(c + 0x2c, (uint32_t)f->device_id << 16 | VENDOR_ID);
	c[0x3d] = 1;					/* INTA# */

	put32(f->wmask + 0x04, 0x0407);		/* I/O, memory, bus master, INTx disable */
	f->wmask[0x0c] = 0xff;			/* cache line size */
	put32(f->wmask + 0x10, BAR0_SIZE_MASK);
	put32(f->wmask + 0x14, BAR1_SIZE_MASK);
	put32(f->wmask + 0x18, BAR2_SIZE_MASK);
	put32(f->wmask + 0x1c, 0xffffffff);	/* BAR2's upper half */
	f->wmask[0x3c] = 0xff;			/* interrupt line */
	memcpy(f->initial_bars, c + 0x10, sizeof(f->initial_bars));
}

static void function_read(const struct function *f, uint32_t off, uint8_t *data,
			  uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < CFG_SIZE ? f->cfg[off + i] : 0;
}

static void function_write(struct function *f, uint32_t off, const uint8_t *data,
			   uint32_t len)
{
	for (uint32_t i = 0; i < len && off + i < CFG_SIZE; i++) {
		uint8_t m = f->wmask[off + i];

		f->cfg[off + i] = (f->cfg[off + i] & ~m) | (data[i] & m);
	}
}

static int bdf_cmp(const struct pcihole_bdf *a, const struct pcihole_bdf *b)
{
	uint32_t ka = (uint32_t)a->segment << 16 | a->bus << 8 | a->dev << 3 | a->fn;
	uint32_t kb = (uint32_t)b->segment << 16 | b->bus << 8 | b->dev << 3 | b->fn;

	return ka < kb ? -1 : ka > kb;
}

static int function_cmp(const void *a, const void *b)
{
	return bdf_cmp(&((const struct function *)a)->bdf,
		       &((const struct function *)b)->bdf);
}

static const char *bdf_str(const struct pcihole_bdf *bdf, char buf[PCIHOLE_BDF_STRLEN])
{
	if (pcihole_bdf_format(bdf, buf, PCIHOLE_BDF_STRLEN) < 0)
		snprintf(buf, PCIHOLE_BDF_STRLEN, "?");
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

/* libpcihole's modes plus the baseline that needs no library at all. */
enum launch_mode {
	LM_AUTO,
	LM_PCI_HOLE,
	LM_READONLY,
	LM_MMIO,
	LM_NAIVE_READONLY,
};

static const char *const mode_names[] = {
	[LM_AUTO] = "auto",
	[LM_PCI_HOLE] = "pci-hole",
	[LM_READONLY] = "readonly",
	[LM_MMIO] = "mmio",
	[LM_NAIVE_READONLY] = "naive-readonly",
};

static const char *const scan_names[] = {
	[SCAN_LINUX] = "linux",
	[SCAN_FIRMWARE] = "firmware",
	[SCAN_BRUTE] = "brute",
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
};

static const char usage_text[] =
	"usage: " PROG " [options]\n"
	"  --segment S:BASE:A-B     ECAM window of segment S at BASE (the window start,\n"
	"                           i.e. bus A's page) for buses A-B; repeatable\n"
	"                           (default 0:0xb0000000:0-255, QEMU q35)\n"
	"  --device BDF[,multifunction]\n"
	"                           an emulated function, e.g. 00:1f.0,multifunction or\n"
	"                           0001:02:03.0; functions 1-7 need function 0 with\n"
	"                           multifunction; repeatable\n"
	"  --mode M                 auto | pci-hole | readonly | mmio | naive-readonly\n"
	"                           (default auto)\n"
	"  --scan P                 linux | firmware | brute (default linux)\n"
	"  --repeat N               scans to run (default 1)\n"
	"  --slots N                slot budget for the holes (default: all KVM has)\n"
	"  --no-prefault            do not pre-fault the hole slots\n"
	"  --json                   print the results as one JSON object\n"
	"  -v, --verbose            log what libpcihole does\n"
	"  --hotplug BDF[,multifunction]\n"
	"                           a function that appears after scan 1 (the library\n"
	"                           re-plans and changes only the slots that differ)\n"
	"  --unplug BDF             a --device that disappears after scan 1\n"
	"  --churn BDF              a --device that a second thread unplugs and plugs\n"
	"                           again and again while the guest scans (the guest\n"
	"                           may or may not see it; everything else must hold)\n"
	"  --bench                  run every mode side by side, each in a fresh VM, and\n"
	"                           print one table (default devices: the q35 six,\n"
	"                           00:00.0 00:01.0 00:02.0 00:1f.0 00:1f.2 00:1f.3)\n"
	"  --plot-data FILE         with --bench: also write gnuplot columns to FILE\n"
	"  -h, --help               this text\n"
	"exit: 0 ok, 1 scan mismatch or VM failure, 2 bad arguments, 3 mode unavailable\n";

/*
 * Arguments go into messages: control bytes are escaped so that every
 * message stays the one line scripts expect.
 */
static void __attribute__((format(printf, 1, 0)))
vput_escaped(const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (const char *p = msg; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n')
			fputs("\\n", stderr);
		else if (c == '\\')
			fputs("\\\\", stderr);
		else if (c < 0x20 || c == 0x7f)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
}

/* One line on stderr, exit 2: scripts and people see which argument was wrong. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vput_escaped(fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(EXIT_USAGE);
}

/* The library's number syntax (pcihole_segment_parse): decimal, or hex after 0x. */
static unsigned long parse_count(const char *opt, const char *arg,
				 unsigned long min, unsigned long max)
{
	bool hex = arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X');
	const char *p = hex ? arg + 2 : arg;
	unsigned long long v = 0;

	for (; *p && v <= max; p++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (hex && *p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (hex && *p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			break;
		v = v * (hex ? 16 : 10) + d;
	}
	if (*p || p == (hex ? arg + 2 : arg) || v < min || v > max)
		usage_error("%s %s: want a number from %lu to %lu (decimal, or hex after 0x)",
			    opt, arg, min, max);
	return (unsigned long)v;
}

static void add_device(struct options *o, const char *opt, const char *arg)
{
	char bdf_text[32];
	const char *comma = strchr(arg, ',');
	size_t n = comma ? (size_t)(comma - arg) : strlen(arg);
	struct function *f;

	if (n >= sizeof(bdf_text))
		usage_error("%s %s: malformed function address (want BB:DD.F or SSSS:BB:DD.F)",
			    opt, arg);
	memcpy(bdf_text, arg, n);
	bdf_text[n] = '\0';

	if (o->nr_fns >= 0x10000)
		usage_error("%s %s: too many devices", opt, arg);
	f = realloc(o->fns, (o->nr_fns + 1) * sizeof(*f));
	if (!f) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_FAIL);
	}
	o->fns = f;
	f = &o->fns[o->nr_fns];
	memset(f, 0, sizeof(*f));
	f->opt = opt;
	f->arg = arg;
	f->hotplug = !strcmp(opt, "--hotplug");
	if (pcihole_bdf_parse(bdf_text, &f->bdf) < 0)
		usage_error("%s %s: malformed function address (want BB:DD.F or SSSS:BB:DD.F)",
			    opt, arg);
	if (comma) {
		if (strcmp(comma + 1, "multifunction") != 0)
			usage_error("%s %s: unknown property '%s' (only 'multifunction')",
				    opt, arg, comma + 1);
		f->multifunction = true;
	}
	f->device_id = (uint16_t)(DEVICE_ID_BASE + o->nr_fns);
	o->nr_fns++;
}

static int lookup(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "device", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'm' },
		{ "scan", required_argument, NULL, 'S' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "slots", required_argument, NULL, 'b' },
		{ "no-prefault", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "bench", no_argument, NULL, 'B' },
		{ "plot-data", required_argument, NULL, 'D' },
		{ "hotplug", required_argument, NULL, 'H' },
		{ "unplug", required_argument, NULL, 'U' },
		{ "churn", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, v;

	memset(o, 0, sizeof(*o));
	o->mode = LM_AUTO;
	o->scan = SCAN_LINUX;
	o->repeat = 1;
	o->slot_budget = PCIHOLE_NO_BUDGET;
	o->prefault = true;

	opterr = 0;	/* our own one-line messages */
	while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (o->nr_segs >= PCIHOLE_MAX_SEGMENTS)
				usage_error("--segment %s: more than %u segments", optarg,
					    PCIHOLE_MAX_SEGMENTS);
			if (pcihole_segment_parse(optarg, &o->segs[o->nr_segs]) < 0)
				usage_error("--segment %s: malformed (want SEG:BASE:START-END, e.g. 0:0xb0000000:0-255)",
					    optarg);
			o->seg_args[o->nr_segs++] = optarg;
			break;
		case 'd':
			add_device(o, "--device", optarg);
			break;
		case 'H':
			add_device(o, "--hotplug", optarg);
			break;
		case 'C':
			if (o->churn)
				usage_error("--churn %s: only one --churn", optarg);
			o->churn = optarg;
			break;
		case 'U':
			if (o->nr_unplug >= sizeof(o->unplug) / sizeof(o->unplug[0]))
				usage_error("--unplug %s: too many", optarg);
			o->unplug[o->nr_unplug++] = optarg;
			break;
		case 'm':
			v = lookup(mode_names, sizeof(mode_names) / sizeof(mode_names[0]), optarg);
			if (v < 0)
				usage_error("--mode %s: unknown mode (auto, pci-hole, readonly, mmio, naive-readonly)",
					    optarg);
			o->mode = (enum launch_mode)v;
			break;
		case 'S':
			v = lookup(scan_names, sizeof(scan_names) / sizeof(scan_names[0]), optarg);
			if (v < 0)
				usage_error("--scan %s: unknown scan (linux, firmware, brute)", optarg);
			o->scan = (unsigned int)v;
			break;
		case 'r':
			o->repeat = (unsigned int)parse_count("--repeat", optarg, 1, 1000000);
			break;
		case 'b':
			o->slot_budget = (uint32_t)parse_count("--slots", optarg, 0, 0xffff);
			break;
		case 'P':
			o->prefault = false;
			break;
		case 'j':
			o->json = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'B':
			o->bench = true;
			break;
		case 'D':
			o->plot_data = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(EXIT_OK);
		case ':':
			usage_error("%s: needs an argument", argv[optind - 1]);
		default:
			usage_error("%s: unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("%s: unexpected argument", argv[optind]);
	if (o->plot_data && !o->bench)
		usage_error("--plot-data %s: only with --bench", o->plot_data);
	for (size_t i = 0; i < o->nr_fns; i++)
		o->hotplug |= o->fns[i].hotplug;
	o->hotplug |= o->nr_unplug > 0;
	if (o->hotplug) {
		const char *what = o->nr_unplug ? "--unplug" : "--hotplug";

		if (o->bench)
			usage_error("%s: not with --bench", what);
		if (o->mode == LM_NAIVE_READONLY)
			usage_error("%s: mode naive-readonly has no hotplug (its slots are made by hand)",
				    what);
		if (o->repeat < 2)
			usage_error("%s: needs --repeat 2 or more (it happens after scan 1)", what);
	}
	if (o->churn) {
		if (o->bench || o->hotplug)
			usage_error("--churn %s: not with --bench, --hotplug or --unplug", o->churn);
		if (o->mode == LM_NAIVE_READONLY)
			usage_error("--churn %s: mode naive-readonly has no hotplug", o->churn);
	}
	if (o->bench && !o->nr_fns) {
		static const char *const q35[] = {
			"00:00.0", "00:01.0", "00:02.0", "00:1f.0,multifunction", "00:1f.2", "00:1f.3",
		};

		for (size_t i = 0; i < sizeof(q35) / sizeof(q35[0]); i++)
			add_device(o, "--device", q35[i]);
	}

	if (!o->nr_segs) {
		static const char dflt[] = "0:0xb0000000:0-255";

		pcihole_segment_parse(dflt, &o->segs[0]);
		o->seg_args[0] = dflt;
		o->nr_segs = 1;
	}
}

/* ------------------------------------------------------------------------ */
/* Layout                                                                    */
/* ------------------------------------------------------------------------ */

static void check_segment_placement(const struct options *o)
{
	for (size_t i = 0; i < o->nr_segs; i++) {
		const struct pcihole_segment *s = &o->segs[i];
		uint64_t end = s->base + ((uint64_t)(s->bus_end - s->bus_start + 1) << 20);

		/* A 32-bit guest without paging reaches the first 4 GiB only. */
		if (end > (1ULL << 32) || end < s->base)
			usage_error("--segment %s: window must lie in the first 4 GiB for the 32-bit guest",
				    o->seg_args[i]);
		if (s->base < GUEST_LOW_END)
			usage_error("--segment %s: window overlaps guest RAM (0-0x%x)",
				    o->seg_args[i], GUEST_LOW_END - 1);
	}
}

/* Is @f present before (@phase 0) or after (1) the hotplug after scan 1? */
static bool function_live(const struct function *f, int phase)
{
	return phase ? !f->unplug : !f->hotplug;
}

static struct function *find_function(struct options *o, const struct pcihole_bdf *bdf)
{
	struct function key = { .bdf = *bdf };

	/* No --device: o->fns is NULL, which bsearch() must not get even for 0 items. */
	if (!o->nr_fns)
		return NULL;
	return bsearch(&key, o->fns, o->nr_fns, sizeof(*o->fns), function_cmp);
}

/*
 * Test seam: a VMM bug that leaves a device out of the presence map.  The
 * library then serves its page as a hole, the guest misses the device, and
 * the check after each scan must fail loudly (tests/launch_modes.sh).
 */
static void test_hide(struct options *o, struct pcihole_layout *layout)
{
	const char *hide = getenv("PCIHOLE_LAUNCH_TEST_HIDE");
	struct pcihole_bdf bdf;

	if (!hide || !*hide)
		return;
	if (pcihole_bdf_parse(hide, &bdf) < 0 || !find_function(o, &bdf))
		usage_error("PCIHOLE_LAUNCH_TEST_HIDE=%s: not a configured device", hide);
	pcihole_layout_set_present(layout, &bdf, false);
}

/*
 * Segments and present functions become a struct pcihole_layout: the one
 * object both the plan and the mmio path read.
 */
static struct pcihole_layout *setup_layout(struct options *o)
{
	struct pcihole_layout *layout;
	char a[PCIHOLE_BDF_STRLEN];
	int r;

	check_segment_placement(o);
	r = pcihole_layout_new(o->segs, o->nr_segs, 0, &layout);
	if (r < 0) {
		/* Find the first segment that makes the set invalid, to name it. */
		for (size_t i = 1; i <= o->nr_segs; i++) {
			r = pcihole_segments_validate(o->segs, i, 0);
			if (r < 0)
				usage_error("--segment %s: %s", o->seg_args[i - 1],
					    r == -EEXIST ? "overlaps another segment"
							 : "invalid (base must be 1 MiB aligned)");
		}
		usage_error("--segment: invalid set of segments (%s)", strerror(-r));
	}

	for (size_t i = 0; i < o->nr_fns; i++) {
		struct function *f = &o->fns[i];

		r = pcihole_layout_set_present(layout, &f->bdf, true);
		if (r == -ENOENT)
			usage_error("%s %s: %s is in no segment's bus range", f->opt, f->arg,
				    bdf_str(&f->bdf, a));
		if (r == 0)
			usage_error("%s %s: duplicate device %s", f->opt, f->arg,
				    bdf_str(&f->bdf, a));
		if (r < 0)
			usage_error("%s %s: %s", f->opt, f->arg, strerror(-r));
	}
	/* Hotplugged functions were set above only to catch duplicates. */
	for (size_t i = 0; i < o->nr_fns; i++)
		if (o->fns[i].hotplug)
			pcihole_layout_set_present(layout, &o->fns[i].bdf, false);

	/*
	 * Real PCI (and every scan that skips functions 1-7 of a single-function
	 * device) needs function 0 to say "multifunction" before functions 1-7
	 * exist; QEMU refuses the same configuration.
	 */
	if (o->nr_fns)
		qsort(o->fns, o->nr_fns, sizeof(*o->fns), function_cmp);
	for (size_t i = 0; i < o->nr_unplug; i++) {
		struct function key = { 0 }, *f;

		if (pcihole_bdf_parse(o->unplug[i], &key.bdf) < 0)
			usage_error("--unplug %s: malformed function address (want BB:DD.F or "
				    "SSSS:BB:DD.F)", o->unplug[i]);
		f = find_function(o, &key.bdf);
		if (!f || f->hotplug || f->unplug)
			usage_error("--unplug %s: not a --device (or given twice)", o->unplug[i]);
		f->unplug = true;
	}
	if (o->churn) {
		struct function key = { 0 }, *f;

		if (pcihole_bdf_parse(o->churn, &key.bdf) < 0)
			usage_error("--churn %s: malformed function address (want BB:DD.F or "
				    "SSSS:BB:DD.F)", o->churn);
		f = find_function(o, &key.bdf);
		if (!f)
			usage_error("--churn %s: not a --device", o->churn);
		/* Its absence must not orphan functions 1-7 of the same device. */
		for (size_t i = 0; i < o->nr_fns && f->bdf.fn == 0; i++)
			if (o->fns[i].bdf.fn && o->fns[i].bdf.segment == f->bdf.segment &&
			    o->fns[i].bdf.bus == f->bdf.bus && o->fns[i].bdf.dev == f->bdf.dev)
				usage_error("--churn %s: function 0 of a device with more functions",
					    o->churn);
		f->churn = true;
	}
	/* Before and after the hotplug alike. */
	for (int phase = 0; phase < 2; phase++) {
		for (size_t i = 0; i < o->nr_fns; i++) {
			struct function *f = &o->fns[i];
			struct function key = { .bdf = f->bdf }, *f0;

			if (f->bdf.fn == 0 || !function_live(f, phase))
				continue;
			key.bdf.fn = 0;
			f0 = find_function(o, &key.bdf);
			if (!f0 || !f0->multifunction || !function_live(f0, phase))
				usage_error("%s %s: function %u needs %s,multifunction%s", f->opt,
					    f->arg, f->bdf.fn, bdf_str(&key.bdf, a),
					    phase ? " after the hotplug too" : "");
		}
	}
	for (size_t i = 0; i < o->nr_fns; i++)
		function_init(&o->fns[i]);
	test_hide(o, layout);
	return layout;
}

/* ------------------------------------------------------------------------ */
/* The VM                                                                    */
/* ------------------------------------------------------------------------ */

struct vm {
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;
	uint32_t nr_memslots;
};

static int kvm_check(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vput_escaped(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void set_flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1;	/* 32-bit */
	s->s = 1;	/* code/data, not system */
	s->l = 0;
	s->g = 1;	/* 4 KiB granularity: 4 GiB limit */
}

static void vm_create(struct vm *vm, const struct options *o)
{
	struct kvm_userspace_memory_region ram = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t idmap = GUEST_IDMAP;
	int r;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		die(EXIT_UNSUPPORTED, "cannot open /dev/kvm: %s", strerror(errno));
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die(EXIT_UNSUPPORTED, "/dev/kvm speaks an unknown API version");
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		die(EXIT_UNSUPPORTED, "KVM_CREATE_VM: %s", strerror(errno));
	vm->nr_memslots = (uint32_t)kvm_check(vm->vm_fd, KVM_CAP_NR_MEMSLOTS);
	if (vm->nr_memslots < 2)
		vm->nr_memslots = 32;	/* the minimum any x86 KVM ever had */

	/* Only Intel without unrestricted guest uses these; AMD ignores them. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)GUEST_TSS) < 0)
		die(EXIT_FAIL, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 && errno != ENOTTY)
		die(EXIT_FAIL, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));

	/* Slot 0 is RAM; the library gets slots from 1 on. */
	vm->ram = mmap(NULL, GUEST_RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->ram == MAP_FAILED)
		die(EXIT_FAIL, "guest RAM: %s", strerror(errno));
	/* Touch it all now, so the RSS baseline already holds it. */
	memset(vm->ram, 0, GUEST_RAM_SIZE);
	ram.slot = 0;
	ram.guest_phys_addr = 0;
	ram.memory_size = GUEST_RAM_SIZE;
	ram.userspace_addr = (uintptr_t)vm->ram;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &ram) < 0)
		die(EXIT_FAIL, "guest RAM slot: %s", strerror(errno));

	/* The guest, its parameters and its window table. */
	memcpy(vm->ram + G_CODE, pcihole_guest, (size_t)(pcihole_guest_end - pcihole_guest));
	put32(vm->ram + G_P_KIND, o->scan);
	put32(vm->ram + G_P_REPEAT, o->repeat);
	put32(vm->ram + G_P_NSEGS, (uint32_t)o->nr_segs);
	put32(vm->ram + G_P_END, (uint32_t)(G_R_ENTRIES + GUEST_MAX_ENTRIES * sizeof(struct guest_entry)));
	for (size_t i = 0; i < o->nr_segs; i++) {
		struct guest_seg gs = {
			.base = (uint32_t)o->segs[i].base,
			.buses = (uint32_t)(o->segs[i].bus_end - o->segs[i].bus_start + 1),
		};

		memcpy(vm->ram + G_P_SEGS + i * sizeof(gs), &gs, sizeof(gs));
	}

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0)
		die(EXIT_FAIL, "KVM_CREATE_VCPU: %s", strerror(errno));
	r = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run))
		die(EXIT_FAIL, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = (size_t)r;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED)
		die(EXIT_FAIL, "kvm_run: %s", strerror(errno));

	/* Straight into flat 32-bit protected mode: no real-mode trampoline. */
	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die(EXIT_FAIL, "KVM_GET_SREGS: %s", strerror(errno));
	set_flat_segment(&sregs.cs, 0x08, 0x0b);	/* code, execute/read, accessed */
	set_flat_segment(&sregs.ds, 0x10, 0x03);	/* data, read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11;				/* PE, ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die(EXIT_FAIL, "KVM_SET_SREGS: %s", strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rip = G_CODE;
	regs.rsp = G_STACK_TOP;
	regs.rflags = 0x2;
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		die(EXIT_FAIL, "KVM_SET_REGS: %s", strerror(errno));
}

/* ------------------------------------------------------------------------ */
/* Memory accounting                                                         */
/* ------------------------------------------------------------------------ */

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

static struct mem_usage mem_usage(void)
{
	struct mem_usage m = { -1, -1 };
	char line[256];
	FILE *f = fopen("/proc/self/smaps_rollup", "re");

	if (!f)
		return m;
	while (fgets(line, sizeof(line), f)) {
		long long v;

		if (sscanf(line, "Rss: %lld kB", &v) == 1)
			m.rss_kib = v;
		else if (sscanf(line, "Pss: %lld kB", &v) == 1)
			m.pss_kib = v;
	}
	fclose(f);
	return m;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Backends                                                                  */
/* ------------------------------------------------------------------------ */

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
};

/*
 * The seed thread's baseline: KVM_MEM_READONLY slots over private anonymous
 * memory, filled with 0xff.  Works on any KVM since 3.16 and costs 4 KiB of
 * real memory per hole page and per VM: 256 MiB for a 256-bus window (the
 * thread's "8192 pages, 32 MiB" counts only the pages one scan touches).
 * Slots made by hand from the plan, without the library's backend, the way
 * a VMM would do it without libpcihole.
 */
static void setup_naive_readonly(struct vm *vm, struct pcihole_layout *layout,
				 const struct options *o, struct backend *b)
{
	struct pcihole_plan_info info;
	struct pcihole_run *runs;
	size_t n = pcihole_plan_count(layout);
	uint32_t budget = vm->nr_memslots - 1;
	int nr;

	if (!kvm_check(vm->vm_fd, KVM_CAP_READONLY_MEM))
		die(EXIT_UNSUPPORTED, "mode naive-readonly: kernel lacks KVM_CAP_READONLY_MEM");
	if (o->slot_budget < budget)
		budget = o->slot_budget;

	runs = calloc(n ? n : 1, sizeof(*runs));
	b->regions = calloc(n ? n : 1, sizeof(*b->regions));
	b->naive_maps = calloc(n ? n : 1, sizeof(*b->naive_maps));
	if (!runs || !b->regions || !b->naive_maps)
		die(EXIT_FAIL, "out of memory");
	nr = pcihole_plan(layout, budget, runs, n, &info);
	if (nr < 0)
		die(EXIT_FAIL, "pcihole_plan: %s", strerror(-nr));

	for (int i = 0; i < nr; i++) {
		void *p = mmap(NULL, runs[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		int r;

		if (p == MAP_FAILED)
			die(EXIT_FAIL, "naive-readonly: %s", strerror(errno));
		memset(p, 0xff, runs[i].size);
		b->naive_maps[i] = p;
		r = pcihole_run_to_region(&runs[i], 1 + (uint32_t)i, KVM_MEM_READONLY,
					  (uintptr_t)p, &b->regions[i]);
		if (r < 0)
			die(EXIT_FAIL, "pcihole_run_to_region: %s", strerror(-r));
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &b->regions[i]) < 0)
			die(EXIT_FAIL, "naive-readonly slot %d: %s", i + 1, strerror(errno));
		b->allones_bytes += runs[i].size;
		b->mapped_bytes += runs[i].size;
		b->nr_mappings++;
	}
	b->backing = "anon";
	b->nr_slots = (uint32_t)nr;
	b->nr_runs = info.nr_runs;
	b->uncovered_pages = info.uncovered_pages;
	free(runs);
}

static const char *backing_name(uint32_t backing)
{
	switch (backing) {
	case PCIHOLE_BACKING_HUGETLB:
		return "hugetlb";
	case PCIHOLE_BACKING_THP:
		return "thp";
	case PCIHOLE_BACKING_4K:
		return "4k";
	default:
		return "none";
	}
}

/*
 * libpcihole's log: the last error is kept for our own one-line message
 * (exit 3 names the missing capability); everything is shown with -v.
 */
struct lib_log {
	bool verbose;
	char last_err[256];
};

static void lib_log_fn(void *opaque, enum pcihole_log_level level, const char *msg)
{
	struct lib_log *lg = opaque;

	if (level <= PCIHOLE_LOG_ERR)
		snprintf(lg->last_err, sizeof(lg->last_err), "%s", msg);
	if (lg->verbose)
		fprintf(stderr, "libpcihole: %s\n", msg);
}

static void __attribute__((noreturn))
mode_unavailable(enum launch_mode mode, const struct pcihole_caps *caps,
		 const struct lib_log *lg)
{
	if (mode == LM_PCI_HOLE && !caps->pci_hole_cap)
		die(EXIT_UNSUPPORTED, "mode pci-hole: the kernel lacks KVM_CAP_PCI_HOLE_MEM "
		    "(capability %d, KVM_MEM_PCI_HOLE from kernel/patches)",
		    PCIHOLE_KVM_CAP_PCI_HOLE_MEM);
	if (mode == LM_PCI_HOLE)
		die(EXIT_UNSUPPORTED, "mode pci-hole: KVM_CAP_PCI_HOLE_MEM is answered, but a "
		    "KVM_MEM_PCI_HOLE slot failed the functional probe (no all-ones without an exit)");
	if (mode == LM_READONLY && !caps->readonly_mem)
		die(EXIT_UNSUPPORTED, "mode readonly: the kernel lacks KVM_CAP_READONLY_MEM");
	die(EXIT_UNSUPPORTED, "mode %s: not available: %s", mode_names[mode],
	    lg->last_err[0] ? lg->last_err : "(no reason given)");
}

/*
 * The library way, and what a C VMM copies: probe once per process, then
 * attach a context to the VM with a range of slot ids of its own.  The
 * context creates one slot per hole run (readonly: over one sealed all-ones
 * memfd; pci-hole: no memory at all; mmio: none) and the mmio path covers
 * whatever the slots do not.
 */
static void setup_ctx(struct vm *vm, struct pcihole_layout *layout,
		      const struct options *o, struct backend *b)
{
	static const uint32_t lib_mode[] = {
		[LM_AUTO] = PCIHOLE_MODE_AUTO,
		[LM_PCI_HOLE] = PCIHOLE_MODE_PCI_HOLE,
		[LM_READONLY] = PCIHOLE_MODE_READONLY,
		[LM_MMIO] = PCIHOLE_MODE_MMIO,
	};
	static struct lib_log lg;
	struct pcihole_ctx_config cfg = { 0 };
	struct pcihole_ctx_stats st;
	uint64_t t0 = now_ns();
	bool slots;
	int r;

	lg.verbose = o->verbose;
	r = pcihole_probe(vm->kvm_fd, false, &b->caps);
	if (r < 0)
		die(EXIT_UNSUPPORTED, "pcihole_probe: %s", strerror(-r));
	b->probe_ns = now_ns() - t0;

	cfg.mode = lib_mode[o->mode];
	cfg.flags = o->prefault ? PCIHOLE_CTX_PREFAULT : 0;
	cfg.slot_base = 1;			/* slot 0 is RAM */
	cfg.nr_slots = vm->nr_memslots - 1;
	if (o->slot_budget < cfg.nr_slots)
		cfg.nr_slots = o->slot_budget;
	/*
	 * The all-ones memfd is a host-wide thing: a VMM makes it once (or
	 * gets it from a management daemon) and passes it to every VM's
	 * context, so it is made here, timed apart from the attach.  Only when
	 * readonly is what we will get: pci-hole needs no memory at all.
	 */
	cfg.memfd = -1;
	if (o->mode == LM_READONLY ||
	    (o->mode == LM_AUTO && !b->caps.pci_hole_works && b->caps.readonly_mem)) {
		enum pcihole_backing kind;

		t0 = now_ns();
		r = pcihole_allones_memfd(0, &cfg.memfd, &kind);
		if (r < 0)
			die(EXIT_FAIL, "pcihole_allones_memfd: %s", strerror(-r));
		b->memfd_ns = now_ns() - t0;
		b->memfd_backing = kind;
	}
	cfg.caps = &b->caps;
	cfg.log = lib_log_fn;
	cfg.log_opaque = &lg;

	t0 = now_ns();
	r = pcihole_ctx_attach(vm->vm_fd, layout, &cfg, &b->ctx);
	if (r == -EOPNOTSUPP)
		mode_unavailable(o->mode, &b->caps, &lg);
	if (r < 0)
		die(EXIT_FAIL, "pcihole_ctx_attach: %s%s%s", strerror(-r),
		    lg.last_err[0] ? ": " : "", lg.last_err);
	b->setup_ns = now_ns() - t0;
	/* The context's mappings keep the memory; a VMM keeps the fd for the next VM. */
	if (cfg.memfd >= 0)
		close(cfg.memfd);

	r = pcihole_ctx_stats(b->ctx, &st);
	if (r < 0)
		die(EXIT_FAIL, "pcihole_ctx_stats: %s", strerror(-r));
	switch (pcihole_ctx_mode(b->ctx)) {
	case PCIHOLE_MODE_PCI_HOLE:
		b->mode = LM_PCI_HOLE;
		break;
	case PCIHOLE_MODE_READONLY:
		b->mode = LM_READONLY;
		break;
	default:
		b->mode = LM_MMIO;
		break;
	}
	/* A passed-in memfd's backing is what pcihole_allones_memfd() said. */
	b->backing = backing_name(b->memfd_backing ? b->memfd_backing : st.backing);
	b->nr_slots = st.nr_slots;
	b->nr_runs = st.nr_runs;
	b->uncovered_pages = st.uncovered_pages;
	b->allones_bytes = st.memfd_bytes;
	b->nr_mappings = st.nr_mappings;
	b->mapped_bytes = st.mapped_bytes;

	/*
	 * Pre-fault the slots (readonly: the memfd; pci-hole: the kernel's
	 * all-ones block) before the vCPU first runs, so the guest's first scan
	 * (its boot) takes no nested page faults.  Only where the kernel has
	 * KVM_PRE_FAULT_MEMORY (6.10+, TDP MMU).
	 */
	slots = pcihole_ctx_mode(b->ctx) == PCIHOLE_MODE_READONLY ||
		pcihole_ctx_mode(b->ctx) == PCIHOLE_MODE_PCI_HOLE;
	if (slots && !o->prefault)
		b->prefault_bytes = -ECANCELED;
	if (slots && o->prefault) {
		t0 = now_ns();
		b->prefault_bytes = pcihole_ctx_prefault(b->ctx, vm->vcpu_fd);
		b->prefault_ns = now_ns() - t0;
	}
}

static void setup_backend(struct vm *vm, struct pcihole_layout *layout,
			  const struct options *o, struct backend *b)
{
	memset(b, 0, sizeof(*b));
	b->mode = o->mode;
	b->prefault_bytes = -ENODATA;	/* nothing to pre-fault */
	if (o->mode == LM_NAIVE_READONLY) {
		uint64_t t0 = now_ns();

		setup_naive_readonly(vm, layout, o, b);
		b->setup_ns = now_ns() - t0;
	} else {
		setup_ctx(vm, layout, o, b);
	}
}

/* ------------------------------------------------------------------------ */
/* Exits                                                                     */
/* ------------------------------------------------------------------------ */

struct exits {
	uint64_t hole_reads;	/* answered by pcihole_mmio_access() */
	uint64_t hole_writes;
	uint64_t present;	/* config accesses of the emulated functions */
	uint64_t other;		/* port I/O, anything else */
};

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
 * The heart of it, and the part a VMM copies: the VMM's own devices first,
 * then libpcihole for everything else in the windows.  In the slot modes
 * only present functions (and hole writes, and runs a slot budget left out)
 * get here; in mmio mode every hole read does.
 */
static void handle_mmio(struct launcher *l)
{
	struct kvm_run *run = l->vm.run;
	uint64_t gpa = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;
	bool is_write = run->mmio.is_write;
	struct pcihole_bdf bdf;
	unsigned int tries;
	uint32_t off;
	int r = 0;

	/*
	 * The two lookups each see one instant of the presence map.  If a
	 * hotplug thread flips the function between them, neither claims the
	 * access: look again, the next pair sees the new state.
	 */
	for (tries = 0; tries < 1000; tries++) {
		if (pcihole_layout_gpa_to_bdf(l->layout, gpa, &bdf, &off) == 0 &&
		    pcihole_layout_is_present(l->layout, &bdf) == 1) {
			struct function *f = find_function(l->o, &bdf);

			if (f && off + len <= PCIHOLE_PAGE_SIZE) {
				if (is_write)
					function_write(f, off, run->mmio.data, len);
				else
					function_read(f, off, run->mmio.data, len);
				l->cur.present++;
				return;
			}
		}

		r = pcihole_mmio_access(l->layout, gpa, run->mmio.data, len, is_write);
		if (r == 1) {
			if (is_write)
				l->cur.hole_writes++;
			else
				l->cur.hole_reads++;
			return;
		}
		if (r < 0 || pcihole_layout_gpa_to_bdf(l->layout, gpa, &bdf, &off))
			break;	/* not ECAM at all, or a malformed access */
	}
	die(EXIT_FAIL, "guest %s of %u bytes at 0x%" PRIx64 " is outside every window (%s)",
	    is_write ? "write" : "read", len, gpa, r < 0 ? strerror(-r) : "not a hole");
}

/*
 * Check the guest's list against the configuration: every entry a
 * configured function, with the right id and header, found once; every
 * configured function found.
 */
static bool check_scan(struct launcher *l, unsigned int idx)
{
	struct options *o = l->o;
	const uint8_t *ram = l->vm.ram;
	uint32_t count = get32(ram + G_R_COUNT);
	char a[PCIHOLE_BDF_STRLEN];
	bool ok = true;

	for (size_t i = 0; i < o->nr_fns; i++)
		o->fns[i].found = 0;
	if (get32(ram + G_R_FULL)) {
		fprintf(stderr, PROG ": scan %u: the guest's result area overflowed\n", idx);
		ok = false;
	}
	for (uint32_t i = 0; i < count && i < GUEST_MAX_ENTRIES; i++) {
		struct guest_entry e;
		struct pcihole_bdf bdf;
		struct function *f;
		uint32_t off;

		memcpy(&e, ram + G_R_ENTRIES + i * sizeof(e), sizeof(e));
		if (pcihole_layout_gpa_to_bdf(l->layout, e.gpa, &bdf, &off) < 0 || off) {
			fprintf(stderr, PROG ": scan %u: guest reports a function at 0x%x, "
				"outside every window\n", idx, e.gpa);
			ok = false;
			continue;
		}
		f = find_function(o, &bdf);
		if (!f) {
			fprintf(stderr, PROG ": scan %u: guest found %s (id %08x), which is not "
				"configured\n", idx, bdf_str(&bdf, a), e.id);
			ok = false;
			continue;
		}
		if (!function_live(f, idx > 1) && !f->churn) {
			fprintf(stderr, PROG ": scan %u: guest found %s, which is %s\n", idx,
				bdf_str(&bdf, a), f->hotplug ? "not plugged in yet" : "unplugged");
			ok = false;
		}
		if (f->found++) {
			fprintf(stderr, PROG ": scan %u: guest found %s twice\n", idx,
				bdf_str(&bdf, a));
			ok = false;
		}
		/*
		 * A churned function can vanish between the guest's reads: then
		 * it reads all-ones, which is what real hardware does too.
		 * Anything else is wrong.
		 */
		if (e.id != get32(f->cfg) && !(f->churn && e.id == 0xffffffff)) {
			fprintf(stderr, PROG ": scan %u: %s: guest read id %08x, want %08x\n",
				idx, bdf_str(&bdf, a), e.id, get32(f->cfg));
			ok = false;
		}
		if (((e.hdr >> 16) & 0xff) != f->cfg[0x0e] && !(f->churn && e.hdr == 0xffffffff)) {
			fprintf(stderr, PROG ": scan %u: %s: guest read header type %02x, want %02x\n",
				idx, bdf_str(&bdf, a), (e.hdr >> 16) & 0xff, f->cfg[0x0e]);
			ok = false;
		}
		if (o->scan == SCAN_FIRMWARE && e.bar0 != BAR0_SIZE_MASK &&
		    !(f->churn && e.bar0 == 0xffffffff)) {
			fprintf(stderr, PROG ": scan %u: %s: BAR0 sizing read %08x, want %08x\n",
				idx, bdf_str(&bdf, a), e.bar0, BAR0_SIZE_MASK);
			ok = false;
		}
	}
	for (size_t i = 0; i < o->nr_fns; i++) {
		if (!o->fns[i].found && function_live(&o->fns[i], idx > 1) && !o->fns[i].churn) {
			fprintf(stderr, PROG ": scan %u: guest missed %s\n", idx,
				bdf_str(&o->fns[i].bdf, a));
			ok = false;
		}
		/*
		 * Firmware sizing must leave every BAR as it found it (unless the
		 * function vanished before the restoring write).
		 */
		if (!o->fns[i].churn && memcmp(o->fns[i].cfg + 0x10, o->fns[i].initial_bars,
			   sizeof(o->fns[i].initial_bars))) {
			fprintf(stderr, PROG ": scan %u: %s: BARs not restored after sizing\n",
				idx, bdf_str(&o->fns[i].bdf, a));
			ok = false;
		}
	}
	l->scans[idx - 1].found = count;
	l->scans[idx - 1].expected = 0;
	for (size_t i = 0; i < o->nr_fns; i++)
		l->scans[idx - 1].expected += function_live(&o->fns[i], idx > 1);
	return ok;
}

static void print_scan(const struct launcher *l, unsigned int idx)
{
	const struct scan_result *s = &l->scans[idx - 1];

	printf("scan %u/%u %s: %" PRIu64 " hole reads, %" PRIu64 " hole writes, %" PRIu64
	       " present-function, %" PRIu64 " other exits; found %u/%u functions%s; %.3f ms\n",
	       idx, l->o->repeat, scan_names[l->o->scan], s->exits.hole_reads,
	       s->exits.hole_writes, s->exits.present, s->exits.other, s->found,
	       s->expected, s->ok ? "" : " (MISMATCH)", s->wall_ns / 1e6);
	fflush(stdout);
}

/*
 * Hotplug, the way a VMM does it while the vCPU is stopped (or from another
 * thread: the mmio path stays lock-free): the device model is ready first,
 * then the library marks the function present and swaps only the slots that
 * differ, delete-then-create; an access in between exits to the mmio path,
 * which answers from the presence map.
 */
static void do_hotplug(struct launcher *l)
{
	struct pcihole_ctx_stats st;
	char a[PCIHOLE_BDF_STRLEN];
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < l->o->nr_fns; i++) {
		struct function *f = &l->o->fns[i];
		int r;

		if (!f->hotplug && !f->unplug)
			continue;
		r = pcihole_ctx_set_present(l->backend.ctx, &f->bdf, f->hotplug);
		if (r < 0)
			die(EXIT_FAIL, "pcihole_ctx_set_present(%s, %s): %s", bdf_str(&f->bdf, a),
			    f->hotplug ? "present" : "absent", strerror(-r));
		l->hotplug_changes++;
	}
	l->hotplug_ns = now_ns() - t0;
	if (pcihole_ctx_stats(l->backend.ctx, &st) == 0)
		l->slots_after_hotplug = st.nr_slots;
}

/*
 * --churn: hotplug from a thread other than the vCPU's, as a VMM's device
 * manager does, while the guest keeps scanning.  Each toggle deletes and
 * creates slots under the running guest; an access in between exits, and
 * handle_mmio() answers from the presence map, so the guest sees either the
 * device or all-ones, never anything else.
 */
static void *churn_main(void *arg)
{
	struct launcher *l = arg;
	struct function *f = NULL;

	for (size_t i = 0; i < l->o->nr_fns; i++)
		if (l->o->fns[i].churn)
			f = &l->o->fns[i];
	while (f && !__atomic_load_n(&l->churn_stop, __ATOMIC_ACQUIRE)) {
		int r = pcihole_ctx_set_present(l->backend.ctx, &f->bdf, false);

		if (r >= 0)
			r = pcihole_ctx_set_present(l->backend.ctx, &f->bdf, true);
		if (r < 0) {
			l->churn_error = r;
			break;
		}
		l->churn_toggles += 2;
	}
	return NULL;
}

static void churn_start(struct launcher *l)
{
	int r = pthread_create(&l->churn_thread, NULL, churn_main, l);

	if (r)
		die(EXIT_FAIL, "--churn: pthread_create: %s", strerror(r));
}

static void churn_stop(struct launcher *l)
{
	__atomic_store_n(&l->churn_stop, true, __ATOMIC_RELEASE);
	pthread_join(l->churn_thread, NULL);
	if (l->churn_error)
		die(EXIT_FAIL, "--churn: pcihole_ctx_set_present: %s", strerror(-l->churn_error));
}

static void handle_io(struct launcher *l)
{
	struct kvm_run *run = l->vm.run;
	uint64_t t = now_ns();

	l->cur.other++;
	if (run->io.port == PORT_CALIBRATE) {
		double ns = (double)(t - l->cal_start_ns) / CAL_LOOPS;

		if (l->cal_start_ns && (!l->loop_ns || ns < l->loop_ns))
			l->loop_ns = ns;
		l->cal_start_ns = now_ns();
		return;
	}
	if (run->io.port == PORT_BEGIN) {
		memset(&l->cur, 0, sizeof(l->cur));
		l->cur.other = 1;	/* this exit */
		l->scan_start_ns = now_ns();
		return;
	}
	if (run->io.port == PORT_END && l->nr_scans < l->o->repeat) {
		struct scan_result *s = &l->scans[l->nr_scans++];

		s->wall_ns = t - l->scan_start_ns;
		s->exits = l->cur;
		s->ok = check_scan(l, l->nr_scans);
		if (!s->ok)
			l->failed = true;
		if (!l->o->json)
			print_scan(l, l->nr_scans);
		if (l->nr_scans == 1 && l->o->hotplug)
			do_hotplug(l);
		return;
	}
	die(EXIT_FAIL, "guest port I/O %s 0x%x (unexpected)",
	    run->io.direction == KVM_EXIT_IO_OUT ? "out to" : "in from", run->io.port);
}

static void run_guest(struct launcher *l)
{
	struct kvm_run *run = l->vm.run;

	for (;;) {
		if (ioctl(l->vm.vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die(EXIT_FAIL, "KVM_RUN: %s", strerror(errno));
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			handle_mmio(l);
			break;
		case KVM_EXIT_IO:
			handle_io(l);
			break;
		case KVM_EXIT_HLT:
			if (l->nr_scans != l->o->repeat)
				die(EXIT_FAIL, "guest halted after %u of %u scans", l->nr_scans,
				    l->o->repeat);
			return;
		default: {
			struct kvm_regs regs;

			memset(&regs, 0, sizeof(regs));
			ioctl(l->vm.vcpu_fd, KVM_GET_REGS, &regs);
			die(EXIT_FAIL, "unexpected exit reason %u at rip 0x%llx",
			    run->exit_reason, (unsigned long long)regs.rip);
		}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

static const char *prefault_status(const struct backend *b)
{
	switch (b->prefault_bytes) {
	case -ENODATA:
		return "n/a";
	case -ECANCELED:
		return "off";
	case -EOPNOTSUPP:
		return "unavailable (no KVM_PRE_FAULT_MEMORY)";
	default:
		return b->prefault_bytes >= 0 ? "done" : "failed";
	}
}

static double mean_repeat_ms(const struct launcher *l)
{
	double sum = 0;

	if (l->nr_scans < 2)
		return -1;
	for (unsigned int i = 1; i < l->nr_scans; i++)
		sum += l->scans[i].wall_ns / 1e6;
	return sum / (l->nr_scans - 1);
}

static void print_mib(uint64_t bytes)
{
	if (bytes >= (1u << 20))
		printf("%.1f MiB", bytes / 1048576.0);
	else
		printf("%" PRIu64 " KiB", bytes >> 10);
}

static void report_text(const struct launcher *l, const struct mem_usage *d)
{
	const struct backend *b = &l->backend;
	double rep = mean_repeat_ms(l);

	printf("summary: mode %s (asked %s), %u slots for %u hole runs, %" PRIu64
	       " hole pages left to mmio\n", mode_names[b->mode], mode_names[l->o->mode],
	       b->nr_slots, b->nr_runs, b->uncovered_pages);
	printf("all-ones memory: ");
	print_mib(b->allones_bytes);
	printf(" (%s), %" PRIu64 " mappings over ", b->backing, b->nr_mappings);
	print_mib(b->mapped_bytes);
	printf("; after the scans RSS %+" PRId64 " KiB, PSS %+" PRId64 " KiB\n",
	       d->rss_kib, d->pss_kib);
	printf("setup %.3f ms", b->setup_ns / 1e6);
	if (b->ctx) {
		printf(" (+ once per host: probe %.3f ms", b->probe_ns / 1e6);
		if (b->memfd_ns)
			printf(", all-ones memfd %.3f ms", b->memfd_ns / 1e6);
		printf(")");
	}
	printf(", prefault %s", prefault_status(b));
	if (b->prefault_bytes >= 0) {
		printf(" %.3f ms for ", b->prefault_ns / 1e6);
		print_mib((uint64_t)b->prefault_bytes);
	}
	printf("; first scan %.3f ms", l->scans[0].wall_ns / 1e6);
	if (rep >= 0)
		printf(", repeat scans %.3f ms on average", rep);
	if (l->o->churn)
		printf("\nchurn: %s unplugged and plugged %" PRIu64 " times while the guest ran",
		       l->o->churn, l->churn_toggles / 2);
	if (l->o->hotplug)
		printf("\nhotplug after scan 1: %u function%s in %.3f ms; slots %u -> %u", l->hotplug_changes,
		       l->hotplug_changes == 1 ? "" : "s", l->hotplug_ns / 1e6, b->nr_slots,
		       l->slots_after_hotplug);
	printf("\nguest code: %.1f ns per loop iteration: %s\n", l->loop_ns,
	       l->loop_ns > CAL_EMULATED_NS ? "EMULATED by KVM, times are not representative"
					    : "executed, times are representative");
	printf("%s\n", l->failed ? "FAIL: a scan did not find exactly the configured functions"
				   : l->o->churn ? "OK: every scan found exactly the configured "
						   "functions (the churned one, or all-ones)"
				   : "OK: every scan found exactly the configured functions");
}

static void report_json(const struct launcher *l, const struct mem_usage *d)
{
	const struct backend *b = &l->backend;
	const struct options *o = l->o;
	char buf[PCIHOLE_SEGMENT_STRLEN];
	double rep = mean_repeat_ms(l);

	printf("{\n  \"mode\": \"%s\",\n  \"requested_mode\": \"%s\",\n  \"scan\": \"%s\",\n",
	       mode_names[b->mode], mode_names[o->mode], scan_names[o->scan]);
	printf("  \"segments\": [");
	for (size_t i = 0; i < o->nr_segs; i++) {
		pcihole_segment_format(&o->segs[i], buf, sizeof(buf));
		printf("%s\"%s\"", i ? ", " : "", buf);
	}
	printf("],\n  \"functions\": [");
	for (size_t i = 0; i < o->nr_fns; i++) {
		char a[PCIHOLE_BDF_STRLEN];

		printf("%s\"%s\"", i ? ", " : "", bdf_str(&o->fns[i].bdf, a));
	}
	printf("],\n");
	printf("  \"slots\": %u,\n  \"runs\": %u,\n  \"uncovered_pages\": %" PRIu64 ",\n",
	       b->nr_slots, b->nr_runs, b->uncovered_pages);
	printf("  \"backing\": \"%s\",\n  \"allones_bytes\": %" PRIu64 ",\n"
	       "  \"mappings\": %" PRIu64 ",\n  \"mapped_bytes\": %" PRIu64 ",\n",
	       b->backing, b->allones_bytes, b->nr_mappings, b->mapped_bytes);
	printf("  \"rss_delta_kib\": %" PRId64 ",\n  \"pss_delta_kib\": %" PRId64 ",\n",
	       d->rss_kib, d->pss_kib);
	printf("  \"setup_us\": %.1f,\n  \"memfd_us\": %.1f,\n", b->setup_ns / 1e3,
	       b->memfd_ns / 1e3);
	printf("  \"probe_us\": %.1f,\n", b->probe_ns / 1e3);
	printf("  \"caps\": {\"readonly_mem\": %u, \"nr_memslots\": %u, \"pci_hole_cap\": %u, "
	       "\"pci_hole_works\": %u, \"pre_fault_memory\": %u},\n", b->caps.readonly_mem,
	       b->caps.nr_memslots, b->caps.pci_hole_cap, b->caps.pci_hole_works,
	       b->caps.pre_fault_memory);
	printf("  \"prefault\": \"%s\",\n", prefault_status(b));
	if (b->prefault_bytes >= 0)
		printf("  \"prefault_bytes\": %" PRId64 ",\n  \"prefault_us\": %.1f,\n",
		       b->prefault_bytes, b->prefault_ns / 1e3);
	printf("  \"first_scan_us\": %.1f,\n", l->scans[0].wall_ns / 1e3);
	if (rep >= 0)
		printf("  \"repeat_scan_us\": %.1f,\n", rep * 1e3);
	else
		printf("  \"repeat_scan_us\": null,\n");
	if (o->churn)
		printf("  \"churn_toggles\": %" PRIu64 ",\n", l->churn_toggles);
	if (o->hotplug)
		printf("  \"hotplug_changes\": %u,\n  \"hotplug_us\": %.1f,\n"
		       "  \"slots_after_hotplug\": %u,\n", l->hotplug_changes, l->hotplug_ns / 1e3,
		       l->slots_after_hotplug);
	printf("  \"guest_loop_ns\": %.2f,\n  \"guest_code\": \"%s\",\n", l->loop_ns,
	       l->loop_ns > CAL_EMULATED_NS ? "emulated" : "executed");
	printf("  \"hole_exits_first\": %" PRIu64 ",\n",
	       l->scans[0].exits.hole_reads + l->scans[0].exits.hole_writes);
	printf("  \"scans\": [\n");
	for (unsigned int i = 0; i < l->nr_scans; i++) {
		const struct scan_result *s = &l->scans[i];

		printf("    {\"index\": %u, \"wall_us\": %.1f, \"hole_reads\": %" PRIu64
		       ", \"hole_writes\": %" PRIu64 ", \"present\": %" PRIu64
		       ", \"other\": %" PRIu64 ", \"found\": %u, \"expected\": %u, \"ok\": %s}%s\n",
		       i + 1, s->wall_ns / 1e3, s->exits.hole_reads, s->exits.hole_writes,
		       s->exits.present, s->exits.other, s->found, s->expected, s->ok ? "true" : "false",
		       i + 1 < l->nr_scans ? "," : "");
	}
	printf("  ],\n  \"ok\": %s\n}\n", l->failed ? "false" : "true");
}

static void backend_free(struct backend *b)
{
	if (b->ctx && pcihole_ctx_detach(b->ctx) < 0)
		fprintf(stderr, PROG ": pcihole_ctx_detach failed\n");
	for (uint32_t i = 0; b->naive_maps && i < b->nr_slots; i++)
		munmap(b->naive_maps[i], b->regions[i].memory_size);
	free(b->naive_maps);
	free(b->regions);
}

/*
 * A CI or test harness may say which mode auto must pick on this kernel
 * (kernel/boot.sh sets it: pci-hole on the patched kernel, readonly on the
 * stock one), so that a silent fallback fails instead of passing.
 */
static void check_expected_mode(const struct options *o, const struct backend *b)
{
	const char *want = getenv("PCIHOLE_EXPECT_MODE");

	if (o->mode != LM_AUTO || !want || !*want || !strcmp(want, mode_names[b->mode]))
		return;
	die(EXIT_FAIL, "mode auto chose %s, but PCIHOLE_EXPECT_MODE is %s", mode_names[b->mode],
	    want);
}

/* One VM, one mode: the launcher proper.  Returns the exit code. */
static int run_one(struct options *o)
{
	/* Static: die() exits from deep down, and leak checkers look here. */
	static struct launcher l;
	struct mem_usage before, after, delta;
	int code;

	l.o = o;
	l.layout = setup_layout(o);
	l.scans = calloc(o->repeat, sizeof(*l.scans));
	if (!l.scans)
		die(EXIT_FAIL, "out of memory");

	vm_create(&l.vm, o);
	before = mem_usage();
	setup_backend(&l.vm, l.layout, o, &l.backend);
	check_expected_mode(o, &l.backend);
	if (!o->json) {
		printf(PROG ": mode %s, scan %s x%u, %zu segment%s, %zu function%s\n",
		       mode_names[l.backend.mode], scan_names[o->scan], o->repeat,
		       o->nr_segs, o->nr_segs == 1 ? "" : "s", o->nr_fns,
		       o->nr_fns == 1 ? "" : "s");
		fflush(stdout);
	}

	if (o->churn)
		churn_start(&l);
	run_guest(&l);
	if (o->churn)
		churn_stop(&l);

	after = mem_usage();
	delta.rss_kib = after.rss_kib - before.rss_kib;
	delta.pss_kib = after.pss_kib - before.pss_kib;
	if (o->json)
		report_json(&l, &delta);
	else
		report_text(&l, &delta);
	code = l.failed ? EXIT_FAIL : EXIT_OK;

	backend_free(&l.backend);
	pcihole_layout_free(l.layout);
	free(l.scans);
	return code;
}

/* ------------------------------------------------------------------------ */
/* --bench: every mode side by side                                          */
/* ------------------------------------------------------------------------ */

/*
 * Each mode runs in a child process with its own VM, so one mode's memory,
 * page tables or failure cannot colour the next one's numbers; the child's
 * --json report comes back through a memfd and the parent reads the few
 * top-level numbers it tabulates.
 */
struct bench_row {
	const char *label;
	enum launch_mode mode;
	bool prefault;
	int code;		/* the child's exit code */
	char *out;		/* its --json report */
	char *err;		/* its stderr */
};

/* Did the child get as far as printing its report? */
static bool has_report(const struct bench_row *row)
{
	return (row->code == EXIT_OK || row->code == EXIT_FAIL) && row->out && row->out[0] == '{';
}

static char *slurp(int fd)
{
	off_t size = lseek(fd, 0, SEEK_END);
	char *buf;

	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		die(EXIT_FAIL, "bench: lseek: %s", strerror(errno));
	buf = calloc(1, (size_t)size + 1);
	if (!buf || read(fd, buf, (size_t)size) != size)
		die(EXIT_FAIL, "bench: cannot read a child's report");
	close(fd);
	return buf;
}

static void bench_run(struct options *o, struct bench_row *row)
{
	int out = memfd_create("pcihole-bench-out", MFD_CLOEXEC);
	int err = memfd_create("pcihole-bench-err", MFD_CLOEXEC);
	int status;
	pid_t pid;

	if (out < 0 || err < 0)
		die(EXIT_FAIL, "bench: memfd_create: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(EXIT_FAIL, "bench: fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
			_exit(EXIT_FAIL);
		o->mode = row->mode;
		o->prefault = row->prefault;
		o->json = true;
		o->bench = false;
		exit(run_one(o));
	}
	if (waitpid(pid, &status, 0) < 0)
		die(EXIT_FAIL, "bench: waitpid: %s", strerror(errno));
	row->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	row->out = slurp(out);
	row->err = slurp(err);
}

/* A top-level value of a report ("  \"key\": value,"), quotes stripped; "" if absent. */
static const char *report_get(const char *json, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\n  \"%s\": ", key);
	buf[0] = '\0';
	p = json ? strstr(json, pat) : NULL;
	if (!p)
		return buf;
	for (p += strlen(pat); *p && *p != ',' && *p != '\n' && n + 1 < len; p++)
		if (*p != '"')
			buf[n++] = *p;
	buf[n] = '\0';
	return buf;
}

static double report_num(const char *json, const char *key)
{
	char buf[64];

	report_get(json, key, buf, sizeof(buf));
	return buf[0] && strcmp(buf, "null") ? strtod(buf, NULL) : -1;
}

static void first_line(const char *text, char *buf, size_t len)
{
	size_t n = strcspn(text, "\n");

	if (!strncmp(text, PROG ": ", strlen(PROG ": ")))
		text += strlen(PROG ": "), n -= strlen(PROG ": ");
	snprintf(buf, len, "%.*s", (int)n, text);
}

static void fmt_bytes(char *buf, size_t len, double bytes)
{
	if (bytes < 0)
		snprintf(buf, len, "-");
	else if (bytes >= 1048576)
		snprintf(buf, len, "%.1f MiB", bytes / 1048576);
	else
		snprintf(buf, len, "%.0f KiB", bytes / 1024);
}

static void fmt_ms(char *buf, size_t len, double us)
{
	if (us < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.3f", us / 1000);
}

static void fmt_ratio(char *buf, size_t len, double us, double mmio_us)
{
	if (us <= 0 || mmio_us <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1fx", mmio_us / us);
}

static void bench_header(const struct options *o, FILE *f)
{
	char seg[PCIHOLE_SEGMENT_STRLEN];
	struct utsname u;

	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "?");
	fprintf(f, "libpcihole side by side: --scan %s, %u scans per mode, kernel %s\nsegments:",
		scan_names[o->scan], o->repeat, u.release);
	for (size_t i = 0; i < o->nr_segs; i++) {
		pcihole_segment_format(&o->segs[i], seg, sizeof(seg));
		fprintf(f, " %s", seg);
	}
	fprintf(f, "; functions:");
	for (size_t i = 0; i < o->nr_fns; i++)
		fprintf(f, " %s", o->fns[i].arg);
	fprintf(f, "\nNOTE: times are host wall clock per guest scan.  Where /dev/kvm runs guest code "
		"through KVM's\ninstruction emulator (~1 us per guest instruction, as on the machine "
		"this was written on)\nthey are NOT representative; exit counts, slots and memory are "
		"exact everywhere.\n");
}

static void bench_table(const struct options *o, struct bench_row *rows, size_t n)
{
	double mmio_first = report_num(rows[0].out, "first_scan_us");
	double mmio_rep = report_num(rows[0].out, "repeat_scan_us");
	double loop_ns = report_num(rows[0].out, "guest_loop_ns");

	bench_header(o, stdout);
	printf("This KVM: %.1f ns per guest loop iteration: guest code is %s\n", loop_ns,
	       loop_ns > CAL_EMULATED_NS ? "EMULATED, so the times below are NOT representative"
					 : "executed, so the times below are representative");
	printf("\n%-15s %5s %-8s %10s %10s %8s %9s %10s %10s %8s %8s %8s\n", "mode", "slots",
	       "backing", "all-ones", "PSS-delta", "memfd-ms", "setup-ms", "first-ms", "repeat-ms",
	       "hole-ex", "first-x", "repeat-x");
	for (size_t i = 0; i < n; i++) {
		const char *j = rows[i].out;
		char name[48], mode[32], backing[16], mem[16], pss[16], setup[16], first[16];
		char rep[16], fx[16], rx[16], mfd[16], msg[256];
		double pss_kib;

		if (!has_report(&rows[i])) {
			first_line(rows[i].err, msg, sizeof(msg));
			if (rows[i].code == EXIT_UNSUPPORTED)
				printf("%-15s n/a: %s\n", rows[i].label, msg);
			else
				printf("%-15s FAILED (exit %d): %s\n", rows[i].label, rows[i].code, msg);
			continue;
		}
		report_get(j, "mode", mode, sizeof(mode));
		if (rows[i].mode == LM_AUTO)
			snprintf(name, sizeof(name), "auto=%s", mode);
		else
			snprintf(name, sizeof(name), "%s", rows[i].label);
		pss_kib = report_num(j, "pss_delta_kib");
		fmt_bytes(mem, sizeof(mem), report_num(j, "allones_bytes"));
		if (pss_kib >= 1024 || pss_kib <= -1024)
			snprintf(pss, sizeof(pss), "%+.1f MiB", pss_kib / 1024);
		else
			snprintf(pss, sizeof(pss), "%+.0f KiB", pss_kib);
		fmt_ms(setup, sizeof(setup), report_num(j, "setup_us"));
		fmt_ms(mfd, sizeof(mfd), report_num(j, "memfd_us"));
		if (report_num(j, "memfd_us") <= 0)
			snprintf(mfd, sizeof(mfd), "-");
		fmt_ms(first, sizeof(first), report_num(j, "first_scan_us"));
		fmt_ms(rep, sizeof(rep), report_num(j, "repeat_scan_us"));
		fmt_ratio(fx, sizeof(fx), report_num(j, "first_scan_us"), mmio_first);
		fmt_ratio(rx, sizeof(rx), report_num(j, "repeat_scan_us"), mmio_rep);
		printf("%-15s %5.0f %-8s %10s %10s %8s %9s %10s %10s %8.0f %8s %8s\n", name,
		       report_num(j, "slots"), report_get(j, "backing", backing, sizeof(backing)),
		       mem, pss, mfd, setup, first, rep, report_num(j, "hole_exits_first"), fx, rx);
		if (rows[i].code != EXIT_OK) {
			first_line(rows[i].err, msg, sizeof(msg));
			printf("%-15s FAILED: %s\n", "", msg);
		}
	}
	printf("\nhole-ex: exits to userspace for hole accesses in the first scan; first-x, repeat-x: "
	       "mmio time / mode time.\nmemfd-ms: making the all-ones memfd, once per host; setup-ms: "
	       "attaching to the VM (plan, mappings, slots;\nnaive-readonly: its fill).\nall-ones: memory holding 0xff (the shared memfd; for "
	       "naive-readonly, private pages).  PSS-delta: the\nVMM's proportional set size after "
	       "the scans minus before the backend (hugetlb pages are not in it).\n");
	for (size_t i = 0; i < n; i++) {
		char pf[64], bk[16];

		if (rows[i].mode != LM_READONLY || !rows[i].prefault || rows[i].code != EXIT_OK)
			continue;
		report_get(rows[i].out, "prefault", pf, sizeof(pf));
		printf("readonly: all-ones backing %s; KVM_PRE_FAULT_MEMORY %s",
		       report_get(rows[i].out, "backing", bk, sizeof(bk)), pf);
		if (!strcmp(pf, "done"))
			printf(" (%.3f ms at setup)", report_num(rows[i].out, "prefault_us") / 1000);
		printf("\n");
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s && *s != '\n'; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void bench_json(const struct options *o, struct bench_row *rows, size_t n)
{
	printf("{\n\"bench\": {\"scan\": \"%s\", \"repeat\": %u, \"segments\": [", scan_names[o->scan],
	       o->repeat);
	for (size_t i = 0; i < o->nr_segs; i++) {
		char seg[PCIHOLE_SEGMENT_STRLEN];

		pcihole_segment_format(&o->segs[i], seg, sizeof(seg));
		printf("%s\"%s\"", i ? ", " : "", seg);
	}
	printf("], \"nr_functions\": %zu, \"note\": \"times are host wall clock; not representative "
	       "where /dev/kvm emulates guest code\"},\n\"results\": [\n", o->nr_fns);
	for (size_t i = 0; i < n; i++) {
		printf("{\"label\": \"%s\", \"exit\": %d, ", rows[i].label, rows[i].code);
		if (rows[i].code != EXIT_OK) {
			printf("\"error\": ");
			json_string(rows[i].err);
			printf(", ");
		}
		if (has_report(&rows[i]))
			printf("\"report\":\n%s}", rows[i].out);	/* it ends with "}\n" */
		else
			printf("\"report\": null}");
		printf("%s\n", i + 1 < n ? "," : "");
	}
	printf("]\n}\n");
}

static void bench_plot_data(const struct options *o, struct bench_row *rows, size_t n)
{
	FILE *f = fopen(o->plot_data, "we");

	if (!f)
		die(EXIT_FAIL, "--plot-data %s: %s", o->plot_data, strerror(errno));
	fprintf(f, "# label first_ms repeat_ms hole_exits_first allones_MiB\n");
	for (size_t i = 0; i < n; i++) {
		char mode[32];

		if (rows[i].code != EXIT_OK)
			continue;
		report_get(rows[i].out, "mode", mode, sizeof(mode));
		fprintf(f, "\"%s%s%s\" %.4f %.4f %.0f %.4f\n", rows[i].mode == LM_AUTO ? "auto=" : "",
			rows[i].mode == LM_AUTO ? mode : rows[i].label, "",
			report_num(rows[i].out, "first_scan_us") / 1000,
			report_num(rows[i].out, "repeat_scan_us") / 1000,
			report_num(rows[i].out, "hole_exits_first"),
			report_num(rows[i].out, "allones_bytes") / 1048576);
	}
	if (fclose(f))
		die(EXIT_FAIL, "--plot-data %s: %s", o->plot_data, strerror(errno));
}

static int run_bench(struct options *o)
{
	struct bench_row rows[] = {
		{ "mmio", LM_MMIO, true, 0, NULL, NULL },
		{ "naive-readonly", LM_NAIVE_READONLY, true, 0, NULL, NULL },
		{ "readonly", LM_READONLY, true, 0, NULL, NULL },
		{ "readonly-nopf", LM_READONLY, false, 0, NULL, NULL },
		{ "pci-hole", LM_PCI_HOLE, true, 0, NULL, NULL },
		{ "auto", LM_AUTO, true, 0, NULL, NULL },
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	int code = EXIT_OK;

	if (o->repeat < 2)
		o->repeat = 3;	/* a bench compares first and repeat scans */
	pcihole_layout_free(setup_layout(o));	/* bad arguments: exit 2 before any VM */

	for (size_t i = 0; i < n; i++) {
		char pf[32];

		bench_run(o, &rows[i]);
		/*
		 * Where the kernel cannot pre-fault, the readonly row already is
		 * the no-prefault case: drop the next row.
		 */
		if (rows[i].mode == LM_READONLY && rows[i].prefault && i + 1 < n &&
		    strcmp(report_get(rows[i].out, "prefault", pf, sizeof(pf)), "done")) {
			memmove(&rows[i + 1], &rows[i + 2], (n - i - 2) * sizeof(rows[0]));
			n--;
		}
		/* 3: the kernel cannot do this mode, which is a result, not a failure. */
		if (rows[i].code != EXIT_OK && rows[i].code != EXIT_UNSUPPORTED)
			code = EXIT_FAIL;
	}
	if (!has_report(&rows[0])) {
		char msg[256];

		first_line(rows[0].err, msg, sizeof(msg));
		die(rows[0].code, "bench: mode mmio failed: %s", msg);
	}
	if (o->json)
		bench_json(o, rows, n);
	else
		bench_table(o, rows, n);
	if (o->plot_data)
		bench_plot_data(o, rows, n);
	for (size_t i = 0; i < n; i++) {
		free(rows[i].out);
		free(rows[i].err);
	}
	return code;
}

int main(int argc, char **argv)
{
	static struct options opts;
	int code;

	parse_options(argc, argv, &opts);
	code = opts.bench ? run_bench(&opts) : run_one(&opts);
	free(opts.fns);
	return code;
}
