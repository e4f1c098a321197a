/*
 * The handle space: every open file descriptor, with its meaning.
 *
 * Each kind of handle is one module (one file in src/files/) exporting a
 * struct fd_ops. Dump asks every module in turn whether it knows an fd;
 * an fd no module knows makes the dump refuse, naming the fd and what it
 * is ("fd 9: io_uring: not supported"). Adding a kind of handle is adding
 * one file, one line in the table in files.c and, if it needs new image
 * fields, one message in proto/fd.proto.
 *
 * Dump works on a whole process tree: files_collect() reads every fd of
 * every process first, files_dump() then classifies them with tree-wide
 * knowledge (a pipe is inside the tree only if both its ends are) and
 * gives every open file description one id across the tree (fds shared
 * through fork or dup carry the same id).
 *
 * Restore opens each description once, in rtcr itself, before any
 * process is created (files_prepare()), and keeps it at a "carrier" fd
 * above every target fd. Restored processes inherit the carriers through
 * fork and put each at its number (files_restore()), so descriptions
 * shared across processes stay shared (one offset, one pipe).
 */
#ifndef RTCR_FILES_H
#define RTCR_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <termios.h>

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
	bool pipe_internal;  /* a pipe with both ends in the dumped tree */
	uint32_t file_id;    /* tree-wide id of the open file description */
	bool desc_first;     /* the first fd of it in tree order */
};

/* All fds of the processes of a tree, before classification. */
struct files_collect {
	struct {
		pid_t pid;
		struct fd_info *fds;
		int nfds;
	} *procs;
	int nprocs;
	uint64_t *pipes_stored;  /* pipe inodes whose data is in the image */
	int npipes_stored;
	bool unix_reconnect;     /* dump --unix-reconnect (unix.c) */
	bool tcp_established;    /* dump --tcp-established (inet.c) */
	bool shell_job;          /* dump --shell-job (tty.c) */
};

struct memobj_restore;

/* Restore-side context shared by the modules. */
struct files_restore_ctx {
	bool same_boot;          /* restoring on the machine and boot that dumped */
	const Rtcr__Pipe **pipes;    /* every pipe of the image */
	size_t npipes;
	struct pipe_rt *pipe_rt;     /* pipes created so far (pipe.c) */
	size_t npipe_rt;
	int *carrier;                /* file_id -> carrier fd, -1 if none */
	pid_t *owner;                /* file_id -> the first process holding it */
	uint32_t ncarrier;
	int private_base;            /* fds rtcr keeps while placing carriers go here
					or above: never on a slot of its own */
	int carrier_top;             /* above every carrier (files_prepare) */
	Rtcr__Files *const *files;   /* the whole image (files_prepare) */
	size_t nfiles;
	struct unix_rt *unix_rt;     /* sockets built so far (unix.c) */
	const struct memobj_restore *objs;  /* memory objects, made before the files */
	struct fifo_rt *fifo_rt;     /* FIFOs opened so far (fifo.c) */
	size_t nfifo_rt;
	const char *tty_path;        /* restore --shell-job: rtcr's terminal (tty.c) */
};

struct fd_ops {
	const char *name;
	Rtcr__FdKind kind;
	bool (*match)(const struct fd_info *fi);
	/* Fill out's kind-specific part; 0 or -errno (logged, naming the fd). */
	int (*dump)(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		    Rtcr__Files *files);
	/* Before anything is created: can this be restored here? 0 or -errno. */
	int (*check)(const Rtcr__Fd *e, const struct files_restore_ctx *ctx);
	/* In rtcr, before any process exists: open the description, return
	 * the new fd or -errno. Not called for inherited stdio. */
	int (*open)(const Rtcr__Fd *e, struct files_restore_ctx *ctx);
	/* Optional. In the restored process (still running rtcr's code), once
	 * every fd is at its number: state that must be set from inside, in
	 * terms of the process's fd numbers (an epoll interest list, say).
	 * Called once per description, in its owner (the first process of
	 * the tree holding it). 0 or -errno (logged, naming the fd). */
	int (*install)(const Rtcr__Fd *e, const struct files_restore_ctx *ctx);
	/* One line of meaning for inspect. */
	void (*describe)(const Rtcr__Fd *e, char *buf, size_t len);
};

