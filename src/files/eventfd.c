/*
 * eventfd: a 64-bit counter. Kept: its value, EFD_SEMAPHORE, the status
 * flags (O_NONBLOCK). All of it is in /proc/PID/fdinfo ("eventfd-count"
 * in hex, "eventfd-semaphore"), so the dump reads nothing else. Restore
 * creates an eventfd with those flags and writes the count into it
 * (eventfd()'s initial value is only 32 bits wide).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

static bool eventfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[eventfd]");
}

static int eventfd_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
			Rtcr__Files *files)
{
	const char *cnt = fdinfo_field(fi->fdinfo, "eventfd-count");
	const char *sem = fdinfo_field(fi->fdinfo, "eventfd-semaphore");
	Rtcr__EventFd *ev;

	if (!cnt) {
		pr_err("fd %d: eventfd: no eventfd-count in its fdinfo", fi->fd);
		return -EINVAL;
	}
	ev = xzalloc(sizeof(*ev));
	rtcr__event_fd__init(ev);
	ev->count = strtoull(cnt, NULL, 16);
	/* Kernels before 6.2 print no semaphore line; their count is all
	 * that can be known (a semaphore eventfd would restore as counter). */
	ev->semaphore = sem && strtoul(sem, NULL, 10);
	ev->flags = fi->flags;
	out->eventfd = ev;
	return 0;
}

static int eventfd_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	if (!e->eventfd) {
		pr_err("fd %d: image entry lacks its eventfd", e->fd);
		return -EINVAL;
	}
	if (e->eventfd->count == UINT64_MAX) {
		pr_err("fd %d: eventfd: count %" PRIu64 " is out of range", e->fd, e->eventfd->count);
		return -EINVAL;
	}
	return 0;
}

static int eventfd_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const Rtcr__EventFd *ev = e->eventfd;
	int fd, err;

	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (ev->semaphore ? EFD_SEMAPHORE : 0));
	if (fd < 0) {
		err = errno;
		pr_err("fd %d: eventfd: %s", e->fd, strerror(err));
		return -err;
	}
	/* Nonblocking: a zero counter takes any valid count at once. */
	if (ev->count && write(fd, &ev->count, sizeof(ev->count)) != sizeof(ev->count)) {
		err = errno ? errno : EIO;
		pr_err("fd %d: eventfd: setting its count %" PRIu64 ": %s", e->fd, ev->count,
		       strerror(err));
		close(fd);
		return -err;
	}
	if (fcntl(fd, F_SETFL, ev->flags & ~O_ACCMODE) < 0) {
		err = errno;
		pr_err("fd %d: eventfd: flags %#x: %s", e->fd, ev->flags, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

static void eventfd_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__EventFd *ev = e->eventfd;

	if (!ev) {
		snprintf(buf, len, "eventfd ?");
		return;
	}
	snprintf(buf, len, "eventfd count %" PRIu64 "%s%s", ev->count,
		 ev->semaphore ? " semaphore" : "", ev->flags & O_NONBLOCK ? " nonblock" : "");
}

const struct fd_ops eventfd_fd_ops = {
	.name = "eventfd",
	.kind = RTCR__FD_KIND__FD_EVENTFD,
	.match = eventfd_match,
	.dump = eventfd_dump,
	.check = eventfd_check,
	.open = eventfd_open,
	.describe = eventfd_describe,
};
