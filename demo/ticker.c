/*
 * The demo's sample program: an ordinary process that knows nothing of
 * rtcr. It fills 64 MiB with a pattern, then prints a line every 300 ms
 * with its tick count and a checksum of that memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	size_t n = 64 << 20;
	unsigned char *mem = malloc(n);
	unsigned long sum = 0;
	struct timespec ts = { 0, 300 * 1000 * 1000 };

	for (size_t i = 0; i < n; i++)
		mem[i] = (unsigned char)(i * 31 + i / 4096);
	for (unsigned long tick = 1;; tick++) {
		sum = 0;
		for (size_t i = 0; i < n; i += 4096)
			sum = sum * 131 + mem[i] + mem[i + 4095];
		printf("ticker pid %d: tick %lu, memory checksum %016lx\n", getpid(), tick, sum);
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
}
