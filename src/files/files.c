/*
 * The fd tables of a process tree: reading them from /proc, classifying
 * each fd through the per-kind modules, giving every open file
 * description one id across the tree, and on restore opening each
 * description once (carriers) and installing fds at their numbers.
 */
#include "files/files.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"
#include "files/locks.h"

static const struct fd_ops *const all_ops[] = {
	&pipe_fd_ops,      /* a pipe inside the tree, even on fds 0-2 */
	&inherit_fd_ops,   /* before reg: a tty on fd 0-2 is inherited, not reopened */
	&memfd_fd_ops,     /* before reg: memory objects, not files to reopen */
	&deleted_fd_ops,
	&fifo_fd_ops,      /* after inherit: a FIFO on fd 0-2 is stdio */
	&pidfd_fd_ops,
	&reg_fd_ops,
	&eventfd_fd_ops,
	&timerfd_fd_ops,
	&signalfd_fd_ops,
	&epoll_fd_ops,
	&inotify_fd_ops,
	&unix_fd_ops,      /* after inherit: a socket on fd 0-2 is stdio */
	&inet_fd_ops,
};

const struct fd_ops *fd_ops_by_kind(Rtcr__FdKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++)
		if (all_ops[i]->kind == kind)
			return all_ops[i];
	return NULL;
}

/* What an fd no module knows is, for the refusal message. */
static const char *unknown_kind(const struct fd_info *fi, char *buf, size_t len)
{
	const char *l = fi->link;

	if (!strncmp(l, "anon_inode:", 11)) {
		const char *n = l + 11;
		size_t k;
		if (*n == '[')
			n++;
		snprintf(buf, len, "%s", n);
		k = strlen(buf);
		if (k && buf[k - 1] == ']')
			buf[k - 1] = 0;
		return buf;
	}
	if (!strncmp(l, "pipe:", 5)) {
		snprintf(buf, len, "%s (its other end is outside the checkpointed processes)", l);
		return buf;
	}
	if (!strncmp(l, "socket:", 7)) {
		/* fdinfo has no socket family: ask the socket itself. */
		static const char *const fam[] = { [AF_INET] = "inet", [AF_INET6] = "inet6",
			[AF_NETLINK] = "netlink", [AF_PACKET] = "packet", [AF_UNIX] = "unix",
			[AF_VSOCK] = "vsock", [AF_ALG] = "alg", [AF_BLUETOOTH] = "bluetooth" };
		int pfd = (int)syscall(SYS_pidfd_open, fi->pid, 0), sfd = -1, d = -1;
		socklen_t dl = sizeof(d);
		if (pfd >= 0)
			sfd = (int)syscall(SYS_pidfd_getfd, pfd, fi->fd, 0);
		if (sfd >= 0 && getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &d, &dl) < 0)
			d = -1;
		if (sfd >= 0)
			close(sfd);
		if (pfd >= 0)
			close(pfd);
		if (d >= 0 && d < (int)ARRAY_SIZE(fam) && fam[d])
			snprintf(buf, len, "%s socket", fam[d]);
		else
			snprintf(buf, len, "socket (family %d)", d);
		return buf;
	}
	if (S_ISFIFO(fi->st.st_mode))
		return "FIFO";
	if (S_ISCHR(fi->st.st_mode)) {
		snprintf(buf, len, "character device %u:%u (%s)", major(fi->st.st_rdev),
			 minor(fi->st.st_rdev), l);
		return buf;
	}
	if (S_ISBLK(fi->st.st_mode))
		return "block device";
	snprintf(buf, len, "%s", l);
	return buf;
}

