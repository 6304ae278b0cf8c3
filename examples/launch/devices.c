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

void function_read(const struct function *f, uint32_t off, uint8_t *data,
			  uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < CFG_SIZE ? f->cfg[off + i] : 0;
}

void function_write(struct function *f, uint32_t off, const uint8_t *data,
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
		function_init(&o->fns[i]);
	test_hide(o, layout);
	return layout;
}

/*
 * Check the guest's list against the configuration: every entry a
 * configured function, with the right id and header, found once; every
 * configured function found.
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
