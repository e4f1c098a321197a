#include "mem/pagemap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/spare.h"
#include "common/util.h"

void prl_add(struct page_run_list *l, uint64_t start, uint64_t npages)
{
	if (l->nr && l->v[l->nr - 1].start + l->v[l->nr - 1].npages * PAGE_SIZE == start) {
		l->v[l->nr - 1].npages += npages;
	} else {
		if (l->nr == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 16;
			l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
		}
		l->v[l->nr].start = start;
		l->v[l->nr].npages = npages;
		l->nr++;
	}
	l->npages += npages;
}

void prl_free(struct page_run_list *l)
{
	free(l->v);
	l->v = NULL;
	l->nr = l->cap = 0;
	l->npages = 0;
}

int pagemap_open(struct pagemap *pm, int pid)
{
	struct pm_scan_arg a = { .size = sizeof(a) };
	char path[64];

	pm->vec = NULL;         /* pagemap_close() is safe after a failed open */
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pm->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm->fd < 0) {
		pr_perror("%s", path);
		return -errno;
	}
	pm->vec_len = 4096;
	pm->vec = xmalloc(pm->vec_len * sizeof(*pm->vec));
	/* An empty scan tells whether the ioctl exists. */
	a.vec = (uintptr_t)pm->vec;
	a.vec_len = pm->vec_len;
	a.return_mask = PAGE_IS_PRESENT;
	pm->scan = ioctl(pm->fd, PAGEMAP_SCAN, &a) >= 0;
	return 0;
}

void pagemap_close(struct pagemap *pm)
{
	if (pm->fd >= 0)
		close(pm->fd);
	free(pm->vec);
	pm->fd = -1;
	pm->vec = NULL;
}

int pagemap_scan_ex(struct pagemap *pm, const struct pm_scan_spec *sp, uint64_t start,
		    uint64_t end, pagemap_cb cb, void *arg)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = sp->flags,
		.start = start,
		.end = end,
		.vec = (uintptr_t)pm->vec,
		.vec_len = pm->vec_len,
		.category_mask = sp->category_mask,
		.category_anyof_mask = sp->anyof_mask,
		.return_mask = sp->return_mask,
	};
	uint64_t done = start;

	while (a.start < a.end) {
		long n = ioctl(pm->fd, PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EPERM || !(sp->flags & PM_SCAN_CHECK_WPASYNC))
				pr_perror("PAGEMAP_SCAN %#llx-%#llx", (unsigned long long)a.start,
					  (unsigned long long)a.end);
			return -errno;
		}
		/*
		 * The scan stopped early only if it filled the vector. Then
		 * walk_end says where to go on; otherwise it may be stale (this
		 * kernel leaves it at the last internal stop of a walk that went
		 * on to the end), and following it would report regions twice:
		 * what was reported already is left out, whatever the kernel says.
		 */
		for (long i = 0; i < n; i++) {
			uint64_t s0 = MAX(pm->vec[i].start, done), e0 = pm->vec[i].end;
			if (s0 < e0 && !(sp->skip_zero && (pm->vec[i].categories & PAGE_IS_PFNZERO)))
				cb(arg, s0, e0, pm->vec[i].categories);
			done = MAX(done, e0);
		}
		if (n < (long)pm->vec_len || a.walk_end <= a.start)
			break;
		a.start = a.walk_end;
	}
	return 0;
}

struct split_piece {
	struct pagemap pm;     /* the caller's fd, a vector of its own */
	uint64_t start, end;
	void *arg;
	int ret;
};

struct pagemap_split {
	const struct pm_scan_spec *sp;
	pagemap_cb cb;
	int n;
	struct split_piece *p;
	struct spare_job job;
};

static void split_one(void *arg, int i)
{
	struct pagemap_split *j = arg;
	struct split_piece *p = &j->p[i];

	p->ret = pagemap_scan_ex(&p->pm, j->sp, p->start, p->end, j->cb, p->arg);
}

struct pagemap_split *pagemap_split_start(struct pagemap *pm, const struct pm_scan_spec *sp,
					  const uint64_t *bounds, int n, pagemap_cb cb, void **args)
{
	struct pagemap_split *j = xzalloc(sizeof(*j));

	j->sp = sp;
	j->cb = cb;
	j->n = n;
	j->p = xzalloc(n * sizeof(*j->p));
	for (int i = 0; i < n; i++) {
		j->p[i].pm = *pm;
		if (i) {
			j->p[i].pm.vec_len = 1024;
			j->p[i].pm.vec = xmalloc(j->p[i].pm.vec_len * sizeof(*j->p[i].pm.vec));
		}
		j->p[i].start = bounds[i];
		j->p[i].end = bounds[i + 1];
		j->p[i].arg = args[i];
	}
	spare_post(&j->job, split_one, j, n);
	return j;
}

static int split_free(struct pagemap_split *j);

int pagemap_split_finish(struct pagemap_split *j)
{
	spare_join(&j->job);
	return split_free(j);
}