const struct fd_ops *fd_ops_by_kind(Rtcr__FdKind kind);

/* An fd that is rtcr's own, not a handle of the process (mem/track.h). */
struct fd_ref {
	pid_t pid;
	int fd;
};

/* Read every fd of every process of the tree (pids[0..n)), leaving out
 * those that are one of the nown files own[] (in whichever process). */
int files_collect(struct files_collect *fc, const pid_t *pids, int n, const struct fd_ref *own,
		  int nown) __must_check;
/* Classify and describe process i's fds; refuses unknown kinds by name. */
int files_dump(struct files_collect *fc, int i, Rtcr__Files **out) __must_check;
void files_collect_free(struct files_collect *fc);
/* Is fi the first fd of its open file description in the tree (in tree
 * order: the description's owner)? Modules store shared state there once. */
bool files_first_of_description(const struct files_collect *fc, const struct fd_info *fi);
void files_free(Rtcr__Files *f);

/* Parent side, before the processes exist: check, then open every
 * description at carrier fds from carrier_base up. */
int files_check(Rtcr__Files *const *files, size_t n, struct files_restore_ctx *ctx) __must_check;
int files_prepare(Rtcr__Files *const *files, size_t n, struct files_restore_ctx *ctx,
		  int carrier_base) __must_check;
/* Number of carriers files_prepare() will use. */
uint32_t files_ndescriptions(Rtcr__Files *const *files, size_t n);
void files_restore_ctx_free(struct files_restore_ctx *ctx);
/* Child side: every fd at its number, from the carriers; every other fd
 * but 'keep' closed (the carriers too). */
int files_restore(const Rtcr__Files *f, const struct files_restore_ctx *ctx,
		  const int *keep, int nkeep) __must_check;
int files_max_fd(const Rtcr__Files *f);
/* Closes rtcr's own ends of the pipes it created (pipe.c). */
void pipes_prepared(struct files_restore_ctx *ctx);
/* Closes rtcr's own copies of the sockets it built (unix.c). */
void unix_prepared(struct files_restore_ctx *ctx);
/* Closes rtcr's own copies of the inet sockets it built (inet.c). */
void inet_prepared(struct files_restore_ctx *ctx);

/* With --tcp-established, before any connection is read: the network
 * lock (netlock.h) over every established connection of the tree, and the
 * guardian that removes it if rtcr dies. 0 or -errno (logged). */
int inet_dump_lock(const struct files_collect *fc, const uint8_t id[16]) __must_check;
/* The lock taken, for the image (NULL: none). */
const Rtcr__NetLock *inet_dump_netlock(void);
/* Just before the tree is killed: from now on the lock outlives rtcr. */
void inet_dump_killing(void);
/* Established TCP connections stay in repair mode from their dump on
 * (inet.c). Just before the image is committed: did data arrive on one
 * since it was read? 0 or -EAGAIN (logged). */
int inet_dump_verify(void) __must_check;
/* The end of a dump: INET_RESUME (aborted, or --leave-running) takes the
 * connections out of repair mode and removes the lock, INET_KILLED (the tree was killed and
 * reaped) closes rtcr's copies in repair mode, so they vanish without a
 * FIN or RST. 0, or -EIO if data arrived after the verification. */
enum inet_done { INET_RESUME, INET_KILLED };
int inet_dump_done(enum inet_done how);
/* The kind an fd is dumped as (the first in the table that matches), or NULL. */
const struct fd_ops *fd_ops_of(const struct fd_info *fi);
/* Forget the unix sockets read for this dump (unix.c; files_collect_free). */
void unix_dump_forget(void);
/* Closes rtcr's own O_RDWR opens of the FIFOs (fifo.c). */
void fifos_prepared(struct files_restore_ctx *ctx);
void files_describe(const Rtcr__Fd *e, char *buf, size_t len);

