/*
 * inotify instances: the status flags and every watch with its watch
 * descriptor, its mask and the path of the watched object.
 *
 * /proc/PID/fdinfo shows each watch as "inotify wd:W ino:I sdev:D mask:M
 * ignored_mask:0 fhandle-bytes:B fhandle-type:T f_handle:H" (hex). The
 * path is found from the file handle: open_by_handle_at() on a mount of
 * that filesystem, then readlink of /proc/self/fd/N; it is checked to
 * lead back to the same inode. A watch whose path cannot be found that
 * way is refused by name.
 *
 * Restore creates the instance in rtcr (open()) and adds the watches in
 * increasing wd order, each getting the wd it had: the kernel hands out
 * wds cyclically upward from the last one given, so numbers below the
 * next wanted one are used up by adding and removing a watch on a
 * private memfd; the IN_IGNORED events that leaves are drained before
 * the fd is handed out. A new watch after restore gets the number after
 * the highest restored wd (the original would continue after the last
 * one it ever gave, which may have been removed since).
 *
 * Queued events are kernel state rtcr cannot put back: a dump of an
 * instance with unread events is refused (the queue length is read with
 * FIONREAD on a copy of the fd taken with pidfd_getfd()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

/* Most wd numbers restore will step over (two calls each). */
#define MAX_WD_SKIP (1u << 22)

static bool inotify_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:inotify");
}

/* Bytes of events queued and not read, or -errno. */
static long queued_bytes(const struct fd_info *fi)
{
	int fd = fd_copy(fi), n = 0;
	long ret;

	if (fd < 0)
		return fd;
	ret = ioctl(fd, FIONREAD, &n) < 0 ? -errno : n;
	close(fd);
	return ret;
}

static void unescape_mountinfo(char *s)
{
	char *o = s;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
}

static int hexbytes(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/*
 * The path of the object a watch is on: open its handle through each
 * mount of its filesystem until one gives a path that leads back to it.
 * Returns a malloc'ed path and fills st, or NULL.
 */
static char *handle_path(unsigned sdev, unsigned long ino, struct file_handle *fh,
			 struct stat *st)
{
	char *mi = NULL, *line, *save = NULL, *found = NULL;
	unsigned maj = sdev >> 20, min = sdev & 0xfffff;

	if (read_file("/proc/self/mountinfo", &mi) < 0)
		return NULL;
	for (line = strtok_r(mi, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		unsigned a, b;
		char mnt[4096], lnk[64], *p;
		int mfd, fd;

		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &a, &b, mnt) != 3 || a != maj || b != min)
			continue;
		unescape_mountinfo(mnt);
		mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (mfd < 0)
			continue;
		fd = (int)syscall(SYS_open_by_handle_at, mfd, fh, O_PATH | O_CLOEXEC);
		close(mfd);
		if (fd < 0)
			continue;
		snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", fd);
		p = xreadlink(lnk);
		close(fd);
		if (p && p[0] == '/' && lstat(p, st) == 0 && st->st_ino == ino &&
		    major(st->st_dev) == maj && minor(st->st_dev) == min)
			found = p;
		else
			free(p);
	}
	free(mi);
	return found;
}

static int cmp_wd(const void *a, const void *b)
{
	const Rtcr__InotifyWatch *x = *(Rtcr__InotifyWatch *const *)a;
	const Rtcr__InotifyWatch *y = *(Rtcr__InotifyWatch *const *)b;
	return (x->wd > y->wd) - (x->wd < y->wd);
}

