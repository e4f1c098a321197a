/* Small helpers shared by every module. */
#ifndef RTCR_UTIL_H
#define RTCR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#undef PAGE_SIZE
#undef PAGE_MASK
#define PAGE_SIZE 4096UL
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Allocation failure is not recoverable in a checkpointer: report and exit. */
void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Full read/write, retrying on EINTR and short transfers.
 * Return 0, or -errno; a premature EOF on read is -ENODATA. */
int read_full(int fd, void *buf, size_t len) __must_check;
int write_full(int fd, const void *buf, size_t len) __must_check;
int pread_full(int fd, void *buf, size_t len, off_t off) __must_check;

/* Read a whole (small, /proc) file into a NUL-terminated malloc'ed buffer.
 * Returns length or -errno. */
ssize_t read_file(const char *path, char **out);
/* readlink into a malloc'ed string, or NULL with errno set. */
char *xreadlink(const char *path);

uint64_t now_ns(void);           /* CLOCK_MONOTONIC */
uint64_t realtime_ns(void);      /* CLOCK_REALTIME */

/* Parse a signal name/number list like "SIGUSR1" -> number; -1 if unknown. */
const char *sig_name(int sig);

/* "12.3 MiB" style formatting into buf. */
const char *fmt_bytes(char *buf, size_t len, uint64_t bytes);

#endif

/*
 * Fault injection for tests: if $RTCR_TEST_KILL_AT names this point,
 * rtcr kills itself with SIGKILL there (the one signal it cannot clean
 * up after), so tests can prove a target survives any interruption.
 */
void test_kill_point(const char *point);
/*
 * Also for tests: if $RTCR_TEST_PAUSE_AT names this point, rtcr creates
 * the file $RTCR_TEST_PAUSE_FILE and waits (at most 60 s) until the test
 * removes it, so the test can act at that exact moment.
 */
void test_pause_point(const char *point);
