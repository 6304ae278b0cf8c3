// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * libFuzzer harness for the string parsers and formatters:
 * pcihole_bdf_parse/format, pcihole_segment_parse/format and the mode names.
 *
 * The input, up to its first NUL, is copied into an allocation of exactly
 * strlen + 1 bytes, so ASan reports any read past the terminator.  Each parser
 * must agree with a reference parser written here from the header's grammar
 * (accept the same strings, yield the same values), reject with -EINVAL and
 * leave its output alone otherwise, and every accepted value must format to
 * the documented canonical string that parses back to the same value.  The
 * first bytes are also taken as raw structs, to reach formatter inputs the
 * parsers never produce.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "pcihole.h"
#include "fuzz_common.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static int fp_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reference for pcihole_bdf_parse(): cut the string into maximal runs of hex
 * digits and the single characters between them, then match the two shapes
 * "S:B:D.F" and "B:D.F" with their digit limits.
 */
static bool fp_ref_bdf(const char *s, struct pcihole_bdf *out)
{
	unsigned long val[5];
	size_t len[5];
	char sep[5];
	size_t nf = 0, i;
	const char *p = s;

	for (;;) {
		unsigned long v = 0;
		size_t n = 0;

		if (nf == 5)
			return false;
		for (; fp_hex(*p) >= 0; p++, n++)
			if (n < 8)
				v = v * 16 + (unsigned long)fp_hex(*p);
		val[nf] = v;
		len[nf] = n;
		sep[nf] = *p;
		nf++;
		if (!*p)
			break;
		p++;
	}
	for (i = 0; i < nf; i++)
		if (!len[i])
			return false;
	memset(out, 0, sizeof(*out));
	if (nf == 4 && sep[0] == ':' && sep[1] == ':' && sep[2] == '.' &&
	    len[0] <= 4 && len[1] <= 2 && len[2] <= 2 && len[3] == 1) {
		out->segment = (uint16_t)val[0];
		i = 1;
	} else if (nf == 3 && sep[0] == ':' && sep[1] == '.' &&
		   len[0] <= 2 && len[1] <= 2 && len[2] == 1) {
		i = 0;
	} else {
		return false;
	}
	if (val[i + 1] > 31 || val[i + 2] > 7)
		return false;
	out->bus = (uint8_t)val[i];
	out->dev = (uint8_t)val[i + 1];
	out->fn = (uint8_t)val[i + 2];
	return true;
}

/*
 * One number of the segment grammar: "0x"/"0X" and hex digits, or decimal
 * digits.  Returns the characters used, 0 if none form a number, and sets
 * *@big when the value exceeds @max.
 */
static size_t fp_ref_num(const char *s, uint64_t max, uint64_t *out, bool *big)
{
	unsigned __int128 v = 0;
	size_t i = 0, start;
	unsigned int base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	start = i;
	for (;; i++) {
		int d = fp_hex(s[i]);

		if (d < 0 || (base == 10 && d > 9))
			break;
		v = v * base + (unsigned int)d;
		if (v > max)
			v = (unsigned __int128)max + 1;	/* sticky, never wraps */
	}
	if (i == start)
		return 0;
	*big = v > max;
	*out = (uint64_t)v;
	return i;
}

static bool fp_ref_segment(const char *s, struct pcihole_segment *out)
{
	uint64_t seg, base, start, end;
	bool big = false, b;
	size_t n;

	if (strlen(s) > 64)
		return false;
	if (!(n = fp_ref_num(s, 0xffff, &seg, &b)) || (big |= b, s[n] != ':'))
		return false;
	s += n + 1;
	if (!(n = fp_ref_num(s, UINT64_MAX, &base, &b)) || (big |= b, s[n] != ':'))
		return false;
	s += n + 1;
	if (!(n = fp_ref_num(s, 0xff, &start, &b)))
		return false;
	big |= b;
	s += n;
	end = start;
	if (*s == '-') {
		s++;
		if (!(n = fp_ref_num(s, 0xff, &end, &b)))
			return false;
		big |= b;
		s += n;
	}
	if (*s || big)
		return false;
	memset(out, 0, sizeof(*out));
	out->segment = (uint16_t)seg;
	out->base = base;
	out->bus_start = (uint8_t)start;
	out->bus_end = (uint8_t)end;
	return true;
}

