/*
 * Target for bench/incremental.sh: memory that is rewritten between
 * incremental checkpoints, and times its own rewrites.
 *
 *   dirtier MIB REPORT CTL
 *
 * Writes every byte of MIB MiB of anonymous private memory (page i holds
 * a pattern of (i, version 0)), then appends "READY pid=PID pages=N" to
 * the file REPORT. It then polls (every 1 ms) for trigger files:
 *
 *   CTL.stepK (K = 1, 2, ... in order; the file holds a percentage P):
 *       picks exactly round(N * P / 100) distinct pages at random, then
 *       rewrites each whole page with version K, in address order, and
 *       appends "DONE K pages=M ns=T" to REPORT: T is the time of the
 *       rewrites alone (the random choice is made before the clock starts).
 *   CTL.check:
 *       checks every page holds the version its own bookkeeping says,
 *       appends "CHECK PASS" or "CHECK FAIL ..." and exits (0 or 1).
 *
 * REPORT is opened for each line and closed again, and stdio should be
 * /dev/null: the process holds no file whose size changes, so an image
 * taken before later lines were written still restores.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL

static const char *report;
static uint64_t *mem;
static uint8_t *version;
static uint32_t *chosen;
static unsigned long npages;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n, fd;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	fd = open(report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, n) != n)
		exit(3);
	close(fd);
}

static inline uint64_t seed_of(unsigned long i, unsigned v)
{
	return ((uint64_t)i << 32) ^ (v * 0x9e3779b97f4a7c15ULL);
}

static void fill(unsigned long i, unsigned v)
{
	uint64_t *w = mem + i * (PG / 8), s = seed_of(i, v);
	for (unsigned k = 0; k < PG / 8; k++)
		w[k] = s + k;
}

static int check(unsigned long i, unsigned v)
{
	const uint64_t *w = mem + i * (PG / 8), s = seed_of(i, v);
	uint64_t bad = 0;
	for (unsigned k = 0; k < PG / 8; k++)
		bad |= w[k] ^ (s + k);
	return !bad;
}

static uint64_t rng;
static uint64_t next_rand(void)
{
	/* splitmix64 */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Knuth's selection sampling: exactly m of npages, in address order. */
static unsigned long choose(unsigned long m)
{
	unsigned long got = 0;
	for (unsigned long i = 0; i < npages && got < m; i++) {
		double u = (next_rand() >> 11) * (1.0 / 9007199254740992.0);
		if ((npages - i) * u < m - got)
			chosen[got++] = i;
	}
	return got;
}

static int exists(const char *p)
{
	return access(p, F_OK) == 0;
}

int main(int argc, char **argv)
{
	char path[4096], checkp[4096];
	unsigned step = 0;
	size_t len;

	if (argc != 4) {
		fprintf(stderr, "usage: dirtier MIB REPORT CTL\n");
		return 2;
	}
	len = strtoul(argv[1], NULL, 10) << 20;
	report = argv[2];
	npages = len / PG;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	version = calloc(npages, 1);
	chosen = malloc(npages * sizeof(*chosen));
	if (mem == MAP_FAILED || !version || !chosen) {
		say("FAIL setup");
		return 1;
	}
	for (unsigned long i = 0; i < npages; i++)
		fill(i, 0);
	rng = now_ns() ^ ((uint64_t)getpid() << 40);
	snprintf(checkp, sizeof(checkp), "%s.check", argv[3]);
	say("READY pid=%d pages=%lu", getpid(), npages);
	for (;;) {
		struct timespec ms = { 0, 1000000 };
		FILE *f;
		unsigned long pct = 0, m, n;
		uint64_t t0, t1;

		if (exists(checkp)) {
			for (unsigned long i = 0; i < npages; i++)
				if (!check(i, version[i])) {
					say("CHECK FAIL page %lu does not hold version %u (at step %u)", i,
					    version[i], step);
					return 1;
				}
			say("CHECK PASS step=%u", step);
			return 0;
		}
		snprintf(path, sizeof(path), "%s.step%u", argv[3], step + 1);
		f = fopen(path, "r");
		if (!f) {
			nanosleep(&ms, NULL);
			continue;
		}
		if (fscanf(f, "%lu", &pct) != 1 || pct > 100) {
			fclose(f);
			nanosleep(&ms, NULL); /* being written: read it again */
			continue;
		}
		fclose(f);
		step++;
		m = (npages * pct + 50) / 100;
		n = choose(m);
		t0 = now_ns();
		for (unsigned long j = 0; j < n; j++) {
			fill(chosen[j], step);
			version[chosen[j]] = step;
		}
		t1 = now_ns();
		say("DONE %u pages=%lu ns=%llu", step, n, (unsigned long long)(t1 - t0));
	}
}
