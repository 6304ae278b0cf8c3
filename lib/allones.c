// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * The all-ones backing of the readonly backend: one small sealed memfd that
 * reads 0xff everywhere, mapped again and again to give each KVM_MEM_READONLY
 * slot its host range.  The memory cost is one chunk however many holes and
 * VMs there are; the mapping count is size / chunk, which is why the chunk is
 * 2 MiB and not 4 KiB (vm.max_map_count is 65,530, fewer than the 65,536
 * pages of one 256-bus segment).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "allones.h"
#include "internal.h"
#include "sys.h"

#define PH_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define PH_HUGE_2M (2ULL << 20)
/* Far above any sensible chunk; keeps the fill and the check cheap. */
#define PH_CHUNK_MAX (1ULL << 30)

static bool chunk_ok(uint64_t chunk)
{
	return chunk >= PCIHOLE_PAGE_SIZE && chunk <= PH_CHUNK_MAX &&
	       !(chunk & (chunk - 1));
}

/*
 * Reserve @size bytes of address space aligned to @align (a power of two),
 * inaccessible until something is mapped over it with MAP_FIXED.
 */
static int reserve_aligned(uint64_t size, uint64_t align, void **out)
{
	uint8_t *raw, *start;
	uint64_t head, tail, total = size + align - PCIHOLE_PAGE_SIZE;

	raw = ph_mmap(NULL, total, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return ph_neg_errno();
	start = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	head = (uint64_t)(start - raw);
	tail = total - head - size;
	/* Trimming can only fail if the kernel is out of VMAs: give everything back. */
	if ((head && ph_munmap(raw, head)) ||
	    (tail && ph_munmap(start + size, tail))) {
		int ret = ph_neg_errno();

		munmap(raw, total);
		return ret;
	}
	*out = start;
	return 0;
}

/* Does the shared mapping at @addr use PMD (2 MiB) mappings?  From smaps. */
static bool pmd_mapped(const void *addr)
{
	char want[32], line[256];
	bool in = false, huge = false;
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return false;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)addr);
	while (fgets(line, sizeof(line), f)) {
		unsigned long kb;

		if (!in) {
			in = !strncmp(line, want, strlen(want));
			continue;
		}
		if ((sscanf(line, "ShmemPmdMapped: %lu kB", &kb) == 1 ||
		     sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) && kb) {
			huge = true;
			break;
		}
		if (!strncmp(line, "VmFlags:", 8))
			break;	/* last field of our mapping */
	}
	fclose(f);
	return huge;
}

/*
 * Fill the memfd @fd of @chunk bytes with 0xff through a shared mapping; with
 * @thp, ask for a transparent huge page on a chunk-aligned mapping and report
 * in @huge whether the kernel gave one.  The mapping is gone on return, as
 * F_SEAL_WRITE requires.
 */
int ph_allones_fill(int fd, uint64_t chunk, bool thp, bool *huge)
{
	void *res, *p;
	int ret = 0;

	*huge = false;
	/*
	 * 2 MiB aligned for THP and for hugetlb alike: MAP_FIXED of a hugetlb
	 * file needs it, and a kernel that does not align large anonymous
	 * reservations by itself (Debian 12's 6.1) would otherwise fail the
	 * hugetlb mapping and silently fall back to 4 KiB pages.
	 */
	ret = reserve_aligned(chunk, chunk >= PH_HUGE_2M ? PH_HUGE_2M :
			      PCIHOLE_PAGE_SIZE, &res);
	if (ret)
		return ret;
	p = ph_mmap(res, chunk, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		ret = ph_neg_errno();
		munmap(res, chunk);
		return ret;
	}
	/* Advice only: shmem_enabled=never (Debian's default) ignores it. */
	if (thp)
		madvise(p, chunk, MADV_HUGEPAGE);
	memset(p, 0xff, chunk);
	if (thp)
		*huge = pmd_mapped(p);
	/* An unmap failure would leave a writable mapping and make sealing fail. */
	if (ph_munmap(p, chunk)) {
		ret = ph_neg_errno();
		munmap(p, chunk);
	}
	return ret;
}

/* Make, size and fill one memfd; the caller seals it. */
static int make(uint64_t chunk, bool hugetlb, int *out, bool *huge)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd, ret;

	if (hugetlb)
		flags |= MFD_HUGETLB;
	fd = ph_memfd_create("pcihole-allones", flags);
	if (fd < 0)
		return ph_neg_errno();
	if (ph_ftruncate(fd, (off_t)chunk)) {
		ret = ph_neg_errno();
		goto err;
	}
	ret = ph_allones_fill(fd, chunk, !hugetlb, huge);
	if (ret)
		goto err;
	*out = fd;
	return 0;