static int fd_info_read(pid_t pid, int fd, struct fd_info *fi)
{
	char path[96], *line;
	ssize_t n;

	memset(fi, 0, sizeof(*fi));
	fi->pid = pid;
	fi->fd = fd;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	fi->link = xreadlink(path);
	if (!fi->link) {
		pr_perror("pid %d: fd %d: readlink", pid, fd);
		return -errno;
	}
	if (stat(path, &fi->st) < 0) {
		pr_perror("pid %d: fd %d: stat", pid, fd);
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	n = read_file(path, &fi->fdinfo);
	if (n < 0) {
		pr_err("pid %d: fd %d: %s: %s", pid, fd, path, strerror((int)-n));
		return (int)n;
	}
	for (line = fi->fdinfo; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (!strncmp(line, "pos:", 4))
			fi->pos = strtoull(line + 4, NULL, 10);
		else if (!strncmp(line, "flags:", 6))
			fi->flags = strtoul(line + 6, NULL, 8);
	}
	fi->cloexec = fi->flags & O_CLOEXEC;
	fi->flags &= ~O_CLOEXEC;
	return 0;
}

const char *fdinfo_field(const char *fdinfo, const char *key)
{
	size_t k = strlen(key);

	for (const char *l = fdinfo; l && *l; l = strchr(l, '\n')) {
		if (*l == '\n')
			l++;
		if (!strncmp(l, key, k) && l[k] == ':')
			return l + k + 1;
	}
	return NULL;
}

static void fd_info_free(struct fd_info *fi)
{
	free(fi->link);
	free(fi->fdinfo);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int read_fds(pid_t pid, struct fd_info **out)
{
	char path[64];
	struct dirent *de;
	int *fds = NULL, nfds = 0, cap = 0, ret = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		pr_perror("%s", path);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (nfds == cap)
			fds = xrealloc(fds, (cap = cap ? cap * 2 : 64) * sizeof(int));
		fds[nfds++] = atoi(de->d_name);
	}
	closedir(d);
	qsort(fds, nfds, sizeof(int), cmp_int);
	*out = xzalloc((nfds ? nfds : 1) * sizeof(**out));
	for (int i = 0; i < nfds && !ret; i++)
		ret = fd_info_read(pid, fds[i], &(*out)[i]);
	free(fds);
	return ret ? ret : nfds;
}

static bool is_pipe(const struct fd_info *fi)
{
	return !strncmp(fi->link, "pipe:", 5);
}

bool files_first_of_description(const struct files_collect *fc, const struct fd_info *fi)
{
	for (int i = 0; i < fc->nprocs; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++) {
			const struct fd_info *o = &fc->procs[i].fds[j];
			if (o->file_id == fi->file_id)
				return o == fi;
		}
	return true;
}

/* Is fi one of rtcr's own files (a dirty-page tracker, or a copy of one
 * inherited through fork)? */
static bool is_own(const struct fd_info *fi, const struct fd_ref *own, int nown)
{
	if (!nown || strcmp(fi->link, "anon_inode:[userfaultfd]"))
		return false;
	for (int k = 0; k < nown; k++)
		if ((own[k].pid == fi->pid && own[k].fd == fi->fd) ||
		    syscall(SYS_kcmp, own[k].pid, fi->pid, KCMP_FILE, own[k].fd, fi->fd) == 0)
			return true;
	return false;
}

int files_collect(struct files_collect *fc, const pid_t *pids, int n, const struct fd_ref *own,
		  int nown)
{
	uint32_t next_id = 0;

	memset(fc, 0, sizeof(*fc));
	fc->procs = xzalloc((n ? n : 1) * sizeof(*fc->procs));
	for (int i = 0; i < n; i++) {
		int k = read_fds(pids[i], &fc->procs[i].fds);
		fc->procs[i].pid = pids[i];
		fc->nprocs = i + 1;
		if (k < 0)
			return k;
		for (int j = 0; j < k; )
			if (is_own(&fc->procs[i].fds[j], own, nown)) {
				fd_info_free(&fc->procs[i].fds[j]);
				memmove(&fc->procs[i].fds[j], &fc->procs[i].fds[j + 1],
					(k - j - 1) * sizeof(struct fd_info));
				k--;
			} else {
				j++;
			}
		fc->procs[i].nfds = k;
	}
	/* One id per open file description, across the tree: the same
	 * object (device and inode) and kcmp says the same struct file. */
	for (int i = 0; i < n; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++) {
			struct fd_info *fi = &fc->procs[i].fds[j];
			bool found = false;
			for (int a = 0; a <= i && !found; a++)
				for (int b = 0; b < (a == i ? j : fc->procs[a].nfds) && !found; b++) {
					struct fd_info *o = &fc->procs[a].fds[b];
					if (o->st.st_dev != fi->st.st_dev || o->st.st_ino != fi->st.st_ino)
						continue;
					if (syscall(SYS_kcmp, o->pid, fi->pid, KCMP_FILE, o->fd, fi->fd) == 0) {
						fi->file_id = o->file_id;
						found = true;
					}
				}
			if (!found)
				fi->file_id = next_id++;
		}
	/* A pipe is inside the tree if both its ends are. */
	for (int i = 0; i < n; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++) {
			struct fd_info *fi = &fc->procs[i].fds[j];
			bool rd = false, wr = false;
			if (!is_pipe(fi))
				continue;
			for (int a = 0; a < n; a++)
				for (int b = 0; b < fc->procs[a].nfds; b++) {
					struct fd_info *o = &fc->procs[a].fds[b];
					if (!is_pipe(o) || o->st.st_ino != fi->st.st_ino)
						continue;
					rd |= (o->flags & O_ACCMODE) != O_WRONLY;
					wr |= (o->flags & O_ACCMODE) != O_RDONLY;
				}
			fi->pipe_internal = rd && wr;
		}
	return 0;
}

void files_collect_free(struct files_collect *fc)
{
	for (int i = 0; i < fc->nprocs; i++) {
		for (int j = 0; j < fc->procs[i].nfds; j++)
			fd_info_free(&fc->procs[i].fds[j]);
		free(fc->procs[i].fds);
	}
	free(fc->procs);
	free(fc->pipes_stored);
	memset(fc, 0, sizeof(*fc));
}

int files_dump(struct files_collect *fc, int i, Rtcr__Files **out)
{
	Rtcr__Files *f = xzalloc(sizeof(*f));
	int nfds = fc->procs[i].nfds, ret = 0, pidfd = -1;

	rtcr__files__init(f);
	f->pid = fc->procs[i].pid;
	f->fds = xzalloc((nfds ? nfds : 1) * sizeof(*f->fds));
	for (int j = 0; j < nfds && !ret; j++) {
		struct fd_info *fi = &fc->procs[i].fds[j];
		const struct fd_ops *ops = NULL;
		Rtcr__Fd *e;

		for (size_t k = 0; k < ARRAY_SIZE(all_ops); k++)
			if (all_ops[k]->match(fi)) {
				ops = all_ops[k];
				break;
			}
		if (!ops) {
			char kb[160];
			if (fc->nprocs > 1)
				pr_err("pid %d: fd %d: %s: not supported", fi->pid, fi->fd,
				       unknown_kind(fi, kb, sizeof(kb)));
			else
				pr_err("fd %d: %s: not supported", fi->fd, unknown_kind(fi, kb, sizeof(kb)));
			ret = -ENOTSUP;
			break;
		}
		e = xzalloc(sizeof(*e));
		rtcr__fd__init(e);
		e->fd = fi->fd;
		e->cloexec = fi->cloexec;
		e->kind = ops->kind;
		e->file_id = fi->file_id;
		f->fds[f->n_fds++] = e;
		ret = ops->dump(fc, fi, e, f);
		if (!ret)
			ret = fdstate_dump(fc, fi, e, &pidfd);
	}
	if (pidfd >= 0)
		close(pidfd);
	if (ret) {
		files_free(f);
		return ret;
	}
	*out = f;
	return 0;
}

void files_free(Rtcr__Files *f)
{
	/* Built from malloc'ed parts, so protobuf-c's own free applies. */
	if (f)
		rtcr__files__free_unpacked(f, NULL);
}

int files_check(Rtcr__Files *const *files, size_t n, struct files_restore_ctx *ctx)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < files[p]->n_fds; i++) {
			const Rtcr__Fd *e = files[p]->fds[i];
			const struct fd_ops *ops = fd_ops_by_kind(e->kind);
			int ret;
			if (!ops) {
				pr_err("fd %d: kind %d unknown to this rtcr", e->fd, e->kind);
				return -EPROTONOSUPPORT;
			}
			ret = ops->check ? ops->check(e, ctx) : 0;
			if (ret)
				return ret;
		}
	return 0;
}