/* A copy of fi's open file description in rtcr (pidfd_getfd), to ask
 * the object itself; -errno (not logged) if it cannot be had. */
int fd_copy(const struct fd_info *fi);

/* The value after "KEY:" in an fdinfo text (leading blanks not skipped),
 * or NULL. */
const char *fdinfo_field(const char *fdinfo, const char *key);

/* FileRef helpers shared by modules and the memory code. */
void fileref_fill(Rtcr__FileRef *r, const char *path, const struct stat *st);
/* Does the file at r->path still match? strict: also device and inode
 * (same machine and boot), mtime: also modification time. */
int fileref_check(const Rtcr__FileRef *r, const char *what, bool strict, bool mtime) __must_check;

/* fds on memory objects (memfd_fd.c, deleted_fd.c). */
Rtcr__ObjFd *objfd_fill(const struct fd_info *fi, const char *name);
int objfd_open(const Rtcr__Fd *e, const Rtcr__ObjFd *of, const struct files_restore_ctx *ctx,
	       const char *what);
void objfd_describe(const Rtcr__ObjFd *of, const char *kind, char *buf, size_t len);

extern const struct fd_ops reg_fd_ops;
extern const struct fd_ops inherit_fd_ops;
extern const struct fd_ops pipe_fd_ops;

/* The bytes in flight in the pipe or FIFO fi refers to, left where they
 * are (tee() through an open of /proc/PID/fd/N), and its capacity. */
int pipe_peek(const struct fd_info *fi, uint32_t *capacity, ProtobufCBinaryData *data) __must_check;
extern const struct fd_ops eventfd_fd_ops;
extern const struct fd_ops timerfd_fd_ops;
extern const struct fd_ops signalfd_fd_ops;
extern const struct fd_ops epoll_fd_ops;
extern const struct fd_ops inotify_fd_ops;
extern const struct fd_ops unix_fd_ops;
extern const struct fd_ops inet_fd_ops;
extern const struct fd_ops memfd_fd_ops;
extern const struct fd_ops deleted_fd_ops;
extern const struct fd_ops fifo_fd_ops;
extern const struct fd_ops pidfd_fd_ops;
extern const struct fd_ops tty_fd_ops;

/*
 * restore --shell-job (tty.c): the restored job on the terminal rtcr
 * restore runs in.
 */
struct tty_job {
	int fd;                     /* rtcr's terminal: one of its fds 0-2 */
	char path[64];
	const Rtcr__TtyFd *img;     /* the dumped terminal (NULL: the image has none) */
	struct termios own;         /* rtcr's settings, given back when the job ends or stops */
	struct termios job;         /* the job's */
	pid_t pgid;                 /* the job's process group */
	bool fg;                    /* the job has the terminal now */
	bool winch;                 /* the window size differs from the saved one */
};
/* Before anything is created: rtcr's controlling terminal among its fds
 * 0-2 (or a clear error) and the image's terminal state. */
int tty_job_find(struct tty_job *j, Rtcr__Files *const *files, size_t n) __must_check;
/* The job's group exists and nothing of it runs yet: the terminal's size
 * and, if the job was in the foreground (and rtcr is, and not detach),
 * its settings and the foreground. j->img is not used after this. */
int tty_job_attach(struct tty_job *j, pid_t pgid, bool detach) __must_check;
/* The job runs: SIGWINCH if its window changed size. */
void tty_job_running(struct tty_job *j);
/* The terminal back to rtcr's group, with rtcr's settings. */
void tty_job_release(struct tty_job *j);
/* The job stopped with sig: terminal back, rtcr stops likewise; once
 * continued, the job is given the terminal again (if rtcr is in the
 * foreground) and continued. */
void tty_job_stopped(struct tty_job *j, int sig);

struct inject;
/* pidfds of process f (pidfd.c): once every process of the tree exists,
 * opened inside it by injected calls at their numbers. */
int pidfds_restore_inj(struct inject *in, const Rtcr__Files *f) __must_check;

#endif
