/*
 * epoll instances: the status flags and the interest list, read from
 * /proc/PID/fdinfo (one "tfd: N events: X data: Y pos:P ino:I sdev:D"
 * line per item, in the kernel's order).
 *
 * An item is keyed by the (file, fd number) pair of the process that
 * added it, so the list cannot be rebuilt in rtcr: open() only creates
 * the instance, and install(), running inside the restored owner process
 * once every fd is at its number, adds each item with epoll_ctl() on the
 * process's own fd numbers. At dump every item's fd is checked to still
 * hold the very file the item watches (kcmp KCMP_EPOLL_TFD), in the owner
 * (the first process of the tree holding the epoll, where install() runs):
 * an item whose fd was closed or now holds another file cannot be added
 * again and is refused by name.
 *
 * fdinfo shows the current event mask: an EPOLLONESHOT item that fired
 * keeps only the private bits (EPOLLONESHOT, EPOLLET, EPOLLWAKEUP,
 * EPOLLEXCLUSIVE). epoll_ctl() always adds EPOLLERR|EPOLLHUP, so such an
 * item cannot be added disarmed; it is disarmed the way the kernel does
 * it: added first, alone with the other disarmed ones, with every event
 * bit, and made to fire by one epoll_wait() if its file is ready for
 * anything. If its file is ready for nothing, it stays armed for
 * EPOLLERR/EPOLLHUP only (documented).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

/* The bits the kernel keeps in a fired one-shot item (EP_PRIVATE_BITS). */
#define EP_PRIVATE (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)
/* Every readiness bit a file can report. */
#define EP_ANY (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | \
		EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP)

static bool epoll_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[eventpoll]");
}

static const struct fd_info *find_fd(const struct files_collect *fc, pid_t pid, int fd)
{
	for (int i = 0; i < fc->nprocs; i++) {
		if (fc->procs[i].pid != pid)
			continue;
		for (int j = 0; j < fc->procs[i].nfds; j++)
			if (fc->procs[i].fds[j].fd == fd)
				return &fc->procs[i].fds[j];
	}
	return NULL;
}

static bool same_object(const struct fd_info *t, unsigned long ino, unsigned sdev)
{
	/* fdinfo prints the kernel's dev_t: 12-bit major, 20-bit minor. */
	return t->st.st_ino == ino && major(t->st.st_dev) == (sdev >> 20) &&
	       minor(t->st.st_dev) == (sdev & 0xfffff);
}

static int epoll_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		      Rtcr__Files *files)
{
	Rtcr__EpollFd *ep = xzalloc(sizeof(*ep));
	bool owner = files_first_of_description(fc, fi);
	char who[48] = "";
	const char *line;
	size_t cap = 0;

	if (fc->nprocs > 1)
		snprintf(who, sizeof(who), "pid %d: ", fi->pid);
	rtcr__epoll_fd__init(ep);
	ep->flags = fi->flags;
	out->epoll = ep;
	for (line = fi->fdinfo; line && *line; line = strchr(line, '\n')) {
		Rtcr__EpollItem *it;
		int tfd, toff = 0;
		unsigned events, sdev;
		unsigned long long data, pos;
		unsigned long ino;

		if (*line == '\n')
			line++;
		if (strncmp(line, "tfd:", 4))
			continue;
		if (sscanf(line, "tfd: %d events: %x data: %llx pos:%lli ino:%lx sdev:%x", &tfd,
			   &events, &data, &pos, &ino, &sdev) != 6) {
			pr_err("%sfd %d: epoll: cannot parse its fdinfo line '%.80s'", who, fi->fd, line);
			return -EINVAL;
		}
		for (size_t k = 0; k < ep->n_items; k++)
			toff += ep->items[k]->tfd == tfd;
		if (owner) {
			const struct fd_info *t = find_fd(fc, fi->pid, tfd);
			struct kcmp_epoll_slot slot = { .efd = fi->fd, .tfd = tfd, .toff = toff };
			long r = -1;

			if (t)
				r = syscall(SYS_kcmp, fi->pid, fi->pid, KCMP_EPOLL_TFD, tfd, &slot);
			/* kcmp is exact (the same struct file); without it,
			 * the same object is the best that can be said. */
			if (!t || !same_object(t, ino, sdev) || (r != 0 && !(r < 0 && errno == ENOSYS))) {
				pr_err("%sfd %d: epoll: item for fd %d whose file is no longer at that fd: "
				       "not supported", who, fi->fd, tfd);
				return -ENOTSUP;
			}
		}
		if (ep->n_items == cap)
			ep->items = xrealloc(ep->items, (cap = cap ? cap * 2 : 8) * sizeof(*ep->items));
		it = xzalloc(sizeof(*it));
		rtcr__epoll_item__init(it);
		it->tfd = tfd;
		it->events = events;
		it->data = data;
		ep->items[ep->n_items++] = it;
	}
	return 0;
}

static int epoll_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	if (!e->epoll) {
		pr_err("fd %d: image entry lacks its epoll part", e->fd);
		return -EINVAL;
	}
	for (size_t i = 0; i < e->epoll->n_items; i++)
		if (e->epoll->items[i]->tfd < 0 || e->epoll->items[i]->tfd == e->fd) {
			pr_err("fd %d: epoll: item for fd %d is impossible", e->fd,
			       e->epoll->items[i]->tfd);
			return -EINVAL;
		}
	return 0;
}

