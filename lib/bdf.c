// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* Function addresses in lspci's notation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* "ssss:bb:dd.f" is 12 characters: anything longer is malformed. */
#define BDF_STR_MAX 12

/* Exactly 1..@maxdigits hex digits ending at @stop; advances *@p past @stop. */
static int hex_field(const char **p, int maxdigits, char stop, unsigned int *out)
{
	const char *s = *p;
	unsigned int v = 0;
	int n = 0;

	for (; *s != stop; s++, n++) {
		unsigned int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -EINVAL;
		if (n == maxdigits)
			return -EINVAL;
		v = v << 4 | d;
	}
	if (!n)
		return -EINVAL;
	*p = stop ? s + 1 : s;
	*out = v;
	return 0;
}

int pcihole_bdf_parse(const char *str, struct pcihole_bdf *bdf)
{
	unsigned int seg = 0, bus, dev, fn;
	const char *p = str;
	size_t len, colons = 0, i;

	if (!str || !bdf)
		return -EINVAL;
	len = strnlen(str, BDF_STR_MAX + 1);
	if (len > BDF_STR_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++)
		colons += str[i] == ':';
	if (colons == 2 && hex_field(&p, 4, ':', &seg))
		return -EINVAL;
	if (colons < 1 || colons > 2 ||
	    hex_field(&p, 2, ':', &bus) || hex_field(&p, 2, '.', &dev) ||
	    hex_field(&p, 1, '\0', &fn))
		return -EINVAL;
	if (dev > PCIHOLE_MAX_DEV || fn > PCIHOLE_MAX_FN)
		return -EINVAL;
	memset(bdf, 0, sizeof(*bdf));
	bdf->segment = (uint16_t)seg;
	bdf->bus = (uint8_t)bus;
	bdf->dev = (uint8_t)dev;
	bdf->fn = (uint8_t)fn;
	return 0;
}

int pcihole_bdf_format(const struct pcihole_bdf *bdf, char *buf, size_t len)
{
	if (!bdf || !buf || bdf->dev > PCIHOLE_MAX_DEV || bdf->fn > PCIHOLE_MAX_FN)
		return -EINVAL;
	if (len < PCIHOLE_BDF_STRLEN) {
		if (len)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return snprintf(buf, len, "%04x:%02x:%02x.%u", bdf->segment, bdf->bus,
			bdf->dev, bdf->fn);
}
