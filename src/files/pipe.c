/*
 * Pipes whose two ends are both inside the checkpointed processes: each
 * pipe is stored once, with its capacity and the bytes in flight; each
 * fd says which end it is and its status flags (O_NONBLOCK).
 *
 * The bytes in flight are copied without being consumed: rtcr opens the
 * pipe's read side through /proc/PID/fd/N and tee()s its buffer into a
 * pipe of its own. On restore rtcr creates the pipe, writes the bytes
 * back, and every fd of that pipe in the tree refers to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

struct pipe_rt {
	uint64_t id;
	int rfd, wfd;
	bool rused, wused;    /* the pipe2() descriptions were handed out */
};

static bool pipe_match(const struct fd_info *fi)
{
	return !strncmp(fi->link, "pipe:", 5) && fi->pipe_internal;
}

int pipe_peek(const struct fd_info *fi, uint32_t *capacity, ProtobufCBinaryData *data)
{
	char path[96];
	int rfd, tmp[2] = { -1, -1 }, cap, ret = 0;
	size_t len = 0, alloc = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", fi->pid, fi->fd);
	rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rfd < 0) {
		pr_perror("fd %d: %s: opening its read side", fi->fd, fi->link);
		return -errno;
	}
	cap = fcntl(rfd, F_GETPIPE_SZ);
	if (cap < 0 || pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s", fi->fd, fi->link);
		goto out;
	}
	if (fcntl(tmp[1], F_SETPIPE_SZ, cap) < cap) {
		ret = -EPERM;
		pr_err("fd %d: %s: its %d-byte buffer is larger than rtcr may allocate "
		       "(raising pipe sizes above fs.pipe-max-size needs CAP_SYS_RESOURCE)",
		       fi->fd, fi->link, cap);
		goto out;
	}
	*capacity = cap;
	/* tee copies the whole buffer at once; read it out. */
	{
		ssize_t n = tee(rfd, tmp[1], cap, SPLICE_F_NONBLOCK);
		if (n < 0 && errno != EAGAIN) {
			ret = -errno;
			pr_perror("fd %d: %s: copying its data", fi->fd, fi->link);
		}
		while (n > 0) {
			ssize_t r;
			if (len + n > alloc) {
				alloc = len + n;
				data->data = xrealloc(data->data, alloc);
			}
			r = read(tmp[0], data->data + len, n);
			if (r <= 0) {
				ret = r < 0 ? -errno : -EIO;
				goto out;
			}
			len += r;
			n -= r;
		}
	}
	data->len = len;
out:
	close(rfd);
	if (tmp[0] >= 0)
		close(tmp[0]);
	if (tmp[1] >= 0)
		close(tmp[1]);
	return ret;
}

static int pipe_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		     Rtcr__Files *files)
{
	Rtcr__PipeFd *p = xzalloc(sizeof(*p));
	uint64_t id = fi->st.st_ino;
	int ret = 0;

	rtcr__pipe_fd__init(p);
	p->pipe_id = id;
	p->write = (fi->flags & O_ACCMODE) == O_WRONLY;
	p->flags = fi->flags;
	out->pipe = p;
	for (int i = 0; i < fc->npipes_stored; i++)
		if (fc->pipes_stored[i] == id)
			return 0;
	/* First fd of this pipe in the tree: the pipe itself goes here. */
	{
		Rtcr__Pipe *pd = xzalloc(sizeof(*pd));
		rtcr__pipe__init(pd);
		pd->id = id;
		files->pipes = xrealloc(files->pipes, (files->n_pipes + 1) * sizeof(*files->pipes));
		files->pipes[files->n_pipes++] = pd;
		ret = pipe_peek(fi, &pd->capacity, &pd->data);
	}
	fc->pipes_stored = xrealloc(fc->pipes_stored, (fc->npipes_stored + 1) * sizeof(uint64_t));
	fc->pipes_stored[fc->npipes_stored++] = id;
	return ret;
}