static int epoll_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0) {
		pr_perror("fd %d: epoll_create1", e->fd);
		return -errno;
	}
	if (fcntl(fd, F_SETFL, e->epoll->flags & ~O_ACCMODE) < 0) {
		pr_perror("fd %d: epoll: flags %#x", e->fd, e->epoll->flags);
		close(fd);
		return -errno;
	}
	return fd;
}

static bool disarmed(const Rtcr__EpollItem *it)
{
	return (it->events & EPOLLONESHOT) && !(it->events & ~(uint32_t)EP_PRIVATE);
}

static int item_add(const Rtcr__Fd *e, const Rtcr__EpollItem *it, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = it->data };

	if (epoll_ctl(e->fd, EPOLL_CTL_ADD, it->tfd, &ev) < 0) {
		int err = errno;
		pr_err("fd %d: epoll: adding the item for fd %d (events %#x): %s", e->fd, it->tfd,
		       events, strerror(err));
		return -err;
	}
	return 0;
}

static int epoll_install(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	const Rtcr__EpollFd *ep = e->epoll;
	int ret;

	/* Fired one-shot items first, one at a time, before any other item
	 * is in the list (so no other item's edge is consumed): each is
	 * added with every event bit and fired by an epoll_wait() if its
	 * file is ready for anything; if not, it is brought down to the
	 * saved bits (the kernel adds EPOLLERR|EPOLLHUP). */
	for (size_t i = 0; i < ep->n_items; i++) {
		const Rtcr__EpollItem *it = ep->items[i];
		struct epoll_event ev = { .events = it->events, .data.u64 = it->data };
		int n;

		if (!disarmed(it))
			continue;
		ret = item_add(e, it, (it->events & ~(uint32_t)EPOLLEXCLUSIVE) | EP_ANY);
		if (ret)
			return ret;
		do
			n = epoll_wait(e->fd, &ev, 1, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			pr_perror("fd %d: epoll: epoll_wait", e->fd);
			return -errno;
		}
		if (n == 1)
			continue;
		ev.events = it->events;
		ev.data.u64 = it->data;
		if (epoll_ctl(e->fd, EPOLL_CTL_MOD, it->tfd, &ev) < 0) {
			pr_perror("fd %d: epoll: item for fd %d", e->fd, it->tfd);
			return -errno;
		}
		pr_debug("fd %d: epoll: one-shot item for fd %d left armed for EPOLLERR|EPOLLHUP "
			 "(its file is ready for nothing now)", e->fd, it->tfd);
	}
	for (size_t i = 0; i < ep->n_items; i++) {
		const Rtcr__EpollItem *it = ep->items[i];
		if (disarmed(it))
			continue;
		ret = item_add(e, it, it->events);
		if (ret)
			return ret;
	}
	return 0;
}

static const struct {
	uint32_t bit;
	const char *name;
} ev_names[] = {
	{ EPOLLIN, "in" }, { EPOLLOUT, "out" }, { EPOLLPRI, "pri" }, { EPOLLRDHUP, "rdhup" },
	{ EPOLLRDNORM, "rdnorm" }, { EPOLLRDBAND, "rdband" }, { EPOLLWRNORM, "wrnorm" },
	{ EPOLLWRBAND, "wrband" }, { EPOLLMSG, "msg" }, { EPOLLET, "et" },
	{ EPOLLONESHOT, "oneshot" }, { EPOLLWAKEUP, "wakeup" }, { EPOLLEXCLUSIVE, "exclusive" },
};

static void epoll_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__EpollFd *ep = e->epoll;
	size_t k;

	if (!ep) {
		snprintf(buf, len, "epoll (no details)");
		return;
	}
	k = snprintf(buf, len, "epoll %zu item%s%s", ep->n_items, ep->n_items == 1 ? "" : "s",
		     ep->n_items ? ":" : "");
	for (size_t i = 0; i < ep->n_items && k < len; i++) {
		const Rtcr__EpollItem *it = ep->items[i];
		bool first = true;

		k += snprintf(buf + k, len - k, "%s fd %d (", i ? "," : "", it->tfd);
		/* EPOLLERR and EPOLLHUP are always there: not shown. */
		for (size_t b = 0; b < ARRAY_SIZE(ev_names) && k < len; b++)
			if (it->events & ev_names[b].bit) {
				k += snprintf(buf + k, len - k, "%s%s", first ? "" : ",", ev_names[b].name);
				first = false;
			}
		if (k < len && disarmed(it))
			k += snprintf(buf + k, len - k, ",disarmed");
		if (k < len)
			k += snprintf(buf + k, len - k, ") data %#llx", (unsigned long long)it->data);
	}
	if (k < len && (ep->flags & O_NONBLOCK))
		snprintf(buf + k, len - k, ", nonblock");
}

const struct fd_ops epoll_fd_ops = {
	.name = "epoll",
	.kind = RTCR__FD_KIND__FD_EPOLL,
	.match = epoll_match,
	.dump = epoll_dump,
	.check = epoll_check,
	.open = epoll_open,
	.install = epoll_install,
	.describe = epoll_describe,
};
