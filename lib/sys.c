// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/* The fault-injection countdown behind lib/sys.h; idle unless a test arms it. */
#include "sys.h"

#ifdef PH_TEST_SEAM

int ph_sys_armed;
void (*ph_sys_mmap_trace)(void *want, void *got, size_t len, int flags, int fd);
bool (*ph_sys_query_fake)(int fd, unsigned long req, void *arg, int *ret);

static uint64_t target;		/* fail the call with this ordinal */
static uint64_t seen;		/* calls of the armed kinds so far */
static int fail_errno;
static unsigned int fail_mask;
static int fired;

bool ph_sys_should_fail(enum ph_sys_call kind)
{
	uint64_t n;

	if (!(__atomic_load_n(&fail_mask, __ATOMIC_RELAXED) & kind))
		return false;
	n = __atomic_add_fetch(&seen, 1, __ATOMIC_RELAXED);
	if (n != __atomic_load_n(&target, __ATOMIC_RELAXED))
		return false;
	__atomic_store_n(&fired, 1, __ATOMIC_RELAXED);
	errno = __atomic_load_n(&fail_errno, __ATOMIC_RELAXED);
	return true;
}

void ph_sys_fail_nth(uint64_t n, int err, unsigned int mask)
{
	__atomic_store_n(&ph_sys_armed, 0, __ATOMIC_SEQ_CST);
	/* Disarming keeps the counts, so a test can ask what happened. */
	if (!n)
		return;
	__atomic_store_n(&seen, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fired, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&target, n, __ATOMIC_RELAXED);
	__atomic_store_n(&fail_errno, err, __ATOMIC_RELAXED);
	__atomic_store_n(&fail_mask, mask, __ATOMIC_RELAXED);
	__atomic_store_n(&ph_sys_armed, 1, __ATOMIC_SEQ_CST);
}

uint64_t ph_sys_calls(void)
{
	return __atomic_load_n(&seen, __ATOMIC_RELAXED);
}

bool ph_sys_fired(void)
{
	return __atomic_load_n(&fired, __ATOMIC_RELAXED);
}
#endif /* PH_TEST_SEAM */
