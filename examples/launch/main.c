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
 * The parts a VMM copies (examples/sample-vmm.c is the same in one short
 * file):
 *   - setup_layout() (devices.c): segments + present functions -> layout
 *   - setup_ctx() (backend.c):    pcihole_ctx_attach(), or the naive
 *                                 baseline by hand
 *   - handle_mmio() (vm.c):       the mmio path: the VMM's own devices for
 *                                 present functions, libpcihole for holes
 *   - run_one() (main.c):         the teardown order
 *
 * Examples:
 *   pcihole-launch --device 00:00.0 --device 00:1f.0,multifunction \
 *                  --device 00:1f.3 --mode readonly --scan linux --repeat 3
 *   pcihole-launch --device 00:00.0 --device 00:1f.0,multifunction \
 *                  --device 00:1f.3 --mode readonly --shadow --scan firmware
 *                                   # config reads of the functions too: no exit
 *   pcihole-launch --bench          # every mode side by side, q35 layout
 *   examples/bench.sh --plot b.png  # the same, plus a chart
 *
 * Exit codes: 0 all scans found exactly the configured functions; 1 they did
 * not, or the VM failed; 2 bad arguments; 3 the kernel cannot do the asked
 * mode (the message names the missing capability).
 *
 * Self-contained on purpose (libc + libpcihole only) so it can run inside a
 * minimal initramfs, e.g. the kernel/ QEMU leg.  A static binary for that:
 *   cc -O2 -static -D_GNU_SOURCE -Iinclude -Ilib examples/launch/[a-z]*.c \
 *      lib/[a-z]*.c -lpthread -o pcihole-launch
 * (the file list is in launch.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

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

/*
 * One VM, one mode: the launcher proper.  Returns the exit code; fills @res
 * (if not NULL) once the report is out.
 */
int run_one(struct options *o, struct launch_result *res)
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
	if (res)
		report_result(&l, &delta, res);
	code = l.failed ? EXIT_FAIL : EXIT_OK;

	/*
	 * The documented order: the context deletes its slots while the VM is
	 * alive, then the VM goes; the layout outlives the context using it.
	 */
	backend_free(&l.backend);
	vm_destroy(&l.vm);
	pcihole_layout_free(l.layout);
	free(l.scans);
	return code;
}

int main(int argc, char **argv)
{
	static struct options opts;
	int code;

	parse_options(argc, argv, &opts);
	code = opts.bench ? run_bench(&opts) : run_one(&opts, NULL);
	free(opts.fns);
	return code;
}

