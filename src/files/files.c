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
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"
#include "files/locks.h"

static const struct fd_ops *const all_ops[] = {
	&pipe_fd_ops,      /* a pipe inside the tree, even on fds 0-2 */
	&tty_fd_ops,       /* any terminal: a shell job's, or refused by name */
	&inherit_fd_ops,   /* before fifo and unix: a FIFO or socket on fd 0-2 is stdio */
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
		int sfd = fd_copy(fi), d = -1;
		socklen_t dl = sizeof(d);
		if (sfd >= 0 && getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &d, &dl) < 0)
			d = -1;
		if (sfd >= 0)
			close(sfd);
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

int fd_copy(const struct fd_info *fi)
{
	int pfd = (int)syscall(SYS_pidfd_open, fi->pid, 0), fd, err;

	if (pfd < 0)
		return -errno;
	fd = (int)syscall(SYS_pidfd_getfd, pfd, fi->fd, 0);
	err = errno;
	close(pfd);
	return fd < 0 ? -err : fd;
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

/* pid's fds, but for rtcr's trackers listed in own (not read). */
static int read_fds(pid_t pid, struct fd_info **out, const struct fd_ref *own, int nown)
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
		int fd = atoi(de->d_name);
		bool mine = false;
		for (int k = 0; k < nown && !mine; k++)
			mine = own[k].pid == pid && own[k].fd == fd;
		if (mine) {
			/* Still a userfaultfd (is_own()'s first test): not read. */
			char lp[64], *l;
			snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", pid, fd);
			l = xreadlink(lp);
			mine = l && !strcmp(l, "anon_inode:[userfaultfd]");
			free(l);
			if (mine)
				continue;
		}
		if (nfds == cap)
			fds = xrealloc(fds, (cap = cap ? cap * 2 : 64) * sizeof(int));
		fds[nfds++] = fd;
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
	(void)fc;
	return fi->desc_first;
}

/* Is fi one of rtcr's own files (a dirty-page tracker, or a copy of one
 * inherited through fork)? */
static int files_identify(struct files_collect *fc);

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
	memset(fc, 0, sizeof(*fc));
	fc->procs = xzalloc((n ? n : 1) * sizeof(*fc->procs));
	for (int i = 0; i < n; i++) {
		int k = read_fds(pids[i], &fc->procs[i].fds, own, nown);
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
	return files_identify(fc);
}

/* Sort key of the identification: object (device, inode), then the
 * description itself in kcmp's order (a total order on the kernel's
 * struct file pointers, obfuscated but consistent). */
