/*
 * Memory that changes between checkpoints, for incremental dumps.
 *
 *   mem_incr [PAGES [PERCENT]]    (default 4096 pages, 5 %)
 *
 * Every page of an anonymous area holds a pattern of (page index,
 * version). When the file "$RTCR_TRIGGER.stepK" appears (K = 1, 2, ...),
 * the target rewrites PERCENT % of the pages (chosen by K) with version
 * K; at step 2 it also drops some pages (MADV_DONTNEED: they read as
 * zeros) and replaces a second area by a new mapping at the same address
 * (a new area for the tracker); at step 3 it forks a child that sleeps
 * (and dies with it). It prints "STEP K" when done.
 *
 * The trigger file's content is the number of the last step the test
 * saw done before the dump it restored: after the trigger the target
 * checks it is at that step and that every page holds what its own
 * bookkeeping says (a page from the wrong checkpoint, or a missing one,
 * fails).
 */
#include "target.h"

#include <stdint.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define PG 4096UL

static unsigned char *area, *area2;
static int *version;          /* per page of area; -1: dropped (zeros) */
static unsigned long npages, pct;
static int step;

static uint64_t word(unsigned long i, int v, unsigned k)
{
	return ((uint64_t)i << 32) ^ ((uint64_t)(unsigned)v * 0x9e3779b97f4a7c15ULL) ^ k;
}

static void fill(unsigned char *base, unsigned long i, int v)
{
	uint64_t *w = (uint64_t *)(base + i * PG);
	for (unsigned k = 0; k < PG / 8; k++)
		w[k] = word(i, v, k);
}

static int check(const unsigned char *base, unsigned long i, int v)
{
	const uint64_t *w = (const uint64_t *)(base + i * PG);
	for (unsigned k = 0; k < PG / 8; k++)
		if (w[k] != (v < 0 ? 0 : word(i, v, k)))
			return 0;
	return 1;
}

static int chosen(unsigned long i, int k)
{
	return (i * 2654435761UL + (unsigned long)k * 40503UL) % 100 < pct;
}

static void do_step(int k)
{
	for (unsigned long i = 0; i < npages; i++)
		if (chosen(i, k)) {
			fill(area, i, k);
			version[i] = k;
		}
	if (k == 2) {
		/* Dropped pages, and a new area where another was. */
		for (unsigned long i = 3; i < npages; i += 97) {
			madvise(area + i * PG, PG, MADV_DONTNEED);
			version[i] = -1;
		}
		if (mmap(area2, 16 * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != area2)
			fail("remapping the second area");
		for (unsigned long i = 0; i < 16; i++)
			fill(area2, i, 1000 + k);
	}
	if (k == 3 && fork() == 0) {
		/* A child made after tracking began: it inherits the tracker's
		 * fd, and its memory is not tracked. It dies with the parent. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	step = k;
}

int main(int argc, char **argv)
{
	const char *trig = trigger_path();
	char path[4096];
	int expect = -1;
	FILE *f;

	npages = argc > 1 ? strtoul(argv[1], NULL, 0) : 4096;
	pct = argc > 2 ? strtoul(argv[2], NULL, 0) : 5;
	area = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	area2 = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	version = calloc(npages, sizeof(int));
	if (area == MAP_FAILED || area2 == MAP_FAILED || !version)
		fail("setup");
	for (unsigned long i = 0; i < npages; i++)
		fill(area, i, 0);
	for (unsigned long i = 0; i < 16; i++)
		fill(area2, i, 1000);
	ready();
	while (!trigger_set(trig)) {
		snprintf(path, sizeof(path), "%s.step%d", trig, step + 1);
		if (trigger_set(path)) {
			do_step(step + 1);
			printf("STEP %d\n", step);
			fflush(stdout);
		}
		tick();
	}
	f = fopen(trig, "r");
	if (!f || fscanf(f, "%d", &expect) != 1)
		fail("the trigger file holds no step number");
	fclose(f);
	CHECK(step == expect, "at step %d, the checkpoint restored was taken at step %d", step,
	      expect);
	for (unsigned long i = 0; i < npages; i++)
		CHECK(check(area, i, version[i]), "page %lu does not hold version %d", i, version[i]);
	for (unsigned long i = 0; i < 16; i++)
		CHECK(check(area2, i, step >= 2 ? 1002 : 1000), "page %lu of the second area", i);
	pass();
}
