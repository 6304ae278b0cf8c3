/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The emulated PCI functions (config bytes plus a write mask, QEMU-style),
 * the layout they make with the segments, and the check of what the guest
 * found against them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

/*
 * A function's reset state.  @idx (its place in the sorted list) gives it
 * BAR addresses of its own, so a restore that writes another function's or
 * a stale value shows.
 */
static void function_init(struct function *f, uint32_t idx)
{
	uint64_t bar2 = 0x100000000ull + (uint64_t)idx * BAR2_SIZE;
	uint8_t *c = f->cfg, *m = f->wmask;

	memset(f->cfg, 0, sizeof(f->cfg));
	memset(f->wmask, 0, sizeof(f->wmask));
	put32(c + 0x00, (uint32_t)f->device_id << 16 | VENDOR_ID);
	put16(c + 0x04, CMD_INITIAL);
	put16(c + 0x06, STATUS_CAP_LIST);
	put32(c + 0x08, CLASS_CODE << 8 | 0x01);	/* revision 1 */
	c[0x0e] = f->multifunction ? 0x80 : 0x00;	/* header type 0 */
	put32(c + 0x10, (0xe0000000u + idx * BAR0_SIZE) | BAR0_FLAGS);
	put32(c + 0x14, (0x1000u + (idx % 0xf0) * BAR1_SIZE) | BAR1_FLAGS);
	put32(c + 0x18, (uint32_t)bar2 | BAR2_FLAGS);
	put32(c + 0x1c, (uint32_t)(bar2 >> 32));
	put16(c + 0x2c, SUBSYS_VENDOR);
	put16(c + 0x2e, SUBSYS_ID);
	c[0x34] = CAP_PM;
	c[0x3d] = 1;					/* INTA# */

	c[CAP_PM] = 0x01;				/* PCI_CAP_ID_PM */
	c[CAP_PM + 1] = CAP_MSI;
	put16(c + CAP_PM + 2, PM_PMC);
	c[CAP_MSI] = 0x05;				/* PCI_CAP_ID_MSI */
	c[CAP_MSI + 1] = CAP_EXP;
	put16(c + CAP_MSI + 2, MSI_FLAGS);
	c[CAP_EXP] = 0x10;				/* PCI_CAP_ID_EXP */
	c[CAP_EXP + 1] = 0;				/* last */
	put16(c + CAP_EXP + 2, EXP_FLAGS);
	put32(c + CAP_EXP + 4, EXP_DEVCAP);

	put16(m + 0x04, CMD_WMASK);
	m[0x0c] = 0xff;					/* cache line size */
	m[0x0d] = 0xff;					/* latency timer */
	put32(m + 0x10, ~(BAR0_SIZE - 1));
	put32(m + 0x14, ~(BAR1_SIZE - 1));
	put32(m + 0x18, ~(BAR2_SIZE - 1));
	put32(m + 0x1c, 0xffffffff);			/* BAR2's upper half */
	put32(m + 0x30, ~(ROM_SIZE - 1) | 1);		/* address and enable */
	m[0x3c] = 0xff;					/* interrupt line */
	put16(m + CAP_PM + 4, 0x0003);			/* PMCSR power state */
	put16(m + CAP_MSI + 2, 0x0071);			/* MSI enable, multiple message enable */
	put32(m + CAP_MSI + 4, 0xfffffffc);		/* message address */
	put32(m + CAP_MSI + 8, 0xffffffff);		/* upper address */
	put16(m + CAP_MSI + 12, 0xffff);		/* data */
	put16(m + CAP_EXP + 8, 0x7cff);			/* device control */
	memcpy(f->initial_bars, c + 0x10, sizeof(f->initial_bars));
	f->initial_rom = get32(c + 0x30);
}

void function_read(const struct function *f, uint32_t off, uint8_t *data,
			  uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < CFG_SIZE ? f->cfg[off + i] : 0;
}

/* The whole 4 KiB config page as a guest read returns it. */
void function_page(const struct function *f, uint8_t page[PCIHOLE_PAGE_SIZE])
{
	function_read(f, 0, page, PCIHOLE_PAGE_SIZE);
}

/*
 * Bits the write mask allows change, all others (read-only registers,
 * unimplemented BARs, the BARs' low flag bits) keep their value: a BAR
 * written all-ones reads back its size mask.  A shadowed function's page is
 * brought up to date before the guest runs again, one aligned 4-byte store
 * per dword touched, so a guest reading concurrently (another vCPU) sees
 * each register whole, old or new.
 */
/*
 * Test seam: a device model that forgets to update the shadow page after a
 * write (PCIHOLE_LAUNCH_TEST_STALE_SHADOW=1).  The guest then reads stale
 * bytes without an exit and the checks must fail (tests/launch_shadow.sh).
 */
