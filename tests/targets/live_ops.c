/*
 * Memory-map changes at a moment the test chooses, for live dumps.
 *
 *   live_ops
 *
 * Two anonymous areas hold a pattern. On SIGUSR1 (the test sends it
 * while rtcr waits between its last copy round and the freeze) the
 * target drops pages 16-31 of area A (MADV_DONTNEED: they read zeros),
 * marks area B MADV_DONTFORK (a flag only /proc/PID/smaps shows), and
 * prints "CHANGED". After restore and the trigger it checks A holds its
 * pattern except the dropped pages, which must read zeros, and that B is
 * DONTFORK exactly if it changed: a live dump that missed either would
 * restore the memory as it was before the change.
 *
 * On SIGUSR2 it execs itself ("live_ops exec"): the new program sets up
 * its areas again, prints "EXECD" and goes on as above (a live dump's
 * rounds were of the old program: it must be copied frozen).
 */
#include "target.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#define PG 4096UL
#define NA 64
#define NB 16

static unsigned char *a, *b;
static volatile sig_atomic_t changed;

static void fill(unsigned char *p, unsigned long n, unsigned k)
{
	for (unsigned long i = 0; i < n * PG / 8; i++)
		((uint64_t *)p)[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL ^ k;
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
	if (madvise(a + 16 * PG, 16 * PG, MADV_DONTNEED) || madvise(b, NB * PG, MADV_DONTFORK))
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
	fill(a, NA, 1);
	fill(b, NB, 2);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
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
	CHECK(dontfork(b) == changed, "area B is %sDONTFORK, but the target %s it",
	      changed ? "not " : "", changed ? "marked" : "did not mark");
	pass();
}
