// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* lib/segment.c: parsing, formatting, MCFG conversion, validation. */
#include <errno.h>
#include <string.h>

#include "testutil.h"

static struct pcihole_segment seg(uint16_t s, uint64_t base, uint8_t a, uint8_t b)
{
	struct pcihole_segment x = { .base = base, .segment = s, .bus_start = a, .bus_end = b };

	return x;
}

static void parse_valid(void **state)
{
	static const struct {
		const char *str;
		uint16_t seg;
		uint64_t base;
		uint8_t a, b;
	} cases[] = {
		{ "0:0xb0000000:0-255", 0, 0xb0000000, 0, 255 },
		{ "1:0XE0000000:0-0", 1, 0xe0000000, 0, 0 },
		{ "0x10:4026531840:16-31", 16, 0xf0000000, 16, 31 },
		{ "65535:0xffffffffffffffff:255", 65535, UINT64_MAX, 255, 255 },
		{ "0:0:0x10-0xff", 0, 0, 16, 255 },
		{ "00:0x000b0000000:007-8", 0, 0xb0000000, 7, 8 },
	};
	struct pcihole_segment s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&s, 0xaa, sizeof(s));
		assert_int_equal(pcihole_segment_parse(cases[i].str, &s), 0);
		assert_int_equal(s.segment, cases[i].seg);
		assert_true(s.base == cases[i].base);
		assert_int_equal(s.bus_start, cases[i].a);
		assert_int_equal(s.bus_end, cases[i].b);
		assert_int_equal(s.reserved, 0);
	}
}

static void parse_malformed(void **state)
{
	static const char *const bad[] = {
		"", ":", "0", "0:", "0:0xb0000000", "0:0xb0000000:", "0:0xb0000000:-1",
		"0:0xb0000000:0-", "0:0xb0000000:0-256", "0:0xb0000000:256",
		"65536:0:0", "-1:0:0", "+1:0:0", " 0:0:0", "0:0:0 ", "0:0:0\n",
		"0:0x:0", "0:0xg:0", "0:0x1ffffffffffffffff:0", "0:18446744073709551616:0",
		"0:0:0-1-2", "0:0:0:1", "0;0;0", "0:0:0x", "0:0:1e2", "zero:0:0",
		"0:0:0-255xyz",
		"0:0x00000000000000000000000000000000000000000000000000000000000000:0",
	};
	struct pcihole_segment s, before;
	size_t i;

	(void)state;
	memset(&s, 0x5a, sizeof(s));
	before = s;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pcihole_segment_parse(bad[i], &s), -EINVAL);
		assert_memory_equal(&s, &before, sizeof(s));
	}
	assert_int_equal(pcihole_segment_parse(NULL, &s), -EINVAL);
	assert_int_equal(pcihole_segment_parse("0:0:0", NULL), -EINVAL);
}

