/*
 * memfds held as fds. The memfd itself is a memory object (mem/memobj.h):
 * its name, size, seals, mode and contents are stored once in the OBJECTS
 * record, whether the tree maps it, holds fds on it, or both. The fd
 * entry keeps the object's identity (dev/ino: memobj_collect_fds() finds
 * or adds the object and sets its id), its open flags and offset.
 *
 * Restore: memobj_prepare() has re-created every object before the
 * descriptions are opened; the fd is a fresh open of rtcr's fd of the
 * object through /proc/self/fd with the saved flags, so it is the very
 * file the restored mappings map. Seals go on once every process has
 * its mappings (memobj_all_mapped()).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"
#include "mem/memobj.h"

static bool is_deleted(const char *link)
{
	size_t n = strlen(link);
	return n > 10 && !strcmp(link + n - 10, " (deleted)");
}

static bool memfd_match(const struct fd_info *fi)
{
	return !strncmp(fi->link, "/memfd:", 7) && is_deleted(fi->link) && S_ISREG(fi->st.st_mode);
}

Rtcr__ObjFd *objfd_fill(const struct fd_info *fi, const char *name)
{
	Rtcr__ObjFd *of = xzalloc(sizeof(*of));

	rtcr__obj_fd__init(of);
	of->dev = fi->st.st_dev;
	of->ino = fi->st.st_ino;
	of->flags = fi->flags;
	of->pos = fi->pos;
	of->name = xstrdup(name);
	return of;
}

int objfd_open(const Rtcr__Fd *e, const Rtcr__ObjFd *of, const struct files_restore_ctx *ctx,
	       const char *what)
{
	int flags = (of->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_CLOEXEC;
	int ofd = ctx->objs ? memobj_fd(ctx->objs, of->object) : -1, fd, err;
	char path[64];

	if (ofd < 0) {
		pr_err("fd %d: %s %s: its memory object %u was not re-created", e->fd, what,
		       of->name ? of->name : "?", of->object);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ofd);
	fd = open(path, flags);
	if (fd < 0) {
		err = errno;
		pr_err("fd %d: %s %s: reopening it: %s", e->fd, what, of->name ? of->name : "?",
		       strerror(err));
		return -err;
	}
	if (lseek(fd, (off_t)of->pos, SEEK_SET) != (off_t)of->pos) {
		err = errno;
		pr_err("fd %d: %s %s: seek to %llu: %s", e->fd, what, of->name ? of->name : "?",
		       (unsigned long long)of->pos, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

void objfd_describe(const Rtcr__ObjFd *of, const char *kind, char *buf, size_t len)
{
	const char *mode;

	if (!of) {
		snprintf(buf, len, "%s ?", kind);
		return;
	}
	switch (of->flags & O_ACCMODE) {
	case O_RDONLY: mode = "r"; break;
	case O_WRONLY: mode = "w"; break;
	default: mode = "rw"; break;
	}
	snprintf(buf, len, "%s %s %s%s%s offset %llu (object %u)", kind, of->name ? of->name : "?",
		 mode, of->flags & O_APPEND ? ",append" : "", of->flags & O_NONBLOCK ? ",nonblock" : "",
		 (unsigned long long)of->pos, of->object);
}

static int memfd_fd_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
			 Rtcr__Files *files)
{
	char path[64], name[300];
	struct statfs sf;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", fi->pid, fi->fd);
	if (statfs(path, &sf) == 0 && sf.f_type == HUGETLBFS_MAGIC) {
		pr_err("fd %d: %s: a hugetlb memfd: not supported", fi->fd, fi->link);
		return -ENOTSUP;
	}
	n = strlen(fi->link) - 7 - 10;
	snprintf(name, sizeof(name), "%.*s", (int)MIN(n, sizeof(name) - 1), fi->link + 7);
	out->memfd = objfd_fill(fi, name);
	return 0;
}

static int memfd_fd_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	if (!e->memfd) {
		pr_err("fd %d: image entry lacks its memfd", e->fd);
		return -EINVAL;
	}
	return 0;
}

static int memfd_fd_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	return objfd_open(e, e->memfd, ctx, "memfd");
}

static void memfd_fd_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	objfd_describe(e->memfd, "memfd", buf, len);
}

const struct fd_ops memfd_fd_ops = {
	.name = "memfd",
	.kind = RTCR__FD_KIND__FD_MEMFD,
	.match = memfd_match,
	.dump = memfd_fd_dump,
	.check = memfd_fd_check,
	.open = memfd_fd_open,
	.describe = memfd_fd_describe,
};
