// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The all-ones backing: memfd contents, seals, the check, the chunked
 * mapping, and that failures (injected at every step) leak nothing.  Needs
 * no /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "util_kvm.h"
#include "../lib/sys.h"

#define MEMFD_NAME "memfd:pcihole-allones"

static const char *backing_name(enum pcihole_backing b)
{
	switch (b) {
	case PCIHOLE_BACKING_HUGETLB: return "hugetlb";
	case PCIHOLE_BACKING_THP: return "shmem-thp";
	case PCIHOLE_BACKING_4K: return "shmem-4k";
	default: return "none";
	}
}

static void test_memfd_default(void **state)
{
	enum pcihole_backing b = PCIHOLE_BACKING_NONE;
	int fd = -1;

	(void)state;
	assert_int_equal(pcihole_allones_memfd(0, &fd, &b), 0);
	assert_true(fd >= 0);
	assert_true(b == PCIHOLE_BACKING_HUGETLB || b == PCIHOLE_BACKING_THP ||
		    b == PCIHOLE_BACKING_4K);
	assert_int_equal(pcihole_allones_check(fd), PCIHOLE_ALLONES_CHUNK_DEFAULT);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	print_message("allones memfd: %llu bytes, backing %s\n",
		      (unsigned long long)PCIHOLE_ALLONES_CHUNK_DEFAULT, backing_name(b));
	close(fd);

	/* Smallest chunk, and NULL backing. */
	assert_int_equal(pcihole_allones_memfd(4096, &fd, NULL), 0);
	assert_int_equal(pcihole_allones_check(fd), 4096);
	close(fd);
}

static void test_memfd_bad_args(void **state)
{
	int fd = -1;

	(void)state;
	assert_int_equal(pcihole_allones_memfd(0, NULL, NULL), -EINVAL);
	assert_int_equal(pcihole_allones_memfd(2048, &fd, NULL), -EINVAL);
	assert_int_equal(pcihole_allones_memfd(3 * 4096, &fd, NULL), -EINVAL);
	assert_int_equal(pcihole_allones_memfd(1ULL << 31, &fd, NULL), -EINVAL);
	assert_int_equal(fd, -1);
}

/* The page every VM maps must be immutable, through every door. */
static void test_seals(void **state)
{
	/* Whole chunks: a hugetlb mapping cannot be split. */
	const size_t sz = PCIHOLE_ALLONES_CHUNK_DEFAULT;
	enum pcihole_backing b;
	uint8_t buf[16];
	void *p;
	int fd;

	(void)state;
	assert_int_equal(pcihole_allones_memfd(0, &fd, &b), 0);
	memset(buf, 0, sizeof(buf));
	/* EPERM from the seal; hugetlbfs has no write() at all (EINVAL). */
	errno = 0;
	assert_int_equal(write(fd, buf, sizeof(buf)), -1);
	assert_true(errno == EPERM || (b == PCIHOLE_BACKING_HUGETLB && errno == EINVAL));
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 4096), -1);
	assert_true(errno == EPERM || (b == PCIHOLE_BACKING_HUGETLB && errno == EINVAL));
	/* Shrinking or growing. */
	assert_int_equal(ftruncate(fd, 4096), -1);
	assert_int_equal(ftruncate(fd, 8 << 20), -1);
	assert_int_equal(fallocate(fd, 0, 0, 8 << 20), -1);
	/* Writable shared mapping. */
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p == MAP_FAILED);
	assert_int_equal(errno, EPERM);
	/* Read-only shared mapping made writable later. */
	p = mmap(NULL, sz, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(mprotect(p, sz, PROT_READ | PROT_WRITE), -1);
	assert_int_equal(errno, EACCES);
	munmap(p, sz);
	/* The seals themselves are sealed. */
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
	assert_int_equal(errno, EPERM);
	/* A private writable mapping is copy-on-write: the memfd is unchanged. */
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 0, sz);
	munmap(p, sz);
	assert_int_equal(pcihole_allones_check(fd), PCIHOLE_ALLONES_CHUNK_DEFAULT);
	close(fd);
}

static void test_check_rejects(void **state)
{
	unsigned int all = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	int fd, pfd[2];
	uint8_t zero = 0;
	void *p;

	(void)state;
	assert_int_equal(pcihole_allones_check(-1), -EBADF);
	/* A caller's own memfd, done right, passes. */
	fd = tu_filled_memfd(8192, 0xff, all);
	assert_int_equal(pcihole_allones_check(fd), 8192);
	close(fd);
	/* Each seal missing. */
	fd = tu_filled_memfd(8192, 0xff, all & ~F_SEAL_WRITE);
	assert_int_equal(pcihole_allones_check(fd), -EINVAL);
	close(fd);
	fd = tu_filled_memfd(8192, 0xff, all & ~F_SEAL_SEAL);
	assert_int_equal(pcihole_allones_check(fd), -EINVAL);
	close(fd);
	fd = tu_filled_memfd(8192, 0xff, all & ~F_SEAL_GROW);
	assert_int_equal(pcihole_allones_check(fd), -EINVAL);
	close(fd);
	/* Not a power of two. */
	fd = tu_filled_memfd(3 * 4096, 0xff, all);
	assert_int_equal(pcihole_allones_check(fd), -EINVAL);
	close(fd);
	/* One byte not 0xff. */
	fd = memfd_create("t", MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, 8192), 0);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	memset(p, 0xff, 8192);
	munmap(p, 8192);
	assert_int_equal(pwrite(fd, &zero, 1, 8191), 1);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, all), 0);
	assert_int_equal(pcihole_allones_check(fd), -EINVAL);
	close(fd);
	/* Not a file. */
	assert_int_equal(pipe(pfd), 0);
	assert_true(pcihole_allones_check(pfd[0]) < 0);
	close(pfd[0]);
	close(pfd[1]);
}

