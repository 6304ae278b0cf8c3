// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * An out-of-tree consumer of an installed libpcihole: plan the q35 layout
 * (segment 0 at 0xb0000000, buses 0-255, six functions present) and check the
 * result: 5 runs, 65,530 hole pages, the records, the mmio path.  Only the
 * public header and the exported symbols are used.  Built twice by run.sh:
 * with pkg-config (pkgconfig/Makefile) and with find_package (cmake/).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <pcihole.h>

#ifndef CONSUMER
#define CONSUMER "consumer"
#endif

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s: %s:%d: check failed: %s\n",  \
				CONSUMER, __FILE__, __LINE__, #cond);      \
			return 1;                                          \
		}                                                          \
	} while (0)

int main(void)
{
	static const char *const present[] = {
		"00:00.0", "00:01.0", "00:02.0", "00:1f.0", "00:1f.2", "00:1f.3",
	};
	/* The holes between them: 00:00.1-7, 00:01.1-7, 00:02.1-00:1e.7,
	 * 00:1f.1, 00:1f.4-ff:1f.7. */
	static const struct { uint64_t gpa, pages; } want[5] = {
		{ 0xb0001000, 7 },
		{ 0xb0009000, 7 },
		{ 0xb0011000, 0xf8 - 0x11 },
		{ 0xb00f9000, 1 },
		{ 0xb00fc000, 65536 - 0xfc },
	};
	struct pcihole_segment seg;
	struct pcihole_layout *layout = NULL;
	struct pcihole_run runs[8];
	struct pcihole_plan_info info;
	struct pcihole_region reg;
	char buf[PCIHOLE_SEGMENT_STRLEN];
	uint64_t pages = 0;
	uint8_t data[4];
	int n;

	CHECK(pcihole_segment_parse("0:0xb0000000:0-255", &seg) == 0);
	CHECK(pcihole_segment_format(&seg, buf, sizeof(buf)) > 0);
	CHECK(pcihole_layout_new(&seg, 1, 0, &layout) == 0);
	for (size_t i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
		struct pcihole_bdf bdf;

		CHECK(pcihole_bdf_parse(present[i], &bdf) == 0);
		CHECK(pcihole_layout_set_present(layout, &bdf, true) == 1);
	}
	CHECK(pcihole_layout_nr_present(layout) == 6);
	CHECK(pcihole_plan_count(layout) == 5);
	n = pcihole_plan(layout, PCIHOLE_NO_BUDGET, runs, 8, &info);
	CHECK(n == 5);
	CHECK(info.nr_runs == 5 && info.nr_slots == 5);
	CHECK(info.hole_pages == 65530 && info.covered_pages == 65530);
	CHECK(info.uncovered_pages == 0);
	for (int i = 0; i < n; i++) {
		CHECK(runs[i].gpa == want[i].gpa);
		CHECK(runs[i].size == want[i].pages * PCIHOLE_PAGE_SIZE);
		pages += runs[i].size / PCIHOLE_PAGE_SIZE;
		CHECK(pcihole_run_to_region(&runs[i], 100 + i, PCIHOLE_KVM_MEM_PCI_HOLE, 0, &reg) == 0);
		CHECK(reg.slot == 100u + i && reg.guest_phys_addr == runs[i].gpa &&
		      reg.memory_size == runs[i].size && reg.userspace_addr == 0);
	}
	CHECK(pages == 65530);
	/* A too-small array: -ENOSPC, info still filled. */
	memset(&info, 0, sizeof(info));
	CHECK(pcihole_plan(layout, PCIHOLE_NO_BUDGET, runs, 2, &info) == -ENOSPC);
	CHECK(info.nr_runs == 5);
	/* The mmio path: a hole reads all-ones, a present function is the VMM's. */
	memset(data, 0, sizeof(data));
	CHECK(pcihole_mmio_access(layout, 0xb0009000, data, 4, false) == 1);
	CHECK(data[0] == 0xff && data[3] == 0xff);
	memset(data, 0, sizeof(data));
	CHECK(pcihole_mmio_access(layout, 0xb0008000, data, 4, false) == 0);
	CHECK(data[0] == 0);
	pcihole_layout_free(layout);

	printf("%s: libpcihole %d.%d.%d, %s: %d runs, %" PRIu64 " hole pages: ok\n",
	       CONSUMER, PCIHOLE_VERSION_MAJOR, PCIHOLE_VERSION_MINOR,
	       PCIHOLE_VERSION_PATCH, buf, n, pages);
	return 0;
}
