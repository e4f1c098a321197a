/*
 * timerfds across a checkpoint (the test may leave a gap of a few
 * seconds between dump and restore). Before READY:
 *   fd 5: CLOCK_MONOTONIC, every 100 ms, blocking, read up to date;
 *   fd 6: CLOCK_MONOTONIC one-shot, +2 s, relative;
 *   fd 7: CLOCK_MONOTONIC one-shot that expired (1 ms) and was not read,
 *         nonblocking, FD_CLOEXEC: 1 tick pending;
 *   fd 8: CLOCK_MONOTONIC every 100 ms, not read for 350 ms: 3 ticks
 *         pending, of which fdinfo shows only the first;
 *   fd 9: CLOCK_REALTIME one-shot, absolute, now + 3 s;
 *   fd 10: CLOCK_BOOTTIME, disarmed, never armed.
 * After the trigger:
 *   fd 6 has 0.5..2 s left (relative: the time away does not count, and
 *        it was not re-armed from scratch) and fires when it says;
 *   fd 7 reads exactly 1, then EAGAIN;
 *   fd 8 reads at least 3 (and not the time away's worth: at most 15);
 *   fd 5 keeps its 100 ms period over 5 periods;
 *   fd 9 expires at its absolute time (the time away counts): its time
 *        left matches the deadline, or it expired, not before it;
 *   fd 10 is still disarmed.
 * Every wait is a poll with a timeout: a timer that never fires fails.
 */
#include "target.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/timerfd.h>

#define MS 1000000LL
#define SEC 1000000000LL

static int64_t now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * SEC + ts.tv_nsec;
}

static int64_t ts_ns(struct timespec ts)
{
	return ts.tv_sec * SEC + ts.tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	return (struct timespec){ ns / SEC, ns % SEC };
}

static void mk(int at, clockid_t c, int flags, int sflags, int64_t value, int64_t interval)
{
	struct itimerspec its = { ns_ts(interval), ns_ts(value) };
	int fd = timerfd_create(c, flags);

	if (fd < 0 || dup3(fd, at, flags & TFD_CLOEXEC ? O_CLOEXEC : 0) != at)
		fail("timerfd at %d: %s", at, strerror(errno));
	close(fd);
	if ((value || interval) && timerfd_settime(at, sflags, &its, NULL))
		fail("timerfd_settime fd %d: %s", at, strerror(errno));
}

/* Wait for fd to be readable (at most ms) and read its ticks. */
static uint64_t wait_read(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, ms) != 1)
		fail("fd %d: no expiration within %d ms", fd, ms);
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		fail("read fd %d: %s", fd, strerror(errno));
	return v;
}

static int64_t left(int fd)
{
	struct itimerspec cur;
	if (timerfd_gettime(fd, &cur))
		fail("timerfd_gettime fd %d: %s", fd, strerror(errno));
	return ts_ns(cur.it_value);
}

int main(void)
{
	int64_t deadline9, t, rt, fire6, left6, left9, e;
	struct itimerspec cur;
	uint64_t v, sum;

	mk(5, CLOCK_MONOTONIC, 0, 0, 100 * MS, 100 * MS);
	mk(7, CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC, 0, 1 * MS, 0);
	mk(8, CLOCK_MONOTONIC, 0, 0, 100 * MS, 100 * MS);
	mk(10, CLOCK_BOOTTIME, 0, 0, 0, 0);
	wait_read(5, 1000);
	usleep(350 * 1000);
	deadline9 = now(CLOCK_REALTIME) + 3 * SEC;
	mk(9, CLOCK_REALTIME, 0, TFD_TIMER_ABSTIME, deadline9, 0);
	mk(6, CLOCK_MONOTONIC, 0, 0, 2 * SEC, 0);
	ready();
	trigger_wait();
	t = now(CLOCK_MONOTONIC);
	rt = now(CLOCK_REALTIME);
	left6 = left(6);
	left9 = left(9);
	fire6 = t + left6;

	CHECK(fcntl(7, F_GETFL) & O_NONBLOCK, "fd 7 lost O_NONBLOCK");
	CHECK(fcntl(7, F_GETFD) == FD_CLOEXEC, "fd 7 lost FD_CLOEXEC");
	CHECK(!(fcntl(5, F_GETFL) & O_NONBLOCK), "fd 5 became nonblocking");
	CHECK(fcntl(5, F_GETFD) == 0, "fd 5 gained FD_CLOEXEC");

	/* fd 6: relative one-shot, some of its 2 s still ahead. */
	CHECK(left6 >= 500 * MS && left6 <= 2 * SEC,
	      "fd 6 has %.3f s left, expected 0.5..2 s", left6 / 1e9);

	/* fd 7: the tick nobody read. */
	CHECK(read(7, &v, sizeof(v)) == sizeof(v), "fd 7: pending tick lost (%s)", strerror(errno));
	CHECK(v == 1, "fd 7 read %llu ticks, expected 1", (unsigned long long)v);
	CHECK(read(7, &v, sizeof(v)) < 0 && errno == EAGAIN, "fd 7 fired again");

	/* fd 8: the missed periods, all of them, and no more. */
	v = wait_read(8, 0);
	CHECK(v >= 3 && v <= 15, "fd 8 read %llu ticks, expected 3..15", (unsigned long long)v);

	/* fd 10: never armed. */
	CHECK(timerfd_gettime(10, &cur) == 0 && !ts_ns(cur.it_value) && !ts_ns(cur.it_interval),
	      "fd 10 is armed");

	/* fd 5: the period. Line up on an expiration, then time five. */
	wait_read(5, 1000);
	t = now(CLOCK_MONOTONIC);
	sum = 0;
	while (sum < 5)
		sum += wait_read(5, 1000);
	e = now(CLOCK_MONOTONIC) - t;
	CHECK(llabs(e - (int64_t)sum * 100 * MS) < 300 * MS,
	      "fd 5: %llu ticks in %.3f s, period 100 ms", (unsigned long long)sum, e / 1e9);
	CHECK(sum <= 8, "fd 5: %llu ticks in %.3f s", (unsigned long long)sum, e / 1e9);

	/* fd 6 fires when it said it would. */
	e = fire6 - now(CLOCK_MONOTONIC);
	v = wait_read(6, (int)(e > 0 ? e / MS : 0) + 1000);
	CHECK(v == 1, "fd 6 read %llu", (unsigned long long)v);
	if (e > 100 * MS) {
		e = now(CLOCK_MONOTONIC) - fire6;
		CHECK(llabs(e) < 300 * MS, "fd 6 fired %.3f s off what it said", e / 1e9);
	}

	/* fd 9: its absolute realtime deadline, whenever the trigger came. */
	if (left9)
		CHECK(llabs(deadline9 - rt - left9) < 300 * MS,
		      "fd 9 has %.3f s left, its deadline is in %.3f s", left9 / 1e9,
		      (deadline9 - rt) / 1e9);
	else
		CHECK(rt - deadline9 > -300 * MS, "fd 9 expired %.3f s before its absolute time",
		      (deadline9 - rt) / 1e9);
	v = wait_read(9, 5000);
	e = now(CLOCK_REALTIME) - deadline9;
	CHECK(v == 1, "fd 9 read %llu", (unsigned long long)v);
	CHECK(e >= -5 * MS, "fd 9 fired %.3f s before its absolute time", -e / 1e9);

	CHECK(left(6) == 0, "fd 6 re-armed itself");
	pass();
}
