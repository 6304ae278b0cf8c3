// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * What one hotplug costs the library, for callgrind:
 *
 *   valgrind --tool=callgrind --toggle-collect=pcihole_ctx_set_present \
 *       build/tests/bench_hotplug LAYOUT
 *
 * LAYOUT is q35 (one 256-bus segment), 32x256 (32 such segments) or 96x1 (96
 * one-bus segments, Cloud Hypervisor's maximum).  A readonly context on a real
 * VM (or, without /dev/kvm, one whose slots an apply callback takes), 200
 * hotplugs that split and merge runs (plug then unplug one function at a
 * time); the instructions in pcihole_ctx_set_present divided by 200 are the
 * cost per hotplug.  Uses only API that 0.1 had, with the apply fallback
 * compiled only against 1.0, so the same program measures both.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "pcihole.h"

#define HOTPLUGS 200

#if PCIHOLE_VERSION_MAJOR >= 1
static int no_kvm_apply(void *opaque, const struct pcihole_region2 *r)
{
	(void)opaque;
	(void)r;
	return 0;
}
#endif

int main(int argc, char **argv)
{
	static struct pcihole_segment segs[96];
	static const struct pcihole_caps caps = { .readonly_mem = 1, .nr_memslots = 32764 };
	struct pcihole_ctx_config cfg = {
		.mode = PCIHOLE_MODE_READONLY, .slot_base = 1, .nr_slots = 4096,
		.memfd = -1, .caps = &caps,
	};
	const char *name = argc > 1 ? argv[1] : "q35";
	struct pcihole_layout *l;
	struct pcihole_ctx *ctx;
	size_t nr, i;
	int kvm, vm = -1, ret;

	if (!strcmp(name, "q35")) {
		nr = 1;
	} else if (!strcmp(name, "32x256")) {
		nr = 32;
	} else if (!strcmp(name, "96x1")) {
		nr = 96;
	} else {
		fprintf(stderr, "bench_hotplug: LAYOUT is q35, 32x256 or 96x1, not '%s'\n", name);
		return 2;
	}
	for (i = 0; i < nr; i++) {
		segs[i].segment = (uint16_t)i;
		segs[i].bus_start = 0;
		segs[i].bus_end = nr == 96 ? 0 : 255;
		/* 96 one-bus windows 2 MiB apart; 32 full windows back to back from 4 GiB. */
		segs[i].base = nr == 96 ? 0xe0000000ULL + (i << 21) : (4ULL << 30) + (i << 28);
	}
	ret = pcihole_layout_new(segs, nr, 0, &l);
	if (ret)
		return 1;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm >= 0)
		vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
#if PCIHOLE_VERSION_MAJOR >= 1
		cfg.apply = no_kvm_apply;
#else
		fprintf(stderr, "bench_hotplug: needs /dev/kvm\n");
		return 77;
#endif
	}
	ret = pcihole_ctx_attach(vm, l, &cfg, &ctx);
	if (ret) {
		fprintf(stderr, "bench_hotplug: attach: %s\n", strerror(-ret));
		return 1;
	}
	for (i = 0; i < HOTPLUGS / 2; i++) {
		/* Spread over segments, buses and devices; each plug splits a run. */
		struct pcihole_bdf b = {
			.segment = (uint16_t)(i % nr), .bus = nr == 96 ? 0 : (uint8_t)(i * 7 % 256),
			.dev = (uint8_t)(i * 5 % 32), .fn = (uint8_t)(i % 8),
		};

		if (pcihole_ctx_set_present(ctx, &b, true) != 1 ||
		    pcihole_ctx_set_present(ctx, &b, false) != 1)
			return 1;
	}
	printf("%s: %d hotplugs done (%zu segments)\n", name, HOTPLUGS, nr);
	pcihole_ctx_detach(ctx);
	pcihole_layout_free(l);
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
	return 0;
}
