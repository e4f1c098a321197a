/*
 * Image stream backends: file sink (partial + rename), mapped file source,
 * plain fd (pipe/socket) and memory.
 */
#include "image/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* ---- generic entry points ---- */

int img_writev(struct img_stream *s, const struct iovec *iov, int iovcnt)
{
	int ret;
	if (!s->ops->writev)
		return -EBADF;
	ret = s->ops->writev(s, iov, iovcnt);
	if (!ret)
		for (int i = 0; i < iovcnt; i++)
			s->pos += iov[i].iov_len;
	return ret;
}

int img_read(struct img_stream *s, void *buf, size_t len)
{
	int ret;
	if (!s->ops->read)
		return -EBADF;
	ret = s->ops->read(s, buf, len);
	if (!ret)
		s->pos += len;
	return ret;
}

int img_skip(struct img_stream *s, uint64_t len)
{
	int ret;
	if (s->ops->skip) {
		ret = s->ops->skip(s, len);
	} else {
		char buf[65536];
		ret = 0;
		for (uint64_t left = len; left && !ret; ) {
			size_t n = MIN(left, sizeof(buf));
			ret = s->ops->read(s, buf, n);
			left -= n;
		}
	}
	if (!ret)
		s->pos += len;
	return ret;
}

const void *img_map(struct img_stream *s, uint64_t off, uint64_t len)
{
	return s->ops->map ? s->ops->map(s, off, len) : NULL;
}

int img_commit(struct img_stream *s)
{
	return s->ops->commit ? s->ops->commit(s) : 0;
}

void img_close(struct img_stream *s)
{
	if (!s)
		return;
	s->ops->close(s);
}

/* ---- fd helpers ---- */

static int fd_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct iovec local[64];
	int n = 0;

	/* Copy so partial writes can advance the vector. */
	while (iovcnt > 0) {
		int cnt = MIN(iovcnt, (int)ARRAY_SIZE(local));
		memcpy(local, iov, cnt * sizeof(*iov));
		n = 0;
		while (n < cnt) {
			ssize_t w = writev(fd, local + n, cnt - n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			while (n < cnt && (size_t)w >= local[n].iov_len) {
				w -= local[n].iov_len;
				n++;
			}
			if (n < cnt) {
				local[n].iov_base = (char *)local[n].iov_base + w;
				local[n].iov_len -= w;
			}
		}
		iov += cnt;
		iovcnt -= cnt;
	}
	return 0;
}

/* ---- file sink ---- */

struct file_sink {
	struct img_stream s;
	int fd, dirfd;
	char *final, *partial;
	int committed;
};

static int fsink_writev(struct img_stream *s, const struct iovec *iov, int iovcnt)
{
	struct file_sink *f = (struct file_sink *)s;
	return fd_writev(f->fd, iov, iovcnt);
}

static int fsink_commit(struct img_stream *s)
{
	struct file_sink *f = (struct file_sink *)s;

	if (fsync(f->fd) < 0) {
		int e = errno;
		pr_perror("%s: fsync", f->partial);
		return -e;
	}
	if (renameat(f->dirfd, f->partial, f->dirfd, f->final) < 0) {
		int e = errno;
		pr_perror("%s: rename to %s", f->partial, f->final);
		return -e;
	}
	f->committed = 1;
	fsync(f->dirfd);
	return 0;
}

static void fsink_close(struct img_stream *s)
{
	struct file_sink *f = (struct file_sink *)s;

	if (f->fd >= 0)
		close(f->fd);
	if (!f->committed)
		unlinkat(f->dirfd, f->partial, 0);
	close(f->dirfd);
	free(f->final);
	free(f->partial);
	free(s->name);
	free(f);
}

static const struct img_stream_ops fsink_ops = {
	.writev = fsink_writev,
	.commit = fsink_commit,
	.close = fsink_close,
};

int img_sink_file(const char *dir, const char *name, struct img_stream **out)
{
	struct file_sink *f = xzalloc(sizeof(*f));
	int e;

	f->s.ops = &fsink_ops;
	f->s.name = xasprintf("%s/%s", dir, name);
	f->fd = -1;
	f->final = xstrdup(name);
	f->partial = xasprintf(".%s.partial", name);
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		e = errno;
		pr_perror("image directory %s", dir);
		free(f->final);
		free(f->partial);
		free(f->s.name);
		free(f);
		return -e;
	}
	unlinkat(f->dirfd, f->partial, 0);   /* left over by a killed dump */
	f->fd = openat(f->dirfd, f->partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f->fd < 0) {
		e = errno;
		pr_perror("%s/%s", dir, f->partial);
		f->committed = 1;   /* nothing to unlink */
		fsink_close(&f->s);
		return -e;
	}
	*out = &f->s;
	return 0;
}

/* ---- mapped file source ---- */

struct file_source {
	struct img_stream s;
	const char *base;
};

static int fsrc_read(struct img_stream *s, void *buf, size_t len)
{
	struct file_source *f = (struct file_source *)s;
	if (s->pos + len > s->size || s->pos + len < s->pos)
		return -ENODATA;
	memcpy(buf, f->base + s->pos, len);
	return 0;
}

