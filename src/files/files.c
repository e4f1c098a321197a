/*
 * The fd table: walking /proc/PID/fd, dispatching to the per-kind modules,
 * detecting fds that share one open file description, and installing fds
 * at their numbers on restore.
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
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"

static const struct fd_ops *const all_ops[] = {
	&inherit_fd_ops,   /* before reg: a tty on fd 0-2 is inherited, not reopened */
	&reg_fd_ops,
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
	if (!strncmp(l, "pipe:", 5))
		return "pipe";
	if (!strncmp(l, "socket:", 7)) {
		/* fdinfo has no socket family; sock_diag would. Name it plainly. */
		return "socket";
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
		pr_perror("fd %d: readlink", fd);
		return -errno;
	}
	if (stat(path, &fi->st) < 0) {
		pr_perror("fd %d: stat", fd);
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	n = read_file(path, &fi->fdinfo);
	if (n < 0) {
		pr_err("fd %d: %s: %s", fd, path, strerror((int)-n));
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

static void fd_info_free(struct fd_info *fi)
{
	free(fi->link);
	free(fi->fdinfo);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int files_dump(pid_t pid, Rtcr__Files **out)
{
	Rtcr__Files *f = xzalloc(sizeof(*f));
	struct fd_info *infos = NULL;
	char path[64];
	struct dirent *de;
	int *fds = NULL, nfds = 0, cap = 0, ret = 0;
	DIR *d;

	rtcr__files__init(f);
	f->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		pr_perror("%s", path);
		free(f);
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

	infos = xzalloc((nfds ? nfds : 1) * sizeof(*infos));
	f->fds = xzalloc((nfds ? nfds : 1) * sizeof(*f->fds));
	for (int i = 0; i < nfds && !ret; i++) {
		struct fd_info *fi = &infos[i];
		const struct fd_ops *ops = NULL;
		Rtcr__Fd *e;

		ret = fd_info_read(pid, fds[i], fi);
		if (ret)
			break;
		for (size_t k = 0; k < ARRAY_SIZE(all_ops); k++)
			if (all_ops[k]->match(fi)) {
				ops = all_ops[k];
				break;
			}
		if (!ops) {
			char kb[128];
			pr_err("fd %d: %s: not supported", fi->fd, unknown_kind(fi, kb, sizeof(kb)));
			ret = -ENOTSUP;
			break;
		}
		e = xzalloc(sizeof(*e));
		rtcr__fd__init(e);
		e->fd = fi->fd;
		e->cloexec = fi->cloexec;
		e->kind = ops->kind;
		e->file_id = i;
		f->fds[f->n_fds++] = e;
		ret = ops->dump(fi, e);
		if (ret)
			break;
		/* Same open file description as an earlier fd? Then the
		 * description (offset, flags) is shared and restored once. */
		for (int j = 0; j < i; j++) {
			if (infos[j].st.st_dev != fi->st.st_dev || infos[j].st.st_ino != fi->st.st_ino)
				continue;
			if (syscall(SYS_kcmp, pid, pid, KCMP_FILE, infos[j].fd, fi->fd) == 0) {
				e->file_id = f->fds[j]->file_id;
				break;
			}
		}
	}
	for (int i = 0; i < nfds; i++)
		fd_info_free(&infos[i]);
	free(infos);
	free(fds);
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

int files_check(const Rtcr__Files *f, const struct files_restore_ctx *ctx)
{
	for (size_t i = 0; i < f->n_fds; i++) {
		const struct fd_ops *ops = fd_ops_by_kind(f->fds[i]->kind);
		int ret;
		if (!ops) {
			pr_err("fd %d: kind %d unknown to this rtcr", f->fds[i]->fd, f->fds[i]->kind);
			return -EPROTONOSUPPORT;
		}
		ret = ops->check ? ops->check(f->fds[i], ctx) : 0;
		if (ret)
			return ret;
	}
	return 0;
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
		const struct fd_ops *ops = fd_ops_by_kind(e->kind);
		int nfd = -1;

		if (e->kind == RTCR__FD_KIND__FD_INHERIT) {
			/* rtcr's own fd of that number is the one to keep. */
			if (fcntl(e->fd, F_GETFD) < 0) {
				pr_err("fd %d: inherited from rtcr restore, but rtcr's fd %d is closed",
				       e->fd, e->fd);
				ret = -EBADF;
				break;
			}
			if (fcntl(e->fd, F_SETFD, e->cloexec ? FD_CLOEXEC : 0) < 0)
				ret = -errno;
			continue;
		}
		/* Shares an open file description with an fd restored before? */
		for (size_t j = 0; j < i; j++)
			if (f->fds[j]->file_id == e->file_id) {
				nfd = fcntl(f->fds[j]->fd, F_DUPFD_CLOEXEC, 0);
				if (nfd < 0) {
					ret = -errno;
					pr_perror("fd %d: dup of fd %d", e->fd, f->fds[j]->fd);
				}
				break;
			}
		if (nfd < 0 && !ret) {
			nfd = ops->open(e, ctx);
			if (nfd < 0)
				ret = nfd;
		}
		if (ret)
			break;
		if (nfd != e->fd) {
			/* A later target fd may sit on e->fd right now (an inherited
			 * rtcr fd we do not keep, or a temporary): it is replaced. */
			if (dup3(nfd, e->fd, e->cloexec ? O_CLOEXEC : 0) < 0) {
				ret = -errno;
				pr_perror("fd %d: dup3", e->fd);
			}
			close(nfd);
		} else if (fcntl(nfd, F_SETFD, e->cloexec ? FD_CLOEXEC : 0) < 0) {
			ret = -errno;
		}
	}
	if (!ret) {
		/* Close every fd that is neither the target's nor rtcr's own. */
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
	free(target);
	return ret;
}
