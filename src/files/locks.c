/*
 * State any fd may carry beside its kind: file locks and signal-driven
 * I/O (owner, signal, O_ASYNC).
 *
 * Locks are read at dump from the "lock:" lines of /proc/PID/fdinfo/N.
 * A flock or OFD lock belongs to the open file description and shows on
 * every fd of it; a POSIX lock belongs to the process and shows on the
 * fds of the description it was taken through, in that process only.
 * Leases and delegations are refused by name.
 *
 * The owner (F_GETOWN_EX) and signal (F_GETSIG) of a description are read
 * through a copy of the fd (pidfd_getfd) when O_ASYNC is set, or on a
 * socket (SIGURG). The owner must be a thread, process or process group
 * of the tree, else the dump refuses.
 *
 * Restore (fdstate_restore_inj) runs last in each process, by injected
 * calls, once its credentials are back and rtcr's helper fds closed (a
 * close of any fd on a file drops the process's POSIX locks on it: a
 * helper fd of a mapped file would otherwise take them away). For each
 * description the process owns: F_SETOWN_EX, F_SETSIG, then O_ASYNC
 * (which every open left out), then flock / OFD locks; then the POSIX
 * locks of the process, on each description it took them through. A lock
 * that cannot be taken (someone outside holds a conflicting one) fails
 * the restore, naming the file, the range and the holder.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"
#include "files/locks.h"
#include "task/inject.h"

#define OFFSET_MAX_U 0x7fffffffffffffffULL

/* The file behind an fd, for messages: its path if it has one. */
static const char *fd_what(const Rtcr__Fd *e, char *buf, size_t len)
{
	if (e->reg && e->reg->file)
		return e->reg->file->path;
	if (e->fifo && e->fifo->file)
		return e->fifo->file->path;
	if (e->memfd && e->memfd->name)
		return e->memfd->name;
	if (e->deleted && e->deleted->name)
		return e->deleted->name;
	files_describe(e, buf, len);
	return buf;
}

static int parse_lock(const struct fd_info *fi, const char *line, Rtcr__Lock **out)
{
	char kind[16], adv[16], mode[16], end[32];
	unsigned long long start;
	Rtcr__Lock *l;
	int n = 0;

	/* "1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 10 29" */
	if (sscanf(line, "%*d: %15s %15s %15s %*d %*s %llu %31s%n", kind, adv, mode, &start, end,
		   &n) != 5 || !n) {
		const char *nl = strchr(line, '\n');
		pr_err("fd %d: %s: lock line not understood: %.*s", fi->fd, fi->link,
		       nl ? (int)(nl - line) : (int)strlen(line), line);
		return -EINVAL;
	}
	l = xzalloc(sizeof(*l));
	rtcr__lock__init(l);
	if (!strcmp(kind, "FLOCK"))
		l->kind = RTCR__LOCK_KIND__LOCK_FLOCK;
	else if (!strcmp(kind, "POSIX"))
		l->kind = RTCR__LOCK_KIND__LOCK_POSIX;
	else if (!strcmp(kind, "OFDLCK"))
		l->kind = RTCR__LOCK_KIND__LOCK_OFD;
	else {
		pr_err("fd %d: %s: %s: not supported", fi->fd, fi->link,
		       !strcmp(kind, "DELEG") ? "delegation" : "lease");
		free(l);
		return -ENOTSUP;
	}
	if (strcmp(adv, "ADVISORY") || (strcmp(mode, "READ") && strcmp(mode, "WRITE"))) {
		pr_err("fd %d: %s: %s %s %s lock: not supported", fi->fd, fi->link, kind, adv, mode);
		free(l);
		return -ENOTSUP;
	}
	l->write = !strcmp(mode, "WRITE");
	if (l->kind != RTCR__LOCK_KIND__LOCK_FLOCK) {
		l->has_start = true;
		l->start = start;
		if (strcmp(end, "EOF")) {
			l->has_end = true;
			l->end = strtoull(end, NULL, 10);
		}
	}
	*out = l;
	return 0;
}

/* Is owner (type, pid) a thread, process or group of the tree? */
static bool owner_in_tree(const struct files_collect *fc, int type, pid_t pid)
{
	char path[64];
	struct stat st;

	for (int i = 0; i < fc->nprocs; i++) {
		if (type == F_OWNER_PID && fc->procs[i].pid == pid)
			return true;
		if (type == F_OWNER_TID) {
			snprintf(path, sizeof(path), "/proc/%d/task/%d", fc->procs[i].pid, pid);
			if (stat(path, &st) == 0)
				return true;
		}
		if (type == F_OWNER_PGRP && getpgid(fc->procs[i].pid) == pid)
			return true;
	}
	return false;
}

