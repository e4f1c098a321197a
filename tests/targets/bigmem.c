/*
 * argv[1] MiB of anonymous memory, every page written with a pattern that
 * depends on its index; checked after the trigger. Used for large dumps.
 */
#include "target.h"

#include <sys/mman.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	size_t len = mib << 20;
	unsigned long *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail("mmap %zu MiB", mib);
	for (size_t i = 0; i < len / sizeof(*p); i += 512)
		p[i] = i * 2654435761UL + 1;
	ready();
	trigger_wait();
	for (size_t i = 0; i < len / sizeof(*p); i++)
		CHECK(p[i] == (i % 512 ? 0 : i * 2654435761UL + 1), "word %zu differs", i);
	pass();
}
