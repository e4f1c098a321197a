/*
 * Files reopened by path: regular files, directories, and the character
 * devices whose meaning is their name (/dev/null, /dev/zero, /dev/full,
 * /dev/random, /dev/urandom). Kept: access mode, status flags (O_APPEND,
 * O_NONBLOCK, O_DIRECT, O_NOATIME, O_SYNC...), offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

static bool simple_chardev(dev_t rdev)
{
	/* mem driver: 1:3 null, 1:5 zero, 1:7 full, 1:8 random, 1:9 urandom */
	if (major(rdev) != 1)
		return false;
	switch (minor(rdev)) {
	case 3: case 5: case 7: case 8: case 9:
		return true;
	}
	return false;
}

static bool deleted(const char *link)
{
	size_t n = strlen(link);
	return n > 10 && !strcmp(link + n - 10, " (deleted)");
}

static bool reg_match(const struct fd_info *fi)
{
	if (fi->link[0] != '/')
		return false;
	if (S_ISREG(fi->st.st_mode) || S_ISDIR(fi->st.st_mode))
		return true;
	return S_ISCHR(fi->st.st_mode) && simple_chardev(fi->st.st_rdev);
}

static int reg_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		    Rtcr__Files *files)
{
	Rtcr__RegFd *r;

	if (deleted(fi->link)) {
		pr_err("fd %d: %s: file deleted while open: not supported yet", fi->fd, fi->link);
		return -ENOTSUP;
	}
	r = xzalloc(sizeof(*r));
	rtcr__reg_fd__init(r);
	r->file = xzalloc(sizeof(*r->file));
	fileref_fill(r->file, fi->link, &fi->st);
	r->flags = fi->flags;
	r->pos = fi->pos;
	out->reg = r;
	return 0;
}

static int reg_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	char what[32];
	if (!e->reg || !e->reg->file) {
		pr_err("fd %d: image entry lacks its file", e->fd);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "fd %d", e->fd);
	return fileref_check(e->reg->file, what, ctx->same_boot, false);
}

static int reg_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const Rtcr__RegFd *r = e->reg;
	int flags = (r->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_CLOEXEC;
	int fd;

	fd = open(r->file->path, flags);
	if (fd < 0) {
		int err = errno;
		pr_err("fd %d: open %s: %s", e->fd, r->file->path, strerror(err));
		return -err;
	}
	(void)ctx;
	if (!(r->flags & O_PATH) && !S_ISCHR(r->file->mode) &&
	    lseek(fd, (off_t)r->pos, SEEK_SET) != (off_t)r->pos) {
		int err = errno;
		pr_err("fd %d: %s: seek to %llu: %s", e->fd, r->file->path,
		       (unsigned long long)r->pos, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

static void reg_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__RegFd *r = e->reg;
	const char *mode, *kind;

	switch (r->flags & O_ACCMODE) {
	case O_RDONLY: mode = "r"; break;
	case O_WRONLY: mode = "w"; break;
	default: mode = "rw"; break;
	}
	if (r->flags & O_PATH)
		mode = "path";
	kind = S_ISDIR(r->file->mode) ? "dir" : S_ISCHR(r->file->mode) ? "chr" : "file";
	snprintf(buf, len, "%-4s %s %s%s%s offset %llu", kind, r->file->path, mode,
		 r->flags & O_APPEND ? ",append" : "", r->flags & O_NONBLOCK ? ",nonblock" : "",
		 (unsigned long long)r->pos);
}


const struct fd_ops reg_fd_ops = {
	.name = "file",
	.kind = RTCR__FD_KIND__FD_REG,
	.match = reg_match,
	.dump = reg_dump,
	.check = reg_check,
	.open = reg_open,
	.describe = reg_describe,
};
