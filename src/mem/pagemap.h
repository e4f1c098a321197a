/*
 * Which pages of a range hold data: PAGEMAP_SCAN on /proc/PID/pagemap
 * (one ioctl returns whole runs), or, on kernels without it, the classic
 * 8-bytes-per-page pagemap read. Debian 12's headers predate
 * PAGEMAP_SCAN, so its ABI is spelled out here.
 */
#ifndef RTCR_MEM_PAGEMAP_H
#define RTCR_MEM_PAGEMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/ioctl.h>

#include "common/log.h"

#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)
#endif

struct page_run_list {
	struct { uint64_t start, npages; } *v;
	uint32_t nr, cap;
	uint64_t npages;
};

void prl_add(struct page_run_list *l, uint64_t start, uint64_t npages);
void prl_free(struct page_run_list *l);

struct pagemap {
	int fd;
	bool scan;     /* PAGEMAP_SCAN works */
	struct page_region *vec;
	uint32_t vec_len;
};

/* pagemap_close() may be called after a failed open too. */
int pagemap_open(struct pagemap *pm, int pid) __must_check;
void pagemap_close(struct pagemap *pm);
/*
 * Append to 'out' the runs of pages in [start, end) that hold private
 * data: present or swapped, not the shared zero page, and, if anon_only,
 * not page-cache pages (for private file mappings: only the pages the
 * process wrote, which are anonymous copies).
 */
int pagemap_data_runs(struct pagemap *pm, uint64_t start, uint64_t end, bool anon_only,
		      struct page_run_list *out) __must_check;

typedef void (*pagemap_cb)(void *arg, uint64_t start, uint64_t end, uint64_t categories);

/*
 * One PAGEMAP_SCAN over [start, end) for many areas at once: cb is called
 * for each region of pages that are present or swapped and not the zero
 * page, with its categories (PAGE_IS_FILE tells page-cache pages). Needs
 * pm->scan. Regions may span area boundaries: the caller splits them.
 */
int pagemap_scan_all(struct pagemap *pm, uint64_t start, uint64_t end, pagemap_cb cb,
		     void *arg) __must_check;

/* The same with other masks and flags (PM_SCAN_WP_MATCHING: report and
 * protect again in one pass). With PM_SCAN_CHECK_WPASYNC, -EPERM (not
 * logged) says an area of the range is not registered for asynchronous
 * write-protection. */
struct pm_scan_spec {
	uint64_t flags, category_mask, anyof_mask, return_mask;
	bool skip_zero;          /* leave out regions of the shared zero page */
};
int pagemap_scan_ex(struct pagemap *pm, const struct pm_scan_spec *sp, uint64_t start,
		    uint64_t end, pagemap_cb cb, void *arg) __must_check;

/*
 * pagemap_scan_ex over the n ranges [bounds[i], bounds[i + 1]), with
 * cb(args[i], ...) for range i, shared with the spare CPU when it is
 * armed (common/spare.h: spare_post(), spare_join()): the worker begins
 * at once, and cb runs concurrently for distinct ranges; pm, sp and the
 * args stay the caller's until the finish, which returns the first
 * range's error.
 */
struct pagemap_split;
struct pagemap_split *pagemap_split_start(struct pagemap *pm, const struct pm_scan_spec *sp,
					  const uint64_t *bounds, int n, pagemap_cb cb, void **args);
int pagemap_split_finish(struct pagemap_split *ps) __must_check;
/* Let go of it: the ranges not begun yet are not walked. */
void pagemap_split_cancel(struct pagemap_split *ps);

/*
 * Of the pages in u, neither present nor written (per PAGEMAP_SCAN): call
 * cb for each that is a real swap entry, not one of the pte markers the
 * userfaultfd write-protection leaves on pages never populated (the
 * classic pagemap shows the marker as swap type 31, SWP_PTE_MARKER), and
 * for each that is present by now and not the file's (a migration entry
 * the scan saw, which the migration's end turned back into the page).
 */
int pagemap_real_swap(struct pagemap *pm, const struct page_run_list *u,
		      void (*cb)(void *arg, uint64_t addr), void *arg) __must_check;

#endif
