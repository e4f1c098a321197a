/*
 * Target for bench/periodic_rt.sh: a periodic task (period 1 ms by
 * default) with a large touched memory, writing a few random pages each
 * period and recording how late each of its wakes is.
 *
 *   rttask MIB REPORT CTL [PAGES [PERIOD_US [fifo|other]]]
 *
 * Writes every byte of MIB MiB of anonymous private memory, tries
 * SCHED_FIFO priority 50 (unless "other"; falls back to SCHED_OTHER if
 * refused), then appends "READY pid=PID pages=N policy=fifo|other" to the
 * file REPORT and runs forever on a fixed schedule: wake k is intended at
 * t0 + k * PERIOD (clock_nanosleep TIMER_ABSTIME on CLOCK_MONOTONIC).
 * After each wake it records lateness = actual wake time - intended time,
 * then writes PAGES (16) whole pages chosen at random, and times those
 * writes ("work"). A wake later than one period (or more) skips the
 * ticks already past, like cyclictest: the next wake is the next tick
 * still ahead; the ticks skipped are counted as missed periods.
 *
 * Measurement windows: the trigger file CTL.runK (K = 1, 2, ... in order,
 * holding a number of periods T) resets the histogram at the next wake
 * and measures the next T ticks (wakes + skipped ticks = T), then appends
 *
 *   HIST K ticks=T wakes=W late_wakes=L skipped=S max_ns=M sum_ns=X
 *        work_max_ns=.. work_sum_ns=.. work_pages=.. work_short=N work_short_sum_ns=..
 *        b<10us=.. b<50us=.. ...
 *        b>=100ms=..
 *   BIGK n=.. t_ms,late_ms ...        (wakes >= 1 ms late: ms since the window's start, lateness)
 *
 * work_short: the periods whose writes took < 1 ms (not stopped by a
 * freeze in the middle), and their sum. late_wakes: wakes at least one period late; skipped: ticks that got no
 * wake at all (both count missed periods). SIGUSR1 appends the histogram
 * measured so far ("HIST sig ..."), whether a window runs or not.
 * Every inherited fd above 2 is closed at start (rtcr refuses a pipe whose
 * other end is outside the tree). REPORT is opened and closed for each
 * line; stdio should be /dev/null.
 * The trigger file is only polled between windows, never inside one.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
#define NB 11
#define NBIG 4096

static const uint64_t bound_ns[NB - 1] = {
	10000, 50000, 100000, 500000, 1000000, 2000000, 5000000, 10000000, 50000000, 100000000,
};
static const char *const bname[NB] = {
	"<10us", "<50us", "<100us", "<500us", "<1ms", "<2ms", "<5ms", "<10ms", "<50ms", "<100ms",
	">=100ms",
};

struct hist {
	uint64_t b[NB], ticks, wakes, late, skipped, max, sum, wmax, wsum, wpages, wshort, wshort_sum;
	unsigned nbig;
	uint32_t big_t[NBIG], big_l[NBIG];   /* us since the window's start, lateness us */
};

static const char *report;
static struct hist h;
static volatile sig_atomic_t want_sig;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void say(const char *fmt, ...)
{
	char buf[1 << 16];
	va_list ap;
	int n, fd;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	fd = open(report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, n) != n)
		exit(3);
	close(fd);
}

static void print_hist(const char *label)
{
	char line[1024], big[60000];
	int n = 0, m = 0;

	n += snprintf(line + n, sizeof(line) - n,
		      "HIST %s ticks=%llu wakes=%llu late_wakes=%llu skipped=%llu max_ns=%llu sum_ns=%llu "
		      "work_max_ns=%llu work_sum_ns=%llu work_pages=%llu work_short=%llu work_short_sum_ns=%llu",
		      label, (unsigned long long)h.ticks, (unsigned long long)h.wakes,
		      (unsigned long long)h.late, (unsigned long long)h.skipped,
		      (unsigned long long)h.max, (unsigned long long)h.sum, (unsigned long long)h.wmax,
		      (unsigned long long)h.wsum, (unsigned long long)h.wpages,
		      (unsigned long long)h.wshort, (unsigned long long)h.wshort_sum);
	for (int i = 0; i < NB; i++)
		n += snprintf(line + n, sizeof(line) - n, " b%s=%llu", bname[i], (unsigned long long)h.b[i]);
	say("%s", line);
	m += snprintf(big + m, sizeof(big) - m, "BIG%s n=%u", label, h.nbig);
	for (unsigned i = 0; i < h.nbig && m < (int)sizeof(big) - 40; i++)
		m += snprintf(big + m, sizeof(big) - m, " %.3f,%.3f", h.big_t[i] / 1e3, h.big_l[i] / 1e3);
	say("%s", big);
}