static int inotify_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
			Rtcr__Files *files)
{
	Rtcr__InotifyFd *in = xzalloc(sizeof(*in));
	char who[48] = "";
	const char *line;
	size_t cap = 0;
	long q;

	if (fc->nprocs > 1)
		snprintf(who, sizeof(who), "pid %d: ", fi->pid);
	rtcr__inotify_fd__init(in);
	in->flags = fi->flags;
	out->inotify = in;

	q = queued_bytes(fi);
	if (q < 0) {
		pr_err("%sfd %d: inotify: cannot read the length of its event queue: %s", who, fi->fd,
		       strerror((int)-q));
		return (int)q;
	}
	if (q > 0) {
		pr_err("%sfd %d: inotify: %ld bytes of events not read yet: not supported "
		       "(queued events cannot be put back)", who, fi->fd, q);
		return -ENOTSUP;
	}
	for (line = fi->fdinfo; line && *line; line = strchr(line, '\n')) {
		unsigned wd, sdev, mask, ign, hbytes, htype;
		unsigned long ino;
		int used = 0;
		struct file_handle *fh;
		Rtcr__InotifyWatch *w;
		struct stat st;
		char *path;

		if (*line == '\n')
			line++;
		if (strncmp(line, "inotify ", 8))
			continue;
		if (sscanf(line, "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x %n", &wd, &ino,
			   &sdev, &mask, &ign, &used) < 5 || !used) {
			pr_err("%sfd %d: inotify: cannot parse its fdinfo line '%.80s'", who, fi->fd, line);
			return -EINVAL;
		}
		if (sscanf(line + used, "fhandle-bytes:%x fhandle-type:%x f_handle:", &hbytes,
			   &htype) != 2 || hbytes > MAX_HANDLE_SZ || !strstr(line + used, "f_handle:")) {
			pr_err("%sfd %d: inotify: watch %u on inode %lu of device %u:%u: the "
			       "filesystem gives no file handle, its path cannot be found: not supported",
			       who, fi->fd, wd, ino, sdev >> 20, sdev & 0xfffff);
			return -ENOTSUP;
		}
		fh = xzalloc(sizeof(*fh) + MAX_HANDLE_SZ);
		fh->handle_bytes = hbytes;
		fh->handle_type = (int)htype;
		if (hexbytes(strstr(line + used, "f_handle:") + 9, fh->f_handle, hbytes)) {
			free(fh);
			pr_err("%sfd %d: inotify: cannot parse the file handle of watch %u", who, fi->fd,
			       wd);
			return -EINVAL;
		}
		path = handle_path(sdev, ino, fh, &st);
		free(fh);
		if (!path) {
			pr_err("%sfd %d: inotify: watch %u on inode %lu of device %u:%u: its path cannot "
			       "be found: not supported", who, fi->fd, wd, ino, sdev >> 20, sdev & 0xfffff);
			return -ENOTSUP;
		}
		if (in->n_watches == cap)
			in->watches = xrealloc(in->watches, (cap = cap ? cap * 2 : 8) * sizeof(*in->watches));
		w = xzalloc(sizeof(*w));
		rtcr__inotify_watch__init(w);
		w->wd = (int32_t)wd;
		w->mask = mask;
		w->file = xzalloc(sizeof(*w->file));
		fileref_fill(w->file, path, &st);
		free(path);
		in->watches[in->n_watches++] = w;
	}
	if (in->n_watches > 1)
		qsort(in->watches, in->n_watches, sizeof(*in->watches), cmp_wd);
	return 0;
}

static int inotify_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	const Rtcr__InotifyFd *in = e->inotify;

	if (!in) {
		pr_err("fd %d: image entry lacks its inotify part", e->fd);
		return -EINVAL;
	}
	for (size_t i = 0; i < in->n_watches; i++) {
		const Rtcr__InotifyWatch *w = in->watches[i];
		struct stat st;

		if (!w->file || !w->file->path || w->wd <= 0 ||
		    (i && w->wd <= in->watches[i - 1]->wd)) {
			pr_err("fd %d: inotify: bad watch entry in the image", e->fd);
			return -EINVAL;
		}
		/* The object itself, not its size or time: it is watched
		 * because it changes. */
		if (lstat(w->file->path, &st) < 0) {
			int err = errno;
			pr_err("fd %d: inotify: watch %d: %s: %s", e->fd, w->wd, w->file->path,
			       err == ENOENT ? "is missing" : strerror(err));
			return -err;
		}
		if ((st.st_mode & S_IFMT) != (w->file->mode & S_IFMT) ||
		    (ctx->same_boot && (st.st_dev != w->file->dev || st.st_ino != w->file->ino))) {
			pr_err("fd %d: inotify: watch %d: %s is a different file than at dump time",
			       e->fd, w->wd, w->file->path);
			return -ESTALE;
		}
	}
	return 0;
}

