/*
 * src/mem/pagemap.c: run merging, and pagemap_data_runs() on this test
 * process's own memory, through PAGEMAP_SCAN (when the kernel has it)
 * and through the classic pagemap read path (forced with pm.scan=false):
 * written pages are data; untouched pages and pages that were only read
 * (the shared zero page) are not; page-cache pages of a private file
 * mapping are data only when anon_only is false.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spare.h"
#include "common/util.h"
#include "mem/pagemap.h"
#include "unit_util.h"

struct run { uint64_t start, npages; };

static uint8_t *map_anon(size_t pages)
{
	uint8_t *p = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	madvise(p, pages * PAGE_SIZE, MADV_NOHUGEPAGE);
	return p;
}

static void touch_write(uint8_t *base, size_t page)
{
	((volatile uint8_t *)base)[page * PAGE_SIZE + 17] = (uint8_t)(page + 1);
}

static uint8_t touch_read(const uint8_t *base, size_t page)
{
	return ((const volatile uint8_t *)base)[page * PAGE_SIZE + 99];
}

/* The runs found in [base, base+pages) compare equal to want (page indexes). */
static void expect_runs(const struct page_run_list *l, const uint8_t *base,
			const struct run *want, uint32_t n, const char *what)
{
	uint64_t total = 0;
	if (l->nr != n) {
		for (uint32_t i = 0; i < l->nr; i++)
			print_message("  got run %u: page %lld, %llu pages\n", i,
				      (long long)(l->v[i].start - (uintptr_t)base) / (long long)PAGE_SIZE,
				      (unsigned long long)l->v[i].npages);
		fail_msg("%s: %u runs, want %u", what, l->nr, n);
	}
	for (uint32_t i = 0; i < n; i++) {
		if (l->v[i].start != (uintptr_t)base + want[i].start * PAGE_SIZE ||
		    l->v[i].npages != want[i].npages)
			fail_msg("%s: run %u is page %lld x %llu, want page %llu x %llu", what, i,
				 (long long)(l->v[i].start - (uintptr_t)base) / (long long)PAGE_SIZE,
				 (unsigned long long)l->v[i].npages,
				 (unsigned long long)want[i].start, (unsigned long long)want[i].npages);
		total += want[i].npages;
	}
	assert_int_equal(l->npages, total);
}

static bool list_has_page(const struct page_run_list *l, uint64_t addr)
{
	for (uint32_t i = 0; i < l->nr; i++)
		if (addr >= l->v[i].start && addr < l->v[i].start + l->v[i].npages * PAGE_SIZE)
			return true;
	return false;
}

/*
 * Runs FIRST, before anything in this process uses the read path (which
 * caches the zero page's pfn in a static).
 *
 * Without CAP_SYS_ADMIN the kernel reports pfn 0 for every page in
 * /proc/PID/pagemap. The read path (kernels before 6.7, e.g. Debian 12's
 * 6.1) learns "the zero page's pfn" from such a read, gets 0, and then
 * treats every present page (pfn 0 too) as the zero page: a dump without
 * CAP_SYS_ADMIN would silently store none of the process's memory.
 */
