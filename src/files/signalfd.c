/*
 * signalfd: the set of signals it reads, and its status flags. The
 * signals themselves are pending signals of the process (restored with
 * the process), not state of the fd: a signal pending at the dump is read
 * through the restored signalfd as it would have been. The mask is
 * fdinfo's "sigmask" (bit N-1 for signal N); restore is one signalfd4()
 * with that mask, given to the kernel as is.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

static bool signalfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[signalfd]");
}

static int signalfd_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
			 Rtcr__Files *files)
{
	const char *m = fdinfo_field(fi->fdinfo, "sigmask");
	Rtcr__SignalFd *s;

	if (!m) {
		pr_err("fd %d: signalfd: no sigmask in its fdinfo", fi->fd);
		return -EINVAL;
	}
	s = xzalloc(sizeof(*s));
	rtcr__signal_fd__init(s);
	s->sigmask = strtoull(m, NULL, 16);
	s->flags = fi->flags;
	out->signalfd = s;
	return 0;
}

static int signalfd_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	if (!e->signalfd) {
		pr_err("fd %d: image entry lacks its signalfd", e->fd);
		return -EINVAL;
	}
	return 0;
}

static int signalfd_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const Rtcr__SignalFd *s = e->signalfd;
	uint64_t mask = s->sigmask;
	int fd, err;

	/* The raw call: glibc's sigset_t and sigaddset() hide the signals
	 * it uses itself, a mask may hold them. */
	fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask),
		     O_CLOEXEC | (s->flags & O_NONBLOCK));
	if (fd < 0) {
		err = errno;
		pr_err("fd %d: signalfd mask %#" PRIx64 ": %s", e->fd, mask, strerror(err));
		return -err;
	}
	if (fcntl(fd, F_SETFL, s->flags & ~O_ACCMODE) < 0) {
		err = errno;
		pr_err("fd %d: signalfd: flags %#x: %s", e->fd, s->flags, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

static void signalfd_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__SignalFd *s = e->signalfd;
	size_t n;
	bool any = false;

	if (!s) {
		snprintf(buf, len, "signalfd ?");
		return;
	}
	n = snprintf(buf, len, "signalfd mask ");
	for (int sig = 1; sig <= 64 && n < len; sig++) {
		if (!(s->sigmask & (1ULL << (sig - 1))))
			continue;
		n += snprintf(buf + n, len - n, "%s%s", any ? "," : "", sig_name(sig));
		any = true;
	}
	if (!any && n < len)
		n += snprintf(buf + n, len - n, "empty");
	if (s->flags & O_NONBLOCK && n < len)
		snprintf(buf + n, len - n, " nonblock");
}

const struct fd_ops signalfd_fd_ops = {
	.name = "signalfd",
	.kind = RTCR__FD_KIND__FD_SIGNALFD,
	.match = signalfd_match,
	.dump = signalfd_dump,
	.check = signalfd_check,
	.open = signalfd_open,
	.describe = signalfd_describe,
};
