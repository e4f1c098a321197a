/*
 * Helpers for the sc_* targets (tests/integration/syscalls.sh): targets
 * that block in one system call while they are checkpointed, and check
 * how the call ends after restore.
 */
#ifndef SCWAIT_H
#define SCWAIT_H

#include <signal.h>
#include <stdint.h>

#include "target.h"

static inline int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline struct timespec ns_to_ts(int64_t ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };
	return ts;
}

static inline int64_t ts_to_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* Raw system call: returns -errno on error, like the kernel. */
static inline long rawsys(long nr, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(nr, a, b, c, d, e, f);
	return r < 0 ? -errno : r;
}

static volatile sig_atomic_t handled;

static inline void on_signal(int sig)
{
	(void)sig;
	handled++;
}

/* A handler without SA_RESTART (so interrupted calls return EINTR). */
static inline void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
}

static inline void block(int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	CHECK(sigprocmask(SIG_BLOCK, &s, NULL) == 0, "sigprocmask: %s", strerror(errno));
}

#endif