int fdstate_dump(const struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *e, int *pidfd)
{
	static const char *const tname[] = { "thread", "process", "process group" };
	struct f_owner_ex own = { 0 };
	int sig = 0, cfd, ret = 0;

	for (const char *l = fi->fdinfo; l && *l; l = strchr(l, '\n')) {
		Rtcr__Lock *lk;
		if (*l == '\n')
			l++;
		if (strncmp(l, "lock:", 5))
			continue;
		ret = parse_lock(fi, l + 5, &lk);
		if (ret)
			return ret;
		e->locks = xrealloc(e->locks, (e->n_locks + 1) * sizeof(*e->locks));
		e->locks[e->n_locks++] = lk;
	}
	if (!(fi->flags & O_ASYNC) && !S_ISSOCK(fi->st.st_mode))
		return 0;
	if (*pidfd < 0)
		*pidfd = (int)syscall(SYS_pidfd_open, fi->pid, 0);
	cfd = *pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, *pidfd, fi->fd, 0) : -1;
	if (cfd < 0) {
		pr_perror("fd %d: %s: reading its owner (pidfd_getfd)", fi->fd, fi->link);
		return -errno;
	}
	if (fcntl(cfd, F_GETOWN_EX, &own) < 0 || (sig = fcntl(cfd, F_GETSIG)) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: F_GETOWN_EX/F_GETSIG", fi->fd, fi->link);
	}
	close(cfd);
	if (ret)
		return ret;
	if (own.pid && (own.type < F_OWNER_TID || own.type > F_OWNER_PGRP)) {
		pr_err("fd %d: %s: owner of type %d: not supported", fi->fd, fi->link, own.type);
		return -ENOTSUP;
	}
	if (own.pid && !owner_in_tree(fc, own.type, own.pid)) {
		pr_err("fd %d: %s: signals (F_SETOWN) go to %s %d, outside the checkpointed "
		       "processes: not supported", fi->fd, fi->link, tname[own.type], own.pid);
		return -ENOTSUP;
	}
	if (own.pid) {
		e->has_owner_type = e->has_owner_pid = true;
		e->owner_type = own.type;
		e->owner_pid = own.pid;
	}
	if (sig) {
		e->has_signum = true;
		e->signum = (uint32_t)sig;
	}
	if (fi->flags & O_ASYNC) {
		e->has_async = true;
		e->async = true;
	}
	return 0;
}

int fdstate_open_fixup(const Rtcr__Fd *e, int fd)
{
	int fl;

	if (!e->async)
		return 0;
	/* Set last, in the process, once its owner is: a flag set by open()
	 * alone would not even register the description for signals. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_ASYNC) < 0) {
		pr_perror("fd %d: clearing O_ASYNC until the end", e->fd);
		return -errno;
	}
	return 0;
}

static const char *lock_name(const Rtcr__Lock *l)
{
	switch (l->kind) {
	case RTCR__LOCK_KIND__LOCK_FLOCK: return l->write ? "flock exclusive" : "flock shared";
	case RTCR__LOCK_KIND__LOCK_POSIX: return l->write ? "POSIX write" : "POSIX read";
	default: return l->write ? "OFD write" : "OFD read";
	}
}

static void range_str(const Rtcr__Lock *l, char *buf, size_t len)
{
	if (l->kind == RTCR__LOCK_KIND__LOCK_FLOCK)
		snprintf(buf, len, "whole file");
	else if (l->has_end)
		snprintf(buf, len, "bytes %llu-%llu", (unsigned long long)l->start,
			 (unsigned long long)l->end);
	else
		snprintf(buf, len, "bytes %llu-EOF", (unsigned long long)l->start);
}

static int take_lock(struct inject *in, pid_t pid, const Rtcr__Fd *e, const Rtcr__Lock *l)
{
	uint64_t data = inject_data(in);
	struct flock fl;
	char what[PATH_MAX + 64], rng[64], db[256];
	long r;
	int ret, cmd = l->kind == RTCR__LOCK_KIND__LOCK_POSIX ? F_SETLK : F_OFD_SETLK;

	range_str(l, rng, sizeof(rng));
	snprintf(what, sizeof(what), "pid %d: fd %d: %s: %s lock on %s", pid, e->fd,
		 fd_what(e, db, sizeof(db)), lock_name(l), rng);
	if (l->kind == RTCR__LOCK_KIND__LOCK_FLOCK) {
		ret = inject_syscall(in, __NR_flock, e->fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB,
				     0, 0, 0, 0, &r);
	} else {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = l->write ? F_WRLCK : F_RDLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)l->start;
		fl.l_len = l->has_end && l->end < OFFSET_MAX_U ? (off_t)(l->end - l->start + 1) : 0;
		ret = inject_write(in, data, &fl, sizeof(fl));
		if (!ret)
			ret = inject_syscall(in, __NR_fcntl, e->fd, cmd, data, 0, 0, 0, &r);
	}
	if (ret)
		return ret;
	if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EACCES) {
		/* Who holds it? Ask the kernel (flock has no query). */
		char who[64] = "another process";
		if (l->kind != RTCR__LOCK_KIND__LOCK_FLOCK &&
		    !inject_write(in, data, &fl, sizeof(fl)) &&
		    !inject_syscall(in, __NR_fcntl, e->fd, l->kind == RTCR__LOCK_KIND__LOCK_POSIX ?
				    F_GETLK : F_OFD_GETLK, data, 0, 0, 0, &r) && !r &&
		    !inject_read(in, data, &fl, sizeof(fl)) && fl.l_type != F_UNLCK) {
			if (fl.l_pid > 0)
				snprintf(who, sizeof(who), "process %d", fl.l_pid);
			else
				snprintf(who, sizeof(who), "an OFD lock of another open file");
		}
		pr_err("%s: cannot be taken again: %s holds a conflicting lock", what, who);
		return -EAGAIN;
	}
	if (r < 0) {
		pr_err("%s: %s", what, strerror((int)-r));
		return (int)r;
	}
	return 0;
}

