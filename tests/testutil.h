/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Shared by every test: cmocka's headers in the order it needs, and helpers. */
#ifndef PCIHOLE_TESTUTIL_H
#define PCIHOLE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pcihole.h"

/* Deterministic, seedable PRNG (splitmix64): tests print the seed on failure. */
static inline uint64_t tu_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline uint64_t tu_below(uint64_t *state, uint64_t n)
{
	return n ? tu_rand(state) % n : 0;
}

/* Seed from PCIHOLE_TEST_SEED if set, else @dflt. */
uint64_t tu_seed(uint64_t dflt);

/*
 * PCIHOLE_TEST_SCALE (default 1): the kernel leg's debug kernel (KASAN,
 * lockdep under TCG) runs the long KVM tests with a fraction of their
 * iterations and fault injection at every SCALE-th call; everywhere else
 * they run in full.  tu_scale() is that factor, tu_scaled(@n) is
 * @n / SCALE, at least 1.
 */
unsigned int tu_scale(void);
unsigned int tu_scaled(unsigned int n);

/* A memfd of @size bytes of @byte with @seals added (0: none); asserts on failure. */
int tu_filled_memfd(size_t size, int byte, unsigned int seals);
/* Every seal an all-ones memfd of the library carries. */
#define TU_SEALS_ALL (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* The q35-like layout of the examples: segment 0 at 0xb0000000, buses 0-255. */
struct pcihole_layout *tu_q35_layout(void);

#endif