static void test_read_path_without_pfn_access(void **state)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2];
		struct page_run_list l = { 0 };
		struct pagemap pm;
		uint8_t *base = mmap(NULL, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t e = 0;
		int fd;

		if (base == MAP_FAILED)
			_exit(90);
		madvise(base, 8 * PAGE_SIZE, MADV_NOHUGEPAGE);
		if (syscall(SYS_capget, &h, d))
			_exit(91);
		d[0].effective &= ~(1u << CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &h, d))
			_exit(92);
		base[PAGE_SIZE] = 1;
		base[2 * PAGE_SIZE] = 2;
		(void)((volatile uint8_t *)base)[5 * PAGE_SIZE];
		/* Check the premise: pfns hidden now. */
		fd = open("/proc/self/pagemap", O_RDONLY);
		if (fd < 0 || pread(fd, &e, 8, ((uintptr_t)base / PAGE_SIZE + 1) * 8) != 8)
			_exit(93);
		close(fd);
		if (!(e >> 63))
			_exit(94);
		if (e & ((1ULL << 55) - 1))
			_exit(77);   /* pfns still visible: premise not met */
		if (pagemap_open(&pm, getpid()))
			_exit(95);
		pm.scan = false;
		if (pagemap_data_runs(&pm, (uintptr_t)base, (uintptr_t)base + 8 * PAGE_SIZE, false, &l))
			_exit(96);
		pagemap_close(&pm);
		/* Both written pages must be reported. Without pfns the zero
		 * page cannot be recognised, so the page that was only read
		 * (5) may be reported too: storing zeros is wasteful, not wrong.
		 * Nothing else may be. */
		{
			uint64_t want = (1u << 1) | (1u << 2), got = 0;
			for (uint32_t i = 0; i < l.nr; i++)
				for (uint64_t k = 0; k < l.v[i].npages; k++)
					got |= 1ull << ((l.v[i].start - (uintptr_t)base) / PAGE_SIZE + k);
			if (!got)
				_exit(1);
			_exit((got & want) == want && !(got & ~(want | (1u << 5))) ? 0 : 2);
		}
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	if (WEXITSTATUS(st) == 1)
		fail_msg("read path without CAP_SYS_ADMIN (pfns hidden): the 2 written pages were "
			 "not reported (zero_pfn probe read pfn 0, every present page looked like "
			 "the zero page)");
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_prl_add(void **state)
{
	struct page_run_list l = { 0 };

	prl_add(&l, 0x10000, 1);
	prl_add(&l, 0x11000, 2);          /* adjacent: merged */
	prl_add(&l, 0x13000, 1);          /* adjacent again */
	assert_int_equal(l.nr, 1);
	assert_int_equal(l.v[0].start, 0x10000);
	assert_int_equal(l.v[0].npages, 4);
	prl_add(&l, 0x15000, 1);          /* gap: new run */
	prl_add(&l, 0x14000, 1);          /* touches run 0's end but not the last run */
	assert_int_equal(l.nr, 3);
	assert_int_equal(l.v[1].start, 0x15000);
	assert_int_equal(l.v[2].start, 0x14000);
	assert_int_equal(l.npages, 6);

	/* Growth past the initial capacity keeps everything. */
	for (int i = 0; i < 1000; i++)
		prl_add(&l, 0x100000000ULL + (uint64_t)i * 2 * PAGE_SIZE, 1);
	assert_int_equal(l.nr, 1003);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(l.v[3 + i].start, 0x100000000ULL + (uint64_t)i * 2 * PAGE_SIZE);
		assert_int_equal(l.v[3 + i].npages, 1);
	}
	assert_int_equal(l.npages, 1006);
	prl_free(&l);
	assert_null(l.v);
	assert_int_equal(l.nr, 0);
	assert_int_equal(l.npages, 0);
	/* Usable again after free. */
	prl_add(&l, 0x1000, 3);
	assert_int_equal(l.nr, 1);
	prl_free(&l);
}

static void anon_case(bool scan)
{
	static const struct run want[] = { { 1, 3 }, { 7, 1 }, { 15, 1 } };
	struct pagemap pm;
	uint8_t *base = map_anon(16);
	volatile uint8_t sink = 0;

	touch_write(base, 1);
	touch_write(base, 2);
	touch_write(base, 3);
	touch_write(base, 7);
	touch_write(base, 15);
	sink ^= touch_read(base, 10);    /* zero page */
	sink ^= touch_read(base, 11);
	(void)sink;

	assert_int_equal(pagemap_open(&pm, getpid()), 0);
	if (scan && !pm.scan) {
		pagemap_close(&pm);
		munmap(base, 16 * PAGE_SIZE);
		skip();
	}
	pm.scan = scan;
	for (int anon_only = 0; anon_only < 2; anon_only++) {
		struct page_run_list l = { 0 };
		assert_int_equal(pagemap_data_runs(&pm, (uintptr_t)base, (uintptr_t)base + 16 * PAGE_SIZE,
						   anon_only, &l), 0);
		expect_runs(&l, base, want, ARRAY_SIZE(want), scan ? "scan" : "read");
		prl_free(&l);
	}
	/* A sub-range cuts runs at its edges. */
	{
		static const struct run sub[] = { { 2, 2 } };
		struct page_run_list l = { 0 };
		assert_int_equal(pagemap_data_runs(&pm, (uintptr_t)base + 2 * PAGE_SIZE,
						   (uintptr_t)base + 5 * PAGE_SIZE, false, &l), 0);
		expect_runs(&l, base, sub, 1, scan ? "scan sub-range" : "read sub-range");
		prl_free(&l);
	}
	pagemap_close(&pm);
	munmap(base, 16 * PAGE_SIZE);
}