err:
	close(fd);
	return ret;
}

int pcihole_allones_memfd(uint64_t chunk, int *out,
			  enum pcihole_backing *backing)
{
	enum pcihole_backing kind = PCIHOLE_BACKING_HUGETLB;
	bool huge = false;
	int fd = -1, ret = -EINVAL;

	if (!out)
		return -EINVAL;
	if (!chunk)
		chunk = PCIHOLE_ALLONES_CHUNK_DEFAULT;
	if (!chunk_ok(chunk))
		return -EINVAL;
	/*
	 * hugetlb needs pages reserved by the admin (vm.nr_hugepages); without
	 * them the mapping fails with ENOMEM and we fall back to shmem.
	 */
	if (!(chunk % PH_HUGE_2M))
		ret = make(chunk, true, &fd, &huge);
	if (ret) {
		ret = make(chunk, false, &fd, &huge);
		if (ret)
			return ret;
		kind = huge ? PCIHOLE_BACKING_THP : PCIHOLE_BACKING_4K;
	}
	if (ph_fcntl(fd, F_ADD_SEALS, PH_SEALS)) {
		ret = ph_neg_errno();
		close(fd);
		return ret;
	}
	*out = fd;
	if (backing)
		*backing = kind;
	return 0;
}

int64_t pcihole_allones_check(int fd)
{
	const uint64_t *p;
	struct stat st;
	uint64_t size, i;
	int seals;

	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st))
		return ph_neg_errno();
	size = (uint64_t)st.st_size;
	if (!S_ISREG(st.st_mode) || !chunk_ok(size))
		return -EINVAL;
	/* Not sealable (not a memfd/shmem file) gives EINVAL here too. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return ph_neg_errno();
	if ((seals & PH_SEALS) != PH_SEALS)
		return -EINVAL;
	p = ph_mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return ph_neg_errno();
	for (i = 0; i < size / sizeof(*p); i++)
		if (p[i] != UINT64_MAX)
			break;
	munmap((void *)p, size);
	return i == size / sizeof(*p) ? (int64_t)size : -EINVAL;
}

int pcihole_allones_map(int fd, uint64_t chunk, uint64_t size, void **addr)
{
	int64_t have;

	if (fd < 0 || !addr || !chunk_ok(chunk) || !size || size % chunk ||
	    size > SIZE_MAX / 2)
		return -EINVAL;
	/* A smaller fd would SIGBUS the guest's host thread on access. */
	have = pcihole_allones_check(fd);
	if (have < 0)
		return (int)have;
	if ((uint64_t)have != chunk)
		return -EINVAL;
	return ph_allones_map_checked(fd, chunk, size, addr);
}

int ph_allones_map_checked(int fd, uint64_t chunk, uint64_t size, void **addr)
{
	uint8_t *base;
	uint64_t off;
	int ret;

	ret = reserve_aligned(size, chunk, (void **)&base);
	if (ret)
		return ret;
	for (off = 0; off < size; off += chunk) {
		void *p = ph_mmap(base + off, chunk, PROT_READ,
				  MAP_SHARED | MAP_FIXED, fd, 0);

		if (p == MAP_FAILED) {
			ret = ph_neg_errno();
			/* Reservation and mappings alike go in one call. */
			munmap(base, size);
			return ret;
		}
	}
	*addr = base;
	return 0;
}

int pcihole_allones_unmap(void *addr, uint64_t size)
{
	if (!addr || !size || size % PCIHOLE_PAGE_SIZE)
		return -EINVAL;
	return ph_munmap(addr, size) ? ph_neg_errno() : 0;
}

int pcihole_allones_map_run(int fd, uint64_t gpa, uint64_t size,
			    struct pcihole_allones_range *range)
{
	uint64_t chunk, first, last;
	int64_t have;
	void *base;
	int ret;

	if (!range || !size || (gpa | size) & (PCIHOLE_PAGE_SIZE - 1) ||
	    gpa > UINT64_MAX - (size - 1))
		return -EINVAL;
	have = pcihole_allones_check(fd);
	if (have < 0)
		return (int)have;
	chunk = (uint64_t)have;
	first = gpa & ~(chunk - 1);
	last = (gpa + (size - 1)) | (chunk - 1);
	if (last - first >= SIZE_MAX / 2)
		return -EINVAL;
	ret = ph_allones_map_checked(fd, chunk, last - first + 1, &base);
	if (ret)
		return ret;
	range->base = base;
	range->len = last - first + 1;
	range->userspace_addr = (uintptr_t)base + (gpa - first);
	return 0;
}

int pcihole_allones_unmap_range(const struct pcihole_allones_range *range)
{
	if (!range)
		return -EINVAL;
	return pcihole_allones_unmap(range->base, range->len);
}
