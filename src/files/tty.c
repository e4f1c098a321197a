/*
 * Terminals: a shell job (dump and restore --shell-job).
 *
 * A program started from an interactive shell has its fds 0-2 (and maybe
 * more) on the shell's terminal, its controlling terminal, in a session
 * the shell leads from outside the tree, its own process group (the job),
 * often the terminal's foreground group. The dump records, in every fd
 * entry on that terminal, the descriptions' flags and the terminal's
 * state: termios, window size, its foreground group and whether that was
 * the job. Without --shell-job such an fd is refused by name, as is any
 * other terminal: one that is not the process's controlling terminal, a
 * pty master, a terminal whose session leader is in the tree.
 *
 * The restore attaches the job to the terminal rtcr restore runs in (the
 * first of its fds 0-2 that is its controlling terminal): each
 * description is a new open of that terminal (same fd numbers, flags,
 * shared as before); the job gets its process group in rtcr's session
 * (restore.c); the struct tty_job functions below give it the terminal
 * (termios, foreground) before it runs, relay its stops, and give the
 * terminal back to rtcr's own group when it ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "files/files.h"

/* Terminals: /dev/pts/N (136-143), /dev/ttyN, /dev/tty, consoles,
 * /dev/ptmx (4, 5). */
static bool tty_match(const struct fd_info *fi)
{
	unsigned maj = major(fi->st.st_rdev);
	return S_ISCHR(fi->st.st_mode) && ((maj >= 136 && maj <= 143) || maj == 4 || maj == 5);
}

static bool is_ptmx(dev_t rdev)
{
	return major(rdev) == 5 && minor(rdev) == 2;
}

static Rtcr__Termios *termios_to_image(const struct termios *t)
{
	Rtcr__Termios *m = xzalloc(sizeof(*m));

	rtcr__termios__init(m);
	m->iflag = t->c_iflag;
	m->oflag = t->c_oflag;
	m->cflag = t->c_cflag;
	m->lflag = t->c_lflag;
	m->line = t->c_line;
	m->cc.len = NCCS;
	m->cc.data = xmalloc(NCCS);
	memcpy(m->cc.data, t->c_cc, NCCS);
	m->ispeed = t->c_ispeed;
	m->ospeed = t->c_ospeed;
	return m;
}

static void termios_from_image(const Rtcr__Termios *m, struct termios *t)
{
	memset(t, 0, sizeof(*t));
	t->c_iflag = m->iflag;
	t->c_oflag = m->oflag;
	t->c_cflag = m->cflag;
	t->c_lflag = m->lflag;
	t->c_line = (cc_t)m->line;
	memcpy(t->c_cc, m->cc.data, MIN(m->cc.len, (size_t)NCCS));
	t->c_ispeed = m->ispeed;
	t->c_ospeed = m->ospeed;
}

/* Is pid one of the tree's? */
static bool in_tree(const struct files_collect *fc, pid_t pid)
{
	for (int i = 0; i < fc->nprocs; i++)
		if (fc->procs[i].pid == pid)
			return true;
	return false;
}

