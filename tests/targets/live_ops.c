/*
 * Memory-map changes at a moment the test chooses, for live dumps.
 *
 *   live_ops [DIR]
 *
 * Two anonymous areas hold a pattern. On SIGUSR1 (the test sends it
 * while rtcr waits between its last copy round and the freeze) the
 * target drops pages 16-31 of area A (MADV_DONTNEED: they read zeros)
 * and a 2 MiB-aligned 2 MiB of area C (a whole page table: the kernel may
 * free it),
 * marks area B MADV_DONTFORK (a flag only /proc/PID/smaps shows), and
 * prints "CHANGED". After restore and the trigger it checks A holds its
 * pattern except the dropped pages, which must read zeros, and that B is
 * DONTFORK exactly if it changed: a live dump that missed either would
 * restore the memory as it was before the change.
 *
 * With DIR, area D maps DIR/live_ops.dat private, its pages 0-7 written
 * (private copies); SIGUSR1 also drops pages 0-3 of D, which then read
 * the file again.
 *
 * Area E is shared anonymous memory; SIGHUP maps a new object at its
 * address (MAP_FIXED), with another pattern, and prints "REPLACED".
 *
 * On SIGUSR2 it execs itself ("live_ops exec"): the new program sets up
 * its areas again, prints "EXECD" and goes on as above (a live dump's
 * rounds were of the old program: it must be copied frozen).
 */
#include "target.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#define PG 4096UL
#define NA 64
#define NB 16

#define NC 1536                 /* area C: 6 MiB, with a 2 MiB-aligned part zapped */
#define PMD_PAGES 512

#define ND 16                   /* area D: a private file mapping, pages 0-7 written */

#define NE 16                   /* area E: shared anonymous, replaced on SIGHUP */

static unsigned char *a, *b, *c, *cz, *d, *e;
static volatile sig_atomic_t replaced;
static volatile sig_atomic_t changed;

static void fill(unsigned char *p, unsigned long n, unsigned k)
{
	for (unsigned long i = 0; i < n * PG / 8; i++)
		((uint64_t *)p)[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL ^ k;
}

static void on_hup(int sig)
{
	(void)sig;
	/* Another object at the same address. */
	if (mmap(e, NE * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1,
		 0) != e)
		_exit(5);
	fill(e, NE, 7);
	replaced = 1;
	if (write(1, "REPLACED\n", 9) != 9)
		_exit(3);
}

static void on_usr2(int sig)
{
	(void)sig;
	execl("/proc/self/exe", "live_ops", "exec", (char *)NULL);
	_exit(4);
}

static void on_usr1(int sig)
{
	(void)sig;
	/* A whole page table's worth zapped: the kernel may free the page
	 * table itself (CONFIG_PT_RECLAIM), leaving no pte to see. */
	if (madvise(a + 16 * PG, 16 * PG, MADV_DONTNEED) || madvise(b, NB * PG, MADV_DONTFORK) ||
	    madvise(cz, PMD_PAGES * PG, MADV_DONTNEED))
		_exit(2);
	/* D's written pages 0-3 dropped: they read the file again. */
	if (d && madvise(d, 4 * PG, MADV_DONTNEED))
		_exit(2);
	changed = 1;
	if (write(1, "CHANGED\n", 8) != 8)
		_exit(3);
}

/* Is the area at p marked dontfork ("dc") in our smaps? */
static int dontfork(const void *p)
{
	char line[512], want[32];
	int in = 0, dc = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		fail("/proc/self/smaps: %s", strerror(errno));
	snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, want, strlen(want)))
			in = 1;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			dc = strstr(line, " dc") != NULL;
			break;
		}
	}
	fclose(f);
	CHECK(dc >= 0, "area B not found in smaps");
	return dc;
}

