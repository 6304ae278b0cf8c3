// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * 4 threads call pcihole_mmio_access() in a loop while the main thread
 * applies 10,000 random hotplugs.  Every answer must match the presence map
 * at some instant during the call.  The writer brackets each change of page
 * p with two increments of seq[p] (odd = changing), so a reader that sees
 * the same even value before and after its call knows the one state the page
 * had throughout; otherwise both states were possible.  Run under TSan by
 * .ci/run.  Variants: the bare layout (no KVM needed), a context in mmio
 * mode, and a context in readonly mode (real slot ioctls between reads).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util_kvm.h"

#define NR_READERS 4
#define NR_PAGES 4096u		/* buses 0-15: dense enough for contention */
#define ECAM 0xb0000000ULL

struct shared {
	struct pcihole_layout *layout;
	struct pcihole_ctx *ctx;	/* NULL: change the layout directly */
	uint32_t seq[NR_PAGES];
	int stop;
	int started;
	/* per reader */
	uint64_t strict[NR_READERS], loose[NR_READERS], bad[NR_READERS];
	uint64_t seed;
};

struct reader {
	struct shared *s;
	int id;
};

static void *reader(void *arg)
{
	struct reader *r = arg;
	struct shared *s = r->s;
	uint64_t st = s->seed + (uint64_t)r->id * 7919;

	__atomic_fetch_add(&s->started, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint32_t p = (uint32_t)tu_below(&st, NR_PAGES);
		uint32_t len = (uint32_t)tu_below(&st, 8) + 1;
		uint32_t off = (uint32_t)tu_below(&st, 4096 - len + 1);
		bool wr = tu_below(&st, 8) == 0;
		uint8_t data[8], want[8];
		uint32_t s1, s2, k1, k2;
		int ret;

		/* 4 readers on few cores must not starve the writer they race with. */
		if (!(st & 63))
			sched_yield();
		memset(data, 0x3c, sizeof(data));
		s1 = __atomic_load_n(&s->seq[p], __ATOMIC_SEQ_CST);
		ret = pcihole_mmio_access(s->layout, ECAM + ((uint64_t)p << 12) + off, data, len, wr);
		s2 = __atomic_load_n(&s->seq[p], __ATOMIC_SEQ_CST);
		/* Flips completed somewhere in [k1, k2] during the call; state = hole iff even. */
		k1 = s1 / 2;
		k2 = (s2 + 1) / 2;
		memset(want, 0x3c, sizeof(want));
		if (ret == 1 && !wr)
			memset(want, 0xff, len);
		if (ret < 0 || memcmp(data, want, sizeof(data))) {
			s->bad[r->id]++;
			continue;
		}
		if (k1 == k2) {
			s->strict[r->id]++;
			if (ret != !(k1 & 1))
				s->bad[r->id]++;
		} else {
			s->loose[r->id]++;
		}
	}
	return NULL;
}

static void run(struct shared *s, unsigned int nr_changes, const char *what)
{
	struct reader rd[NR_READERS];
	pthread_t th[NR_READERS];
	uint64_t st = s->seed, strict = 0, loose = 0, bad = 0;
	unsigned int i;

	for (i = 0; i < NR_READERS; i++) {
		rd[i] = (struct reader){ .s = s, .id = (int)i };
		assert_int_equal(pthread_create(&th[i], NULL, reader, &rd[i]), 0);
	}
	/* Changes made before the readers run would test nothing. */
	while (__atomic_load_n(&s->started, __ATOMIC_SEQ_CST) < NR_READERS)
		sched_yield();
	for (i = 0; i < nr_changes; i++) {
		uint32_t p = (uint32_t)tu_below(&st, NR_PAGES);
		struct pcihole_bdf b = {
			.bus = (uint8_t)(p / 256), .dev = (uint8_t)((p / 8) % 32), .fn = (uint8_t)(p % 8),
		};
		/* Current state from the sequence: the writer is the only one changing it. */
		bool present = (s->seq[p] / 2) & 1;
		int ret;

		__atomic_fetch_add(&s->seq[p], 1, __ATOMIC_SEQ_CST);
		ret = s->ctx ? pcihole_ctx_set_present(s->ctx, &b, !present) :
			       pcihole_layout_set_present(s->layout, &b, !present);
		__atomic_fetch_add(&s->seq[p], 1, __ATOMIC_SEQ_CST);
		assert_int_equal(ret, 1);
	}
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < NR_READERS; i++) {
		pthread_join(th[i], NULL);
		strict += s->strict[i];
		loose += s->loose[i];
		bad += s->bad[i];
	}
	print_message("%s: %u changes, %llu answers checked exactly, %llu during a change, %llu wrong (seed 0x%llx)\n",
		      what, nr_changes, (unsigned long long)strict, (unsigned long long)loose,
		      (unsigned long long)bad, (unsigned long long)s->seed);
	assert_int_equal(bad, 0);
	assert_true(strict > 0);
}

static struct shared *shared_new(void)
{
	struct shared *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->layout = tu_q35_layout();
	s->seed = tu_seed(0xc0c0a);
	return s;
}

static void shared_free(struct shared *s)
{
	pcihole_layout_free(s->layout);
	free(s);
}

static void test_layout_race(void **state)
{
	struct shared *s = shared_new();

	(void)state;
	run(s, tu_scaled(10000), "layout");
	shared_free(s);
}

static void ctx_race(enum pcihole_mode mode, unsigned int nr_changes)
{
	struct pcihole_ctx_config cfg = {
		.mode = mode, .slot_base = 1, .nr_slots = 4096, .memfd = -1,
	};
	struct pcihole_ctx_stats st;
	struct shared *s;
	struct tk_vm vm;

	tk_require_kvm();
	assert_int_equal(tk_vm_create(&vm), 0);
	s = shared_new();
	assert_int_equal(pcihole_ctx_attach(vm.vm_fd, s->layout, &cfg, &s->ctx), 0);
	run(s, tu_scaled(nr_changes), pcihole_mode_name(mode));
	assert_int_equal(pcihole_ctx_stats(s->ctx, &st), 0);
	assert_int_equal(st.nr_runs, pcihole_plan_count(s->layout));
	assert_int_equal(st.nr_slots, mode == PCIHOLE_MODE_MMIO ? 0 : st.nr_runs);
	assert_int_equal(pcihole_ctx_detach(s->ctx), 0);
	shared_free(s);
	tk_vm_destroy(&vm);
}

static void test_ctx_mmio_race(void **state) { (void)state; ctx_race(PCIHOLE_MODE_MMIO, 10000); }
/* Each change here is 1-3 slot ioctls, each with an SRCU grace period: fewer of them. */
static void test_ctx_readonly_race(void **state) { (void)state; ctx_race(PCIHOLE_MODE_READONLY, 1000); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_race),
		cmocka_unit_test(test_ctx_mmio_race),
		cmocka_unit_test(test_ctx_readonly_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