static int tty_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		    Rtcr__Files *files)
{
	uint64_t f[PROC_STAT_FIELDS];
	dev_t ctty;
	pid_t sid, pgid, tpgid;
	char comm[64] = "?";
	struct termios t;
	struct winsize ws;
	Rtcr__TtyFd *m;
	int fd, ret;

	if (is_ptmx(fi->st.st_rdev)) {
		pr_err("fd %d: pty master (%s): not supported", fi->fd, fi->link);
		return -ENOTSUP;
	}
	ret = proc_stat_read(fi->pid, f, NULL);
	if (ret)
		return ret;
	pgid = (pid_t)f[5];
	sid = (pid_t)f[6];
	ctty = (dev_t)f[7];
	tpgid = (pid_t)f[8];
	/* /dev/tty is the controlling terminal, whichever it is. */
	if (!ctty || (fi->st.st_rdev != makedev(5, 0) &&
		      (major(ctty) != major(fi->st.st_rdev) || minor(ctty) != minor(fi->st.st_rdev)))) {
		pr_err("fd %d: %s: a terminal that is not the process's controlling terminal: "
		       "not supported", fi->fd, fi->link);
		return -ENOTSUP;
	}
	if (in_tree(fc, sid)) {
		pr_err("fd %d: %s is the controlling terminal of session %d, led by pid %d of the "
		       "tree: not supported (--shell-job takes a job of a session led from outside)",
		       fi->fd, fi->link, sid, sid);
		return -ENOTSUP;
	}
	if (!fc->shell_job) {
		if (proc_comm(sid, sid, comm, sizeof(comm)))
			snprintf(comm, sizeof(comm), "?");
		pr_err("fd %d: %s is the terminal of session %d (led by pid %d '%s', outside the "
		       "checkpointed processes): a shell job: dump it with --shell-job (and restore "
		       "it with --shell-job in a terminal)", fi->fd, fi->link, sid, sid, comm);
		return -ENOTSUP;
	}
	fd = fd_copy(fi);
	if (fd < 0) {
		pr_err("fd %d: %s: taking a copy of it: %s", fi->fd, fi->link, strerror(-fd));
		return fd;
	}
	memset(&ws, 0, sizeof(ws));
	if (tcgetattr(fd, &t) < 0 || ioctl(fd, TIOCGWINSZ, &ws) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: its settings", fi->fd, fi->link);
		close(fd);
		return ret;
	}
	close(fd);
	m = xzalloc(sizeof(*m));
	rtcr__tty_fd__init(m);
	m->path = xstrdup(fi->link);
	m->flags = fi->flags;
	m->termios = termios_to_image(&t);
	m->has_rows = m->has_cols = m->has_xpixel = m->has_ypixel = 1;
	m->rows = ws.ws_row;
	m->cols = ws.ws_col;
	m->xpixel = ws.ws_xpixel;
	m->ypixel = ws.ws_ypixel;
	m->has_sid = m->has_fg_pgid = m->has_foreground = 1;
	m->sid = sid;
	m->fg_pgid = tpgid;
	m->foreground = tpgid > 0 && tpgid == pgid;
	out->tty = m;
	return 0;
}

static int tty_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	if (!e->tty || !e->tty->path || !e->tty->termios) {
		pr_err("fd %d: image entry lacks its terminal", e->fd);
		return -EINVAL;
	}
	if (!ctx->tty_path) {
		pr_err("fd %d: on %s, the terminal of a shell job: restore it with --shell-job, in "
		       "a terminal (the job is attached to rtcr restore's)", e->fd, e->tty->path);
		return -ENOTTY;
	}
	return 0;
}

static int tty_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	int flags = (e->tty->flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOCTTY | O_CLOEXEC;
	int fd = open(ctx->tty_path, flags);

	if (fd < 0) {
		int err = errno;
		pr_err("fd %d: open %s (rtcr restore's terminal): %s", e->fd, ctx->tty_path,
		       strerror(err));
		return -err;
	}
	return fd;
}

static void tty_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__TtyFd *m = e->tty;
	const char *mode;

	switch (m->flags & O_ACCMODE) {
	case O_RDONLY: mode = "r"; break;
	case O_WRONLY: mode = "w"; break;
	default: mode = "rw"; break;
	}
	snprintf(buf, len, "tty  %s %s%s: shell job terminal, %ux%u, %s%s%s", m->path, mode,
		 m->flags & O_NONBLOCK ? ",nonblock" : "", m->cols, m->rows,
		 m->foreground ? "foreground" : "background",
		 m->termios->lflag & ECHO ? "" : ", echo off",
		 m->termios->lflag & ICANON ? "" : ", raw (non-canonical)");
}

const struct fd_ops tty_fd_ops = {
	.name = "terminal",
	.kind = RTCR__FD_KIND__FD_TTY,
	.match = tty_match,
	.dump = tty_dump,
	.check = tty_check,
	.open = tty_open,
	.describe = tty_describe,
};

/* ---- the job on rtcr restore's terminal ---- */

int tty_job_find(struct tty_job *j, Rtcr__Files *const *files, size_t n)
{
	memset(j, 0, sizeof(*j));
	j->fd = -1;
	for (size_t p = 0; p < n && !j->img; p++)
		for (size_t i = 0; files[p] && i < files[p]->n_fds && !j->img; i++)
			if (files[p]->fds[i]->kind == RTCR__FD_KIND__FD_TTY)
				j->img = files[p]->fds[i]->tty;
	for (int fd = 0; fd < 3; fd++) {
		const char *name = isatty(fd) ? ttyname(fd) : NULL;
		if (name && tcgetsid(fd) == getsid(0)) {
			snprintf(j->path, sizeof(j->path), "%s", name);
			j->fd = fd;
			break;
		}
	}
	if (j->fd < 0) {
		pr_err("--shell-job: none of rtcr restore's stdin, stdout, stderr is its controlling "
		       "terminal (run it in the terminal that is to take the job)");
		return -ENOTTY;
	}
	if (tcgetattr(j->fd, &j->own) < 0) {
		pr_perror("--shell-job: %s", j->path);
		return -errno;
	}
	if (!j->img)
		pr_warn("--shell-job: the image holds no fd on a terminal");
	return 0;
}