static void test_anon_scan(void **state) { anon_case(true); }
static void test_anon_read(void **state) { anon_case(false); }

/* More runs than one PAGEMAP_SCAN vector / one read buffer holds. */
static void many_runs_case(bool scan)
{
	const size_t pages = 9000;
	struct pagemap pm;
	struct page_run_list l = { 0 };
	uint8_t *base = map_anon(pages);

	for (size_t i = 0; i < pages; i += 2)
		touch_write(base, i);
	assert_int_equal(pagemap_open(&pm, getpid()), 0);
	if (scan && !pm.scan) {
		pagemap_close(&pm);
		munmap(base, pages * PAGE_SIZE);
		skip();
	}
	pm.scan = scan;
	assert_int_equal(pagemap_data_runs(&pm, (uintptr_t)base, (uintptr_t)base + pages * PAGE_SIZE,
					   false, &l), 0);
	assert_int_equal(l.nr, pages / 2);
	assert_int_equal(l.npages, pages / 2);
	for (uint32_t i = 0; i < l.nr; i++) {
		if (l.v[i].start != (uintptr_t)base + 2 * i * PAGE_SIZE || l.v[i].npages != 1)
			fail_msg("%s: run %u wrong", scan ? "scan" : "read", i);
	}
	prl_free(&l);
	pagemap_close(&pm);
	munmap(base, pages * PAGE_SIZE);
}

static void test_many_runs_scan(void **state) { many_runs_case(true); }
static void test_many_runs_read(void **state) { many_runs_case(false); }

/*
 * pagemap_split_start() and _finish(): ranges cut inside runs, more regions in a range
 * than a piece's own vector holds (1024; range 0 uses the caller's), a
 * range without data, an empty range; the worker armed. Each range's
 * callback gets its own list; in range order they are the runs of one
 * whole scan, each page once.
 */
static void add_run(void *arg, uint64_t start, uint64_t end, uint64_t cat)
{
	(void)cat;
	prl_add(arg, start, (end - start) / PAGE_SIZE);
}

static void test_scan_split(void **state)
{
	static const struct pm_scan_spec data = {
		.anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.skip_zero = true,
	};
	enum { N = 6 };
	const size_t pages = 6000;
	struct page_run_list whole = { 0 }, got = { 0 }, part[N] = { { 0 } };
	void *args[N];
	uint8_t *base = map_anon(pages);
	uint64_t b = (uintptr_t)base, bounds[N + 1];
	struct pagemap pm;

	(void)state;
	for (int i = 0; i < N; i++)
		args[i] = &part[i];
	/* Every other page, then a run of 100 across a bound. */
	for (size_t i = 0; i < 4000; i += 2)
		touch_write(base, i);
	for (size_t i = 4950; i < 5050; i++)
		touch_write(base, i);
	assert_int_equal(pagemap_open(&pm, getpid()), 0);
	if (!pm.scan) {
		pagemap_close(&pm);
		munmap(base, pages * PAGE_SIZE);
		skip();
	}
	bounds[0] = b;
	bounds[1] = b + 100 * PAGE_SIZE;    /* 50 regions */
	bounds[2] = b + 3099 * PAGE_SIZE;   /* 1500 regions, a 1024-entry vector */
	bounds[3] = b + 3100 * PAGE_SIZE;   /* one page, without data */
	bounds[4] = b + 3100 * PAGE_SIZE;   /* empty */
	bounds[5] = b + 5000 * PAGE_SIZE;   /* inside the run of 100 */
	bounds[6] = b + pages * PAGE_SIZE;
	assert_int_equal(pagemap_scan_ex(&pm, &data, bounds[0], bounds[N], add_run, &whole), 0);
	spare_arm();
	assert_int_equal(pagemap_split_finish(pagemap_split_start(&pm, &data, bounds, N, add_run, args)),
			 0);
	spare_disarm();
	assert_int_equal(part[0].nr, 50);
	assert_int_equal(part[1].nr, 1500);
	assert_int_equal(part[2].nr, 0);
	assert_int_equal(part[3].nr, 0);
	assert_int_equal(part[5].v[0].start, bounds[5]);
	for (int i = 0; i < N; i++) {
		for (uint32_t r = 0; r < part[i].nr; r++)
			prl_add(&got, part[i].v[r].start, part[i].v[r].npages);
		prl_free(&part[i]);
	}
	assert_int_equal(whole.npages, 2000 + 100);
	assert_int_equal(got.nr, whole.nr);
	assert_int_equal(got.npages, whole.npages);
	for (uint32_t r = 0; r < whole.nr; r++) {
		if (got.v[r].start != whole.v[r].start || got.v[r].npages != whole.v[r].npages)
			fail_msg("run %u differs", r);
	}
	prl_free(&whole);
	prl_free(&got);
	pagemap_close(&pm);
	munmap(base, pages * PAGE_SIZE);
}

