// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* lib/layout.c: presence map, address translation, the mmio path. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

static struct pcihole_bdf bdf(uint16_t s, uint8_t bus, uint8_t dev, uint8_t fn)
{
	struct pcihole_bdf b = { .segment = s, .bus = bus, .dev = dev, .fn = fn };

	return b;
}

static void create(void **state)
{
	struct pcihole_segment segs[2] = {
		{ .base = 0xb0000000, .segment = 0, .bus_start = 0, .bus_end = 255 },
		{ .base = 0xe0000000, .segment = 1, .bus_start = 16, .bus_end = 31 },
	}, out;
	struct pcihole_layout *l = (void *)1;

	(void)state;
	assert_int_equal(pcihole_layout_new(segs, 2, 0, &l), 0);
	assert_int_equal(pcihole_layout_nr_segments(l), 2);
	assert_int_equal(pcihole_layout_segment(l, 1, &out), 0);
	assert_memory_equal(&out, &segs[1], sizeof(out));
	assert_int_equal(pcihole_layout_segment(l, 2, &out), -EINVAL);
	assert_int_equal(pcihole_layout_nr_present(l), 0);
	pcihole_layout_free(l);
	pcihole_layout_free(NULL);

	/* invalid layouts leave *out alone */
	l = (void *)1;
	segs[1].base = 0xbff00000;
	assert_int_equal(pcihole_layout_new(segs, 2, 0, &l), -EEXIST);
	assert_ptr_equal(l, (void *)1);
	assert_int_equal(pcihole_layout_new(segs, 1, 0, NULL), -EINVAL);
}

static void presence(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = bdf(0, 0, 0x1f, 3);

	(void)state;
	assert_int_equal(pcihole_layout_is_present(l, &b), 0);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 0);
	assert_int_equal(pcihole_layout_is_present(l, &b), 1);
	assert_int_equal(pcihole_layout_nr_present(l), 1);
	/* neighbours are untouched */
	b.fn = 2;
	assert_int_equal(pcihole_layout_is_present(l, &b), 0);
	b.fn = 4;
	assert_int_equal(pcihole_layout_is_present(l, &b), 0);
	b.fn = 3;
	assert_int_equal(pcihole_layout_set_present(l, &b, false), 1);
	assert_int_equal(pcihole_layout_set_present(l, &b, false), 0);
	assert_int_equal(pcihole_layout_nr_present(l), 0);

	/* every page of a full segment is addressable, first and last included */
	b = bdf(0, 255, 31, 7);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	b = bdf(0, 0, 0, 0);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	assert_int_equal(pcihole_layout_nr_present(l), 2);

	/* errors */
	b = bdf(0, 0, 32, 0);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), -EINVAL);
	assert_int_equal(pcihole_layout_is_present(l, &b), -EINVAL);
	b = bdf(0, 0, 0, 8);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), -EINVAL);
	b = bdf(1, 0, 0, 0);
	assert_int_equal(pcihole_layout_set_present(l, &b, true), -ENOENT);
	assert_int_equal(pcihole_layout_is_present(l, &b), -ENOENT);
	assert_int_equal(pcihole_layout_set_present(NULL, &b, true), -EINVAL);
	assert_int_equal(pcihole_layout_set_present(l, NULL, true), -EINVAL);
	assert_int_equal(pcihole_layout_nr_present(l), 2);
	pcihole_layout_free(l);
}

static void translate(void **state)
{
	struct pcihole_segment segs[2] = {
		{ .base = 0xb0000000, .segment = 0, .bus_start = 0, .bus_end = 255 },
		/* MCFG-style segment starting at bus 16: base is the window start */
		{ .base = 0xe1000000, .segment = 1, .bus_start = 16, .bus_end = 31 },
	};
	struct pcihole_layout *l;
	struct pcihole_bdf b = bdf(1, 17, 2, 5), c;
	uint64_t gpa;
	uint32_t off;

	(void)state;
	assert_int_equal(pcihole_layout_new(segs, 2, 0, &l), 0);
	assert_int_equal(pcihole_layout_bdf_to_gpa(l, &b, &gpa), 0);
	assert_true(gpa == 0xe1000000 + (1ULL << 20) + (2 << 15) + (5 << 12));
	assert_int_equal(pcihole_layout_gpa_to_bdf(l, gpa + 0x104, &c, &off), 0);
	assert_memory_equal(&b, &c, sizeof(b));
	assert_int_equal(off, 0x104);
	assert_int_equal(pcihole_layout_gpa_to_bdf(l, 0xbfffffff, &c, NULL), 0);
	assert_int_equal(c.bus, 255);
	assert_int_equal(c.dev, 31);
	assert_int_equal(c.fn, 7);
	assert_int_equal(pcihole_layout_gpa_to_bdf(l, 0xc0000000, &c, &off), -ENOENT);
	assert_int_equal(pcihole_layout_gpa_to_bdf(l, 0xafffffff, &c, &off), -ENOENT);
	assert_int_equal(pcihole_layout_gpa_to_bdf(l, 0xe0ffffff, &c, &off), -ENOENT);
	assert_int_equal(pcihole_layout_gpa_to_bdf(l, 0xe2000000, &c, &off), -ENOENT);
	b = bdf(1, 15, 0, 0);
	assert_int_equal(pcihole_layout_bdf_to_gpa(l, &b, &gpa), -ENOENT);
	b = bdf(1, 16, 0, 0);
	assert_int_equal(pcihole_layout_bdf_to_gpa(l, &b, NULL), -EINVAL);
	pcihole_layout_free(l);
}

