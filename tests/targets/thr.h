/*
 * Helpers for the multi-threaded targets thr_*.c (tests/integration/
 * threads.sh). glibc 2.34+ has pthreads in libc, so these build with the
 * Makefile's plain "cc ... -lm" (dynamic and -static).
 *
 * Failures: any thread may call TFAIL/TCHECK; the first one prints
 * "FAIL: ..." and exits the process with status 1, later ones block.
 */
#ifndef THR_H
#define THR_H

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "target.h"

static pthread_mutex_t thr_fail_lock = PTHREAD_MUTEX_INITIALIZER;

#define TFAIL(...) do { pthread_mutex_lock(&thr_fail_lock); fail(__VA_ARGS__); } while (0)
#define TCHECK(cond, ...) do { if (!(cond)) TFAIL(__VA_ARGS__); } while (0)

static inline pid_t thr_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static inline int64_t thr_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void thr_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The system call thread tid of this process is blocked in, from
 * /proc/self/task/TID/syscall: its number, -1 if running, -2 if gone. */
static inline long thr_syscall_of(pid_t tid)
{
	char path[64], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -2;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -2;
	buf[n] = 0;
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	return strtol(buf, NULL, 10);
}

/* Wait (up to 5 s) until thread tid sits in system call nr, for READY. */
static inline void thr_wait_in_syscall(pid_t tid, long nr, const char *what)
{
	long cur = -1;
	for (int i = 0; i < 5000; i++) {
		cur = thr_syscall_of(tid);
		if (cur == nr)
			return;
		tick();
	}
	TFAIL("%s (tid %d) is not blocked in system call %ld after 5 s (%ld)", what, tid, nr, cur);
}

/* Number of threads in this process (/proc/self/task entries). */
static inline int thr_count(void)
{
	int n = 0, fd = open("/proc/self/status", O_RDONLY);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Wait (up to 2 s) until the process is down to n threads: a joined
 * thread may linger in the kernel a moment after its tid was cleared. */
static inline int thr_wait_count(int n)
{
	int c = -1;
	for (int i = 0; i < 2000; i++) {
		c = thr_count();
		if (c == n)
			break;
		tick();
	}
	return c;
}

/* Fail (exit 1 with "FAIL: msg") if still running N seconds from now:
 * a thread that never comes back must not hang the test. */
static const char *thr_watchdog_msg;

static inline void thr_watchdog_fire(int sig)
{
	(void)sig;
	if (write(1, "FAIL: ", 6) < 0 || write(1, thr_watchdog_msg, strlen(thr_watchdog_msg)) < 0 ||
	    write(1, "\n", 1) < 0)
		_exit(2);
	_exit(1);
}

static inline void thr_watchdog(unsigned seconds, const char *msg)
{
	thr_watchdog_msg = msg;
	signal(SIGALRM, thr_watchdog_fire);
	alarm(seconds);
}

/* Fixed-size status line at offset 0 (the file never changes size, so a
 * restore of an older image of it is accepted). */
static inline void thr_status(int fd, const char *line, size_t width)
{
	char buf[512];
	size_t n = strlen(line);
	if (width >= sizeof(buf))
		width = sizeof(buf) - 1;
	memset(buf, ' ', width);
	memcpy(buf, line, n < width - 1 ? n : width - 1);
	buf[width - 1] = '\n';
	if (pwrite(fd, buf, width, 0) != (ssize_t)width)
		TFAIL("status write: %s", strerror(errno));
}

#endif