static int fsrc_skip(struct img_stream *s, uint64_t len)
{
	if (s->pos + len > s->size || s->pos + len < s->pos)
		return -ENODATA;
	return 0;
}

static const void *fsrc_map(struct img_stream *s, uint64_t off, uint64_t len)
{
	struct file_source *f = (struct file_source *)s;
	if (off + len > s->size || off + len < off)
		return NULL;
	return f->base + off;
}

static void fsrc_close(struct img_stream *s)
{
	struct file_source *f = (struct file_source *)s;
	if (f->base && s->size)
		munmap((void *)f->base, s->size);
	free(s->name);
	free(f);
}

static const struct img_stream_ops fsrc_ops = {
	.read = fsrc_read,
	.skip = fsrc_skip,
	.map = fsrc_map,
	.close = fsrc_close,
};

int img_source_file(const char *path, struct img_stream **out)
{
	struct file_source *f;
	struct stat st;
	int fd, e;
	void *p = NULL;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		pr_perror("%s", path);
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		pr_perror("%s: stat", path);
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > 0) {
		p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			e = errno;
			pr_perror("%s: mmap", path);
			close(fd);
			return -e;
		}
		madvise(p, st.st_size, MADV_SEQUENTIAL);
	}
	close(fd);
	f = xzalloc(sizeof(*f));
	f->s.ops = &fsrc_ops;
	f->s.name = xstrdup(path);
	f->s.size = st.st_size;
	f->base = p;
	*out = &f->s;
	return 0;
}

/* ---- plain fd ---- */

struct fd_stream {
	struct img_stream s;
	int fd;
};

static int fds_writev(struct img_stream *s, const struct iovec *iov, int iovcnt)
{
	return fd_writev(((struct fd_stream *)s)->fd, iov, iovcnt);
}

static int fds_read(struct img_stream *s, void *buf, size_t len)
{
	return read_full(((struct fd_stream *)s)->fd, buf, len);
}

static void fds_close(struct img_stream *s)
{
	free(s->name);
	free(s);
}

static const struct img_stream_ops fds_ops = {
	.writev = fds_writev,
	.read = fds_read,
	.close = fds_close,
};

struct img_stream *img_stream_fd(int fd, const char *name)
{
	struct fd_stream *f = xzalloc(sizeof(*f));
	f->s.ops = &fds_ops;
	f->s.name = xstrdup(name);
	f->fd = fd;
	return &f->s;
}

/* ---- memory ---- */

struct mem_stream {
	struct img_stream s;
	char *buf;
	size_t len, cap;
	int owned;
};

static int mem_writev(struct img_stream *s, const struct iovec *iov, int iovcnt)
{
	struct mem_stream *m = (struct mem_stream *)s;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_len)
			continue;
		if (m->len + iov[i].iov_len > m->cap) {
			m->cap = MAX(m->cap * 2, m->len + iov[i].iov_len);
			m->buf = xrealloc(m->buf, m->cap);
		}
		memcpy(m->buf + m->len, iov[i].iov_base, iov[i].iov_len);
		m->len += iov[i].iov_len;
	}
	return 0;
}

static int mem_read(struct img_stream *s, void *buf, size_t len)
{
	struct mem_stream *m = (struct mem_stream *)s;
	if (s->pos + len > m->len || s->pos + len < s->pos)
		return -ENODATA;
	memcpy(buf, m->buf + s->pos, len);
	return 0;
}

static int mem_skip(struct img_stream *s, uint64_t len)
{
	struct mem_stream *m = (struct mem_stream *)s;
	return s->pos + len > m->len || s->pos + len < s->pos ? -ENODATA : 0;
}

static const void *mem_map(struct img_stream *s, uint64_t off, uint64_t len)
{
	struct mem_stream *m = (struct mem_stream *)s;
	if (off + len > m->len || off + len < off)
		return NULL;
	return m->buf + off;
}

static void mem_close(struct img_stream *s)
{
	struct mem_stream *m = (struct mem_stream *)s;
	if (m->owned)
		free(m->buf);
	free(s->name);
	free(m);
}

static const struct img_stream_ops mem_sink_ops = {
	.writev = mem_writev,
	.close = mem_close,
};

static const struct img_stream_ops mem_source_ops = {
	.read = mem_read,
	.skip = mem_skip,
	.map = mem_map,
	.close = mem_close,
};

struct img_stream *img_sink_mem(void)
{
	struct mem_stream *m = xzalloc(sizeof(*m));
	m->s.ops = &mem_sink_ops;
	m->s.name = xstrdup("<memory>");
	m->owned = 1;
	return &m->s;
}

const void *img_mem_data(struct img_stream *s, size_t *len)
{
	struct mem_stream *m = (struct mem_stream *)s;
	*len = m->len;
	return m->buf;
}

struct img_stream *img_source_mem(const void *buf, size_t len)
{
	struct mem_stream *m = xzalloc(sizeof(*m));
	m->s.ops = &mem_source_ops;
	m->s.name = xstrdup("<memory>");
	m->buf = (char *)buf;
	m->len = len;
	m->s.size = len;
	return &m->s;
}