static int cmp_description(const void *a, const void *b, void *arg)
{
	const struct files_collect *fc = arg;
	const int *x = a, *y = b;
	const struct fd_info *p = &fc->procs[x[0]].fds[x[1]], *q = &fc->procs[y[0]].fds[y[1]];
	long r;

	if (p->st.st_dev != q->st.st_dev)
		return p->st.st_dev < q->st.st_dev ? -1 : 1;
	if (p->st.st_ino != q->st.st_ino)
		return p->st.st_ino < q->st.st_ino ? -1 : 1;
	r = syscall(SYS_kcmp, p->pid, q->pid, KCMP_FILE, p->fd, q->fd);
	if (r == 1 || r == 2)
		return r == 1 ? -1 : 1;
	if (r == 0)
		return 0;
	/* kcmp failed (a process went away): never equal, order by place. */
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/*
 * One id per open file description, across the tree: the same object and
 * kcmp says the same struct file. Sorting by (object, kcmp order) makes
 * the fds of one description adjacent with O(n log n) kcmp calls (a
 * pairwise search costs O(n^2): every eventfd, epoll and signalfd of a
 * tree shares one anonymous inode). Ids are then given in tree order,
 * and a pipe is inside the tree if both its ends are.
 */
static int files_identify(struct files_collect *fc)
{
	int m = 0, k = 0, ncls = 0;
	int (*v)[2], *cls_id;
	uint32_t next_id = 0;

	for (int i = 0; i < fc->nprocs; i++)
		m += fc->procs[i].nfds;
	v = xmalloc((m ? m : 1) * sizeof(*v));
	for (int i = 0; i < fc->nprocs; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++, k++) {
			v[k][0] = i;
			v[k][1] = j;
		}
	qsort_r(v, m, sizeof(*v), cmp_description, fc);
	/* Classes: runs of one description; groups: runs of one object. */
	for (k = 0; k < m; k++) {
		bool same = k && !cmp_description(v[k - 1], v[k], fc);
		fc->procs[v[k][0]].fds[v[k][1]].file_id = same ? (uint32_t)ncls - 1 : (uint32_t)ncls++;
	}
	for (int a = 0, b; a < m; a = b) {
		struct fd_info *fa = &fc->procs[v[a][0]].fds[v[a][1]];
		bool rd = false, wr = false;
		for (b = a; b < m; b++) {
			struct fd_info *o = &fc->procs[v[b][0]].fds[v[b][1]];
			if (o->st.st_dev != fa->st.st_dev || o->st.st_ino != fa->st.st_ino)
				break;
			rd |= is_pipe(o) && (o->flags & O_ACCMODE) != O_WRONLY;
			wr |= is_pipe(o) && (o->flags & O_ACCMODE) != O_RDONLY;
		}
		for (int c = a; c < b; c++) {
			struct fd_info *o = &fc->procs[v[c][0]].fds[v[c][1]];
			o->pipe_internal = is_pipe(o) && rd && wr;
		}
	}
	/* Class number -> id, in tree order of first appearance. */
	cls_id = xmalloc((ncls ? ncls : 1) * sizeof(int));
	for (int c = 0; c < ncls; c++)
		cls_id[c] = -1;
	for (int i = 0; i < fc->nprocs; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++) {
			struct fd_info *fi = &fc->procs[i].fds[j];
			int c = (int)fi->file_id;
			fi->desc_first = cls_id[c] < 0;
			if (cls_id[c] < 0)
				cls_id[c] = (int)next_id++;
			fi->file_id = (uint32_t)cls_id[c];
		}
	free(cls_id);
	free(v);
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
	unix_dump_forget();
}

const struct fd_ops *fd_ops_of(const struct fd_info *fi)
{
	for (size_t k = 0; k < ARRAY_SIZE(all_ops); k++)
		if (all_ops[k]->match(fi))
			return all_ops[k];
	return NULL;
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
		const struct fd_ops *ops = fd_ops_of(fi);
		Rtcr__Fd *e;

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

int files_restore(const Rtcr__Files *f, const struct files_restore_ctx *ctx, const int *keep,
		  int nkeep)
{
	int *target = xmalloc((f->n_fds + 1) * sizeof(int));
	unsigned char *seen;
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
		 * helpers (the carriers, and whatever rtcr had open): the gaps
		 * between the kept fds, in order, by close_range. */
		int nk = (int)f->n_fds + nkeep, lo = 0;
		target = xrealloc(target, (nk + 1) * sizeof(int));
		for (int k = 0; k < nkeep; k++)
			target[f->n_fds + k] = keep[k];
		qsort(target, nk, sizeof(int), cmp_int);
		for (int k = 0; k < nk; k++) {
			if (target[k] > lo)
				syscall(SYS_close_range, lo, target[k] - 1, 0);
			lo = MAX(lo, target[k] + 1);
		}
		syscall(SYS_close_range, lo, ~0U, 0);
	}
	/* State set from inside, once per description (the first of its
	 * fds here), by its owner. */
	seen = xzalloc(ctx->ncarrier + 1);
	for (size_t i = 0; i < f->n_fds && !ret; i++) {
		const Rtcr__Fd *e = f->fds[i];
		const struct fd_ops *ops = fd_ops_by_kind(e->kind);
		bool first;
		if (e->file_id >= ctx->ncarrier)
			continue;
		first = !seen[e->file_id];
		seen[e->file_id] = 1;
		if (ops && ops->install && first && ctx->owner[e->file_id] == f->pid)
			ret = ops->install(e, ctx);
	}
	free(seen);
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
