/*
 * Shared anonymous memory (MAP_SHARED | MAP_ANONYMOUS):
 *   sh    8 MiB, pages 0-99 and 1500 written, the rest never touched
 *   shro  written, then mprotect(PROT_READ)
 *   shnone written, then mprotect(PROT_NONE)
 * After restore: data back, holes zero, protections as before, and the
 * area is still shared: a forked child's write is seen by the parent
 * (while a private area's is not).
 */
#include <sys/wait.h>

#include "memcheck.h"

#define SH (8UL << 20)
#define SHRO (256UL << 10)

static struct mapsnap before;

static int written(size_t pg)
{
	return pg < 100 || pg == 1500;
}

int main(void)
{
	char *sh, *shro, *shnone, *priv;
	pid_t child;
	int st;

	stdout_warm();
	sh = map_anon(SH, PROT_READ | PROT_WRITE, MAP_SHARED);
	for (size_t pg = 0; pg < SH / PG; pg++)
		if (written(pg))
			fill(sh + pg * PG, PG, 100 + pg);
	shro = map_anon(SHRO, PROT_READ | PROT_WRITE, MAP_SHARED);
	fill(shro, SHRO, 5);
	CHECK(mprotect(shro, SHRO, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	shnone = map_anon(SHRO, PROT_READ | PROT_WRITE, MAP_SHARED);
	fill(shnone, SHRO, 6);
	CHECK(mprotect(shnone, SHRO, PROT_NONE) == 0, "mprotect: %s", strerror(errno));
	priv = map_anon(PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	priv[0] = 1;

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	for (size_t pg = 0; pg < SH / PG; pg++) {
		char what[64];
		snprintf(what, sizeof(what), "shared page %zu", pg);
		if (written(pg))
			check_fill(what, sh + pg * PG, PG, 100 + pg);
		else
			check_zero(what, sh + pg * PG, PG);
	}
	check_fill("read-only shared area", shro, SHRO, 5);
	CHECK(mprotect(shnone, SHRO, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	check_fill("PROT_NONE shared area", shnone, SHRO, 6);

	fflush(stdout);
	child = fork();
	CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		fill(sh + 2000 * PG, PG, 777);
		sh[0] = 0x42;
		priv[0] = 2;
		_exit(0);
	}
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child failed");
	CHECK(sh[0] == 0x42, "a child's write to the shared area is not seen: no longer shared");
	check_fill("shared page written by a child", sh + 2000 * PG, PG, 777);
	CHECK(priv[0] == 1, "a child's write to private memory is seen");
	pass();
}