int main(int argc, char **argv)
{
	unsigned char zero[PG] = { 0 }, want[PG];
	bool execd = argc > 1 && !strcmp(argv[1], "exec");

	a = mmap(NULL, NA * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b = mmap(NULL, NB * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(a != MAP_FAILED && b != MAP_FAILED, "mmap: %s", strerror(errno));
	c = mmap(NULL, NC * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(c != MAP_FAILED, "mmap: %s", strerror(errno));
	cz = (unsigned char *)(((uintptr_t)c + PMD_PAGES * PG - 1) & ~(PMD_PAGES * PG - 1));
	fill(a, NA, 1);
	fill(b, NB, 2);
	fill(c, NC, 3);
	if (argc > 1 && !execd) {
		/* DIR/live_ops.dat, mapped private; pages 0-7 written (copies). */
		char path[4096];
		int fd;
		snprintf(path, sizeof(path), "%s/live_ops.dat", argv[1]);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && ftruncate(fd, ND * PG) == 0, "%s: %s", path, strerror(errno));
		d = mmap(NULL, ND * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(d != MAP_FAILED, "mmap: %s", strerror(errno));
		fill(d, ND, 4);
		CHECK(munmap(d, ND * PG) == 0 && fsync(fd) == 0, "file: %s", strerror(errno));
		d = mmap(NULL, ND * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		CHECK(d != MAP_FAILED, "mmap: %s", strerror(errno));
		close(fd);
		for (unsigned long i = 0; i < 8 * PG / 8; i++)
			((uint64_t *)d)[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL ^ 5;
	}
	e = mmap(NULL, NE * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(e != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(e, NE, 6);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	signal(SIGHUP, on_hup);
	if (execd) {
		printf("EXECD\n");
		fflush(stdout);
	} else {
		ready();
	}
	trigger_wait();

	for (unsigned long i = 0; i < NA; i++) {
		bool dropped = changed && i >= 16 && i < 32;
		unsigned char *p = a + i * PG;
		if (dropped) {
			CHECK(!memcmp(p, zero, PG), "page %lu of A was dropped but holds data", i);
			continue;
		}
		/* The pattern of page i: fill() over the whole area, page i. */
		for (unsigned long w = 0; w < PG / 8; w++)
			((uint64_t *)want)[w] = (uint64_t)(i * PG / 8 + w) * 0x9e3779b97f4a7c15ULL ^ 1;
		CHECK(!memcmp(p, want, PG), "page %lu of A lost its data", i);
	}
	for (unsigned long i = 0; i < NC; i++) {
		unsigned char *p = c + i * PG;
		if (changed && p >= cz && p < cz + PMD_PAGES * PG) {
			CHECK(!memcmp(p, zero, PG), "page %lu of C was dropped but holds data", i);
			continue;
		}
		for (unsigned long w = 0; w < PG / 8; w++)
			((uint64_t *)want)[w] = (uint64_t)(i * PG / 8 + w) * 0x9e3779b97f4a7c15ULL ^ 3;
		CHECK(!memcmp(p, want, PG), "page %lu of C lost its data", i);
	}
	for (unsigned long i = 0; d && i < ND; i++) {
		/* 0-7 hold our copies (pattern 5), but 0-3 were dropped if
		 * changed (the file's, 4); 8-15 the file's. */
		unsigned k = i < 8 && !(changed && i < 4) ? 5 : 4;
		for (unsigned long w = 0; w < PG / 8; w++)
			((uint64_t *)want)[w] = (uint64_t)(i * PG / 8 + w) * 0x9e3779b97f4a7c15ULL ^ k;
		CHECK(!memcmp(d + i * PG, want, PG), "page %lu of the private file mapping holds "
		      "%s", i, k == 4 ? "not the file's data" : "not its own copy");
	}
	for (unsigned long i = 0; i < NE; i++) {
		unsigned k = replaced ? 7 : 6;
		for (unsigned long w = 0; w < PG / 8; w++)
			((uint64_t *)want)[w] = (uint64_t)(i * PG / 8 + w) * 0x9e3779b97f4a7c15ULL ^ k;
		CHECK(!memcmp(e + i * PG, want, PG), "page %lu of the shared area holds %s", i,
		      replaced ? "the object it replaced" : "not its data");
	}
	CHECK(dontfork(b) == changed, "area B is %sDONTFORK, but the target %s it",
	      changed ? "not " : "", changed ? "marked" : "did not mark");
	pass();
}
