/*
 * timerfd: clock, settime flags, the time to the next expiration and the
 * interval, the status flags (O_NONBLOCK), and the expirations not read
 * yet ("ticks"), which the program's next read() must return.
 *
 * Dump: fdinfo has all of it, but its "ticks" only counts the first
 * expiration of an interval timer that nobody read; the later ones are
 * counted when the timer is next looked at. So rtcr takes a copy of the
 * fd (pidfd_getfd: the same description), calls timerfd_gettime() on it,
 * which folds the missed periods into the ticks and re-arms the timer
 * (exactly what the program's own read or gettime would do), and reads
 * its fdinfo again.
 *
 * Restore: timerfd_create() with the clock and flags, timerfd_settime(),
 * then the ticks pending at the dump are put back with TFD_IOC_SET_TICKS
 * (the ioctl exists for checkpoint/restore, CONFIG_CHECKPOINT_RESTORE).
 *
 * Time spent away (between dump and restore):
 *  - relative timers (no TFD_TIMER_ABSTIME) are re-armed with the time
 *    that remained at the dump: the time away does not count, as for a
 *    process that was stopped. A monotonic clock on another boot has
 *    another origin anyway.
 *  - absolute timers keep their absolute expiration on CLOCK_REALTIME
 *    (always) and on the boot-relative clocks on the same boot: the time
 *    away counts, and a deadline passed meanwhile expires at once. On
 *    another boot a monotonic or boottime deadline means nothing, so it
 *    is re-armed at the remaining time from now (still TFD_TIMER_ABSTIME).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

#define NSEC 1000000000ULL

static bool timerfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[timerfd]");
}

/* clock_gettime() does not take the alarm clocks: their base clock. */
static clockid_t base_clock(int clockid)
{
	switch (clockid) {
	case CLOCK_REALTIME_ALARM: return CLOCK_REALTIME;
	case CLOCK_BOOTTIME_ALARM: return CLOCK_BOOTTIME;
	default: return clockid;
	}
}

static int clock_now(int clockid, uint64_t *ns)
{
	struct timespec ts;

	if (clock_gettime(base_clock(clockid), &ts) < 0)
		return -errno;
	*ns = (uint64_t)ts.tv_sec * NSEC + ts.tv_nsec;
	return 0;
}

static const char *clock_name(int clockid)
{
	switch (clockid) {
	case CLOCK_REALTIME: return "realtime";
	case CLOCK_MONOTONIC: return "monotonic";
	case CLOCK_BOOTTIME: return "boottime";
	case CLOCK_REALTIME_ALARM: return "realtime-alarm";
	case CLOCK_BOOTTIME_ALARM: return "boottime-alarm";
	default: return "clock?";
	}
}

static bool parse_pair(const char *v, uint64_t *ns)
{
	unsigned long long s, n;

	if (!v || sscanf(v, " (%llu, %llu)", &s, &n) != 2)
		return false;
	*ns = s * NSEC + n;
	return true;
}

/* fdinfo: clockid, ticks, settime flags (octal), it_value, it_interval. */
static int timerfd_parse(const char *fdinfo, Rtcr__TimerFd *t)
{
	const char *c = fdinfo_field(fdinfo, "clockid");
	const char *k = fdinfo_field(fdinfo, "ticks");
	const char *f = fdinfo_field(fdinfo, "settime flags");

	if (!c || !k || !f || !parse_pair(fdinfo_field(fdinfo, "it_value"), &t->value_ns) ||
	    !parse_pair(fdinfo_field(fdinfo, "it_interval"), &t->interval_ns))
		return -EINVAL;
	t->clockid = strtol(c, NULL, 10);
	t->ticks = strtoull(k, NULL, 10);
	t->settime_flags = strtoul(f, NULL, 8);
	return 0;
}

static int timerfd_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
			Rtcr__Files *files)
{
	Rtcr__TimerFd *t = xzalloc(sizeof(*t));
	int fd = -1, ret = 0;
	char path[64], *info = NULL;

	rtcr__timer_fd__init(t);
	out->timerfd = t;
	t->flags = fi->flags;
	fd = fd_copy(fi);
	if (fd < 0) {
		ret = fd;
		pr_err("fd %d: timerfd: taking a copy of it (pidfd_getfd): %s", fi->fd, strerror(-ret));
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	/* An expiration between gettime and the fdinfo read shows as an
	 * armed interval timer with no time left: look again. */
	for (int tries = 0; tries < 5; tries++) {
		struct itimerspec cur;
		ssize_t n;

		if (timerfd_gettime(fd, &cur) < 0) {
			ret = -errno;
			pr_perror("fd %d: timerfd: timerfd_gettime", fi->fd);
			goto out;
		}
		free(info);
		info = NULL;
		n = read_file(path, &info);
		if (n < 0) {
			ret = (int)n;
			pr_err("fd %d: timerfd: %s: %s", fi->fd, path, strerror((int)-n));
			goto out;
		}
		if (timerfd_parse(info, t)) {
			pr_err("fd %d: timerfd: cannot parse its fdinfo", fi->fd);
			ret = -EINVAL;
			goto out;
		}
		if (!(t->interval_ns && !t->value_ns && t->ticks))
			break;
	}
	if ((t->settime_flags & TFD_TIMER_ABSTIME) && t->value_ns) {
		uint64_t now;
		ret = clock_now(t->clockid, &now);
		if (ret) {
			pr_err("fd %d: timerfd: reading its clock %d: %s", fi->fd, t->clockid,
			       strerror(-ret));
			goto out;
		}
		t->has_abs_ns = true;
		t->abs_ns = now + t->value_ns;
	}
out:
	free(info);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Can this kernel put pending ticks back? */
static bool set_ticks_supported(void)
{
	static int known;   /* 0 unknown, 1 yes, -1 no */
	uint64_t one = 1;
	int fd;

	if (known)
		return known > 0;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	known = fd >= 0 && ioctl(fd, TFD_IOC_SET_TICKS, &one) == 0 ? 1 : -1;
	if (fd >= 0)
		close(fd);
	return known > 0;
}

static int timerfd_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	const Rtcr__TimerFd *t = e->timerfd;

	if (!t) {
		pr_err("fd %d: image entry lacks its timerfd", e->fd);
		return -EINVAL;
	}
	if (t->ticks && !set_ticks_supported()) {
		pr_err("fd %d: timerfd with %" PRIu64 " expirations not read: this kernel cannot "
		       "set them (TFD_IOC_SET_TICKS needs CONFIG_CHECKPOINT_RESTORE)", e->fd, t->ticks);
		return -ENOTSUP;
	}
	return 0;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = ns / NSEC, .tv_nsec = ns % NSEC };
}

