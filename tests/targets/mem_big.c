/*
 * A large private anonymous area (256 MiB by default, or argv[1] MiB),
 * every page written with its own pattern: many page chunks to copy at
 * dump and restore. Checked word by word.
 */
#include "memcheck.h"

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256;
	size_t len = mib << 20;
	uint64_t *p;

	stdout_warm();
	p = map_anon(len, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(p, len, 42);
	ready();
	trigger_wait();
	check_fill("big area", p, len, 42);
	CHECK(resident(p, 1 << 20) == 256, "first MiB not resident after restore");
	pass();
}
