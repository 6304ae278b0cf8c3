// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* ECAM segments: parsing, formatting, MCFG conversion, validation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Longer inputs are rejected before parsing: no field can need more. */
#define SEG_STR_MAX 64

static uint64_t window_size(const struct pcihole_segment *s)
{
	return (uint64_t)(s->bus_end - s->bus_start + 1) << PCIHOLE_BUS_SHIFT;
}

int pcihole_segment_from_mcfg(uint16_t segment, uint64_t mcfg_base,
			      uint8_t bus_start, uint8_t bus_end,
			      struct pcihole_segment *seg)
{
	uint64_t off = (uint64_t)bus_start << PCIHOLE_BUS_SHIFT;
	uint64_t last = ((uint64_t)bus_end << PCIHOLE_BUS_SHIFT) + PCIHOLE_BUS_SIZE - 1;

	if (!seg || bus_start > bus_end || (mcfg_base & (PCIHOLE_BUS_SIZE - 1)))
		return -EINVAL;
	/* The whole window, up to its last byte, must fit below 2^64. */
	if (mcfg_base > UINT64_MAX - last)
		return -ERANGE;
	memset(seg, 0, sizeof(*seg));
	seg->segment = segment;
	seg->base = mcfg_base + off;
	seg->bus_start = bus_start;
	seg->bus_end = bus_end;
	return 0;
}

/*
 * A strict unsigned number: decimal, or hex after 0x/0X; no sign, no space,
 * no empty digits, no overflow of @max.  Advances *@p past it.
 */
static int parse_num(const char **p, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	unsigned int base = 10;
	uint64_t v = 0;
	int digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++, digits++) {
		unsigned int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (v > (max - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	if (!digits)
		return -EINVAL;
	*p = s;
	*out = v;
	return 0;
}

int pcihole_segment_parse(const char *str, struct pcihole_segment *seg)
{
	uint64_t segno, base, start, end;
	const char *p = str;

	if (!str || !seg || strnlen(str, SEG_STR_MAX + 1) > SEG_STR_MAX)
		return -EINVAL;
	if (parse_num(&p, 0xffff, &segno) || *p++ != ':')
		return -EINVAL;
	if (parse_num(&p, UINT64_MAX, &base) || *p++ != ':')
		return -EINVAL;
	if (parse_num(&p, 0xff, &start))
		return -EINVAL;
	end = start;
	if (*p == '-') {
		p++;
		if (parse_num(&p, 0xff, &end))
			return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;
	memset(seg, 0, sizeof(*seg));
	seg->segment = (uint16_t)segno;
	seg->base = base;
	seg->bus_start = (uint8_t)start;
	seg->bus_end = (uint8_t)end;
	return 0;
}

int pcihole_segment_format(const struct pcihole_segment *seg, char *buf,
			   size_t len)
{
	int n;

	if (!seg || !buf)
		return -EINVAL;
	n = snprintf(buf, len, "%u:0x%llx:%u-%u", seg->segment,
		     (unsigned long long)seg->base, seg->bus_start, seg->bus_end);
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return n;
}

static int check_one(const struct pcihole_segment *s, unsigned int phys_bits)
{
	uint64_t size;

	if (s->reserved || s->bus_start > s->bus_end ||
	    (s->base & (PCIHOLE_BUS_SIZE - 1)))
		return -EINVAL;
	size = window_size(s);
	/* A window may end exactly at 2^64: only its last byte must exist. */
	if (s->base > UINT64_MAX - (size - 1))
		return -ERANGE;
	/* The last byte, not the end, so that phys_bits 64 cannot overflow. */
	if (phys_bits < 64 && (s->base + size - 1) >> phys_bits)
		return -ERANGE;
	return 0;
}

int pcihole_segments_validate(const struct pcihole_segment *segs, size_t nr,
			      unsigned int phys_bits)
{
	size_t i, j;
	int ret;

	if (!phys_bits)
		phys_bits = PH_DEFAULT_PHYS_BITS;
	if (!segs || !nr || phys_bits < 32 || phys_bits > 64)
		return -EINVAL;
	if (nr > PCIHOLE_MAX_SEGMENTS)
		return -E2BIG;
	for (i = 0; i < nr; i++) {
		ret = check_one(&segs[i], phys_bits);
		if (ret)
			return ret;
	}
	/*
	 * n <= 256, so the quadratic check is cheaper than sorting a copy.  Last
	 * bytes, not ends, because a window may end exactly at 2^64.
	 */
	for (i = 0; i < nr; i++) {
		const struct pcihole_segment *a = &segs[i];
		uint64_t a_last = a->base + (window_size(a) - 1);

		for (j = i + 1; j < nr; j++) {
			const struct pcihole_segment *b = &segs[j];
			uint64_t b_last = b->base + (window_size(b) - 1);

			if (a->base <= b_last && b->base <= a_last)
				return -EEXIST;
			if (a->segment == b->segment &&
			    a->bus_start <= b->bus_end &&
			    b->bus_start <= a->bus_end)
				return -EEXIST;
		}
	}
	return 0;
}