/* Ticks of fd now, after letting timerfd_gettime() count missed periods. */
static int current_ticks(int fd, uint64_t *ticks)
{
	struct itimerspec cur;
	char path[64], *info = NULL;
	const char *k;
	ssize_t n;

	if (timerfd_gettime(fd, &cur) < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	n = read_file(path, &info);
	if (n < 0)
		return (int)n;
	k = fdinfo_field(info, "ticks");
	*ticks = k ? strtoull(k, NULL, 10) : 0;
	free(info);
	return k ? 0 : -EINVAL;
}

static int timerfd_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const Rtcr__TimerFd *t = e->timerfd;
	struct itimerspec its = { .it_interval = ns_ts(t->interval_ns) };
	int fd, err, flags = t->settime_flags;

	fd = timerfd_create(t->clockid, TFD_CLOEXEC | (t->flags & O_NONBLOCK));
	if (fd < 0) {
		err = errno;
		pr_err("fd %d: timerfd_create(%s): %s", e->fd, clock_name(t->clockid), strerror(err));
		return -err;
	}
	if (t->value_ns && (flags & TFD_TIMER_ABSTIME)) {
		uint64_t abs = t->abs_ns;
		bool keep = t->has_abs_ns && (ctx->same_boot || base_clock(t->clockid) == CLOCK_REALTIME);
		if (!keep) {
			err = -clock_now(t->clockid, &abs);
			if (err)
				goto fail;
			abs += t->value_ns;
		}
		its.it_value = ns_ts(abs);
	} else {
		its.it_value = ns_ts(t->value_ns);
	}
	/* A disarmed timer (value 0) keeps its interval and flags too. */
	if (timerfd_settime(fd, flags, &its, NULL) < 0) {
		err = errno;
		goto fail;
	}
	if (t->ticks) {
		/* settime cleared the ticks; an absolute deadline already
		 * passed may have added some of its own. */
		uint64_t now = 0, ticks;
		if (t->value_ns) {
			err = -current_ticks(fd, &now);
			if (err)
				goto fail;
		}
		ticks = t->ticks + now;
		if (ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
			err = errno;
			pr_err("fd %d: timerfd: putting back %" PRIu64 " expirations: %s", e->fd, ticks,
			       strerror(err));
			close(fd);
			return -err;
		}
	}
	if (fcntl(fd, F_SETFL, t->flags & ~O_ACCMODE) < 0) {
		err = errno;
		goto fail;
	}
	return fd;
fail:
	pr_err("fd %d: timerfd %s: arming it: %s", e->fd, clock_name(t->clockid), strerror(err));
	close(fd);
	return -err;
}

static void timerfd_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__TimerFd *t = e->timerfd;
	size_t n;

	if (!t) {
		snprintf(buf, len, "timerfd ?");
		return;
	}
	n = snprintf(buf, len, "timerfd %s", clock_name(t->clockid));
	if (n < len && t->interval_ns)
		n += snprintf(buf + n, len - n, " interval %.3fs", t->interval_ns / 1e9);
	if (n < len) {
		if (t->value_ns)
			n += snprintf(buf + n, len - n, " next in %.3fs%s", t->value_ns / 1e9,
				      t->settime_flags & TFD_TIMER_ABSTIME ? " (absolute)" : "");
		else
			n += snprintf(buf + n, len - n, " disarmed");
	}
	if (n < len && t->ticks)
		n += snprintf(buf + n, len - n, ", %" PRIu64 " tick%s pending", t->ticks,
			      t->ticks == 1 ? "" : "s");
	if (n < len && (t->flags & O_NONBLOCK))
		snprintf(buf + n, len - n, ", nonblock");
}

const struct fd_ops timerfd_fd_ops = {
	.name = "timerfd",
	.kind = RTCR__FD_KIND__FD_TIMERFD,
	.match = timerfd_match,
	.dump = timerfd_dump,
	.check = timerfd_check,
	.open = timerfd_open,
	.describe = timerfd_describe,
};
