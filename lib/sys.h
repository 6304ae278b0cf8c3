/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The library's only door to the system calls that change state (ioctl,
 * mmap, munmap, memfd_create, ftruncate, fcntl).  It exists so that tests can
 * make the Nth call fail and prove that every multi-step change undoes itself.
 * Only the test build of the library (PH_TEST_SEAM, the pcihole_test archive
 * the tests link) has the seam; the shipped libraries call the system
 * directly and contain no ph_sys_* symbol.
 *
 * Normally the seam is one predictable branch on a process-wide counter that
 * is zero.  Only tests arm it (ph_sys_fail_nth()); it then counts the calls of
 * the kinds in its mask and fails exactly one of them with the chosen errno.
 * The counter is the one piece of process-wide state besides the probe cache,
 * and nothing but a test ever writes it.
 */
#ifndef PH_SYS_H
#define PH_SYS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <fcntl.h>

#ifdef PH_TEST_SEAM

enum ph_sys_call {
	PH_SYS_IOCTL = 1u << 0,
	PH_SYS_MMAP = 1u << 1,
	PH_SYS_MUNMAP = 1u << 2,
	PH_SYS_MEMFD = 1u << 3,
	PH_SYS_FTRUNCATE = 1u << 4,
	PH_SYS_FCNTL = 1u << 5,
	PH_SYS_ALL = (1u << 6) - 1,
};

/* Non-zero while a test has armed the seam. */
extern int ph_sys_armed;

/* Out of line: only reached when armed.  True if this call must fail. */
bool ph_sys_should_fail(enum ph_sys_call kind);

/*
 * Test hooks.  Arm: the @n-th (1-based) call of a kind in @mask fails with
 * @err (once).  @n 0 disarms (the counts stay readable).  ph_sys_calls() returns how many calls of the
 * armed kinds were seen since arming; ph_sys_fired() whether the failure
 * happened.
 */
void ph_sys_fail_nth(uint64_t n, int err, unsigned int mask);
uint64_t ph_sys_calls(void);
bool ph_sys_fired(void);

static inline bool ph_sys_hit(enum ph_sys_call kind)
{
	return __builtin_expect(__atomic_load_n(&ph_sys_armed, __ATOMIC_RELAXED), 0) &&
	       ph_sys_should_fail(kind);
}

static inline int ph_ioctl(int fd, unsigned long req, void *arg)
{
	if (ph_sys_hit(PH_SYS_IOCTL))
		return -1;
	return ioctl(fd, req, arg);
}

/* Test hook: sees every ph_mmap() (address asked, address given, length, flags, fd). */
extern void (*ph_sys_mmap_trace)(void *want, void *got, size_t len, int flags, int fd);

static inline void *ph_mmap(void *addr, size_t len, int prot, int flags,
			    int fd, off_t off)
{
	void *p;

	if (ph_sys_hit(PH_SYS_MMAP))
		return MAP_FAILED;
	p = mmap(addr, len, prot, flags, fd, off);
	if (__builtin_expect(ph_sys_mmap_trace != NULL, 0))
		ph_sys_mmap_trace(addr, p, len, flags, fd);
	return p;
}

static inline int ph_munmap(void *addr, size_t len)
{
	if (ph_sys_hit(PH_SYS_MUNMAP))
		return -1;
	return munmap(addr, len);
}

static inline int ph_memfd_create(const char *name, unsigned int flags)
{
	if (ph_sys_hit(PH_SYS_MEMFD))
		return -1;
	return memfd_create(name, flags);
}

static inline int ph_ftruncate(int fd, off_t len)
{
	if (ph_sys_hit(PH_SYS_FTRUNCATE))
		return -1;
	return ftruncate(fd, len);
}

static inline int ph_fcntl(int fd, int cmd, int arg)
{
	if (ph_sys_hit(PH_SYS_FCNTL))
		return -1;
	return fcntl(fd, cmd, arg);
}

/*
 * Queries (KVM_CHECK_EXTENSION) are not failed by the countdown; a test may
 * answer one instead of the kernel (return true and set *@ret) to play a VM
 * type this host cannot create.
 */
extern bool (*ph_sys_query_fake)(int fd, unsigned long req, void *arg, int *ret);

static inline int ph_query(int fd, unsigned long req, void *arg)
{
	int ret;

	if (__builtin_expect(ph_sys_query_fake != NULL, 0) &&
	    ph_sys_query_fake(fd, req, arg, &ret))
		return ret;
	return ioctl(fd, req, arg);
}

#else /* !PH_TEST_SEAM: the shipped library calls the system directly */

static inline int ph_query(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

static inline int ph_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

static inline void *ph_mmap(void *addr, size_t len, int prot, int flags,
			    int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

static inline int ph_munmap(void *addr, size_t len)
{
	return munmap(addr, len);
}

static inline int ph_memfd_create(const char *name, unsigned int flags)
{
	return memfd_create(name, flags);
}

static inline int ph_ftruncate(int fd, off_t len)
{
	return ftruncate(fd, len);
}

static inline int ph_fcntl(int fd, int cmd, int arg)
{
	return fcntl(fd, cmd, arg);
}

#endif /* PH_TEST_SEAM */

/* -errno of the last failed call, never 0 (a failing call that left errno 0 is -EIO). */
static inline int ph_neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#endif