/* A full 256 MiB segment: 128 mappings of the 2 MiB chunk, all reading 0xff. */
static void test_map_segment(void **state)
{
	const uint64_t size = 256ULL << 20, chunk = PCIHOLE_ALLONES_CHUNK_DEFAULT;
	unsigned int before;
	uint8_t *p;
	uint64_t off;
	int fd;

	(void)state;
	assert_int_equal(pcihole_allones_memfd(chunk, &fd, NULL), 0);
	before = tk_count_maps(MEMFD_NAME);
	assert_int_equal(pcihole_allones_map(fd, chunk, size, (void **)&p), 0);
	assert_int_equal((uintptr_t)p % chunk, 0);
	assert_int_equal(tk_count_maps(MEMFD_NAME) - before, size / chunk);
	for (off = 0; off < size; off += 4096 * 7 + 8)
		assert_int_equal(p[off], 0xff);
	assert_int_equal(p[size - 1], 0xff);
	assert_int_equal(pcihole_allones_unmap(p, size), 0);
	assert_int_equal(tk_count_maps(MEMFD_NAME), before);
	print_message("256 MiB all-ones range: %llu mappings of a %llu-byte memfd\n",
		      (unsigned long long)(size / chunk), (unsigned long long)chunk);

	/* Sizes must be whole chunks; chunks must be sane. */
	assert_int_equal(pcihole_allones_map(fd, chunk, chunk + 4096, (void **)&p), -EINVAL);
	assert_int_equal(pcihole_allones_map(fd, chunk, 0, (void **)&p), -EINVAL);
	assert_int_equal(pcihole_allones_map(fd, 3 * 4096, 3 * 4096, (void **)&p), -EINVAL);
	assert_int_equal(pcihole_allones_map(-1, chunk, chunk, (void **)&p), -EINVAL);
	assert_int_equal(pcihole_allones_map(fd, chunk, chunk, NULL), -EINVAL);
	assert_int_equal(pcihole_allones_unmap(NULL, chunk), -EINVAL);
	close(fd);
}

/* A 4 KiB chunk: one mapping per page. */
static void test_map_small_chunk(void **state)
{
	uint8_t *p;
	int fd;

	(void)state;
	assert_int_equal(pcihole_allones_memfd(4096, &fd, NULL), 0);
	assert_int_equal(pcihole_allones_map(fd, 4096, 16 * 4096, (void **)&p), 0);
	assert_int_equal(tk_count_maps(MEMFD_NAME), 16);
	assert_int_equal(p[0] & p[5 * 4096 + 17] & p[16 * 4096 - 1], 0xff);
	assert_int_equal(pcihole_allones_unmap(p, 16 * 4096), 0);
	assert_int_equal(tk_count_maps(MEMFD_NAME), 0);
	close(fd);
}

/* Fail every system call in turn: nothing may leak, and the result must be an error. */
static void test_fault_injection(void **state)
{
	unsigned int fds = tk_count_fds(), maps = tk_count_maps(MEMFD_NAME);
	uint64_t n;
	void *p;
	int fd, ret, kfd;

	(void)state;
	for (n = 1;; n++) {
		ph_sys_fail_nth(n, ENOMEM, PH_SYS_ALL);
		fd = -1;
		ret = pcihole_allones_memfd(0, &fd, NULL);
		if (!ph_sys_fired()) {
			ph_sys_fail_nth(0, 0, 0);
			assert_int_equal(ret, 0);
			close(fd);
			break;
		}
		ph_sys_fail_nth(0, 0, 0);
		/* hugetlb failing is a fallback, not an error. */
		if (!ret) {
			assert_int_equal(pcihole_allones_check(fd), PCIHOLE_ALLONES_CHUNK_DEFAULT);
			close(fd);
		} else {
			assert_int_equal(ret, -ENOMEM);
			assert_int_equal(fd, -1);
		}
		assert_int_equal(tk_count_fds(), fds);
		assert_int_equal(tk_count_maps(MEMFD_NAME), maps);
		assert_int_equal(tk_count_maps("pcihole"), 0);
	}
	print_message("memfd creation: %llu system calls, each failed once\n",
		      (unsigned long long)(n - 1));

	assert_int_equal(pcihole_allones_memfd(0, &kfd, NULL), 0);
	for (n = 1;; n++) {
		ph_sys_fail_nth(n, ENOMEM, PH_SYS_ALL);
		ret = pcihole_allones_map(kfd, PCIHOLE_ALLONES_CHUNK_DEFAULT, 32 << 20, &p);
		if (!ph_sys_fired()) {
			ph_sys_fail_nth(0, 0, 0);
			assert_int_equal(ret, 0);
			assert_int_equal(tk_count_maps(MEMFD_NAME), 16);
			assert_int_equal(pcihole_allones_unmap(p, 32 << 20), 0);
			break;
		}
		ph_sys_fail_nth(0, 0, 0);
		assert_int_equal(ret, -ENOMEM);
		assert_int_equal(tk_count_maps(MEMFD_NAME), 0);
	}
	assert_int_equal(tk_count_maps(MEMFD_NAME), 0);
	close(kfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memfd_default),
		cmocka_unit_test(test_memfd_bad_args),
		cmocka_unit_test(test_seals),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_map_segment),
		cmocka_unit_test(test_map_small_chunk),
		cmocka_unit_test(test_fault_injection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
