/*
 * The lazy page server: one process, one thread, serving every address
 * space of a lazily restored tree from the mapped image.
 *
 *   faults     a missing page with data gets it by UFFDIO_COPY, with up to
 *              FAULT_CHUNK-1 pages after it; a page without data (never
 *              stored, dropped, or new memory) gets the zero page
 *   background once the tree runs: BG_CHUNK pages at a time, from where
 *              the last fault was (nearby pages first), between polls
 *   events     FORK: the child's space starts as a copy of what its parent
 *              still lacked; REMOVE (MADV_DONTNEED/FREE) and UNMAP: the
 *              range needs nothing any more (it reads zeros, or is gone);
 *              REMAP: pending pages move with the mapping
 *
 * Consistency rests on the kernel: while an event is queued and not read,
 * UFFDIO_COPY and UFFDIO_ZEROPAGE on that mm fail with EAGAIN
 * (mmap_changing), so the server reads the events first and never places
 * a page into a range the process has changed since. A copy into an mm
 * that is gone fails with ESRCH: that space is done.
 *
 * The server exits when every space is complete (or gone), after the tree
 * runs, reporting how the pages came. If it cannot place a page it must
 * place (a corrupted PAGES record, an unexpected error), it kills the
 * restored processes: they must never read a zero page where data was.
 * If it dies, its sentinel (lazy_sentinel.c) kills them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "image/load.h"
#include "image/merge.h"
#include "mem/lazy.h"
#include "mem/lazy_msg.h"

#define FAULT_CHUNK 16          /* pages placed per fault (64 KiB) */
#define BG_CHUNK 256            /* pages placed per background step (1 MiB) */

struct space {
	int uffd;
	int32_t pid;                /* whose pages (a forked child: its parent's) */
	pid_t hpid;                 /* 0 if not known (a child that was gone) */
	struct lazy_pending pend;
	uint64_t cursor;            /* background: from here on */
	bool gone;
};

struct server {
	struct loaded_image *im;
	struct space *sp;
	size_t nsp;
	int sock;
	bool running, report_stats;
	uint64_t t_run;
	int sentinel;               /* socket to the sentinel */
	int *pidfds;                /* every process served, to kill if it must */
	pid_t *pids;
	size_t npids;
	uint64_t total, faults, fault_pages, zero_faults, bg_pages;
	size_t next_bg;
	uint64_t *queue;            /* faults read, not yet served */
	size_t nq, capq;
	struct lazy_pending *pre;   /* per process of the image: its pages... */
	bool *pre_ok;               /* ...found, and not taken by a space yet */
};

static __attribute__((noreturn)) void fatal(struct server *s, const char *why)
{
	for (size_t k = 0; k < s->npids; k++)
		if (s->pidfds[k] >= 0)
			syscall(SYS_pidfd_send_signal, s->pidfds[k], SIGKILL, NULL, 0);
	lazy_sentinel_done(s->sentinel);
	pr_err("lazy restore: %s; the restored process%s killed: the rest of %s memory cannot "
	       "be restored", why, s->npids == 1 ? " was" : "es were", s->npids == 1 ? "its" : "their");
	_exit(1);
}

/* pid is served by space sp's uffd (or shares it): the sentinel holds both. */
static void know_pid(struct server *s, pid_t pid, int uffd)
{
	for (size_t k = 0; k < s->npids; k++)
		if (s->pids[k] == pid)
			return;
	s->pids = xrealloc(s->pids, (s->npids + 1) * sizeof(*s->pids));
	s->pidfds = xrealloc(s->pidfds, (s->npids + 1) * sizeof(*s->pidfds));
	s->pids[s->npids] = pid;
	s->pidfds[s->npids] = syscall(SYS_pidfd_open, pid, 0);
	lazy_sentinel_give(s->sentinel, uffd, s->pidfds[s->npids++]);
}