static int pipe_create(const Rtcr__Pipe *pd, struct pipe_rt *rt, int private_base)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0) {
		pr_perror("pipe:[%llu]: pipe2", (unsigned long long)pd->id);
		return -errno;
	}
	/* Kept while descriptions are placed: out of the way of the slots. */
	for (int k = 0; k < 2; k++) {
		int hi = fcntl(fds[k], F_DUPFD_CLOEXEC, private_base);
		if (hi < 0) {
			int err = errno;
			pr_perror("pipe:[%llu]: moving rtcr's end above fd %d",
				  (unsigned long long)pd->id, private_base);
			close(fds[0]);
			close(fds[1]);
			return -err;
		}
		close(fds[k]);
		fds[k] = hi;
	}
	rt->id = pd->id;
	rt->rfd = fds[0];
	rt->wfd = fds[1];
	rt->rused = rt->wused = false;
	if (fcntl(rt->wfd, F_SETPIPE_SZ, pd->capacity) < (int)pd->capacity &&
	    fcntl(rt->wfd, F_GETPIPE_SZ) < (int)pd->data.len) {
		pr_err("pipe:[%llu]: cannot get a %u-byte buffer for its %zu bytes in flight",
		       (unsigned long long)pd->id, pd->capacity, pd->data.len);
		return -ENOSPC;
	}
	if (pd->data.len) {
		/* Nonblocking: the data fits, but never hang on a bad image. */
		fcntl(rt->wfd, F_SETFL, O_NONBLOCK);
		if (write(rt->wfd, pd->data.data, pd->data.len) != (ssize_t)pd->data.len) {
			pr_perror("pipe:[%llu]: writing its %zu bytes back", (unsigned long long)pd->id,
				  pd->data.len);
			return -EIO;
		}
		fcntl(rt->wfd, F_SETFL, 0);
	}
	return 0;
}

static int pipe_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	const Rtcr__PipeFd *p = e->pipe;
	const Rtcr__Pipe *pd = NULL;
	struct pipe_rt *rt = NULL;
	int acc, fd, ret;

	for (size_t i = 0; i < ctx->npipe_rt; i++)
		if (ctx->pipe_rt[i].id == p->pipe_id)
			rt = &ctx->pipe_rt[i];
	if (!rt) {
		for (size_t i = 0; i < ctx->npipes; i++)
			if (ctx->pipes[i]->id == p->pipe_id)
				pd = ctx->pipes[i];
		if (!pd) {
			pr_err("fd %d: pipe:[%llu] is not in the image", e->fd,
			       (unsigned long long)p->pipe_id);
			return -EINVAL;
		}
		ctx->pipe_rt = xrealloc(ctx->pipe_rt, (ctx->npipe_rt + 1) * sizeof(*ctx->pipe_rt));
		rt = &ctx->pipe_rt[ctx->npipe_rt++];
		rt->rfd = rt->wfd = -1;
		ret = pipe_create(pd, rt, ctx->private_base);
		if (ret)
			return ret;
	}
	/* Each call is one open file description: the pipe2() ones first,
	 * further ones (and read-write opens) through /proc/self/fd. */
	acc = p->flags & O_ACCMODE;
	if (acc == O_RDONLY && !rt->rused) {
		rt->rused = true;
		fd = fcntl(rt->rfd, F_DUPFD_CLOEXEC, 0);
	} else if (acc == O_WRONLY && !rt->wused) {
		rt->wused = true;
		fd = fcntl(rt->wfd, F_DUPFD_CLOEXEC, 0);
	} else {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", rt->rfd);
		fd = open(path, acc | O_CLOEXEC | O_NONBLOCK);
	}
	if (fd < 0) {
		pr_perror("fd %d: pipe:[%llu]", e->fd, (unsigned long long)p->pipe_id);
		return -errno;
	}
	if (fcntl(fd, F_SETFL, p->flags & ~O_ACCMODE) < 0) {
		pr_perror("fd %d: pipe:[%llu]: flags %#x", e->fd, (unsigned long long)p->pipe_id,
			  p->flags);
		close(fd);
		return -errno;
	}
	return fd;
}

void pipes_prepared(struct files_restore_ctx *ctx)
{
	/* Every description is at its carrier: rtcr's own pipe2() ends
	 * would keep each pipe open (no EOF, no EPOLLHUP) for as long as
	 * rtcr restore runs. */
	for (size_t i = 0; i < ctx->npipe_rt; i++) {
		if (ctx->pipe_rt[i].rfd >= 0)
			close(ctx->pipe_rt[i].rfd);
		if (ctx->pipe_rt[i].wfd >= 0)
			close(ctx->pipe_rt[i].wfd);
	}
	ctx->npipe_rt = 0;
}

static void pipe_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	snprintf(buf, len, "pipe pipe:[%llu] %s end%s", (unsigned long long)e->pipe->pipe_id,
		 (e->pipe->flags & O_ACCMODE) == O_RDWR ? "read-write" : e->pipe->write ? "write" : "read",
		 e->pipe->flags & O_NONBLOCK ? ", nonblock" : "");
}

const struct fd_ops pipe_fd_ops = {
	.name = "pipe",
	.kind = RTCR__FD_KIND__FD_PIPE,
	.match = pipe_match,
	.dump = pipe_dump,
	.open = pipe_open,
	.describe = pipe_describe,
};
