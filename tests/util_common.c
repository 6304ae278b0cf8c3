// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

uint64_t tu_seed(uint64_t dflt)
{
	const char *s = getenv("PCIHOLE_TEST_SEED");

	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

unsigned int tu_scale(void)
{
	const char *s = getenv("PCIHOLE_TEST_SCALE");
	unsigned long v = s && *s ? strtoul(s, NULL, 0) : 1;

	return v >= 1 && v <= 1000 ? (unsigned int)v : 1;
}

unsigned int tu_scaled(unsigned int n)
{
	unsigned int v = n / tu_scale();

	return v ? v : 1;
}

int tu_filled_memfd(size_t size, int byte, unsigned int seals)
{
	int fd = memfd_create("pcihole-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	memset(p, byte, size);
	munmap(p, size);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, (int)seals), 0);
	return fd;
}

struct pcihole_layout *tu_q35_layout(void)
{
	struct pcihole_segment seg = { .base = 0xb0000000, .bus_end = 255 };
	struct pcihole_layout *l = NULL;

	assert_int_equal(pcihole_layout_new(&seg, 1, 0, &l), 0);
	return l;
}
