/*
 * Maps a file given as argv[1] (private, and writes one page of it), and
 * holds a heap pattern. For tests of files that change under an image.
 */
#include "target.h"

#include <fcntl.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	int fd;
	char *p;
	unsigned long long sum;

	if (argc < 2)
		fail("usage: mapper FILE");
	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		fail("open %s", argv[1]);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		fail("mmap");
	close(fd);
	memcpy(p, "private copy", 12);
	sum = fnv(p, 8192);
	ready();
	trigger_wait();
	CHECK(fnv(p, 8192) == sum, "mapping content differs");
	pass();
}