int fdstate_restore_inj(struct inject *in, const Rtcr__Files *f, const struct files_restore_ctx *ctx)
{
	uint64_t data = inject_data(in);
	int ret = 0;

	for (size_t i = 0; f && i < f->n_fds && !ret; i++) {
		const Rtcr__Fd *e = f->fds[i];
		bool first = true, owner;
		char what[96];
		long fl;

		if (!e->n_locks && !e->owner_pid && !e->signum && !e->async)
			continue;
		for (size_t k = 0; k < i && first; k++)
			first = f->fds[k]->file_id != e->file_id;
		if (!first)
			continue;
		/* Per description: by its owner (inherited stdio: by this one). */
		owner = e->kind == RTCR__FD_KIND__FD_INHERIT ||
			(e->file_id < ctx->ncarrier && ctx->owner[e->file_id] == f->pid);
		if (owner && e->owner_pid) {
			struct f_owner_ex own = { .type = e->owner_type, .pid = e->owner_pid };
			snprintf(what, sizeof(what), "fd %d: F_SETOWN_EX %d", e->fd, e->owner_pid);
			ret = inject_write(in, data, &own, sizeof(own));
			if (!ret)
				ret = inject_call(in, what, __NR_fcntl, e->fd, F_SETOWN_EX, data, 0, 0, 0,
						  NULL);
		}
		if (!ret && owner && e->signum) {
			snprintf(what, sizeof(what), "fd %d: F_SETSIG %s", e->fd, sig_name((int)e->signum));
			ret = inject_call(in, what, __NR_fcntl, e->fd, F_SETSIG, e->signum, 0, 0, 0, NULL);
		}
		if (!ret && owner && e->async) {
			snprintf(what, sizeof(what), "fd %d: O_ASYNC", e->fd);
			ret = inject_call(in, what, __NR_fcntl, e->fd, F_GETFL, 0, 0, 0, 0, &fl);
			if (!ret)
				ret = inject_call(in, what, __NR_fcntl, e->fd, F_SETFL, fl | O_ASYNC, 0, 0,
						  0, NULL);
		}
		for (size_t k = 0; k < e->n_locks && !ret; k++)
			if (e->locks[k]->kind != RTCR__LOCK_KIND__LOCK_POSIX && owner)
				ret = take_lock(in, f->pid, e, e->locks[k]);
	}
	/* The process's own locks, once every description has its own. */
	for (size_t i = 0; f && i < f->n_fds && !ret; i++) {
		const Rtcr__Fd *e = f->fds[i];
		bool first = true;
		if (!e->n_locks)
			continue;
		for (size_t k = 0; k < i && first; k++)
			first = f->fds[k]->file_id != e->file_id;
		for (size_t k = 0; k < e->n_locks && !ret && first; k++)
			if (e->locks[k]->kind == RTCR__LOCK_KIND__LOCK_POSIX)
				ret = take_lock(in, f->pid, e, e->locks[k]);
	}
	return ret;
}

void fdstate_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	static const char *const tname[] = { "thread", "pid", "pgrp" };
	size_t n = strlen(buf);

	for (size_t k = 0; k < e->n_locks && n < len; k++) {
		char rng[64];
		range_str(e->locks[k], rng, sizeof(rng));
		n += snprintf(buf + n, len - n, ", %s lock %s", lock_name(e->locks[k]), rng);
	}
	if (n < len && e->async)
		n += snprintf(buf + n, len - n, ", async");
	if (n < len && e->owner_pid && e->owner_type >= 0 && e->owner_type <= 2)
		n += snprintf(buf + n, len - n, ", owner %s %d", tname[e->owner_type], e->owner_pid);
	if (n < len && e->signum)
		snprintf(buf + n, len - n, ", signal %s", sig_name((int)e->signum));
}