static void mmio(void **state)
{
	struct pcihole_layout *l = tu_q35_layout();
	struct pcihole_bdf b = bdf(0, 0, 1, 0);
	uint64_t gpa, data;
	uint32_t len;

	(void)state;
	assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	assert_int_equal(pcihole_layout_bdf_to_gpa(l, &b, &gpa), 0);

	for (len = 1; len <= 8; len++) {
		data = 0x1234;
		/* a hole: all-ones for any width, only @len bytes written */
		assert_int_equal(pcihole_mmio_access(l, 0xb0000000, &data, len, false), 1);
		assert_true(data == (len == 8 ? UINT64_MAX : (0x1234 & ~((1ULL << (8 * len)) - 1)) |
						((1ULL << (8 * len)) - 1)));
		/* a present function: not ours, data untouched */
		data = 0x1234;
		assert_int_equal(pcihole_mmio_access(l, gpa, &data, len, false), 0);
		assert_true(data == 0x1234);
	}
	/* writes to holes are dropped; to present functions they go to the VMM */
	data = 0;
	assert_int_equal(pcihole_mmio_access(l, 0xb0000004, &data, 4, true), 1);
	assert_true(data == 0);
	assert_int_equal(pcihole_mmio_access(l, gpa + 4, &data, 4, true), 0);
	/* outside every window */
	assert_int_equal(pcihole_mmio_access(l, 0xc0000000, &data, 4, false), 0);
	assert_int_equal(pcihole_mmio_access(l, UINT64_MAX - 3, &data, 8, false), 0);
	/* an access straddling into the present page is not a hole */
	assert_int_equal(pcihole_mmio_access(l, gpa - 4, &data, 8, false), 0);
	assert_int_equal(pcihole_mmio_access(l, gpa - 8, &data, 8, false), 1);
	/* straddling out of the window */
	assert_int_equal(pcihole_mmio_access(l, 0xbffffffc, &data, 8, false), 0);
	/* bad lengths */
	assert_int_equal(pcihole_mmio_access(l, 0xb0000000, &data, 0, false), -EINVAL);
	assert_int_equal(pcihole_mmio_access(l, 0xb0000000, &data, 9, false), -EINVAL);
	assert_int_equal(pcihole_mmio_access(l, 0xb0000000, NULL, 4, false), -EINVAL);
	assert_int_equal(pcihole_mmio_access(NULL, 0xb0000000, &data, 4, false), -EINVAL);
	pcihole_layout_free(l);
}

/* Many segments: the gpa lookup is a binary search over windows given in any order. */
static void many_segments(void **state)
{
	static struct pcihole_segment segs[64];
	struct pcihole_layout *l;
	struct pcihole_bdf b;
	uint8_t data[4];
	size_t i;

	(void)state;
	for (i = 0; i < 64; i++) {
		size_t k = (i * 37) % 64; /* shuffled creation order */

		segs[i].segment = (uint16_t)k;
		segs[i].base = 0x100000000ULL + k * (4ULL << 20);
		segs[i].bus_start = 0;
		segs[i].bus_end = 1;
	}
	assert_int_equal(pcihole_layout_new(segs, 64, 0, &l), 0);
	for (i = 0; i < 64; i++) {
		b = bdf((uint16_t)i, 1, 3, 0);
		assert_int_equal(pcihole_layout_set_present(l, &b, true), 1);
	}
	for (i = 0; i < 64; i++) {
		uint64_t base = 0x100000000ULL + i * (4ULL << 20);

		assert_int_equal(pcihole_mmio_access(l, base, data, 4, false), 1);
		assert_int_equal(pcihole_mmio_access(l, base + (1 << 20) + (3 << 15), data, 4, false), 0);
		assert_int_equal(pcihole_mmio_access(l, base + (2 << 20), data, 4, false), 0);
		assert_int_equal(pcihole_layout_gpa_to_bdf(l, base + (1 << 20), &b, NULL), 0);
		assert_int_equal(b.segment, i);
	}
	pcihole_layout_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create),
		cmocka_unit_test(presence),
		cmocka_unit_test(translate),
		cmocka_unit_test(mmio),
		cmocka_unit_test(many_segments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
