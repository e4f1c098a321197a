/*
 * Reference bandwidths measured in the same run as rtcr's figures:
 *   memcpy            in one process, warm buffers
 *   process_vm_readv  from another process's touched anonymous memory
 *   first touch       writing fresh anonymous memory (fault + zero)
 * Usage: membw MiB [repeats]   -> prints "memcpy=G pvr=G touch=G" (GiB/s, best of repeats)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	size_t len = mib << 20, chunk = 4 << 20;
	double best_cpy = 0, best_pvr = 0, best_touch = 0;
	int p2c[2], c2p[2];
	char *src, *dst;
	pid_t child;

	if (pipe(p2c) || pipe(c2p))
		return 1;
	child = fork();
	if (child == 0) {
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char c;
		for (size_t i = 0; i < len; i += 4096)
			m[i] = (char)i;
		if (write(c2p[1], &m, sizeof(m)) != sizeof(m))
			_exit(1);
		if (read(p2c[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	if (read(c2p[0], &src, sizeof(src)) != sizeof(src))
		return 1;
	dst = malloc(chunk);
	memset(dst, 1, chunk);
	for (int r = 0; r < reps; r++) {
		double t = now();
		for (size_t o = 0; o < len; o += chunk) {
			struct iovec l = { dst, chunk }, rv = { src + o, chunk };
			if (process_vm_readv(child, &l, 1, &rv, 1, 0) != (ssize_t)chunk)
				return 1;
		}
		t = now() - t;
		if (len / t > best_pvr)
			best_pvr = len / t;
	}
	{
		char *a = malloc(len);
		memset(a, 2, len);
		for (int r = 0; r < reps; r++) {
			double t = now();
			for (size_t o = 0; o < len; o += chunk)
				memcpy(dst, a + o, chunk);
			t = now() - t;
			if (len / t > best_cpy)
				best_cpy = len / t;
		}
		free(a);
	}
	for (int r = 0; r < reps; r++) {
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t = now();
		madvise(m, len, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < len; i += 4096)
			m[i] = 1;
		t = now() - t;
		munmap(m, len);
		if (len / t > best_touch)
			best_touch = len / t;
	}
	if (write(p2c[1], "x", 1) != 1)
		return 1;
	waitpid(child, NULL, 0);
	printf("memcpy=%.3f pvr=%.3f touch=%.3f\n", best_cpy / (1 << 30), best_pvr / (1 << 30),
	       best_touch / (1 << 30));
	return 0;
}
