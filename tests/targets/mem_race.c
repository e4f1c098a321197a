/*
 * A process that writes its memory as fast as it can while a live dump
 * copies it: the image must be the memory as it was at one instant.
 *
 *   mem_race [PAGES [HOT [SLOW_US [KIDS]]]]   (default 16384 pages, all hot, 0, 0)
 *
 * Every page of an anonymous area first holds its own index. Then the
 * loop k = 0, 1, 2, ... writes the value FILL + k into all 512 words of
 * page k % HOT (HOT <= PAGES; pages >= HOT keep their index), sleeping
 * SLOW_US microseconds every 64 pages if asked. The loop counter lives in
 * a register; the trigger file is polled every 4096 pages. After the
 * trigger, at a page boundary, every page must hold exactly what the loop
 * wrote last into it for the current k: a page copied at another moment
 * than the registers (or half a page) fails. Each write first checks the
 * page holds what the loop wrote into it last: a counter put back (the
 * registers of another moment) fails at once.
 *
 * With KIDS, that many children are forked once the memory is set up;
 * each runs the same loop on its own copy and checks it after the
 * trigger; the parent waits for them and passes only if all did.
 */
#include "target.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096UL
#define WORDS (PG / 8)
#define FILL 0x5a5a000000000000ULL

int main(int argc, char **argv)
{
	unsigned long npages = argc > 1 ? strtoul(argv[1], NULL, 0) : 16384;
	unsigned long hot = argc > 2 ? strtoul(argv[2], NULL, 0) : npages;
	unsigned long slow = argc > 3 ? strtoul(argv[3], NULL, 0) : 0;
	unsigned long nkids = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	const char *trig = trigger_path();
	pid_t kids[16];
	bool kid = false;
	uint64_t *mem, k;

	if (!hot || hot > npages)
		hot = npages;
	mem = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED, "mmap");
	for (unsigned long i = 0; i < npages; i++)
		for (unsigned long w = 0; w < WORDS; w++)
			mem[i * WORDS + w] = i;
	CHECK(nkids <= 16, "at most 16 children");
	for (unsigned long c = 0; c < nkids && !kid; c++) {
		kids[c] = fork();
		CHECK(kids[c] >= 0, "fork");
		kid = kids[c] == 0;
	}
	if (!kid)
		ready();
	for (k = 0;; k++) {
		uint64_t *p = mem + (k % hot) * WORDS;
		/* What this page got last: a counter that went back (registers
		 * put back by someone) or a page lost fails at once. */
		uint64_t prev = k < hot ? k % hot : FILL + k - hot;
		CHECK(p[0] == prev, "page %llu holds %#llx before write %llu, expected %#llx",
		      (unsigned long long)(k % hot), (unsigned long long)p[0], (unsigned long long)k,
		      (unsigned long long)prev);
		for (unsigned long w = 0; w < WORDS; w++)
			p[w] = FILL + k;
		if ((k & 4095) == 4095 && trigger_set(trig))
			break;
		if (slow && (k & 63) == 63) {
			struct timespec ts = { 0, (long)slow * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	k++;   /* pages written: 0..k-1 */
	for (unsigned long i = 0; i < npages; i++) {
		uint64_t want = i;
		if (i < hot && i < k)
			want = FILL + (k - 1 - ((k - 1 - i) % hot));
		for (unsigned long w = 0; w < WORDS; w++)
			CHECK(mem[i * WORDS + w] == want,
			      "page %lu word %lu: %#llx, expected %#llx (k = %llu)", i, w,
			      (unsigned long long)mem[i * WORDS + w], (unsigned long long)want,
			      (unsigned long long)k);
	}
	if (kid)
		exit(0);
	for (unsigned long c = 0; c < nkids; c++) {
		int st;
		CHECK(waitpid(kids[c], &st, 0) == kids[c], "waitpid");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %lu (pid %d) failed: %#x", c,
		      kids[c], st);
	}
	printf("checked %lu pages after %llu writes (and %lu children)\n", npages,
	       (unsigned long long)k, nkids);
	pass();
}
