/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Shared by the libFuzzer harnesses and by tests/test_fuzz_regressions.c,
 * which #includes the harness sources to replay saved inputs without clang.
 *
 * FUZZ_FAIL is how a harness reports a broken property.  Under libFuzzer it
 * aborts, which libFuzzer turns into a saved crash input; the cmocka replay
 * defines it as fail_msg() so one bad input fails one test, not the program.
 */
#ifndef PCIHOLE_FUZZ_COMMON_H
#define PCIHOLE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_FAIL
#define FUZZ_FAIL(...) (fprintf(stderr, __VA_ARGS__), abort())
#endif

#define CHECK(cond)							\
	do {								\
		if (!(cond))						\
			FUZZ_FAIL("%s:%d: check failed: %s\n",		\
				  __FILE__, __LINE__, #cond);		\
	} while (0)

/* Like CHECK, with the values that explain a mismatch. */
#define CHECK_EQ(a, b)							\
	do {								\
		unsigned long long a_ = (unsigned long long)(a);	\
		unsigned long long b_ = (unsigned long long)(b);	\
		if (a_ != b_)						\
			FUZZ_FAIL("%s:%d: check failed: %s == %s "	\
				  "(0x%llx != 0x%llx)\n", __FILE__,	\
				  __LINE__, #a, #b, a_, b_);		\
	} while (0)

/*
 * For the harness's own oracles: their loops run over every page and would
 * drown the library's coverage signal (and most of the time) in compare
 * tracing.  Clang >= 13 can leave a function out of -fsanitize=fuzzer.
 */
#if defined(__clang__) && __clang_major__ >= 13
#define FZ_NOCOV __attribute__((no_sanitize("coverage")))
#else
#define FZ_NOCOV
#endif

/*
 * Input bytes as a stream.  Reading past the end yields zeros, so every input
 * is a complete program and libFuzzer's truncations stay meaningful.
 */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
	uint8_t v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return v;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	uint16_t v = fz_u8(in);

	return (uint16_t)(v | fz_u8(in) << 8);
}

static inline uint32_t fz_u32(struct fz_in *in)
{
	uint32_t v = fz_u16(in);

	return v | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(struct fz_in *in)
{
	uint64_t v = fz_u32(in);

	return v | (uint64_t)fz_u32(in) << 32;
}

/* Deterministic filler for probes that need many addresses but no input bytes. */
static inline uint64_t fz_rand(uint64_t *state)
{
	/* splitmix64: good enough spread, and reproducible from the input alone. */
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif
