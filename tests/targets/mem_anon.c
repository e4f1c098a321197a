/*
 * Private anonymous memory of every sort, and data deep in the stack:
 *   full     4 MiB, every page written
 *   sparse   64 MiB, a page written every MiB plus one 40-page run: the
 *            holes must come back as holes (zero, and not populated)
 *   untouched 16 MiB never accessed: zero, not populated
 *   zeroread 1 MiB only read (the shared zero page): reads as zero
 *   none     written, then mprotect(PROT_NONE): data survives
 *   ro       written, then mprotect(PROT_READ): data survives
 *   stack    300 frames of recursion, each with a 512-byte local
 * and /proc/self/maps is the same as before READY.
 */
#include "memcheck.h"

#define FULL   (4UL << 20)
#define SPARSE (64UL << 20)
#define UNTOUCHED (16UL << 20)
#define ZREAD  (1UL << 20)
#define SMALL  (256UL << 10)
#define DEPTH  300

static struct mapsnap before;
static char *full, *sparse, *untouched, *zread, *none, *ro;

static int sparse_written(size_t pg)
{
	return pg % 256 == 0 || (pg >= 5000 && pg < 5040);
}

static void setup_and_wait(void)
{
	volatile uint64_t sink = 0;

	full = map_anon(FULL, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(full, FULL, 1);

	sparse = map_anon(SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	for (size_t pg = 0; pg < SPARSE / PG; pg++)
		if (sparse_written(pg))
			fill(sparse + pg * PG, PG, 1000 + pg);

	untouched = map_anon(UNTOUCHED, PROT_READ | PROT_WRITE, MAP_PRIVATE);

	zread = map_anon(ZREAD, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	for (size_t off = 0; off < ZREAD; off += PG)
		sink += ((volatile char *)zread)[off];
	CHECK(sink == 0, "fresh anonymous memory not zero");

	none = map_anon(SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(none, SMALL, 3);
	CHECK(mprotect(none, SMALL, PROT_NONE) == 0, "mprotect PROT_NONE: %s", strerror(errno));

	ro = map_anon(SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(ro, SMALL, 4);
	CHECK(mprotect(ro, SMALL, PROT_READ) == 0, "mprotect PROT_READ: %s", strerror(errno));

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	/* Residency first: reading populates. */
	CHECK(resident(untouched, UNTOUCHED) == 0, "never-touched area has %zu resident pages",
	      resident(untouched, UNTOUCHED));
	{
		size_t r = resident(sparse, SPARSE), want = 0;
		for (size_t pg = 0; pg < SPARSE / PG; pg++)
			want += sparse_written(pg);
		CHECK(r == want, "sparse area: %zu pages resident, %zu were written (holes filled?)",
		      r, want);
	}
	check_fill("full", full, FULL, 1);
	for (size_t pg = 0; pg < SPARSE / PG; pg++) {
		char what[64];
		snprintf(what, sizeof(what), "sparse page %zu", pg);
		if (sparse_written(pg))
			check_fill(what, sparse + pg * PG, PG, 1000 + pg);
		else
			check_zero(what, sparse + pg * PG, PG);
	}
	check_zero("untouched", untouched, UNTOUCHED);
	check_zero("read-only-faulted (zero page)", zread, ZREAD);
	CHECK(mprotect(none, SMALL, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	check_fill("PROT_NONE area", none, SMALL, 3);
	check_fill("read-only area", ro, SMALL, 4);
	/* Still writable where it was, still private. */
	full[0] ^= 1;
	untouched[12345] = 7;
	CHECK(untouched[12345] == 7, "untouched area not writable");
}

static int deep(int n)
{
	volatile uint64_t local[64];
	int r;

	for (int i = 0; i < 64; i++)
		local[i] = pat(7000 + n, i);
	if (n == 0)
		setup_and_wait();
	else
		r = deep(n - 1);
	for (int i = 0; i < 64; i++)
		if (local[i] != pat(7000 + n, i))
			fail("stack frame %d word %d is %#llx, expected %#llx", n, i,
			     (unsigned long long)local[i], (unsigned long long)pat(7000 + n, i));
	return n == 0 ? 1 : r + 1;
}

int main(void)
{
	stdout_warm();
	CHECK(deep(DEPTH) == DEPTH + 1, "recursion");
	pass();
}
