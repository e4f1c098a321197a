/*
 * The handle space: every open file descriptor, with its meaning.
 *
 * Each kind of handle is one module (one file in src/files/) exporting a
 * struct fd_ops. Dump asks every module in turn whether it knows an fd;
 * an fd no module knows makes the dump refuse, naming the fd and what it
 * is ("fd 9: io_uring: not supported"). Adding a kind of handle is adding
 * one file, one line in the table in files.c and, if it needs new image
 * fields, one message in proto/fd.proto.
 */
#ifndef RTCR_FILES_H
#define RTCR_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/log.h"
#include "image/pb.h"

/* What the dump reads about one fd from /proc before asking the modules. */
struct fd_info {
	pid_t pid;
	int fd;
	char *link;          /* readlink(/proc/PID/fd/N) */
	struct stat st;      /* stat(/proc/PID/fd/N): the object itself */
	unsigned flags;      /* open flags from fdinfo (without O_CLOEXEC) */
	bool cloexec;
	uint64_t pos;
	char *fdinfo;        /* the whole /proc/PID/fdinfo/N */
};

/* Restore-side context shared by the modules. */
struct files_restore_ctx {
	bool same_boot;      /* restoring on the machine and boot that dumped */
};

struct fd_ops {
	const char *name;
	Rtcr__FdKind kind;
	bool (*match)(const struct fd_info *fi);
	/* Fill out->kind-specific part; 0 or -errno (logged, naming the fd). */
	int (*dump)(const struct fd_info *fi, Rtcr__Fd *out);
	/* Before anything is created: can this be restored here? 0 or -errno. */
	int (*check)(const Rtcr__Fd *e, const struct files_restore_ctx *ctx);
	/* In the restoring process: open it, return the new fd or -errno.
	 * The caller moves it to e->fd. */
	int (*open)(const Rtcr__Fd *e, const struct files_restore_ctx *ctx);
	/* One line of meaning for inspect. */
	void (*describe)(const Rtcr__Fd *e, char *buf, size_t len);
};

const struct fd_ops *fd_ops_by_kind(Rtcr__FdKind kind);

/* Dump the fd table of pid into out (allocated). Refuses unknown kinds. */
int files_dump(pid_t pid, Rtcr__Files **out) __must_check;
void files_free(Rtcr__Files *f);
/* Parent side, before the process exists. */
int files_check(const Rtcr__Files *f, const struct files_restore_ctx *ctx) __must_check;
/* Child side: install every fd at its number. 'keep' fds (rtcr's own,
 * above all target fds) survive; every other fd is closed. */
int files_restore(const Rtcr__Files *f, const struct files_restore_ctx *ctx,
		  const int *keep, int nkeep) __must_check;
int files_max_fd(const Rtcr__Files *f);
void files_describe(const Rtcr__Fd *e, char *buf, size_t len);

/* FileRef helpers shared by modules and the memory code. */
void fileref_fill(Rtcr__FileRef *r, const char *path, const struct stat *st);
/* Does the file at r->path still match? strict: also device and inode
 * (same machine and boot), mtime: also modification time. */
int fileref_check(const Rtcr__FileRef *r, const char *what, bool strict, bool mtime) __must_check;

extern const struct fd_ops reg_fd_ops;
extern const struct fd_ops inherit_fd_ops;

#endif