uint32_t files_ndescriptions(Rtcr__Files *const *files, size_t n)
{
	uint32_t m = 0;
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < files[p]->n_fds; i++)
			if (files[p]->fds[i]->kind != RTCR__FD_KIND__FD_INHERIT)
				m = MAX(m, files[p]->fds[i]->file_id + 1);
	return m;
}

int files_prepare(Rtcr__Files *const *files, size_t n, struct files_restore_ctx *ctx,
		  int carrier_base)
{
	uint32_t nd = files_ndescriptions(files, n), next = 0;
	int ret = 0;

	ctx->ncarrier = nd;
	ctx->carrier_top = carrier_base + (int)nd;
	ctx->files = files;
	ctx->nfiles = n;
	ctx->carrier = xmalloc((nd ? nd : 1) * sizeof(int));
	ctx->owner = xmalloc((nd ? nd : 1) * sizeof(pid_t));
	for (uint32_t i = 0; i < nd; i++) {
		ctx->carrier[i] = -1;
		ctx->owner[i] = 0;
	}
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < files[p]->n_pipes; i++) {
			ctx->pipes = xrealloc(ctx->pipes, (ctx->npipes + 1) * sizeof(*ctx->pipes));
			ctx->pipes[ctx->npipes++] = files[p]->pipes[i];
		}
	for (size_t p = 0; p < n && !ret; p++)
		for (size_t i = 0; i < files[p]->n_fds && !ret; i++) {
			const Rtcr__Fd *e = files[p]->fds[i];
			const struct fd_ops *ops = fd_ops_by_kind(e->kind);
			int fd, slot;

			if (e->kind == RTCR__FD_KIND__FD_INHERIT || e->file_id >= nd ||
			    ctx->carrier[e->file_id] >= 0)
				continue;
			fd = ops->open(e, ctx);
			if (fd < 0) {
				ret = fd;
				break;
			}
			ret = fdstate_open_fixup(e, fd);
			slot = carrier_base + next++;
			if (!ret && fd != slot && dup3(fd, slot, O_CLOEXEC) < 0) {
				ret = -errno;
				pr_perror("fd %d: placing it at %d", e->fd, slot);
			}
			if (fd != slot)
				close(fd);
			ctx->carrier[e->file_id] = slot;
			ctx->owner[e->file_id] = files[p]->pid;
		}
	pipes_prepared(ctx);
	unix_prepared(ctx);
	inet_prepared(ctx);
	fifos_prepared(ctx);
	ctx->files = NULL;
	ctx->nfiles = 0;
	return ret;
}