static void file_case(bool scan)
{
	char *dir = tmpdir_make();
	char path[4096];
	uint8_t buf[4 * 4096];
	struct pagemap pm;
	uint8_t *m;
	volatile uint8_t sink = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/f", dir);
	memset(buf, 0x61, sizeof(buf));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	m = mmap(NULL, sizeof(buf), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(m != MAP_FAILED);
	close(fd);
	sink ^= touch_read(m, 0);        /* page cache page, mapped */
	touch_write(m, 2);               /* private anonymous copy */
	(void)sink;

	assert_int_equal(pagemap_open(&pm, getpid()), 0);
	if (scan && !pm.scan) {
		pagemap_close(&pm);
		munmap(m, sizeof(buf));
		tmpdir_remove(dir);
		skip();
	}
	pm.scan = scan;
	{
		static const struct run want[] = { { 2, 1 } };
		struct page_run_list l = { 0 };
		assert_int_equal(pagemap_data_runs(&pm, (uintptr_t)m, (uintptr_t)m + sizeof(buf), true,
						   &l), 0);
		expect_runs(&l, m, want, 1, scan ? "scan anon_only" : "read anon_only");
		prl_free(&l);
	}
	{
		struct page_run_list l = { 0 };
		assert_int_equal(pagemap_data_runs(&pm, (uintptr_t)m, (uintptr_t)m + sizeof(buf), false,
						   &l), 0);
		/* Fault-around may map the other cached pages too. */
		assert_true(list_has_page(&l, (uintptr_t)m));
		assert_true(list_has_page(&l, (uintptr_t)m + 2 * PAGE_SIZE));
		prl_free(&l);
	}
	pagemap_close(&pm);
	munmap(m, sizeof(buf));
	tmpdir_remove(dir);
}

static void test_file_private_scan(void **state) { file_case(true); }
static void test_file_private_read(void **state) { file_case(false); }

/* A range whose end is not page aligned must not hang the read path. */
static void test_read_path_unaligned_end(void **state)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct pagemap pm;
		struct page_run_list l = { 0 };
		uint8_t *base = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		alarm(2);
		base[0] = 1;
		if (pagemap_open(&pm, getpid()))
			_exit(90);
		pm.scan = false;
		(void)!pagemap_data_runs(&pm, (uintptr_t)base, (uintptr_t)base + PAGE_SIZE + 100, false,
					 &l);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		fail_msg("pagemap_data_runs (read path) on [base, base+4096+100) did not return "
			 "within 2 s: n = (end-addr)/PAGE_SIZE is 0 for the tail, addr never advances");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_open_errors(void **state)
{
	struct pagemap pm;

	log_quiet(true);
	assert_true(pagemap_open(&pm, 0x3fffffff) < 0);
	log_quiet(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Must stay first: see its comment. */
		cmocka_unit_test(test_read_path_without_pfn_access),
		cmocka_unit_test(test_prl_add),
		cmocka_unit_test(test_anon_scan),
		cmocka_unit_test(test_anon_read),
		cmocka_unit_test(test_many_runs_scan),
		cmocka_unit_test(test_many_runs_read),
		cmocka_unit_test(test_scan_split),
		cmocka_unit_test(test_file_private_scan),
		cmocka_unit_test(test_file_private_read),
		cmocka_unit_test(test_read_path_unaligned_end),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