void pagemap_split_cancel(struct pagemap_split *j)
{
	spare_cancel(&j->job);
	(void)split_free(j);
}

static int split_free(struct pagemap_split *j)
{
	int ret = 0;

	for (int i = 0; i < j->n; i++) {
		if (!ret)
			ret = j->p[i].ret;
		if (i)
			free(j->p[i].pm.vec);
	}
	free(j->p);
	free(j);
	return ret;
}

int pagemap_scan_all(struct pagemap *pm, uint64_t start, uint64_t end, pagemap_cb cb, void *arg)
{
	static const struct pm_scan_spec all = {
		.anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE | PAGE_IS_PFNZERO |
			       PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN,
		.skip_zero = true,
	};
	return pagemap_scan_ex(pm, &all, start, end, cb, arg);
}

int pagemap_real_swap(struct pagemap *pm, const struct page_run_list *u,
		      void (*cb)(void *arg, uint64_t addr), void *arg)
{
	uint64_t buf[512];

	for (uint32_t r = 0; r < u->nr; r++) {
		uint64_t addr = u->v[r].start, left = u->v[r].npages;
		while (left) {
			uint64_t n = MIN(left, ARRAY_SIZE(buf));
			ssize_t got = pread(pm->fd, buf, n * 8, addr / PAGE_SIZE * 8);
			if (got != (ssize_t)(n * 8)) {
				pr_perror("reading pagemap at %#llx", (unsigned long long)addr);
				return got < 0 ? -errno : -EIO;
			}
			for (uint64_t k = 0; k < n; k++, addr += PAGE_SIZE) {
				bool present = (buf[k] >> 63) & 1, swapped = (buf[k] >> 62) & 1;
				bool file = (buf[k] >> 61) & 1;
				/* swap type 31 is the kernel's SWP_PTE_MARKER; a page
				 * present now (a migration entry that finished since
				 * the scan) is data too, unless the file's. */
				if ((swapped && (buf[k] & 0x1f) != 31) || (present && !file))
					cb(arg, addr);
			}
			left -= n;
		}
	}
	return 0;
}

struct runs_arg {
	struct page_run_list *out;
	bool anon_only;
};

static void add_region(void *arg, uint64_t start, uint64_t end, uint64_t cat)
{
	struct runs_arg *r = arg;
	if (!(r->anon_only && (cat & PAGE_IS_FILE)))
		prl_add(r->out, start, (end - start) / PAGE_SIZE);
}

static int scan_runs(struct pagemap *pm, uint64_t start, uint64_t end, bool anon_only,
		     struct page_run_list *out)
{
	struct runs_arg r = { out, anon_only };
	return pagemap_scan_all(pm, start, end, add_region, &r);
}

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static int read_runs(struct pagemap *pm, uint64_t start, uint64_t end, bool anon_only,
		     struct page_run_list *out)
{
	static uint64_t zero_pfn;
	uint64_t buf[4096];

	if (!zero_pfn) {
		/* The shared zero page's pfn, seen through a private read fault. */
		static volatile char z[2 * 4096] __attribute__((aligned(4096)));
		uint64_t e;
		(void)z[4096];
		/* Without CAP_SYS_ADMIN the kernel reports pfn 0 for every page:
		 * then zero pages cannot be told apart and are all stored. */
		if (pread(pm->fd, &e, 8, ((uintptr_t)&z[4096] / PAGE_SIZE) * 8) == 8 &&
		    (e & PM_PRESENT) && (e & PM_PFN_MASK))
			zero_pfn = e & PM_PFN_MASK;
		else
			zero_pfn = ~0ULL;
	}
	end = ALIGN_UP(end, PAGE_SIZE);
	for (uint64_t addr = start & PAGE_MASK; addr < end; ) {
		size_t n = MIN((end - addr) / PAGE_SIZE, ARRAY_SIZE(buf));
		ssize_t r = pread(pm->fd, buf, n * 8, (addr / PAGE_SIZE) * 8);
		if (r < 0) {
			pr_perror("pagemap read at %#llx", (unsigned long long)addr);
			return -errno;
		}
		if ((size_t)r != n * 8)
			return -EIO;
		for (size_t i = 0; i < n; i++) {
			uint64_t e = buf[i];
			if (!(e & (PM_PRESENT | PM_SWAP)))
				continue;
			if ((e & PM_PRESENT) && (e & PM_PFN_MASK) == zero_pfn)
				continue;
			if (anon_only && (e & PM_FILE))
				continue;
			prl_add(out, addr + i * PAGE_SIZE, 1);
		}
		addr += n * PAGE_SIZE;
	}
	return 0;
}

int pagemap_data_runs(struct pagemap *pm, uint64_t start, uint64_t end, bool anon_only,
		      struct page_run_list *out)
{
	return pm->scan ? scan_runs(pm, start, end, anon_only, out)
			: read_runs(pm, start, end, anon_only, out);
}