static bool fp_bdf_eq(const struct pcihole_bdf *a, const struct pcihole_bdf *b)
{
	return a->segment == b->segment && a->bus == b->bus &&
	       a->dev == b->dev && a->fn == b->fn;
}

static bool fp_seg_eq(const struct pcihole_segment *a,
		      const struct pcihole_segment *b)
{
	return a->segment == b->segment && a->base == b->base &&
	       a->bus_start == b->bus_start && a->bus_end == b->bus_end &&
	       a->reserved == b->reserved;
}

/* Format into buffers of every size up to the canonical one; each too small must say so. */
static void fp_check_bdf_format(const struct pcihole_bdf *bdf)
{
	char want[32], buf[PCIHOLE_BDF_STRLEN + 1];
	struct pcihole_bdf back, dirty = *bdf;
	size_t len;
	int n, ret;

	n = snprintf(want, sizeof(want), "%04" PRIx16 ":%02" PRIx8 ":%02" PRIx8 ".%" PRIx8,
		     bdf->segment, bdf->bus, bdf->dev, bdf->fn);
	CHECK_EQ(n, PCIHOLE_BDF_STRLEN - 1);
	/* reserved is ignored on input. */
	memset(dirty.reserved, 0xa5, sizeof(dirty.reserved));
	for (len = 0; len <= sizeof(buf); len++) {
		char *b = malloc(len ? len : 1);

		CHECK(b);
		b[0] = 'X';
		ret = pcihole_bdf_format(len & 1 ? &dirty : bdf, b, len);
		if (len < PCIHOLE_BDF_STRLEN) {
			CHECK_EQ(ret, -ENOSPC);
			CHECK(b[0] == (len ? '\0' : 'X'));
		} else {
			CHECK_EQ(ret, n);
			CHECK(!strcmp(b, want));
		}
		free(b);
	}
	ret = pcihole_bdf_format(bdf, buf, PCIHOLE_BDF_STRLEN);
	CHECK_EQ(ret, n);
	memset(&back, 0x5a, sizeof(back));
	CHECK_EQ(pcihole_bdf_parse(buf, &back), 0);
	CHECK(fp_bdf_eq(&back, bdf));
	CHECK(!back.reserved[0] && !back.reserved[1] && !back.reserved[2]);
}

static void fp_check_segment_format(const struct pcihole_segment *seg)
{
	char want[64];
	struct pcihole_segment back;
	size_t len;
	int n, ret;

	n = snprintf(want, sizeof(want), "%" PRIu16 ":0x%" PRIx64 ":%" PRIu8 "-%" PRIu8,
		     seg->segment, seg->base, seg->bus_start, seg->bus_end);
	CHECK(n > 0 && (size_t)n < sizeof(want));
	for (len = 0; len <= (size_t)n + 1; len++) {
		char *b = malloc(len ? len : 1);

		CHECK(b);
		b[0] = 'X';
		ret = pcihole_segment_format(seg, b, len);
		if (len <= (size_t)n) {
			CHECK_EQ(ret, -ENOSPC);
			CHECK(b[0] == (len ? '\0' : 'X'));
		} else {
			CHECK_EQ(ret, n);
			CHECK(!strcmp(b, want));
			memset(&back, 0x5a, sizeof(back));
			CHECK_EQ(pcihole_segment_parse(b, &back), 0);
			back.reserved = seg->reserved;	/* not part of the text */
			CHECK(fp_seg_eq(&back, seg));
		}
		free(b);
	}
	/* The header promises PCIHOLE_SEGMENT_STRLEN bytes always suffice. */
	CHECK(n < PCIHOLE_SEGMENT_STRLEN);
}

