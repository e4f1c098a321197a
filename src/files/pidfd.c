/*
 * pidfds of processes of the checkpointed tree. Kept: the pid it refers
 * to ("Pid:" in fdinfo) and O_NONBLOCK. A pidfd of a process outside the
 * tree, of one that has been reaped ("Pid: -1"), or of a thread
 * (PIDFD_THREAD) is refused by name.
 *
 * Restore: a pidfd can only be opened once its process exists, which is
 * after the descriptions are placed. So open() gives a placeholder
 * (/dev/null) that holds the fd number, and once every process of the
 * tree exists (STATE) each pidfd is opened inside its process by injected
 * calls: pidfd_open(pid, flags), dup3() onto its number, close(). Each fd
 * gets a description of its own (two processes sharing one pidfd
 * description get one each: only O_NONBLOCK lives there).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"
#include "task/inject.h"

static bool pidfd_match(const struct fd_info *fi)
{
	return !strcmp(fi->link, "anon_inode:[pidfd]") || !strncmp(fi->link, "pidfd:", 6);
}

static int pidfd_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		      Rtcr__Files *files)
{
	const char *p = fdinfo_field(fi->fdinfo, "Pid");
	Rtcr__PidFd *pf;
	bool in_tree = false;
	int pid;

	if (!p) {
		pr_err("fd %d: pidfd: no Pid in its fdinfo", fi->fd);
		return -EINVAL;
	}
	pid = (int)strtol(p, NULL, 10);
	if (pid <= 0) {
		pr_err("fd %d: pidfd of a process that has exited and been reaped: not supported",
		       fi->fd);
		return -ENOTSUP;
	}
	if (fi->flags & O_EXCL) {
		pr_err("fd %d: pidfd of thread %d (PIDFD_THREAD): not supported", fi->fd, pid);
		return -ENOTSUP;
	}
	for (int i = 0; i < fc->nprocs && !in_tree; i++)
		in_tree = fc->procs[i].pid == pid;
	if (!in_tree) {
		pr_err("fd %d: pidfd of process %d, outside the checkpointed processes: not supported",
		       fi->fd, pid);
		return -ENOTSUP;
	}
	pf = xzalloc(sizeof(*pf));
	rtcr__pid_fd__init(pf);
	pf->pid = pid;
	pf->flags = fi->flags;
	out->pidfd = pf;
	return 0;
}

static int pidfd_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	if (!e->pidfd || e->pidfd->pid <= 0) {
		pr_err("fd %d: image entry lacks its pidfd", e->fd);
		return -EINVAL;
	}
	return 0;
}

static int pidfd_open_placeholder(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("fd %d: pidfd: a placeholder", e->fd);
	return fd < 0 ? -errno : fd;
}

int pidfds_restore_inj(struct inject *in, const Rtcr__Files *f)
{
	int ret = 0;

	for (size_t i = 0; f && i < f->n_fds && !ret; i++) {
		const Rtcr__Fd *e = f->fds[i];
		char what[96];
		long fd;

		if (e->kind != RTCR__FD_KIND__FD_PIDFD || !e->pidfd)
			continue;
		snprintf(what, sizeof(what), "fd %d: pidfd_open(%d)", e->fd, e->pidfd->pid);
		ret = inject_call(in, what, __NR_pidfd_open, e->pidfd->pid,
				  e->pidfd->flags & O_NONBLOCK, 0, 0, 0, 0, &fd);
		if (ret)
			break;
		snprintf(what, sizeof(what), "fd %d: placing its pidfd", e->fd);
		ret = inject_call(in, what, __NR_dup3, fd, e->fd, e->cloexec ? O_CLOEXEC : 0, 0, 0, 0,
				  NULL);
		if (!ret)
			ret = inject_call(in, what, __NR_close, fd, 0, 0, 0, 0, 0, NULL);
	}
	return ret;
}

static void pidfd_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	if (!e->pidfd)
		snprintf(buf, len, "pidfd ?");
	else
		snprintf(buf, len, "pidfd of pid %d%s", e->pidfd->pid,
			 e->pidfd->flags & O_NONBLOCK ? " nonblock" : "");
}

const struct fd_ops pidfd_fd_ops = {
	.name = "pidfd",
	.kind = RTCR__FD_KIND__FD_PIDFD,
	.match = pidfd_match,
	.dump = pidfd_dump,
	.check = pidfd_check,
	.open = pidfd_open_placeholder,
	.describe = pidfd_describe,
};
