/*
 * Image streams: where image bytes go to and come from.
 *
 * The writer and reader only see this interface, so an image can live in
 * a file, travel over a pipe or socket, or sit in memory (unit tests).
 * A file sink writes "<name>.partial" and renames it into place on
 * commit; closing an uncommitted sink deletes the partial file, so a
 * failed dump never leaves something that looks like an image.
 */
#ifndef RTCR_IMAGE_STREAM_H
#define RTCR_IMAGE_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/log.h"

struct img_stream;

struct img_stream_ops {
	/* Write all of iov; 0 or -errno. */
	int (*writev)(struct img_stream *s, const struct iovec *iov, int iovcnt);
	/* Read exactly len bytes; 0, -ENODATA at a premature end, or -errno. */
	int (*read)(struct img_stream *s, void *buf, size_t len);
	/* Skip len bytes of input. */
	int (*skip)(struct img_stream *s, uint64_t len);
	/* Optional: the bytes at [off, off+len) without copying, or NULL. */
	const void *(*map)(struct img_stream *s, uint64_t off, uint64_t len);
	/* Make a written image durable and visible; 0 or -errno. */
	int (*commit)(struct img_stream *s);
	void (*close)(struct img_stream *s);
};

struct img_stream {
	const struct img_stream_ops *ops;
	uint64_t pos;             /* bytes written or consumed so far */
	uint64_t size;            /* total size when known (readers), else 0 */
	char *name;               /* for messages */
};

/* Sink: DIR/NAME, written as DIR/.NAME.partial until commit. */
int img_sink_file(const char *dir, const char *name, struct img_stream **out) __must_check;
/* Source: a whole image file, mapped read-only. */
int img_source_file(const char *path, struct img_stream **out) __must_check;
/* Sink or source on an already open fd (pipe, socket). Does not own fd. */
struct img_stream *img_stream_fd(int fd, const char *name);
/* In-memory sink; img_mem_data() gives the bytes. Source over a buffer. */
struct img_stream *img_sink_mem(void);
const void *img_mem_data(struct img_stream *s, size_t *len);
struct img_stream *img_source_mem(const void *buf, size_t len);

int img_writev(struct img_stream *s, const struct iovec *iov, int iovcnt) __must_check;
int img_read(struct img_stream *s, void *buf, size_t len) __must_check;
int img_skip(struct img_stream *s, uint64_t len) __must_check;
const void *img_map(struct img_stream *s, uint64_t off, uint64_t len);
int img_commit(struct img_stream *s) __must_check;
void img_close(struct img_stream *s);

#endif