static bool in_list(int fd, const int *v, int n)
{
	for (int i = 0; i < n; i++)
		if (v[i] == fd)
			return true;
	return false;
}

int files_restore(const Rtcr__Files *f, const struct files_restore_ctx *ctx, const int *keep,
		  int nkeep)
{
	int *target = xmalloc((f->n_fds + 1) * sizeof(int));
	int ret = 0;

	for (size_t i = 0; i < f->n_fds; i++)
		target[i] = f->fds[i]->fd;

	for (size_t i = 0; i < f->n_fds && !ret; i++) {
		const Rtcr__Fd *e = f->fds[i];
		int carrier;

		if (e->kind == RTCR__FD_KIND__FD_INHERIT) {
			/* rtcr's own fd of that number is the one to keep. */
			if (fcntl(e->fd, F_GETFD) < 0) {
				pr_err("fd %d: inherited from rtcr restore, but rtcr's fd %d is closed",
				       e->fd, e->fd);
				ret = -EBADF;
			} else if (fcntl(e->fd, F_SETFD, e->cloexec ? FD_CLOEXEC : 0) < 0) {
				ret = -errno;
			}
			continue;
		}
		carrier = e->file_id < ctx->ncarrier ? ctx->carrier[e->file_id] : -1;
		if (carrier < 0) {
			pr_err("fd %d: its file was not prepared", e->fd);
			ret = -EINVAL;
		} else if (dup3(carrier, e->fd, e->cloexec ? O_CLOEXEC : 0) < 0) {
			ret = -errno;
			pr_perror("fd %d: dup3", e->fd);
		}
	}
	if (!ret) {
		/* Close every fd that is neither the target's nor rtcr's own
		 * helpers: the carriers, and whatever rtcr had open. */
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;
		int dfd = d ? dirfd(d) : -1;
		int *close_list = NULL, nc = 0, cc = 0;
		while (d && (de = readdir(d))) {
			int fd;
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			fd = atoi(de->d_name);
			if (fd == dfd || in_list(fd, target, f->n_fds) || in_list(fd, keep, nkeep))
				continue;
			if (nc == cc)
				close_list = xrealloc(close_list, (cc = cc ? cc * 2 : 16) * sizeof(int));
			close_list[nc++] = fd;
		}
		if (d)
			closedir(d);
		for (int i = 0; i < nc; i++)
			close(close_list[i]);
		free(close_list);
	}
	/* State set from inside, once per description (the first of its
	 * fds here), by its owner. */
	for (size_t i = 0; i < f->n_fds && !ret; i++) {
		const Rtcr__Fd *e = f->fds[i];
		const struct fd_ops *ops = fd_ops_by_kind(e->kind);
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = f->fds[k]->file_id != e->file_id;
		if (ops && ops->install && first && e->file_id < ctx->ncarrier &&
		    ctx->owner[e->file_id] == f->pid)
			ret = ops->install(e, ctx);
	}
	free(target);
	return ret;
}

void files_restore_ctx_free(struct files_restore_ctx *ctx)
{
	free(ctx->pipes);
	free(ctx->pipe_rt);
	free(ctx->carrier);
	free(ctx->owner);
	ctx->pipes = NULL;
	ctx->pipe_rt = NULL;
	ctx->carrier = NULL;
	ctx->owner = NULL;
}

int files_max_fd(const Rtcr__Files *f)
{
	int m = 2;
	for (size_t i = 0; i < f->n_fds; i++)
		m = MAX(m, f->fds[i]->fd);
	return m;
}

void files_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const struct fd_ops *ops = fd_ops_by_kind(e->kind);
	if (ops && ops->describe)
		ops->describe(e, buf, len);
	else
		snprintf(buf, len, "kind %d", e->kind);
	fdstate_describe(e, buf, len);
}