static void drain(int fd)
{
	char buf[16384];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int inotify_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const Rtcr__InotifyFd *in = e->inotify;
	int fd, dummy = -1, last = 0, ret = 0;
	unsigned skipped = 0;
	char dpath[64];

	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0) {
		pr_perror("fd %d: inotify_init1", e->fd);
		return -errno;
	}
	for (size_t i = 0; i < in->n_watches && !ret; i++) {
		const Rtcr__InotifyWatch *w = in->watches[i];
		uint32_t mask = w->mask;
		int got;

		/* Use up the numbers below this wd. */
		if (w->wd - last - 1 > (int)(MAX_WD_SKIP - skipped)) {
			pr_err("fd %d: inotify: watch %d: more than %u watch numbers to step over",
			       e->fd, w->wd, MAX_WD_SKIP);
			ret = -E2BIG;
			break;
		}
		while (last < w->wd - 1) {
			if (dummy < 0) {
				dummy = memfd_create("rtcr-inotify-wd", MFD_CLOEXEC);
				if (dummy < 0) {
					ret = -errno;
					pr_perror("fd %d: inotify: memfd_create", e->fd);
					break;
				}
				snprintf(dpath, sizeof(dpath), "/proc/self/fd/%d", dummy);
			}
			got = inotify_add_watch(fd, dpath, IN_DELETE_SELF);
			if (got < 0 || got >= w->wd || inotify_rm_watch(fd, got) < 0) {
				ret = got < 0 ? -errno : -EIO;
				pr_err("fd %d: inotify: stepping over watch numbers below %d: %s", e->fd,
				       w->wd, got < 0 ? strerror(errno) : "unexpected number");
				break;
			}
			last = got;
			if (++skipped % 1024 == 0)
				drain(fd);
		}
		if (ret)
			break;
		if (S_ISLNK(w->file->mode))
			mask |= IN_DONT_FOLLOW;
		got = inotify_add_watch(fd, w->file->path, mask);
		if (got < 0) {
			ret = -errno;
			pr_perror("fd %d: inotify: watch %d: %s", e->fd, w->wd, w->file->path);
		} else if (got != w->wd) {
			pr_err("fd %d: inotify: watch on %s got wd %d, expected %d", e->fd, w->file->path,
			       got, w->wd);
			ret = -EIO;
		}
		last = got;
	}
	if (dummy >= 0)
		close(dummy);
	/* The stepped-over numbers left IN_IGNORED events: the queue starts
	 * empty, as it was at dump. */
	drain(fd);
	if (!ret && fcntl(fd, F_SETFL, in->flags & ~O_ACCMODE) < 0) {
		ret = -errno;
		pr_perror("fd %d: inotify: flags %#x", e->fd, in->flags);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	(void)ctx;
	return fd;
}

static const struct {
	uint32_t bit;
	const char *name;
} in_names[] = {
	{ IN_ACCESS, "access" }, { IN_MODIFY, "modify" }, { IN_ATTRIB, "attrib" },
	{ IN_CLOSE_WRITE, "close_write" }, { IN_CLOSE_NOWRITE, "close_nowrite" },
	{ IN_OPEN, "open" }, { IN_MOVED_FROM, "moved_from" }, { IN_MOVED_TO, "moved_to" },
	{ IN_CREATE, "create" }, { IN_DELETE, "delete" }, { IN_DELETE_SELF, "delete_self" },
	{ IN_MOVE_SELF, "move_self" }, { IN_ONESHOT, "oneshot" },
	{ IN_EXCL_UNLINK, "excl_unlink" },
};

static void inotify_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__InotifyFd *in = e->inotify;
	size_t k;

	if (!in) {
		snprintf(buf, len, "inotify (no details)");
		return;
	}
	k = snprintf(buf, len, "inotify %zu watch%s%s", in->n_watches,
		     in->n_watches == 1 ? "" : "es", in->n_watches ? ":" : "");
	for (size_t i = 0; i < in->n_watches && k < len; i++) {
		const Rtcr__InotifyWatch *w = in->watches[i];
		uint32_t m = w->mask;
		bool first = true;

		k += snprintf(buf + k, len - k, "%s wd %d %s (", i ? "," : "", w->wd,
			      w->file ? w->file->path : "?");
		if ((m & IN_ALL_EVENTS) == IN_ALL_EVENTS) {
			k += snprintf(buf + k, len - k, "all");
			m &= ~(uint32_t)IN_ALL_EVENTS;
			first = false;
		}
		for (size_t b = 0; b < ARRAY_SIZE(in_names) && k < len; b++)
			if (m & in_names[b].bit) {
				k += snprintf(buf + k, len - k, "%s%s", first ? "" : ",", in_names[b].name);
				first = false;
			}
		if (k < len)
			k += snprintf(buf + k, len - k, ")");
	}
	if (k < len && (in->flags & O_NONBLOCK))
		snprintf(buf + k, len - k, ", nonblock");
}

const struct fd_ops inotify_fd_ops = {
	.name = "inotify",
	.kind = RTCR__FD_KIND__FD_INOTIFY,
	.match = inotify_match,
	.dump = inotify_dump,
	.check = inotify_check,
	.open = inotify_open,
	.describe = inotify_describe,
};
