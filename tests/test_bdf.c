// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* lib/bdf.c: lspci-style function addresses. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

static void parse_valid(void **state)
{
	static const struct {
		const char *str;
		uint16_t seg;
		uint8_t bus, dev, fn;
	} cases[] = {
		{ "00:00.0", 0, 0, 0, 0 },
		{ "00:1f.3", 0, 0, 0x1f, 3 },
		{ "00:1F.7", 0, 0, 0x1f, 7 },
		{ "ff:1f.7", 0, 0xff, 0x1f, 7 },
		{ "0:0.0", 0, 0, 0, 0 },
		{ "0000:00:02.0", 0, 0, 2, 0 },
		{ "FFFF:Ab:0c.1", 0xffff, 0xab, 0x0c, 1 },
		{ "1:2:3.4", 1, 2, 3, 4 },
		{ "abcd:0a:1e.5", 0xabcd, 0x0a, 0x1e, 5 },
	};
	struct pcihole_bdf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&b, 0xaa, sizeof(b));
		assert_int_equal(pcihole_bdf_parse(cases[i].str, &b), 0);
		assert_int_equal(b.segment, cases[i].seg);
		assert_int_equal(b.bus, cases[i].bus);
		assert_int_equal(b.dev, cases[i].dev);
		assert_int_equal(b.fn, cases[i].fn);
		assert_int_equal(b.reserved[0] | b.reserved[1] | b.reserved[2], 0);
	}
}

static void parse_malformed(void **state)
{
	static const char *const bad[] = {
		/* empty and missing parts */
		"", ":", ".", ":.", "00", "00:00", "00.0", "00:.0", ":00.0", "00:00.",
		"0000::00.0", "0000:00:.0",
		/* out of range device / function */
		"00:20.0", "00:ff.0", "00:00.8", "00:00.f",
		/* overlong fields and strings */
		"000:00.0", "00:000.0", "00:00.00", "00000:00:00.0", "0000:000:00.0",
		"0000:00:00.00", "00000000000000000000:00:00.0",
		/* trailing junk, separators, signs, spaces, non-hex */
		"00:00.0 ", " 00:00.0", "00:00.0\n", "00:00.0x", "00:00.0,", "00:00:00.0:0",
		"00-00.0", "00:00-0", "+0:00.0", "-1:00.0", "0x:00.0", "g0:00.0", "00:0g.0",
		"00:00.g", "0000:00:00:00.0", "00:00.0.0", "0000_00:00.0",
	};
	struct pcihole_bdf b, before;
	size_t i;

	(void)state;
	memset(&b, 0x5a, sizeof(b));
	before = b;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pcihole_bdf_parse(bad[i], &b), -EINVAL);
		assert_memory_equal(&b, &before, sizeof(b));
	}
	assert_int_equal(pcihole_bdf_parse(NULL, &b), -EINVAL);
	assert_int_equal(pcihole_bdf_parse("00:00.0", NULL), -EINVAL);
}

static void format(void **state)
{
	struct pcihole_bdf b = { .segment = 0xabcd, .bus = 0xa, .dev = 0x1f, .fn = 7 }, c;
	char buf[PCIHOLE_BDF_STRLEN];

	(void)state;
	assert_int_equal(pcihole_bdf_format(&b, buf, sizeof(buf)), 12);
	assert_string_equal(buf, "abcd:0a:1f.7");
	assert_int_equal(pcihole_bdf_parse(buf, &c), 0);
	assert_memory_equal(&b, &c, sizeof(b));
	assert_int_equal(pcihole_bdf_format(&b, buf, 12), -ENOSPC);
	assert_string_equal(buf, "");
	b.dev = 32;
	assert_int_equal(pcihole_bdf_format(&b, buf, sizeof(buf)), -EINVAL);
	b.dev = 0;
	b.fn = 8;
	assert_int_equal(pcihole_bdf_format(&b, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(pcihole_bdf_format(NULL, buf, sizeof(buf)), -EINVAL);
}

/* Every valid address formats and parses back to itself. */
static void roundtrip_all(void **state)
{
	struct pcihole_bdf b = { 0 }, c;
	char buf[PCIHOLE_BDF_STRLEN];
	unsigned int bus, dev, fn;

	(void)state;
	for (bus = 0; bus < 256; bus++)
		for (dev = 0; dev < 32; dev++)
			for (fn = 0; fn < 8; fn++) {
				b.segment = (uint16_t)(bus * 257);
				b.bus = (uint8_t)bus;
				b.dev = (uint8_t)dev;
				b.fn = (uint8_t)fn;
				assert_int_equal(pcihole_bdf_format(&b, buf, sizeof(buf)), 12);
				assert_int_equal(pcihole_bdf_parse(buf, &c), 0);
				assert_memory_equal(&b, &c, sizeof(b));
				/* and the short form without the segment */
				assert_int_equal(pcihole_bdf_parse(buf + 5, &c), 0);
				assert_int_equal(c.segment, 0);
				assert_int_equal(c.bus, bus);
				assert_int_equal(c.dev, dev);
				assert_int_equal(c.fn, fn);
			}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_valid),
		cmocka_unit_test(parse_malformed),
		cmocka_unit_test(format),
		cmocka_unit_test(roundtrip_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
