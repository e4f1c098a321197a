/*
 * FIFOs (named pipes) opened by path. Kept per fd: the path, open flags;
 * per FIFO (in its first fd in the tree): the bytes in flight and the
 * capacity. The bytes are copied without being consumed, as for pipes:
 * rtcr opens the FIFO again through /proc/PID/fd/N (read side,
 * nonblocking) and tee()s its buffer into a pipe of its own.
 *
 * Restore: rtcr opens the FIFO by path O_RDWR|O_NONBLOCK (a FIFO open
 * that never blocks: it is its own reader and writer), checks it is
 * empty (a FIFO that still holds bytes was kept open by a process
 * outside the image: refused, its data would come twice), writes the
 * bytes back, and opens each description from it through /proc/self/fd
 * with the saved mode. rtcr's own open is closed once every description
 * is open (fifos_prepared()); from then on the FIFO lives as long as the
 * restored fds hold it, and a reader whose writers are all gone reads
 * EOF as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

struct fifo_rt {
	const char *path;
	int fd;            /* rtcr's O_RDWR open */
};

static bool fifo_match(const struct fd_info *fi)
{
	return S_ISFIFO(fi->st.st_mode) && fi->link[0] == '/';
}

/* Is fi the first fd dumped as a FIFO on this FIFO in the tree? (One on
 * fds 0-2 is inherited stdio: it does not carry the bytes.) */
static bool first_of_fifo(const struct files_collect *fc, const struct fd_info *fi)
{
	for (int i = 0; i < fc->nprocs; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++) {
			const struct fd_info *o = &fc->procs[i].fds[j];
			if (o->st.st_dev == fi->st.st_dev && o->st.st_ino == fi->st.st_ino &&
			    fd_ops_of(o) == &fifo_fd_ops)
				return o == fi;
		}
	return true;
}

static int fifo_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		     Rtcr__Files *files)
{
	Rtcr__FifoFd *f = xzalloc(sizeof(*f));

	rtcr__fifo_fd__init(f);
	f->file = xzalloc(sizeof(*f->file));
	fileref_fill(f->file, fi->link, &fi->st);
	f->flags = fi->flags;
	out->fifo = f;
	if (!first_of_fifo(fc, fi))
		return 0;
	f->has_carries_data = f->carries_data = 1;
	f->has_capacity = f->has_data = 1;
	return pipe_peek(fi, &f->capacity, &f->data);
}

static int fifo_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	char what[32];

	if (!e->fifo || !e->fifo->file) {
		pr_err("fd %d: image entry lacks its FIFO", e->fd);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "fd %d", e->fd);
	return fileref_check(e->fifo->file, what, ctx->same_boot, false);
}

/* The entry of the image that carries this FIFO's data, if any. */
static const Rtcr__FifoFd *fifo_data(const struct files_restore_ctx *ctx, const char *path)
{
	for (size_t p = 0; p < ctx->nfiles; p++)
		for (size_t i = 0; i < ctx->files[p]->n_fds; i++) {
			const Rtcr__Fd *o = ctx->files[p]->fds[i];
			if (o->kind == RTCR__FD_KIND__FD_FIFO && o->fifo && o->fifo->carries_data &&
			    !strcmp(o->fifo->file->path, path))
				return o->fifo;
		}
	return NULL;
}

static int fifo_holder(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const char *path = e->fifo->file->path;
	const Rtcr__FifoFd *d;
	int fd, hi, n = 0, err;

	for (size_t i = 0; i < ctx->nfifo_rt; i++)
		if (!strcmp(ctx->fifo_rt[i].path, path))
			return ctx->fifo_rt[i].fd;
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		pr_err("fd %d: FIFO %s: %s", e->fd, path, strerror(err));
		return -err;
	}
	hi = fcntl(fd, F_DUPFD_CLOEXEC, ctx->private_base);
	err = errno;
	close(fd);
	if (hi < 0) {
		pr_err("fd %d: FIFO %s: moving rtcr's fd above %d: %s", e->fd, path,
		       ctx->private_base, strerror(err));
		return -err;
	}
	ctx->fifo_rt = xrealloc(ctx->fifo_rt, (ctx->nfifo_rt + 1) * sizeof(*ctx->fifo_rt));
	ctx->fifo_rt[ctx->nfifo_rt].path = path;
	ctx->fifo_rt[ctx->nfifo_rt++].fd = hi;
	if (ioctl(hi, FIONREAD, &n) == 0 && n > 0) {
		pr_err("fd %d: FIFO %s already holds %d bytes: a process outside the image keeps it "
		       "open, its data would come twice: not supported", e->fd, path, n);
		return -EBUSY;
	}
	d = fifo_data(ctx, path);
	if (d && d->data.len) {
		if (d->capacity && fcntl(hi, F_SETPIPE_SZ, d->capacity) < 0 &&
		    fcntl(hi, F_GETPIPE_SZ) < (int)d->data.len) {
			pr_err("fd %d: FIFO %s: cannot get a %u-byte buffer for its %zu bytes in flight",
			       e->fd, path, d->capacity, d->data.len);
			return -ENOSPC;
		}
		if (write(hi, d->data.data, d->data.len) != (ssize_t)d->data.len) {
			pr_perror("fd %d: FIFO %s: writing its %zu bytes back", e->fd, path, d->data.len);
			return -EIO;
		}
	}
	return hi;
}

static int fifo_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const Rtcr__FifoFd *f = e->fifo;
	int holder = fifo_holder(e, ctx), fd, err;
	char path[64];

	if (holder < 0)
		return holder;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", holder);
	fd = open(path, (f->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fcntl(fd, F_SETFL, f->flags & ~O_ACCMODE) < 0) {
		err = errno;
		pr_err("fd %d: FIFO %s: opening it: %s", e->fd, f->file->path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	return fd;
}

void fifos_prepared(struct files_restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nfifo_rt; i++)
		close(ctx->fifo_rt[i].fd);
	free(ctx->fifo_rt);
	ctx->fifo_rt = NULL;
	ctx->nfifo_rt = 0;
}

static void fifo_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__FifoFd *f = e->fifo;
	const char *mode;

	if (!f) {
		snprintf(buf, len, "fifo ?");
		return;
	}
	switch (f->flags & O_ACCMODE) {
	case O_RDONLY: mode = "r"; break;
	case O_WRONLY: mode = "w"; break;
	default: mode = "rw"; break;
	}
	snprintf(buf, len, "fifo %s %s%s", f->file->path, mode, f->flags & O_NONBLOCK ? ",nonblock" : "");
	if (f->carries_data) {
		size_t k = strlen(buf);
		snprintf(buf + k, len - k, ", %zu bytes in flight", f->data.len);
	}
}

const struct fd_ops fifo_fd_ops = {
	.name = "fifo",
	.kind = RTCR__FD_KIND__FD_FIFO,
	.match = fifo_match,
	.dump = fifo_dump,
	.check = fifo_check,
	.open = fifo_open,
	.describe = fifo_describe,
};
