// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#include <stdlib.h>

#include "testutil.h"

uint64_t tu_seed(uint64_t dflt)
{
	const char *s = getenv("PCIHOLE_TEST_SEED");

	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

struct pcihole_layout *tu_q35_layout(void)
{
	struct pcihole_segment seg = { .base = 0xb0000000, .bus_end = 255 };
	struct pcihole_layout *l = NULL;

	assert_int_equal(pcihole_layout_new(&seg, 1, 0, &l), 0);
	return l;
}