static void format_roundtrip(void **state)
{
	struct pcihole_segment s = seg(3, 0xe0000000, 16, 31), t;
	char buf[PCIHOLE_SEGMENT_STRLEN];

	(void)state;
	assert_int_equal(pcihole_segment_format(&s, buf, sizeof(buf)), (int)strlen("3:0xe0000000:16-31"));
	assert_string_equal(buf, "3:0xe0000000:16-31");
	assert_int_equal(pcihole_segment_parse(buf, &t), 0);
	assert_memory_equal(&s, &t, sizeof(s));
	s = seg(65535, UINT64_MAX, 255, 255);
	assert_true(pcihole_segment_format(&s, buf, sizeof(buf)) > 0);
	assert_true(strlen(buf) < PCIHOLE_SEGMENT_STRLEN);
	assert_int_equal(pcihole_segment_format(&s, buf, 5), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(pcihole_segment_format(NULL, buf, sizeof(buf)), -EINVAL);
}

static void from_mcfg(void **state)
{
	struct pcihole_segment s;

	(void)state;
	/* MCFG gives the address of bus 0 even when the segment starts later. */
	assert_int_equal(pcihole_segment_from_mcfg(1, 0xe0000000, 16, 31, &s), 0);
	assert_true(s.base == 0xe0000000 + (16ULL << 20));
	assert_int_equal(s.segment, 1);
	assert_int_equal(s.bus_start, 16);
	assert_int_equal(s.bus_end, 31);
	assert_int_equal(pcihole_segment_from_mcfg(0, 0xb0000000, 0, 255, &s), 0);
	assert_true(s.base == 0xb0000000);
	assert_int_equal(pcihole_segment_from_mcfg(0, 0xb0001000, 0, 1, &s), -EINVAL);
	assert_int_equal(pcihole_segment_from_mcfg(0, 0xb0000000, 2, 1, &s), -EINVAL);
	assert_int_equal(pcihole_segment_from_mcfg(0, UINT64_MAX & ~((1ULL << 20) - 1), 1, 1, &s), -ERANGE);
	assert_int_equal(pcihole_segment_from_mcfg(0, 0, 0, 0, NULL), -EINVAL);
	/* the window's last byte decides, not its first (found by fuzz_plan) */
	assert_int_equal(pcihole_segment_from_mcfg(0, UINT64_MAX - (1ULL << 20) + 1, 0, 0, &s), 0);
	assert_int_equal(pcihole_segment_from_mcfg(0, UINT64_MAX - (1ULL << 20) + 1, 0, 1, &s), -ERANGE);
	assert_int_equal(pcihole_segment_from_mcfg(0, UINT64_MAX - (2ULL << 20) + 1, 0, 1, &s), 0);
}

static void validate(void **state)
{
	struct pcihole_segment s[3];

	(void)state;
	s[0] = seg(0, 0xb0000000, 0, 255);
	assert_int_equal(pcihole_segments_validate(s, 1, 0), 0);
	assert_int_equal(pcihole_segments_validate(s, 1, 32), 0);
	assert_int_equal(pcihole_segments_validate(s, 0, 0), -EINVAL);
	assert_int_equal(pcihole_segments_validate(NULL, 1, 0), -EINVAL);
	assert_int_equal(pcihole_segments_validate(s, 1, 31), -EINVAL);
	assert_int_equal(pcihole_segments_validate(s, 1, 65), -EINVAL);

	/* alignment, bus order, reserved */
	s[0] = seg(0, 0xb0080000, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 1, 0), -EINVAL);
	s[0] = seg(0, 0xb0000000, 5, 4);
	assert_int_equal(pcihole_segments_validate(s, 1, 0), -EINVAL);
	s[0] = seg(0, 0xb0000000, 0, 0);
	s[0].reserved = 1;
	assert_int_equal(pcihole_segments_validate(s, 1, 0), -EINVAL);

	/* guest physical address width: the last byte must be addressable */
	s[0] = seg(0, 0xfff00000, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 1, 32), 0);
	s[0] = seg(0, 0xfff00000, 0, 1);
	assert_int_equal(pcihole_segments_validate(s, 1, 32), -ERANGE);
	s[0] = seg(0, 1ULL << 52, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 1, 0), -ERANGE);
	assert_int_equal(pcihole_segments_validate(s, 1, 53), 0);
	s[0] = seg(0, UINT64_MAX - (1ULL << 20) + 1, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 1, 64), 0);
	s[0] = seg(0, UINT64_MAX - (1ULL << 20) + 1, 0, 1);
	assert_int_equal(pcihole_segments_validate(s, 1, 64), -ERANGE);

	/* overlap in guest-physical space, touching is fine */
	s[0] = seg(0, 0xb0000000, 0, 15);
	s[1] = seg(1, 0xb0f00000, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 2, 0), -EEXIST);
	s[1] = seg(1, 0xb1000000, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 2, 0), 0);
	s[1] = seg(1, 0xaff00000, 0, 1);
	assert_int_equal(pcihole_segments_validate(s, 2, 0), -EEXIST);
	/* windows ending at 2^64 compare without wrapping (found by fuzz_plan) */
	s[0] = seg(0, UINT64_MAX - (2ULL << 20) + 1, 0, 1);
	s[1] = seg(1, UINT64_MAX - (1ULL << 20) + 1, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 2, 64), -EEXIST);
	s[0] = seg(0, UINT64_MAX - (2ULL << 20) + 1, 0, 0);
	assert_int_equal(pcihole_segments_validate(s, 2, 64), 0);
	s[0] = seg(0, 0xb0000000, 0, 15);

	/* overlap in (segment, bus) space */
	s[1] = seg(0, 0xc0000000, 15, 20);
	assert_int_equal(pcihole_segments_validate(s, 2, 0), -EEXIST);
	s[1] = seg(0, 0xc0000000, 16, 20);
	assert_int_equal(pcihole_segments_validate(s, 2, 0), 0);
	s[2] = seg(0, 0xd0000000, 18, 18);
	assert_int_equal(pcihole_segments_validate(s, 3, 0), -EEXIST);
	s[2] = seg(2, 0xd0000000, 18, 18);
	assert_int_equal(pcihole_segments_validate(s, 3, 0), 0);
}

static void too_many(void **state)
{
	static struct pcihole_segment s[PCIHOLE_MAX_SEGMENTS + 1];
	size_t i;

	(void)state;
	for (i = 0; i <= PCIHOLE_MAX_SEGMENTS; i++)
		s[i] = seg((uint16_t)i, 0x100000000ULL + (i << 20), 0, 0);
	assert_int_equal(pcihole_segments_validate(s, PCIHOLE_MAX_SEGMENTS, 0), 0);
	assert_int_equal(pcihole_segments_validate(s, PCIHOLE_MAX_SEGMENTS + 1, 0), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_valid),
		cmocka_unit_test(parse_malformed),
		cmocka_unit_test(format_roundtrip),
		cmocka_unit_test(from_mcfg),
		cmocka_unit_test(validate),
		cmocka_unit_test(too_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