/* Terminal calls from a process that may not be in the foreground: with
 * SIGTTOU blocked they act instead of stopping rtcr. */
static void ttou(bool block, sigset_t *old)
{
	sigset_t s;

	if (block) {
		sigemptyset(&s);
		sigaddset(&s, SIGTTOU);
		sigprocmask(SIG_BLOCK, &s, old);
	} else {
		sigprocmask(SIG_SETMASK, old, NULL);
	}
}

/* Give the job the terminal: its settings, then the foreground. */
static int tty_job_take(struct tty_job *j)
{
	sigset_t old;
	int ret = 0;

	ttou(true, &old);
	if (tcgetattr(j->fd, &j->own) < 0 || tcsetattr(j->fd, TCSADRAIN, &j->job) < 0 ||
	    tcsetpgrp(j->fd, j->pgid) < 0) {
		ret = -errno;
		pr_perror("--shell-job: giving %s to process group %d", j->path, j->pgid);
	} else {
		j->fg = true;
	}
	ttou(false, &old);
	return ret;
}

int tty_job_attach(struct tty_job *j, pid_t pgid, bool detach)
{
	struct winsize ws;

	if (!j->img)
		return 0;
	j->pgid = pgid;
	termios_from_image(j->img->termios, &j->job);
	j->winch = false;
	/* A terminal with a real window keeps its size (the job is told
	 * with SIGWINCH if it differs); one without a size gets the saved. */
	if (ioctl(j->fd, TIOCGWINSZ, &ws) == 0) {
		if (!ws.ws_row && !ws.ws_col) {
			ws.ws_row = (unsigned short)j->img->rows;
			ws.ws_col = (unsigned short)j->img->cols;
			ws.ws_xpixel = (unsigned short)j->img->xpixel;
			ws.ws_ypixel = (unsigned short)j->img->ypixel;
			if (ioctl(j->fd, TIOCSWINSZ, &ws) < 0)
				pr_warn("--shell-job: %s: setting its size: %s", j->path, strerror(errno));
		} else {
			j->winch = ws.ws_row != j->img->rows || ws.ws_col != j->img->cols;
		}
	}
	if (!j->img->foreground)
		return 0;
	if (detach) {
		pr_warn("--shell-job --detach: the job was in the foreground; it runs in the "
			"background now (the shell keeps the terminal)");
		return 0;
	}
	if (tcgetpgrp(j->fd) != getpgrp()) {
		pr_warn("--shell-job: rtcr restore is not in the foreground of %s: the job runs in "
			"the background", j->path);
		return 0;
	}
	return tty_job_take(j);
}

void tty_job_running(struct tty_job *j)
{
	if (j->winch)
		kill(-j->pgid, SIGWINCH);
}

void tty_job_release(struct tty_job *j)
{
	sigset_t old;

	if (!j->fg)
		return;
	ttou(true, &old);
	tcgetattr(j->fd, &j->job);
	/* Both, whatever the first did: the settings even if the group failed. */
	if (tcsetpgrp(j->fd, getpgrp()) < 0)
		pr_warn("--shell-job: giving %s back to rtcr restore: %s", j->path, strerror(errno));
	if (tcsetattr(j->fd, TCSADRAIN, &j->own) < 0)
		pr_warn("--shell-job: restoring the settings of %s: %s", j->path, strerror(errno));
	ttou(false, &old);
	j->fg = false;
}

void tty_job_stopped(struct tty_job *j, int sig)
{
	tty_job_release(j);
	/* rtcr stops as the job did, for the shell that started it; its
	 * "fg" continues rtcr and gives the job the terminal, its "bg"
	 * continues both in the background. */
	kill(getpid(), sig);
	if (tcgetpgrp(j->fd) == getpgrp())
		(void)tty_job_take(j);
	kill(-j->pgid, SIGCONT);
}