static void on_usr1(int sig)
{
	(void)sig;
	want_sig = 1;
}

static uint64_t rng;
static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);   /* splitmix64 */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
	unsigned long npages, pages = 16, period_us = 1000;
	const char *policy = "other";
	char path[4096];
	uint64_t *mem, period, next, wstart = 0, wticks = 0;
	unsigned k = 0;
	bool inwin = false;
	size_t len;
	struct sigaction sa;

	if (argc < 4 || argc > 7) {
		fprintf(stderr, "usage: rttask MIB REPORT CTL [PAGES [PERIOD_US [fifo|other]]]\n");
		return 2;
	}
	close_range(3, ~0U, 0);   /* fds inherited from the caller: not the task's */
	len = strtoul(argv[1], NULL, 10) << 20;
	report = argv[2];
	if (argc > 4)
		pages = strtoul(argv[4], NULL, 10);
	if (argc > 5)
		period_us = strtoul(argv[5], NULL, 10);
	npages = len / PG;
	period = period_us * 1000ULL;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || !npages || !period) {
		say("FAIL setup");
		return 1;
	}
	for (unsigned long i = 0; i < len / 8; i++)
		mem[i] = i;
	if (argc <= 6 || strcmp(argv[6], "other")) {
		struct sched_param sp = { .sched_priority = 50 };
		if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0)
			policy = "fifo";
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	rng = now_ns() ^ ((uint64_t)getpid() << 40);
	say("READY pid=%d pages=%lu policy=%s period_us=%lu pages_per_period=%lu", getpid(), npages,
	    policy, period_us, pages);
	next = now_ns() + period;
	for (;;) {
		struct timespec ts = { next / 1000000000ULL, next % 1000000000ULL };
		uint64_t t, late, w0, w1;

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
			;   /* EINTR (SIGUSR1, ptrace): sleep again until the same tick */
		t = now_ns();
		late = t - next;
		/* The work: PAGES random whole pages written. */
		w0 = now_ns();
		for (unsigned long j = 0; j < pages; j++) {
			uint64_t *p = mem + (next_rand() % npages) * (PG / 8);
			for (unsigned q = 0; q < PG / 8; q++)
				p[q] += q;
		}
		w1 = now_ns();
		if (inwin) {
			int b = 0;
			uint64_t skip = late / period;
			while (b < NB - 1 && late >= bound_ns[b])
				b++;
			h.b[b]++;
			h.wakes++;
			h.ticks++;
			h.sum += late;
			if (late > h.max)
				h.max = late;
			if (late >= period)
				h.late++;
			if (late >= 1000000 && h.nbig < NBIG) {
				h.big_t[h.nbig] = (next - wstart) / 1000;
				h.big_l[h.nbig++] = late / 1000;
			}
			if (skip > wticks - h.ticks)
				skip = wticks - h.ticks;
			h.skipped += skip;
			h.ticks += skip;
			h.wsum += w1 - w0;
			h.wpages += pages;
			if (w1 - w0 < 1000000) {   /* not hit by a freeze */
				h.wshort++;
				h.wshort_sum += w1 - w0;
			}
			if (w1 - w0 > h.wmax)
				h.wmax = w1 - w0;
		}
		/* Next tick still ahead (ticks already past are skipped). */
		next += period;
		if (next <= t)
			next += ((t - next) / period + 1) * period;
		if (want_sig) {
			want_sig = 0;
			print_hist("sig");
		}
		if (inwin && h.ticks >= wticks) {
			char label[16];
			inwin = false;
			snprintf(label, sizeof(label), "%u", k);
			print_hist(label);
		}
		if (!inwin) {
			FILE *f;
			unsigned long long n;
			snprintf(path, sizeof(path), "%s.run%u", argv[3], k + 1);
			f = fopen(path, "r");
			if (f) {
				if (fscanf(f, "%llu", &n) == 1 && n > 0) {
					k++;
					memset(&h, 0, sizeof(h));
					wticks = n;
					wstart = next;   /* the window's first tick */
					inwin = true;
				}
				fclose(f);
			}
		}
	}
}