/* The mode names as the header lists them, in enum order. */
static void fp_check_mode(const char *s)
{
	static const char *const names[] = { "auto", "pci-hole", "readonly", "mmio" };
	int ret = pcihole_mode_parse(s), want = -EINVAL;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i]))
			want = (int)i;
	CHECK_EQ(ret, want);
	if (ret >= 0)
		CHECK(!strcmp(pcihole_mode_name((enum pcihole_mode)ret), s));
}

static void fp_check_string(const char *s)
{
	struct pcihole_bdf bdf, ref_bdf, untouched;
	struct pcihole_segment seg, ref_seg, untouched_seg;
	int ret;

	memset(&bdf, 0xa5, sizeof(bdf));
	untouched = bdf;
	ret = pcihole_bdf_parse(s, &bdf);
	if (fp_ref_bdf(s, &ref_bdf)) {
		CHECK_EQ(ret, 0);
		CHECK(fp_bdf_eq(&bdf, &ref_bdf));
		CHECK(!bdf.reserved[0] && !bdf.reserved[1] && !bdf.reserved[2]);
		fp_check_bdf_format(&bdf);
	} else {
		CHECK_EQ(ret, -EINVAL);
		CHECK(!memcmp(&bdf, &untouched, sizeof(bdf)));
	}

	memset(&seg, 0xa5, sizeof(seg));
	untouched_seg = seg;
	ret = pcihole_segment_parse(s, &seg);
	if (fp_ref_segment(s, &ref_seg)) {
		CHECK_EQ(ret, 0);
		CHECK(fp_seg_eq(&seg, &ref_seg));
		fp_check_segment_format(&seg);
	} else {
		CHECK_EQ(ret, -EINVAL);
		CHECK(!memcmp(&seg, &untouched_seg, sizeof(seg)));
	}
}

/* The raw-struct view of the input: formatter inputs no parser yields. */
static void fp_check_raw(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct pcihole_bdf bdf = { 0 };
	struct pcihole_segment seg = { 0 };
	char buf[PCIHOLE_BDF_STRLEN + 8];
	int ret, mode;

	bdf.segment = fz_u16(&in);
	bdf.bus = fz_u8(&in);
	bdf.dev = fz_u8(&in);
	bdf.fn = fz_u8(&in);
	ret = pcihole_bdf_format(&bdf, buf, sizeof(buf));
	if (bdf.dev > 31 || bdf.fn > 7)
		CHECK_EQ(ret, -EINVAL);
	else
		fp_check_bdf_format(&bdf);

	seg.segment = fz_u16(&in);
	seg.base = fz_u64(&in);
	seg.bus_start = fz_u8(&in);
	seg.bus_end = fz_u8(&in);
	fp_check_segment_format(&seg);

	mode = (int)fz_u32(&in);
	if (mode >= 0 && mode <= PCIHOLE_MODE_MMIO)
		CHECK_EQ(pcihole_mode_parse(pcihole_mode_name((enum pcihole_mode)mode)), mode);
	else
		CHECK(!pcihole_mode_name((enum pcihole_mode)mode));
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	size_t len = strnlen((const char *)data, size);
	struct pcihole_bdf bdf;
	struct pcihole_segment seg;
	char *s = malloc(len + 1);

	CHECK(s);
	memcpy(s, data, len);
	s[len] = '\0';
	fp_check_string(s);
	fp_check_mode(s);
	free(s);

	fp_check_raw(data, size);

	CHECK_EQ(pcihole_bdf_parse(NULL, &bdf), -EINVAL);
	CHECK_EQ(pcihole_bdf_parse("0:0.0", NULL), -EINVAL);
	CHECK_EQ(pcihole_segment_parse(NULL, &seg), -EINVAL);
	CHECK_EQ(pcihole_segment_parse("0:0:0", NULL), -EINVAL);
	return 0;
}
