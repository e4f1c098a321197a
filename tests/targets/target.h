/*
 * Helpers shared by test targets: programs that hold one kind of state,
 * get checkpointed and restored by a test, then check that state.
 *
 * Protocol (see tests/lib.sh):
 *   - a target sets its state up, then prints "READY" on stdout;
 *   - the test dumps it, restores it, then creates the trigger file whose
 *     path is in $RTCR_TRIGGER (or does what the target's comment says);
 *   - the target checks its state and prints "PASS" and exits 0, or
 *     prints "FAIL: reason" and exits 1. Exit 77 means "cannot run
 *     here" (e.g. the CPU lacks AVX-512): the test is skipped, not passed.
 *
 * trigger_wait() polls with raw system calls, which leave every register
 * but rax, rcx and r11 alone, so register-holding loops can use it too.
 */
#ifndef TARGET_H
#define TARGET_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void ready(void)
{
	printf("READY\n");
	fflush(stdout);
}

static inline __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static inline __attribute__((noreturn)) void pass(void)
{
	printf("PASS\n");
	fflush(stdout);
	exit(0);
}

static inline __attribute__((noreturn)) void skip(const char *why)
{
	printf("SKIP: %s\n", why);
	fflush(stdout);
	exit(77);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static inline const char *trigger_path(void)
{
	const char *p = getenv("RTCR_TRIGGER");
	if (!p)
		fail("RTCR_TRIGGER not set");
	return p;
}

/* Does the trigger file exist? One raw access(2). */
static inline int trigger_set(const char *path)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(SYS_access), "D"(path), "S"(0)
			 : "rcx", "r11", "memory");
	return r == 0;
}

/* Sleep 1 ms between polls with a raw nanosleep. */
static inline void tick(void)
{
	static const struct timespec ts = { 0, 1000000 };
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(SYS_nanosleep), "D"(&ts), "S"(0)
			 : "rcx", "r11", "memory");
	(void)r;
}

static inline void trigger_wait(void)
{
	const char *p = trigger_path();
	while (!trigger_set(p))
		tick();
}

/* FNV-1a over a buffer: cheap content checksum for memory checks. */
static inline unsigned long long fnv(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	unsigned long long h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

#endif