static struct space *add_space(struct server *s, int uffd, int32_t pid, pid_t hpid)
{
	struct space *sp;
	int fl = fcntl(uffd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(uffd, F_SETFL, fl | O_NONBLOCK);
	s->sp = xrealloc(s->sp, (s->nsp + 1) * sizeof(*s->sp));
	sp = &s->sp[s->nsp++];
	memset(sp, 0, sizeof(*sp));
	sp->uffd = uffd;
	sp->pid = pid;
	sp->hpid = hpid;
	if (hpid > 0)
		know_pid(s, hpid, uffd);
	return sp;
}

/* Process pi's lazy areas' pages, from the whole chain. */
static void pending_of(struct server *s, int pi, struct lazy_pending *pend)
{
	const Rtcr__Mm *mm = pi >= 0 ? s->im->mm[pi] : NULL;
	struct img_page_src *src = NULL;
	size_t n = 0;

	memset(pend, 0, sizeof(*pend));
	if (!mm || image_resolve_pages(s->im, pi, IMG_RESOLVE_NO_VERIFY, &src, &n))
		fatal(s, "the image's pages cannot be resolved");
	for (size_t k = 0; k < n; k++) {
		long vi = image_area_index(mm, src[k].vaddr);
		if (vi >= 0 && lazy_area(mm->vmas[vi]))
			lazy_pending_add(pend, &src[k]);
	}
	free(src);
}

/*
 * Every process's pending pages, found as soon as the server starts: the
 * work grows with memory, and rtcr meanwhile builds the tree on its CPU
 * (task/inject.h), so it is not on the way to the processes running.
 */
static void precompute(struct server *s)
{
	s->pre = xzalloc((s->im->nprocs ? s->im->nprocs : 1) * sizeof(*s->pre));
	s->pre_ok = xzalloc((s->im->nprocs ? s->im->nprocs : 1) * sizeof(*s->pre_ok));
	for (int pi = 0; pi < (int)s->im->nprocs; pi++)
		if (s->im->mm[pi]) {
			pending_of(s, pi, &s->pre[pi]);
			s->pre_ok[pi] = true;
		}
}

/* A restored process: its pages, found by precompute(). */
static void new_space(struct server *s, int uffd, int32_t pid, pid_t hpid)
{
	int pi = image_proc_index(s->im, pid);
	struct space *sp = add_space(s, uffd, pid, hpid);

	if (pi >= 0 && s->pre_ok[pi]) {
		sp->pend = s->pre[pi];
		s->pre_ok[pi] = false;
	} else {
		pending_of(s, pi, &sp->pend);
	}
	s->total += sp->pend.pages;
}

/* ---- placing pages ---- */

/* 0, -EAGAIN (an event is to be read first), -ESRCH (the mm is gone),
 * -ENOENT/-EEXIST (nothing there / already there), other: failure. */
static int ioctl_copy(struct space *sp, uint64_t dst, const void *src, uint64_t len, uint64_t *done)
{
	struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len, .mode = 0 };
	int ret = ioctl(sp->uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
	*done = c.copy > 0 ? (uint64_t)c.copy : 0;
	if (!ret && *done < len)
		ret = -EAGAIN;
	if (ret && c.copy < 0)
		ret = (int)c.copy;
	return ret;
}

static int wake(struct space *sp, uint64_t addr, uint64_t len)
{
	struct uffdio_range r = { addr, len };
	return ioctl(sp->uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

/*
 * Place pages [addr, addr + n pages) of extent i (all pending), waking
 * whoever waits on them. *placed: pages copied. A range the process has
 * split since (mprotect...) is retried page by page; a page that is
 * already there or whose area is gone needs nothing more.
 */
static int place(struct server *s, struct space *sp, size_t i, uint64_t addr, uint64_t n,
		 uint64_t *placed)
{
	struct lazy_ext e = sp->pend.v[i];
	const char *data = e.data + (addr - e.addr);
	uint64_t done = 0;
	char why[160];
	int ret;

	*placed = 0;
	if (image_pages_check(e.from, e.rec)) {
		snprintf(why, sizeof(why), "the pages for %#llx in %s are corrupted",
			 (unsigned long long)addr, e.from->dir);
		fatal(s, why);
	}
	ret = ioctl_copy(sp, addr, data, n * PAGE_SIZE, &done);
	if (done) {
		lazy_pending_drop(&sp->pend, addr, addr + done);
		*placed += done / PAGE_SIZE;
	}
	if (ret == -EEXIST || ret == -ENOENT || (ret == -EINVAL && n > 1)) {
		/* Page by page from where it stopped. */
		for (uint64_t a = addr + done; a < addr + n * PAGE_SIZE; a += PAGE_SIZE) {
			uint64_t d1;
			ret = ioctl_copy(sp, a, data + (a - addr), PAGE_SIZE, &d1);
			if (ret == -EAGAIN || ret == -ESRCH)
				return ret;
			if (ret == -EEXIST)
				wake(sp, a, PAGE_SIZE);
			if (ret && ret != -EEXIST && ret != -ENOENT)
				break;
			if (!ret)
				(*placed)++;
			lazy_pending_drop(&sp->pend, a, a + PAGE_SIZE);
		}
	}
	if (!ret || ret == -EAGAIN || ret == -ESRCH || ret == -EEXIST || ret == -ENOENT)
		return ret == -EEXIST || ret == -ENOENT ? 0 : ret;
	snprintf(why, sizeof(why), "UFFDIO_COPY at %#llx of pid %d: %s", (unsigned long long)addr,
		 sp->hpid, strerror(-ret));
	fatal(s, why);
}

/* A fault at addr. 0 done, -EAGAIN: read events first, -ESRCH: gone. */
static int serve_fault(struct server *s, struct space *sp, uint64_t addr)
{
	long i = lazy_pending_find(&sp->pend, addr);
	uint64_t placed, n;
	int ret;

	if (i < 0) {
		/* Nothing to give: the page reads zeros (or is there already). */
		struct uffdio_zeropage z = { .range = { addr, PAGE_SIZE }, .mode = 0 };
		ret = ioctl(sp->uffd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
		if (ret == -EAGAIN || ret == -ESRCH)
			return ret;
		if (ret)
			wake(sp, addr, PAGE_SIZE);
		s->zero_faults++;
		return 0;
	}
	n = MIN((uint64_t)FAULT_CHUNK, (sp->pend.v[i].addr + sp->pend.v[i].npages * PAGE_SIZE - addr) /
		PAGE_SIZE);
	ret = place(s, sp, (size_t)i, addr, n, &placed);
	if (ret == -EAGAIN && placed == 0)
		return ret;
	s->faults++;
	s->fault_pages += placed;
	sp->cursor = addr + n * PAGE_SIZE;
	/* -EAGAIN after some pages: the faulting one is in (the first placed);
	 * the rest comes after the events. */
	return ret == -EAGAIN ? 0 : ret;
}

/* ---- events ---- */

static void on_fork(struct server *s, struct space *parent, int ufd)
{
	pid_t *kids = NULL, child = 0;
	int n = parent->hpid > 0 ? proc_children(parent->hpid, &kids) : 0;
	struct lazy_pending copy;
	size_t pi = parent - s->sp;
	struct space *sp;

	/* Its pid, to kill it if it must: a child of the parent not known
	 * yet (the parent waits in fork until this event is read). */
	for (int k = 0; k < n; k++) {
		bool known = false;
		for (size_t j = 0; j < s->npids && !known; j++)
			known = s->pids[j] == kids[k];
		if (!known && !child)
			child = kids[k];
		if (!known)
			know_pid(s, kids[k], ufd);
	}
	if (n > 0)
		free(kids);
	lazy_pending_copy(&copy, &parent->pend);
	sp = add_space(s, ufd, parent->pid, 0);   /* may move s->sp */
	sp->hpid = child;
	sp->pend = copy;
	sp->cursor = s->sp[pi].cursor;
	s->total += copy.pages;
}

static void handle_msg(struct server *s, size_t si, const struct uffd_msg *m)
{
	struct space *sp = &s->sp[si];

	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		if (s->nq == s->capq) {
			s->capq = s->capq ? s->capq * 2 : 64;
			s->queue = xrealloc(s->queue, s->capq * sizeof(*s->queue));
		}
		s->queue[s->nq++] = m->arg.pagefault.address & PAGE_MASK;
		break;
	case UFFD_EVENT_FORK:
		on_fork(s, sp, (int)m->arg.fork.ufd);
		break;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		lazy_pending_drop(&sp->pend, m->arg.remove.start, m->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		lazy_pending_move(&sp->pend, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		break;
	default:
		pr_warn("lazy restore: unexpected userfaultfd event %#x", m->event);
	}
}

/* Read what space si's uffd has: events applied, faults queued. */
static int read_msgs(struct server *s, size_t si)
{
	struct uffd_msg m[32];
	ssize_t n;
	int got = 0;

	while ((n = read(s->sp[si].uffd, m, sizeof(m))) > 0) {
		for (ssize_t k = 0; k < n / (ssize_t)sizeof(m[0]); k++)
			handle_msg(s, si, &m[k]);
		got += n / sizeof(m[0]);
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		char why[96];
		snprintf(why, sizeof(why), "reading a userfaultfd: %s", strerror(errno));
		fatal(s, why);
	}
	return got;
}

/* Wait a little for space si's uffd to have something (an event whose
 * EAGAIN came before it was queued). */
static void await_event(struct server *s, size_t si)
{
	struct pollfd p = { s->sp[si].uffd, POLLIN, 0 };
	poll(&p, 1, 1);
	read_msgs(s, si);
}

/* Serve the faults read from space si. */
static void serve_queue(struct server *s, size_t si)
{
	for (size_t q = 0; q < s->nq; q++) {
		int ret;
		while ((ret = serve_fault(s, &s->sp[si], s->queue[q])) == -EAGAIN)
			await_event(s, si);
		if (ret == -ESRCH) {
			s->sp[si].gone = true;
			break;
		}
	}
	s->nq = 0;
}

/* ---- background ---- */

static bool complete(const struct server *s)
{
	for (size_t k = 0; k < s->nsp; k++)
		if (!s->sp[k].gone && s->sp[k].pend.pages)
			return false;
	return true;
}

static void background_step(struct server *s)
{
	for (size_t tries = 0; tries < s->nsp; tries++) {
		size_t si = s->next_bg++ % s->nsp, i;
		struct space *sp = &s->sp[si];
		uint64_t at, n, placed;
		int ret;

		if (sp->gone || !sp->pend.pages)
			continue;
		i = lazy_pending_lower(&sp->pend, sp->cursor);
		if (i == sp->pend.n)
			i = 0;
		at = MAX(sp->pend.v[i].addr, sp->cursor);
		if (at >= sp->pend.v[i].addr + sp->pend.v[i].npages * PAGE_SIZE)
			at = sp->pend.v[i].addr;
		n = MIN((uint64_t)BG_CHUNK,
			(sp->pend.v[i].addr + sp->pend.v[i].npages * PAGE_SIZE - at) / PAGE_SIZE);
		ret = place(s, sp, i, at, n, &placed);
		s->bg_pages += placed;
		sp->cursor = at + placed * PAGE_SIZE;
		if (ret == -EAGAIN && !placed)
			await_event(s, si);
		else if (ret == -ESRCH)
			sp->gone = true;
		return;
	}
}

static void report(struct server *s)
{
	uint64_t t = now_ns() - s->t_run, placed = s->fault_pages + s->bg_pages;
	size_t gone = 0;
	char b[32];

	for (size_t k = 0; k < s->nsp; k++)
		gone += s->sp[k].gone;
	fprintf(stderr, "rtcr restore: lazy: last page in %.3f ms after the process%s ran: %s in %llu "
		"pages, %llu by %llu faults, %llu in the background; %llu zero-page faults%s\n",
		t / 1e6, s->npids == 1 ? "" : "es", fmt_bytes(b, sizeof(b), placed * PAGE_SIZE),
		(unsigned long long)placed, (unsigned long long)s->fault_pages,
		(unsigned long long)s->faults, (unsigned long long)s->bg_pages,
		(unsigned long long)s->zero_faults,
		gone ? " (some processes ended before all their pages came)" : "");
	if (s->report_stats)
		fprintf(stderr, "STATS lazy spaces=%zu pages=%llu fault_pages=%llu faults=%llu "
			"bg_pages=%llu zero_faults=%llu last_page_ns=%llu\n", s->nsp,
			(unsigned long long)placed, (unsigned long long)s->fault_pages,
			(unsigned long long)s->faults, (unsigned long long)s->bg_pages,
			(unsigned long long)s->zero_faults, (unsigned long long)t);
}

/* A message from rtcr restore. false: the socket is done with. */
static bool read_sock(struct server *s)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct lazy_msg m;
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(s->sock, &mh, MSG_CMSG_CLOEXEC);
	struct cmsghdr *cm;
	int fd = -1;

	if (n < 0 && errno == EINTR)
		return true;
	cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (n != (ssize_t)sizeof(m) || m.type == LAZY_MSG_RUNNING) {
		/* 'R', or rtcr gone: the tree may run (rtcr died after
		 * detaching it), so serve on. */
		s->running = true;
		s->t_run = n == (ssize_t)sizeof(m) ? m.t : now_ns();
		return false;
	}
	if (m.type == LAZY_MSG_ABORT) {
		/* The restore failed and kills its processes itself: the
		 * sentinel must not report a server death. */
		lazy_sentinel_done(s->sentinel);
		_exit(0);
	}
	if (m.type == LAZY_MSG_SPACE && fd >= 0)
		new_space(s, fd, m.pid, m.hpid);
	return true;
}

void lazy_serve(struct loaded_image *im, int sock, bool report_stats)
{
	struct server s = { .im = im, .sock = sock, .report_stats = report_stats };
	int devnull = open("/dev/null", O_RDWR);
	struct pollfd *pfd = NULL;
	const char *bg_delay;

	/* Out of the terminal's process group (a ^C for the restored
	 * process must not take its pages away); stdout free for rtcr. */
	setpgid(0, 0);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	log_set_prefix("rtcr lazy");
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		close(devnull);
	}
	s.sentinel = lazy_sentinel_start(sock);
	if (s.sentinel < 0)
		pr_warn("lazy restore: no sentinel (%s): if this server dies, the processes' missing "
			"pages will read as zeros", strerror(-s.sentinel));
	precompute(&s);
	bg_delay = getenv("RTCR_TEST_LAZY_BG_DELAY_MS");
	for (;;) {
		size_t np = 0;
		int timeout = -1, n;

		if (s.running && complete(&s))
			break;
		if (s.running && bg_delay && now_ns() < s.t_run + strtoull(bg_delay, NULL, 0) * 1000000)
			timeout = 5;   /* tests: ranges stay unfilled a while */
		else if (s.running)
			timeout = 0;
		pfd = xrealloc(pfd, (s.nsp + 1) * sizeof(*pfd));
		for (size_t k = 0; k < s.nsp; k++)
			pfd[np++] = (struct pollfd){ s.sp[k].gone ? -1 : s.sp[k].uffd, POLLIN, 0 };
		pfd[np++] = (struct pollfd){ s.sock, POLLIN, 0 };
		n = poll(pfd, np, timeout);
		if (n < 0 && errno != EINTR)
			fatal(&s, "poll failed");
		if (n > 0 && s.sock >= 0 && pfd[np - 1].revents && !read_sock(&s)) {
			close(s.sock);
			s.sock = -1;
		}
		for (size_t k = 0; n > 0 && k < np - 1; k++)
			if (pfd[k].revents && !s.sp[k].gone) {
				read_msgs(&s, k);
				serve_queue(&s, k);
			}
		if (timeout == 0)
			background_step(&s);
	}
	report(&s);
	/* The last reference to each uffd goes: the kernel unregisters the
	 * areas, and the processes run on without the server. */
	for (size_t k = 0; k < s.nsp; k++)
		close(s.sp[k].uffd);
	lazy_sentinel_done(s.sentinel);
	_exit(0);
}