static bool test_stale_shadow;

void function_write(struct function *f, uint32_t off, const uint8_t *data,
			   uint32_t len)
{
	for (uint32_t i = 0; i < len && off + i < CFG_SIZE; i++) {
		uint8_t m = f->wmask[off + i];

		f->cfg[off + i] = (f->cfg[off + i] & ~m) | (data[i] & m);
	}
	if (!f->shadow || off >= CFG_SIZE || test_stale_shadow)
		return;
	for (uint32_t d = off / 4; d <= (off + len - 1) / 4 && d < CFG_SIZE / 4; d++)
		__atomic_store_n(&f->shadow[d], get32(f->cfg + 4 * d), __ATOMIC_RELEASE);
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

const char *bdf_str(const struct pcihole_bdf *bdf, char buf[PCIHOLE_BDF_STRLEN])
{
	if (pcihole_bdf_format(bdf, buf, PCIHOLE_BDF_STRLEN) < 0)
		snprintf(buf, PCIHOLE_BDF_STRLEN, "?");
	return buf;
}

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

struct function *find_function(struct options *o, const struct pcihole_bdf *bdf)
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

	test_stale_shadow = getenv("PCIHOLE_LAUNCH_TEST_STALE_SHADOW") != NULL;
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
struct pcihole_layout *setup_layout(struct options *o)
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
		function_init(&o->fns[i], (uint32_t)i);
	test_hide(o, layout);
	return layout;
}

/*
 * What reading a BAR back after writing all-ones promises, from the sizes
 * and flags configured (not from the write mask the model applies, so a
 * wrong mask cannot agree with itself): the size mask with the flag bits;
 * 0 for an unimplemented BAR.  Index 3 is BAR2's upper half, 8 the ROM
 * (its address bits; the enable bit stays as written, 0).
 */
static const uint32_t bar_sizing[9] = {
	~(BAR0_SIZE - 1) | BAR0_FLAGS,
	~(BAR1_SIZE - 1) | BAR1_FLAGS,
	~(BAR2_SIZE - 1) | BAR2_FLAGS,
	0xffffffff,
	0, 0, 0, 0,
	~(ROM_SIZE - 1),
};

/* The bytes a scan left behind: BARs restored, and what firmware enables. */
static bool check_state(struct function *f, unsigned int idx, unsigned int scan)
{
	char a[PCIHOLE_BDF_STRLEN];
	uint16_t cmd = CMD_INITIAL | (f->fw_inited ? CMD_FW_ENABLE : 0);
	bool ok = true;

	if (memcmp(f->cfg + 0x10, f->initial_bars, sizeof(f->initial_bars)) ||
	    get32(f->cfg + 0x30) != f->initial_rom) {
		fprintf(stderr, PROG ": scan %u: %s: BARs not restored after sizing\n", idx,
			bdf_str(&f->bdf, a));
		ok = false;
	}
	if ((uint16_t)(f->cfg[0x04] | f->cfg[0x05] << 8) != cmd) {
		fprintf(stderr, PROG ": scan %u: %s: command register %04x after the scan, want %04x\n",
			idx, bdf_str(&f->bdf, a), f->cfg[0x04] | f->cfg[0x05] << 8, cmd);
		ok = false;
	}
	if (scan == SCAN_FIRMWARE && f->fw_inited &&
	    f->cfg[0x3c] != fw_irq_line(f->bdf.dev, f->cfg[0x3d])) {
		fprintf(stderr, PROG ": scan %u: %s: interrupt line %u, want %u\n", idx,
			bdf_str(&f->bdf, a), f->cfg[0x3c], fw_irq_line(f->bdf.dev, f->cfg[0x3d]));
		ok = false;
	}
	/* What the guest reads without an exit is what the device model says. */
	if (f->shadow) {
		uint8_t page[PCIHOLE_PAGE_SIZE];

		function_page(f, page);
		if (memcmp(page, f->shadow, sizeof(page))) {
			fprintf(stderr, PROG ": scan %u: %s: shadow page differs from the device model\n",
				idx, bdf_str(&f->bdf, a));
			ok = false;
		}
	}
	return ok;
}

struct expect {
	const char *what;
	uint32_t got, want;
};

/*
 * Every value the scan's reads returned, against the device model as the
 * launcher configured it (the state before this scan's writes).
 */
