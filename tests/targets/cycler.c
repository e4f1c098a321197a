/*
 * A target for repeated dump/restore cycles: its state keeps changing
 * between them, so every image must hold the latest one.
 *
 *   cycler STATUSFILE
 *
 * Iteration i (from 0) fills page i % NP of a 4 MiB area with byte
 * (i * 13 + 1) & 0xff and bumps a .data and a stack counter; every 8
 * iterations the count goes to STATUSFILE (pwrite of a fixed-size
 * line, so the file never changes size). A 2 MiB heap buffer keeps a
 * fixed pattern. After the trigger: the heap checksum, the two counters
 * and every page of the area are what the count says they must be.
 */
#include "target.h"

#include <fcntl.h>
#include <sys/mman.h>

#define NP 1024
#define PG 4096

static volatile unsigned long data_count = 5000;

static void status(int fd, unsigned long n)
{
	char line[21];
	snprintf(line, sizeof(line), "%19lu\n", n);
	if (pwrite(fd, line, 20, 0) != 20)
		fail("status write: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	size_t hn = 2 << 20;
	unsigned char *heap = malloc(hn), *area;
	volatile unsigned long count = 0;
	unsigned long long hsum;
	int fd;

	if (argc < 2)
		fail("usage: cycler STATUSFILE");
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("%s: %s", argv[1], strerror(errno));
	status(fd, 0);
	for (size_t i = 0; i < hn; i++)
		heap[i] = (unsigned char)(i * 31 + 7);
	hsum = fnv(heap, hn);
	area = mmap(NULL, NP * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	memset(area, 0x5a, NP * PG);
	ready();
	while (!trigger_set(trigger_path())) {
		unsigned long i = count;
		memset(area + (i % NP) * PG, (int)((i * 13 + 1) & 0xff), PG);
		data_count++;
		count = i + 1;
		if (count % 8 == 0)
			status(fd, count);
		tick();
	}
	CHECK(fnv(heap, hn) == hsum, "heap pattern changed");
	CHECK(data_count - 5000 == count, "counters diverged: %lu vs %lu", data_count - 5000,
	      (unsigned long)count);
	for (unsigned long p = 0; p < NP; p++) {
		unsigned char want = 0x5a;
		if (count > p) {
			unsigned long last = p + NP * ((count - 1 - p) / NP);
			want = (unsigned char)((last * 13 + 1) & 0xff);
		}
		for (int b = 0; b < PG; b++)
			CHECK(area[p * PG + b] == want, "page %lu byte %d: %#x, want %#x (count %lu)", p,
			      b, area[p * PG + b], want, (unsigned long)count);
	}
	printf("count %lu\n", (unsigned long)count);
	pass();
}