static bool check_entry(const struct function *f, const struct guest_entry *e,
			unsigned int idx, unsigned int scan)
{
	const uint8_t *c = f->cfg;
	uint16_t cmd = CMD_INITIAL | (f->fw_inited ? CMD_FW_ENABLE : 0);
	struct expect x[32];
	static const char *const bar_names[6] = {
		"BAR0 sizing", "BAR1 sizing", "BAR2 sizing", "BAR3 (BAR2 upper half) sizing",
		"BAR4 sizing", "BAR5 sizing",
	};
	char a[PCIHOLE_BDF_STRLEN];
	size_t n = 0;
	bool ok = true;

	x[n++] = (struct expect){ "id", e->id, get32(c) };
	x[n++] = (struct expect){ "header type", e->hdr, c[0x0e] };
	if (scan == SCAN_BRUTE)
		goto compare;
	x[n++] = (struct expect){ "class/revision", e->class_rev, get32(c + 0x08) };
	x[n++] = (struct expect){ "command", e->cmd, cmd };
	x[n++] = (struct expect){ "PCIe capability at", e->caps[CAPQ_EXP], CAP_EXP };
	/* BAR3 is BAR2's upper half: both scans size it as such. */
	for (unsigned int i = 0; i < 6; i++)
		x[n++] = (struct expect){ bar_names[i], e->sizes[i], bar_sizing[i] };
	/* Linux writes l | mask, SeaBIOS the mask alone: the ROM is off (l = 0) either way. */
	x[n++] = (struct expect){ "ROM sizing", e->sizes[8], bar_sizing[8] };
	if (scan == SCAN_LINUX) {
		x[n++] = (struct expect){ "command after INTx toggle", e->cmd_toggled,
					  cmd ^ 0x0400 };
		x[n++] = (struct expect){ "interrupt pin/line", e->irq,
					  c[0x3d] | (uint32_t)c[0x3c] << 8 };
		x[n++] = (struct expect){ "subsystem", e->subsys, get32(c + 0x2c) };
		x[n++] = (struct expect){ "EA capability at", e->caps[CAPQ_EA], 0 };
		x[n++] = (struct expect){ "MSI capability at", e->caps[CAPQ_MSI], CAP_MSI };
		x[n++] = (struct expect){ "MSI-X capability at", e->caps[CAPQ_MSIX], 0 };
		x[n++] = (struct expect){ "PM capability at", e->caps[CAPQ_PM], CAP_PM };
		x[n++] = (struct expect){ "extended config 0x100", e->ext, 0 };
		x[n++] = (struct expect){ "PCIe flags", e->capinfo[0], EXP_FLAGS };
		x[n++] = (struct expect){ "PCIe devcap", e->capinfo[1], EXP_DEVCAP };
		x[n++] = (struct expect){ "MSI flags", e->capinfo[2], MSI_FLAGS };
		x[n++] = (struct expect){ "PM PMC", e->capinfo[3], PM_PMC };
	} else {
		x[n++] = (struct expect){ "interrupt pin/line written", e->irq,
					  c[0x3d] | (uint32_t)fw_irq_line(f->bdf.dev, c[0x3d]) << 8 };
	}
compare:
	for (size_t i = 0; i < n; i++) {
		if (x[i].got == x[i].want)
			continue;
		fprintf(stderr, PROG ": scan %u: %s: guest read %s %#x, want %#x\n", idx,
			bdf_str(&f->bdf, a), x[i].what, x[i].got, x[i].want);
		ok = false;
	}
	return ok;
}

/*
 * Check the guest's list against the configuration: every entry a
 * configured function, found once, every value it read what the device
 * model holds; every configured function found; and what the scan's writes
 * left behind (BARs restored, the shadow page current).
 */
bool check_scan(struct launcher *l, unsigned int idx)
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
		 * they read all-ones (as on hardware) and its writes are
		 * dropped, so only its identity is checked, and that it reads
		 * either the device or all-ones.
		 */
		if (f->churn) {
			if ((e.id != get32(f->cfg) && e.id != 0xffffffff) ||
			    (e.hdr != f->cfg[0x0e] && e.hdr != 0xff)) {
				fprintf(stderr, PROG ": scan %u: %s: guest read id %08x header "
					"type %02x, want %08x %02x or all-ones\n", idx,
					bdf_str(&bdf, a), e.id, e.hdr, get32(f->cfg), f->cfg[0x0e]);
				ok = false;
			}
			continue;
		}
		ok &= check_entry(f, &e, idx, o->scan);
	}
	for (size_t i = 0; i < o->nr_fns; i++) {
		struct function *f = &o->fns[i];

		if (!f->found && function_live(f, idx > 1) && !f->churn) {
			fprintf(stderr, PROG ": scan %u: guest missed %s\n", idx,
				bdf_str(&f->bdf, a));
			ok = false;
		}
		if (f->found && o->scan == SCAN_FIRMWARE)
			f->fw_inited = true;
		if (!f->churn)
			ok &= check_state(f, idx, o->scan);
	}
	l->scans[idx - 1].found = count;
	l->scans[idx - 1].expected = 0;
	for (size_t i = 0; i < o->nr_fns; i++)
		l->scans[idx - 1].expected += function_live(&o->fns[i], idx > 1);
	return ok;
}
