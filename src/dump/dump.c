/*
 * rtcr dump: checkpointing a running process and all its descendants.
 *
 * The dump is a state machine; every state has one way forward and one
 * way back to running, unmodified processes:
 *
 *   PREFLIGHT   /proc checks of the root that need no stop
 *      |
 *      v
 *   FROZEN      every thread of every process of the tree seized and
 *      |        stopped, again until no new process or thread appears;
 *      |        frozen time starts. Handles and memory areas of all are
 *      |        classified here, before anything is injected: a refusal
 *      |        detaches at once.
 *      v
 *   INJECTING   per process: inject_begin(): signals blocked, scratch area
 *      |        mapped (its rollback frames return each thread to its saved
 *      |        state if rtcr dies); state only the task can ask for is
 *      v        read with injected calls
 *   CURED       inject_finish(): scratch unmapped, registers back
 *      |
 *      v
 *   WRITTEN     image streamed to DIR/.image.rtcr.partial; END; fsync;
 *      |        renamed to DIR/image.rtcr (img_commit)
 *      v
 *   RELEASED    default: SIGKILL the tree; --leave-running: detach
 *
 * --live (mem/live.h) adds LIVE before FROZEN (the tree's memory copied
 * while it runs) and, after CURED, CAPTURED (what the image needs copied
 * into rtcr's memory); then RELEASED comes before WRITTEN.
 *
 * Any failure from FROZEN on goes to ABORT: cure what is injecting, detach
 * everything, delete the partial image. Catchable signals to rtcr (SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT) and crashes take the same way out.
 */
#include "dump/dump.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "arch/x86/scratch_layout.h"
#include "common/proc.h"
#include "common/phases.h"
#include "common/spare.h"
#include "common/util.h"
#include "common/version.h"
#include "files/files.h"
#include "files/netlock.h"
#include "image/image.h"
#include "image/load.h"
#include "mem/live.h"
#include "mem/mem.h"
#include "mem/track.h"
#include "mem/memobj.h"
#include "task/ptrace.h"
#include "task/task.h"

/* One process of the tree. */
struct pdump {
	pid_t pid;
	pid_t *tids;                  /* seized threads, the main one first */
	int ntids;
	bool stopped;                 /* in group stop (SIGSTOP) */
	bool zombie;
	int exit_status;              /* of a zombie */
	struct inject in;             /* the main thread's */
	struct scratch sc;
	bool injecting;
	bool answered;                /* its injected queries answered already: */
	bool answered_early;          /* by live_ask() (else by the last checkpoint's freeze) */
	struct attrs_more more;       /* (its answers of those) */
	struct vma_list vl;
	struct track tr;              /* dirty-page tracking (mem/track.h) */
	struct mirror mir;            /* live, not in the rounds: its pages, copied frozen */
	struct live_proc *lp;         /* live: its pre-copy (NULL: not in the rounds) */
	Rtcr__Process *proc;
	Rtcr__Mm *mm;
	Rtcr__Files *files;
};

struct dump_ctx {
	const struct dump_opts *o;
	struct pdump *p;              /* tree order: a parent before its children */
	int np;
	struct files_collect fc;
	struct memobj_table objs;     /* SysV segments, memfds, deleted files */
	struct mem_stats ms;
	struct img_stream *sink;
	uint8_t id[16];               /* this image's */
	bool has_prev;
	uint8_t prev_id[16];          /* the parent image's (--prev) */
	char *prev_rel;               /* its directory, relative to ours */
	uint64_t image_bytes;
	struct quiet quiet;           /* live: the wait for the root's idle time before the freeze */
	bool quiet_skipped;           /* not waited for: the rounds did not converge */
	uint64_t t_start, t_freeze, t_thaw;
	struct phases ph;             /* where the frozen time went (--stats) */
	struct phases wall;           /* where the whole dump's time went (--stats) */
	struct live_proc **lives;     /* --live: the pre-copy of each process of the tree
				       * as it was before the rounds (the root first) */
	int nlives;
	uint64_t vdso_hash;           /* of the root's [vdso], read while frozen */
	struct pdump *asking;         /* held by live_ask() */
};

/* For the emergency exit: what is held right now. */
static struct dump_ctx *volatile g_ctx;
static volatile sig_atomic_t g_signalled;

static void on_crash(int sig)
{
	struct dump_ctx *c = g_ctx;

	for (int i = 0; c && i <= c->np; i++) {
		struct pdump *p = i < c->np ? &c->p[i] : c->asking;
		if (!p)
			continue;
		/* Once the scratch exists its rollback frames restore the
		 * threads when they run on; before that, put the main thread's
		 * registers back. */
		if (p->injecting && !p->sc.base)
			ptrace(PTRACE_SETREGS, p->pid, 0, &p->in.saved);
		if (p->injecting)
			ptrace(PTRACE_SETSIGMASK, p->pid, (void *)8, &p->in.saved_sigmask);
		if (p->injecting && p->in.pinned)
			sched_setaffinity(p->pid, sizeof(p->in.saved_cpus), &p->in.saved_cpus);
		for (int t = 0; t < p->ntids; t++)
			ptrace(PTRACE_DETACH, p->tids[t], 0, 0);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_signal(int sig)
{
	g_signalled = sig;
}

static void install_handlers(void)
{
	struct sigaction sa;
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	static const int stop[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_RESETHAND;
	for (size_t i = 0; i < ARRAY_SIZE(fatal); i++)
		sigaction(fatal[i], &sa, NULL);
	sa.sa_handler = on_signal;
	sa.sa_flags = 0;   /* no SA_RESTART: a blocking call returns EINTR */
	for (size_t i = 0; i < ARRAY_SIZE(stop); i++)
		sigaction(stop[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int check_signalled(void)
{
	if (g_signalled) {
		pr_err("interrupted by %s: abandoning the dump", sig_name(g_signalled));
		return -EINTR;
	}
	return 0;
}

int task_preflight(pid_t pid)
{
	static const char *const ns[] = { "pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time" };
	struct proc_status ps;
	uint64_t v;
	pid_t *ids;
	int n, ret;

	if (pid == getpid()) {
		pr_err("pid %d is rtcr itself", pid);
		return -EINVAL;
	}
	ret = proc_status_read(pid, &ps);
	if (ret) {
		if (ret == -ENOENT)
			pr_err("pid %d: no such process", pid);
		else
			pr_err("pid %d: /proc/%d/status: %s", pid, pid, strerror(-ret));
		return ret == -ENOENT ? -ESRCH : ret;
	}
	if (!proc_status_u64(&ps, "Tgid", &v, 10) && (pid_t)v != pid) {
		pr_err("pid %d is a thread of process %llu: give the process id", pid,
		       (unsigned long long)v);
		ret = -EINVAL;
	} else if (!proc_status_u64(&ps, "Seccomp", &v, 10) && v) {
		pr_err("pid %d: seccomp %s: not supported yet", pid, v == 1 ? "strict mode" : "filter");
		ret = -ENOTSUP;
	} else {
		const char *st = proc_status_get(&ps, "State");   /* "S (sleeping)" */
		uint64_t nthr = 1;
		proc_status_u64(&ps, "Threads", &nthr, 10);
		if (st && (st[0] == 'Z' || st[0] == 'X')) {
			if (nthr > 1)
				pr_err("pid %d: its main thread has exited while %llu other threads run: "
				       "not supported yet", pid, (unsigned long long)nthr - 1);
			else
				pr_err("pid %d is a zombie: nothing left to checkpoint", pid);
			ret = -ESRCH;
		}
	}
	proc_status_free(&ps);
	if (ret)
		return ret;

	n = proc_tasks(pid, &ids);
	if (n < 0)
		return n;
	free(ids);
	if (n > SCRATCH_MAX_SLOTS) {
		pr_err("pid %d has %d threads: at most %d are supported", pid, n, SCRATCH_MAX_SLOTS);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		ret = proc_ns_differs(pid, ns[i]);
		if (ret < 0)
			return ret;
		if (ret) {
			pr_err("pid %d lives in another %s namespace than rtcr: not supported yet",
			       pid, ns[i]);
			return -ENOTSUP;
		}
	}
	return 0;
}

static void fill_inventory(Rtcr__Inventory *inv, Rtcr__CpuInfo *cpu, const struct cpu_info *ci,
			   pid_t pid, const uint8_t id[16], uint64_t t, uint64_t vdso_hash,
			   bool leave_running, char *bootid, struct utsname *u)
{
	rtcr__inventory__init(inv);
	rtcr__cpu_info__init(cpu);
	cpu->vendor = (char *)ci->vendor;
	cpu->xfeatures = ci->xfeatures;
	cpu->xsave_size = ci->xsave_size;
	cpu->n_features = CPU_NR_FEATURE_WORDS;
	cpu->features = (uint32_t *)ci->features;
	inv->format_version = IMG_VERSION;
	inv->tool_version = (char *)RTCR_VERSION;
	inv->dump_time_ns = t;
	inv->root_pid = pid;
	inv->kernel_release = u->release;
	inv->boot_id = bootid;
	inv->cpu = cpu;
	inv->image_id.data = (uint8_t *)id;
	inv->image_id.len = 16;
	inv->page_size = PAGE_SIZE;
	inv->hostname = u->nodename;
	inv->has_leave_running = 1;
	inv->leave_running = leave_running;
	inv->has_vdso_hash = 1;
	inv->vdso_hash = vdso_hash;
}
static char *read_boot_id(void)
{
	char *s = NULL;
	if (read_file("/proc/sys/kernel/random/boot_id", &s) < 0)
		return xstrdup("unknown");
	s[strcspn(s, "\n")] = 0;
	return s;
}

static struct pdump *find_proc(struct dump_ctx *c, pid_t pid)
{
	for (int i = 0; i < c->np; i++)
		if (c->p[i].pid == pid)
			return &c->p[i];
	return NULL;
}

/*
 * Stop every thread of p, again and again until no new one appears (a
 * running thread may create one while others are stopping; once all are
 * stopped none can). Threads that exit meanwhile are dropped.
 * asking (live_ask()'s stop before the freeze, which is not fatal: the
 * freeze asks instead): nothing is logged, the freeze's start is not
 * this, threads that keep coming (4 listings) or a stopped process give
 * -EAGAIN.
 */
static int freeze_threads(struct dump_ctx *c, struct pdump *p, bool asking)
{
	for (int pass = 0;; pass++) {
		pid_t *now;
		bool added = false;
		int n;

		if (asking && pass == 4)
			return -EAGAIN;
		n = proc_tasks(p->pid, &now);
		if (n < 0) {
			if (!asking)
				pr_err("pid %d: listing its threads: %s", p->pid, strerror(-n));
			return n;
		}
		/* The main thread first, so it is tids[0]. */
		for (int k = 0; k < n; k++)
			if (now[k] == p->pid) {
				now[k] = now[0];
				now[0] = p->pid;
			}
		for (int k = 0; k < n; k++) {
			struct stop st;
			bool known = false;
			int ret;

			for (int j = 0; j < p->ntids && !known; j++)
				known = p->tids[j] == now[k];
			if (known)
				continue;
			if (p->ntids >= SCRATCH_MAX_SLOTS) {
				if (!asking)
					pr_err("pid %d: more than %d threads: not supported", p->pid,
					       SCRATCH_MAX_SLOTS);
				free(now);
				return -ENOTSUP;
			}
			ret = task_seize(now[k], false);
			if (ret == -ESRCH && now[k] != p->pid)
				continue;         /* a thread that just exited */
			if (ret) {
				free(now);
				return ret;
			}
			p->tids = xrealloc(p->tids, (p->ntids + 1) * sizeof(pid_t));
			p->tids[p->ntids++] = now[k];
			if (!c->t_freeze && !asking) {
				c->t_freeze = now_ns();
				phase_start(&c->ph);
			}
			ret = task_stop(now[k], &st);
			if (ret == -ESRCH) {
				p->ntids--;       /* exited before it stopped */
				if (now[k] != p->pid)
					continue;
				free(now);        /* the process: freeze_tree() decides */
				return ret;
			}
			if (!ret && asking && st.kind != STOP_INTERRUPT)
				ret = -EAGAIN;    /* stopped by someone else: not now */
			if (ret) {
				if (!asking)
					pr_err("pid %d: tid %d could not be stopped: %s", p->pid,
					       now[k], strerror(-ret));
				free(now);
				return ret;
			}
			if (now[k] == p->pid)
				p->stopped = st.kind == STOP_GROUP;
			added = true;
		}
		free(now);
		if (!added)
			return 0;
	}
}

/* A process found dead and unreaped: only its ids and status are kept. */
static int note_zombie(struct pdump *p)
{
	uint64_t f[PROC_STAT_FIELDS];
	char state = 0;
	int ret = proc_stat_read(p->pid, f, &state);

	if (ret)
		return ret;
	if (state != 'Z')
		return -EAGAIN;
	p->zombie = true;
	p->exit_status = (int)f[52];
	return 0;
}

/*
 * FROZEN: the root and every descendant, each with all its threads, until
 * no new process appears (a running one may fork while others stop).
 * The list is in tree order: every parent before its children.
 */
static int freeze_tree(struct dump_ctx *c)
{
	for (;;) {
		bool added = false;
		pid_t *queue = xmalloc(sizeof(pid_t));
		int nq = 1, ret = 0;

		queue[0] = c->o->pid;
		for (int qi = 0; qi < nq && !ret; qi++) {
			pid_t pid = queue[qi];
			struct pdump *p = find_proc(c, pid);
			pid_t *kids;
			int nk;

			if (!p) {
				c->p = xrealloc(c->p, (c->np + 1) * sizeof(*c->p));
				p = &c->p[c->np++];
				memset(p, 0, sizeof(*p));
				p->pid = pid;
				p->in.memfd = -1;
				added = true;
				if (note_zombie(p) == -EAGAIN) {
					ret = freeze_threads(c, p, false);
					/* It may have died meanwhile (a child of a frozen
					 * parent stays a zombie: it is one of the tree). */
					if (ret == -ESRCH && !p->ntids && note_zombie(p) == 0)
						ret = 0;
					else if (ret == -ESRCH)
						pr_err("pid %d: no such process", p->pid);
				}
			}
			if (ret || p->zombie)
				continue;
			nk = proc_children(pid, &kids);
			if (nk < 0) {
				ret = nk;
				break;
			}
			queue = xrealloc(queue, (nq + nk) * sizeof(pid_t));
			for (int k = 0; k < nk; k++) {
				bool seen = false;
				for (int j = 0; j < nq; j++)
					seen |= queue[j] == kids[k];
				if (!seen)
					queue[nq++] = kids[k];
			}
			free(kids);
		}
		free(queue);
		if (ret)
			return ret;
		if (!added)
			return 0;
	}
}

/*
 * A tree restores by each process forking its children, so every process
 * must be where fork puts it: in its parent's session and process group,
 * or leading its own, or in a group led by a process restored before it.
 */
static int check_tree_ids(struct dump_ctx *c)
{
	for (int i = 1; i < c->np; i++) {
		Rtcr__Process *pr = c->p[i].proc;
		Rtcr__Process *parent = NULL;
		bool group_ok = pr->pgid == pr->pid;

		for (int j = 0; j < i; j++) {
			if (c->p[j].pid == pr->ppid)
				parent = c->p[j].proc;
			if (c->p[j].pid == pr->pgid)
				group_ok = true;
		}
		if (!parent) {
			pr_err("pid %d: its parent %d is not in the tree", pr->pid, pr->ppid);
			return -EINVAL;
		}
		if (pr->sid != parent->sid && pr->sid != pr->pid) {
			pr_err("pid %d is in session %d, neither its parent's nor its own: not supported yet",
			       pr->pid, pr->sid);
			return -ENOTSUP;
		}
		if (pr->pgid != parent->pgid && !group_ok) {
			pr_err("pid %d is in process group %d, led by no process of the tree before it: "
			       "not supported yet", pr->pid, pr->pgid);
			return -ENOTSUP;
		}
	}
	return 0;
}

/*
 * Processes (not threads) sharing a kernel object that fork would copy:
 * made with clone(CLONE_VM / CLONE_FILES / CLONE_FS / CLONE_SIGHAND), or
 * a vfork child before its exec. Restore forks each process, so it would
 * give them copies: refuse by name.
 */
/* kcmp's order (a total order on the kernel objects) as a sort order. */
static int kcmp_order(const void *a, const void *b, void *type)
{
	long r = syscall(SYS_kcmp, *(const pid_t *)a, *(const pid_t *)b, *(int *)type, 0, 0);
	return r == 1 ? -1 : r == 2 ? 1 : 0;
}

/* Processes sharing what rtcr cannot restore shared: sorted by kcmp's
 * order, sharers are neighbours (O(n log n) calls, not a pairwise search). */
static int check_tree_sharing(struct dump_ctx *c)
{
	static const struct { int type; const char *what; } kinds[] = {
		{ KCMP_VM, "its memory (vfork before exec, or clone(CLONE_VM))" },
		{ KCMP_FILES, "its fd table (clone(CLONE_FILES))" },
		{ KCMP_FS, "its root, cwd and umask (clone(CLONE_FS))" },
		{ KCMP_SIGHAND, "its signal actions (clone(CLONE_SIGHAND))" },
	};
	pid_t *pids = xmalloc((c->np ? c->np : 1) * sizeof(*pids));
	int n = 0, ret = 0;

	for (int i = 0; i < c->np; i++)
		if (!c->p[i].zombie)
			pids[n++] = c->p[i].pid;
	for (size_t k = 0; k < ARRAY_SIZE(kinds) && !ret && n > 1; k++) {
		int type = kinds[k].type;
		qsort_r(pids, n, sizeof(*pids), kcmp_order, &type);
		for (int i = 1; i < n && !ret; i++)
			if (syscall(SYS_kcmp, pids[i], pids[i - 1], type, 0, 0) == 0) {
				pr_err("pid %d shares %s with pid %d: not supported yet",
				       pids[i], kinds[k].what, pids[i - 1]);
				ret = -ENOTSUP;
			}
	}
	free(pids);
	return ret;
}

/*
 * For each stopped child of p: has p collected that stop already? Asked
 * in p itself, without consuming anything: waitid(WSTOPPED | WNOWAIT |
 * WNOHANG) reports the child only while its stop is still to be
 * collected.
 */
static int note_stops_reported(struct dump_ctx *c, struct pdump *p)
{
	uint64_t data = inject_data(&p->in);

	for (int k = 0; k < c->np; k++) {
		struct pdump *kid = &c->p[k];
		siginfo_t si;
		int ret;

		if (kid->zombie || !kid->stopped || !kid->proc || kid->proc->ppid != p->pid)
			continue;
		memset(&si, 0, sizeof(si));
		ret = inject_write(&p->in, data, &si, sizeof(si));
		if (!ret)
			ret = inject_call(&p->in, "asking whether a child's stop was collected",
					  __NR_waitid, P_PID, kid->pid, data,
					  WSTOPPED | WNOWAIT | WNOHANG, 0, 0, NULL);
		if (!ret)
			ret = inject_read(&p->in, data, &si, sizeof(si));
		if (ret)
			return ret;
		kid->proc->has_stop_reported = 1;
		kid->proc->stop_reported = si.si_pid != kid->pid;
	}
	return 0;
}

/*
 * A process of the rounds that made no call that changes what injected
 * calls read since its answers were taken (live_answers_current()), by
 * live_ask()'s stop or by the last periodic checkpoint's freeze: those
 * answers, and the rest read as usual, without stopping a thread for a
 * call. Not with a stopped child (asking whether its stop was collected
 * is a call).
 */
static bool answers_usable(struct dump_ctx *c, struct pdump *p)
{
	if (!p->lp || !live_answers_current(p->lp) ||
	    !answers_cover(p->lp->answers, p->tids, p->ntids))
		return false;
	for (int k = 0; k < c->np; k++)
		if (c->p[k].stopped && c->p[k].proc && c->p[k].proc->ppid == p->pid)
			return false;
	return true;
}

/* A thread's credentials, kept only if they differ from the process's. */
static int thread_creds(struct inject *in, Rtcr__Thread *t, const long *securebits,
			const Rtcr__Creds *process)
{
	int ret = creds_dump(in, t->tid, securebits, &t->creds);

	if (!ret && creds_equal(t->creds, process)) {
		rtcr__creds__free_unpacked(t->creds, NULL);
		t->creds = NULL;
	}
	return ret;
}

/* Answered: what /proc tells, and the answers taken instead of the
 * injected calls. Needs neither the pages nor the memory objects: done
 * while the final round's walk runs (frozen_answers()). */
static int dump_answered(struct pdump *p)
{
	const struct answers *a = p->lp->answers;
	int ret;

	ret = attrs_dump(NULL, p->pid, p->proc, NULL);
	if (ret)
		return ret;
	answers_apply(a, p->proc, &p->more);
	ret = peek_pending(p->pid, true, &p->proc->shared_pending, &p->proc->n_shared_pending);
	if (!ret)
		ret = creds_dump(NULL, p->pid, &p->more.securebits, &p->proc->creds);
	for (int i = 1; i < p->ntids && !ret; i++) {
		Rtcr__Thread *ti = p->proc->threads[i];
		long sb = answers_thread_securebits(a, ti->tid);
		ret = thread_creds(NULL, ti, &sb, p->proc->creds);
	}
	p->answered = !ret;
	p->answered_early = p->lp->asked;
	return ret;
}

/* FROZEN: the processes whose answers are current, their /proc part. */
static int frozen_answers(struct dump_ctx *c)
{
	int ret = 0;

	for (int i = 0; i < c->np && !ret; i++)
		if (!c->p[i].zombie && answers_usable(c, &c->p[i]))
			ret = dump_answered(&c->p[i]);
	return ret;
}

static int do_inject(struct dump_ctx *c, struct pdump *p)
{
	Rtcr__Thread *t = p->proc->threads[0];
	uint64_t gadget;
	struct attrs_more more;
	struct cpu_info ci;
	int ret;

	/* Answered (frozen_answers()): its memory record, now that its
	 * pages are known. */
	if (p->answered)
		return mem_dump_mm(NULL, p->pid, &p->vl, &p->more.brk, &p->mm);
	gadget = mem_find_gadget(p->pid, &p->vl);
	if (!gadget)
		return -ENOEXEC;
	ret = inject_begin(&p->in, p->pid, gadget);
	if (ret)
		return ret;
	p->injecting = true;
	cpu_info_get(&ci);
	ret = inject_map_scratch(&p->in, &p->sc, 0, p->ntids, ci.xsave_size, t->xstate.data,
				 t->xstate.len);
	if (ret)
		return ret;
	test_kill_point("injecting");

	phase_mark(&c->ph, "inject-begin");
	ret = attrs_dump(&p->in, p->pid, p->proc, &more);
	phase_mark(&c->ph, "attrs");
	if (!ret)
		ret = timers_dump(&p->in, p->pid, p->proc);
	phase_mark(&c->ph, "timers");
	if (!ret)
		ret = note_stops_reported(c, p);
	if (!ret)
		ret = signals_dump(&p->in, p->pid, p->proc);
	phase_mark(&c->ph, "signals");
	test_kill_point("queried");
	if (!ret)
		ret = creds_dump(&p->in, p->pid, &more.securebits, &p->proc->creds);
	if (!ret)
		ret = thread_dump_inj(&p->in, t);
	phase_mark(&c->ph, "creds+thread");
	if (!ret)
		ret = mem_dump_mm(&p->in, p->pid, &p->vl, &more.brk, &p->mm);
	phase_mark(&c->ph, "mm");
	/* Dirty tracking for the next incremental dump: after the pages to
	 * store were found, before the process runs again. */
	if (!ret && (c->o->track_mem || c->o->prev || c->o->live) && c->o->leave_running &&
	    !p->lp)
		ret = track_arm(&p->tr, &p->in, &p->vl, c->id);
	/* The other threads, each in its own scratch slot, one at a time. */
	for (int i = 1; i < p->ntids && !ret; i++) {
		Rtcr__Thread *ti = p->proc->threads[i];
		struct inject it;
		int fin;

		ret = inject_begin(&it, ti->tid, 0);
		if (ret)
			break;
		ret = inject_attach_scratch(&it, &p->sc, i, ti->xstate.data, ti->xstate.len);
		if (!ret)
			ret = thread_dump_inj(&it, ti);
		if (!ret)
			ret = thread_creds(&it, ti, NULL, p->proc->creds);
		fin = inject_finish(&it);
		inject_abandon(&it);
		if (!ret)
			ret = fin;
	}
	if (ret)
		return ret;
	ret = inject_unmap_scratch(&p->in);
	if (!ret)
		ret = inject_finish(&p->in);
	if (ret)
		return ret;
	p->injecting = false;
	return 0;
}

/* How long to wait for the idle time before a pause: not at all if the
 * tree writes much (each ms adds pages to the freeze). */
static unsigned idle_wait_bound(struct dump_ctx *c)
{
	if (!c->o->idle_wait_ms)
		return 0;
	if (!live_converged(c->lives, c->nlives)) {
		c->quiet_skipped = true;
		return 0;
	}
	return c->o->idle_wait_ms;
}

/*
 * A live dump without answers kept from a last checkpoint asks the
 * injected queries in a short stop of each process of the rounds, after
 * them and before the freeze, its counters of what changes the answers
 * open (mem/mapwatch.h: mw_attrs, opened by live_begin()); the freeze
 * takes them if nothing was counted since (answers_usable()). The process
 * is stopped twice, each time for less: its longest pause is shorter.
 * Asked only if the areas of the last round are current (the injection
 * runs at a syscall instruction found in them). Not fatal: whatever goes
 * wrong, the freeze asks as usual.
 */
static int live_ask(struct dump_ctx *c, struct live_proc *lp)
{
	uint64_t f[PROC_STAT_FIELDS];
	struct pdump q;
	uint64_t n, t0;
	int ret = 0;

	if (lp->gone || !lp->aw.nfd || live_answers_current(lp) || !lp->watching ||
	    !lp->vl_counted || !lp->vl.nr)
		return 0;
	/* A pause too: in its idle time if found. */
	{
		struct quiet qa;
		task_wait_quiet(lp->pid, idle_wait_bound(c), &qa);
		pr_debug("pid %d: the ask stop begins %s%s (waited %.3f ms)", lp->pid,
			 qa.found ? "" : "at once: idle time not found, ", qa.how,
			 qa.waited_ns / 1e6);
	}
	memset(&q, 0, sizeof(q));
	q.pid = lp->pid;
	q.in.memfd = -1;
	q.lp = lp;
	c->asking = &q;
	t0 = now_ns();
	/* Every thread stopped, the main one first; listed again until none
	 * is new (a thread made during the stop would run through it). */
	ret = freeze_threads(c, &q, true);
	/* The same process (not a pid used again); its areas still the last
	 * round's, now that nothing of it runs: the injection needs a
	 * syscall instruction found in them. */
	if (!ret && (!q.ntids || q.tids[0] != lp->pid))
		ret = -ESRCH;
	if (!ret && (proc_stat_read(lp->pid, f, NULL) || f[22] != lp->start_time))
		ret = -ESRCH;
	if (!ret && (mapwatch_count(&lp->mw, &n) || n != lp->mw_base))
		ret = -EAGAIN;
	if (!ret) {
		q.proc = xzalloc(sizeof(*q.proc));
		rtcr__process__init(q.proc);
		q.proc->pid = lp->pid;
		q.proc->threads = xzalloc(q.ntids * sizeof(*q.proc->threads));
		for (int i = 0; i < q.ntids && !ret; i++) {
			Rtcr__Thread *t = xzalloc(sizeof(*t));
			rtcr__thread__init(t);
			q.proc->threads[q.proc->n_threads++] = t;
			ret = thread_dump_cpu(q.tids[i], t);
		}
	}
	if (!ret) {
		vma_list_copy(&q.vl, &lp->vl);
		ret = do_inject(c, &q);
		if (!ret)
			ret = check_signalled();
	}
	if (q.injecting) {
		if (q.sc.base && inject_unmap_scratch(&q.in))
			pr_err("pid %d: could not remove rtcr's scratch area", q.pid);
		if (inject_finish(&q.in))
			pr_err("pid %d: could not restore its registers", q.pid);
		q.injecting = false;
	}
	inject_abandon(&q.in);
	/* Counted before the release: a call right after it counts. The
	 * scratch area came and went with every thread stopped since the
	 * count matched the areas: the areas are current after it too. */
	live_asked(lp, ret ? NULL : answers_take(q.proc, q.mm), !ret);
	for (int i = 0; i < q.ntids; i++)
		task_detach(q.tids[i], 0);
	lp->ask_ns = now_ns() - t0;
	c->asking = NULL;
	pr_debug("pid %d: asked before the freeze: %s", q.pid, ret ? strerror(-ret) : "ok");
	free(q.tids);
	vma_list_free(&q.vl);
	process_free(q.proc);
	mm_free(q.mm);
	/* Only a signal to rtcr stops the dump; the freeze asks otherwise. */
	return g_signalled ? -EINTR : 0;
}

/*
 * FROZEN, first: the areas of the processes with rounds, and the final
 * round of the root begun: its walk of the written pages (the part of
 * the freeze that grows with the memory) runs on the spare CPU while
 * this one reads the handles and registers. One walk at a time is the
 * spare CPU's: the other processes' wait for live_final().
 */
static int frozen_areas(struct dump_ctx *c)
{
	bool begun = false;
	int ret = 0;

	for (int i = 0; i < c->np && !ret; i++) {
		struct pdump *p = &c->p[i];
		if (!p->lp || p->zombie)
			continue;
		ret = live_areas(p->lp, &p->vl);
		if (!ret && !begun) {
			ret = live_final_begin(p->lp, &p->vl);
			begun = true;
		}
	}
	return ret;
}

/* Everything about one live process except its pages. */
static int dump_process(struct dump_ctx *c, struct pdump *p, int fi)
{
	uint64_t f[PROC_STAT_FIELDS];
	int ret;

	ret = task_preflight(p->pid);
	if (!ret)
		ret = files_dump(&c->fc, fi, &p->files);
	phase_mark(&c->ph, "fds");
	/* (A process with rounds has them: frozen_areas().) */
	if (!ret && !p->lp)
		ret = vma_list_read(p->pid, &p->vl, p->tr.target_fd >= 0);
	phase_mark(&c->ph, "areas");
	if (ret)
		return ret;
	p->proc = xzalloc(sizeof(*p->proc));
	rtcr__process__init(p->proc);
	p->proc->stopped = p->stopped;
	ret = proc_stat_read(p->pid, f, NULL);
	if (ret)
		return ret;
	/* Ids now: check_tree_ids() runs before anything is injected. */
	p->proc->pid = p->pid;
	p->proc->ppid = f[4];
	p->proc->pgid = f[5];
	p->proc->sid = f[6];
	p->proc->has_exit_signal = 1;
	p->proc->exit_signal = f[38];
	p->proc->threads = xzalloc(p->ntids * sizeof(*p->proc->threads));
	for (int i = 0; i < p->ntids && !ret; i++) {
		Rtcr__Thread *t = xzalloc(sizeof(*t));
		rtcr__thread__init(t);
		p->proc->threads[p->proc->n_threads++] = t;
		ret = thread_dump_cpu(p->tids[i], t);
	}
	return ret;
}

/* A zombie's record: ids, exit status, exit signal. */
static int dump_zombie(struct pdump *p)
{
	uint64_t f[PROC_STAT_FIELDS];
	char comm[64] = "";
	int ret = proc_stat_read(p->pid, f, NULL);

	if (ret)
		return ret;
	if (proc_comm(p->pid, p->pid, comm, sizeof(comm)))
		comm[0] = 0;
	p->proc = xzalloc(sizeof(*p->proc));
	rtcr__process__init(p->proc);
	p->proc->pid = p->pid;
	p->proc->ppid = f[4];
	p->proc->pgid = f[5];
	p->proc->sid = f[6];
	p->proc->comm = xstrdup(comm);
	p->proc->cwd = xstrdup("/");
	p->proc->root = xstrdup("/");
	p->proc->has_exit_signal = 1;
	p->proc->exit_signal = f[38];
	p->proc->has_zombie = 1;
	p->proc->zombie = true;
	p->proc->has_exit_status = 1;
	p->proc->exit_status = p->exit_status;
	p->proc->creds = xzalloc(sizeof(*p->proc->creds));
	rtcr__creds__init(p->proc->creds);
	return 0;
}

static void detach_all(struct dump_ctx *c)
{
	for (int i = 0; i < c->np; i++)
		for (int t = 0; t < c->p[i].ntids; t++)
			task_detach(c->p[i].tids[t], 0);
}

static int random_id(uint8_t id[16])
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read_full(fd, id, 16)) {
		pr_perror("/dev/urandom");
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

/* The path of 'to' relative to directory 'from' (both absolute, clean). */
static char *relative_path(const char *from, const char *to)
{
	size_t common = 0, n = 0;
	char *out;

	for (size_t i = 0;; i++) {
		if ((from[i] == '/' || !from[i]) && (to[i] == '/' || !to[i]))
			common = i;
		if (!from[i] || !to[i] || from[i] != to[i])
			break;
	}
	for (const char *p = from + common; *p; p++)
		n += *p == '/';
	out = xzalloc(3 * n + strlen(to) + 2);
	for (size_t k = 0; k < n; k++)
		strcat(out, "../");
	strcat(out, to[common] == '/' ? to + common + 1 : to + common);
	if (!*out)
		strcpy(out, ".");
	return out;
}

/* --prev DIR: the parent image must be there, whole, and of this process. */
static int load_prev(struct dump_ctx *c)
{
	struct loaded_image pim;
	char *from, *to;
	int ret = image_load(c->o->prev, &pim);

	if (ret) {
		pr_err("--prev %s: no usable parent image there", c->o->prev);
		return ret;
	}
	if (pim.inv->root_pid != c->o->pid) {
		pr_err("--prev %s is an image of pid %d, not of pid %d", c->o->prev,
		       pim.inv->root_pid, c->o->pid);
		image_unload(&pim);
		return -EINVAL;
	}
	memcpy(c->prev_id, pim.image_id, 16);
	c->has_prev = true;
	image_unload(&pim);
	from = realpath(c->o->dir, NULL);
	to = realpath(c->o->prev, NULL);
	if (!from || !to) {
		pr_perror("--prev %s", c->o->prev);
		free(from);
		free(to);
		return -ENOENT;
	}
	if (!strcmp(from, to)) {
		pr_err("--prev %s is the image directory itself", c->o->prev);
		free(from);
		free(to);
		return -EINVAL;
	}
	c->prev_rel = relative_path(from, to);
	free(from);
	free(to);
	return 0;
}

static int write_image(struct dump_ctx *c)
{
	Rtcr__Inventory inv;
	Rtcr__CpuInfo cpu;
	Rtcr__NetNs netns = RTCR__NET_NS__INIT;
	struct cpu_info ci;
	struct utsname u;
	struct imgw w;
	uint8_t *id = c->id;
	char *bootid = read_boot_id();
	int ret;

	cpu_info_get(&ci);
	uname(&u);
	fill_inventory(&inv, &cpu, &ci, c->o->pid, id, realtime_ns(),
		       c->vdso_hash, c->o->leave_running, bootid, &u);
	/* The tree's network namespace (rtcr works in it), and the lock the
	 * restore removes (a dump that leaves the tree running removed it). */
	if (!netns_ino(0, &netns.ino)) {
		netns.name = netns_name(netns.ino);
		inv.netns = &netns;
	}
	if (!c->o->leave_running)
		inv.net_lock = (Rtcr__NetLock *)inet_dump_netlock();
	if (c->has_prev) {
		inv.has_parent_id = 1;
		inv.parent_id.data = c->prev_id;
		inv.parent_id.len = 16;
		inv.parent_path = c->prev_rel;
	}

	ret = img_sink_file(c->o->dir, IMG_FILE_NAME, &c->sink);
	if (ret) {
		free(bootid);
		return ret;
	}
	ret = imgw_begin(&w, c->sink, id);
	if (!ret)
		ret = imgw_put_pb(&w, REC_INVENTORY, &inv.base);
	if (!ret)
		ret = memobj_write_table(&w, &c->objs);
	/* All metadata first (a restore from a stream builds every process
	 * before pages arrive), then every process's pages. */
	for (int i = 0; i < c->np && !ret; i++) {
		ret = imgw_put_pb(&w, REC_PROCESS, &c->p[i].proc->base);
		if (!ret && !c->p[i].zombie)
			ret = imgw_put_pb(&w, REC_MM, &c->p[i].mm->base);
		if (!ret && !c->p[i].zombie)
			ret = imgw_put_pb(&w, REC_FILES, &c->p[i].files->base);
	}
	if (!ret)
		ret = check_signalled();
	for (int i = 0; i < c->np && !ret; i++)
		if (!c->p[i].zombie)
			ret = mem_dump_pages(&w, c->p[i].pid, &c->p[i].vl, &c->ms);
	if (!ret)
		ret = memobj_write_contents(&w, &c->objs, &c->ms);
	test_kill_point("written");
	if (!ret)
		ret = check_signalled();
	/* Nothing arrived on a connection since it was read (inet.c). */
	if (!ret)
		ret = inet_dump_verify();
	if (!ret)
		ret = c->o->leave_running ? imgw_end(&w) : imgw_finish(&w);
	c->image_bytes = c->sink->pos;
	imgw_release(&w);
	free(bootid);
	free(netns.name);
	return ret;
}

static int answered(const struct dump_ctx *c)
{
	int n = 0;

	for (int i = 0; i < c->np; i++)
		n += c->p[i].answered;
	return n;
}

static int live_resumed(const struct dump_ctx *c)
{
	int n = 0;

	for (int i = 0; i < c->nlives; i++)
		n += c->lives[i]->resumed;
	return n;
}

/* A statistic of the live rounds, summed over the tree. */
static uint64_t live_sum(const struct dump_ctx *c, size_t off)
{
	uint64_t v = 0;
	for (int i = 0; i < c->nlives; i++)
		v += *(const uint64_t *)((const char *)c->lives[i] + off);
	return v;
}

static uint64_t live_max(const struct dump_ctx *c, size_t off)
{
	uint64_t v = 0;
	for (int i = 0; i < c->nlives; i++)
		v = MAX(v, *(const uint64_t *)((const char *)c->lives[i] + off));
	return v;
}

static void print_stats(struct dump_ctx *c)
{
	uint64_t bytes = c->ms.pages * PAGE_SIZE;
	double copy_s = c->ms.copy_ns / 1e9;
	char b1[32], b2[32];
	int nthr = 0;

	for (int i = 0; i < c->np; i++)
		nthr += c->p[i].ntids;
	fprintf(stderr,
		"rtcr dump: pid %d: %d process%s, %d thread%s, %s of memory in %llu pages, image %s\n"
		"  frozen      %8.3f ms\n"
		"  total       %8.3f ms\n"
		"  page scan   %8.3f ms\n"
		"  page copy   %8.3f ms (%.2f GiB/s)\n",
		c->o->pid, c->np, c->np == 1 ? "" : "es", nthr, nthr == 1 ? "" : "s",
		fmt_bytes(b1, sizeof(b1), bytes), (unsigned long long)c->ms.pages,
		fmt_bytes(b2, sizeof(b2), c->image_bytes), (c->t_thaw - c->t_freeze) / 1e6,
		(now_ns() - c->t_start) / 1e6, c->ms.scan_ns / 1e6, c->ms.copy_ns / 1e6,
		copy_s > 0 ? bytes / copy_s / (1ULL << 30) : 0.0);
	if (c->lives) {
		uint64_t pre = live_sum(c, offsetof(struct live_proc, precopied));
		uint64_t last = live_sum(c, offsetof(struct live_proc, last_written));
		uint64_t stops = live_sum(c, offsetof(struct live_proc, throttle_stops));
		uint64_t tns = live_sum(c, offsetof(struct live_proc, throttle_ns));
		uint64_t tmax = live_max(c, offsetof(struct live_proc, throttle_max_ns));
		uint64_t ns = live_max(c, offsetof(struct live_proc, precopy_ns));
		int rounds = 0, nproc = 0, resumed = live_resumed(c);
		for (int i = 0; i < c->nlives; i++) {
			rounds = MAX(rounds, c->lives[i]->rounds + 1);
			nproc += !c->lives[i]->gone;
		}
		fprintf(stderr, "  live        %8.3f ms copying %llu pages of %d process%s in %d rounds "
			"while it ran; %llu written in the last\n", ns / 1e6, (unsigned long long)pre,
			nproc, nproc == 1 ? "" : "es", rounds, (unsigned long long)last);
		if (resumed)
			fprintf(stderr, "  went on     from the last checkpoint's copies (%d of %d "
				"process%s): only pages written since were copied\n", resumed, c->nlives,
				c->nlives == 1 ? "" : "es");
		if (stops)
			fprintf(stderr, "  throttled   %llu stops while it ran, %.3f ms in all, the "
				"longest %.3f ms (it wrote faster than rtcr copies)\n",
				(unsigned long long)stops, tns / 1e6, tmax / 1e6);
		for (int i = 0; i < c->nlives; i++)
			if (c->lives[i]->ask_ns)
				fprintf(stderr, "  ask stop    %8.3f ms: pid %d stopped for the injected "
					"queries before the freeze\n", c->lives[i]->ask_ns / 1e6,
					c->lives[i]->pid);
		for (int i = 0; i < c->np; i++)
			if (c->p[i].answered)
				fprintf(stderr, "  asked       nothing frozen: the answers to injected calls of "
					"%s (pid %d; no call that changes them since)\n",
					c->p[i].answered_early ? "a stop before the freeze" :
					"the last checkpoint's freeze", c->p[i].pid);
		if (c->quiet_skipped)
			fprintf(stderr, "  idle time   not waited for: it writes too fast (each ms "
				"would add pages to the freeze)\n");
		else if (c->o->idle_wait_ms && c->quiet.found)
			fprintf(stderr, "  idle time   the freeze began %s (waited %.3f ms)\n",
				c->quiet.how, c->quiet.waited_ns / 1e6);
		else if (c->o->idle_wait_ms)
			fprintf(stderr, "  idle time   not found (%s): the freeze began after %.3f ms\n",
				c->quiet.how, c->quiet.waited_ns / 1e6);
		for (int i = 0; i < c->np; i++)
			if (c->p[i].lp && c->p[i].lp->areas_how)
				fprintf(stderr, "  areas       %s (pid %d)\n", c->p[i].lp->areas_how,
					c->p[i].pid);
	}
	phases_print(&c->ph, stderr, "  frozen in:  ");
	phases_print(&c->wall, stderr, "  total in:   ");
	if (c->has_prev)
		fprintf(stderr, "  incremental: %llu pages unchanged since %s (left there)\n",
			(unsigned long long)c->ms.inherited, c->o->prev);
	/* One machine-readable line for benchmarks. */
	fprintf(stderr, "STATS dump pid=%d processes=%d threads=%d pages=%llu bytes=%llu image=%llu "
		"frozen_ns=%llu copy_ns=%llu scan_ns=%llu total_ns=%llu inherited=%llu precopied=%llu "
		"final_pages=%llu throttle_stops=%llu throttle_ns=%llu throttle_max_ns=%llu "
		"live_resumed=%d answered=%d ask_ns=%llu idle_found=%d idle_wait_ns=%llu\n", c->o->pid,
		c->np, nthr, (unsigned long long)c->ms.pages, (unsigned long long)bytes,
		(unsigned long long)c->image_bytes, (unsigned long long)(c->t_thaw - c->t_freeze),
		(unsigned long long)c->ms.copy_ns, (unsigned long long)c->ms.scan_ns,
		(unsigned long long)(now_ns() - c->t_start), (unsigned long long)c->ms.inherited,
		(unsigned long long)live_sum(c, offsetof(struct live_proc, precopied)),
		(unsigned long long)live_sum(c, offsetof(struct live_proc, last_written)),
		(unsigned long long)live_sum(c, offsetof(struct live_proc, throttle_stops)),
		(unsigned long long)live_sum(c, offsetof(struct live_proc, throttle_ns)),
		(unsigned long long)live_max(c, offsetof(struct live_proc, throttle_max_ns)),
		live_resumed(c), answered(c),
		(unsigned long long)live_max(c, offsetof(struct live_proc, ask_ns)),
		c->quiet.found, (unsigned long long)c->quiet.waited_ns);
}

bool dump_interrupted(void)
{
	return g_signalled != 0;
}

void live_set_free(struct live_set *s)
{
	for (int i = 0; i < s->n; i++) {
		live_end(s->lp[i]);
		free(s->lp[i]);
	}
	free(s->lp);
	s->lp = NULL;
	s->n = 0;
}

/* The kept copy of the process pid is now (the same start time), if any. */
static struct live_proc *kept_take(struct dump_ctx *c, pid_t pid)
{
	struct live_set *s = c->o->kept;
	uint64_t f[PROC_STAT_FIELDS];

	if (!s || proc_stat_read(pid, f, NULL))
		return NULL;
	for (int i = 0; i < s->n; i++) {
		struct live_proc *lp = s->lp[i];
		if (lp->pid == pid && lp->start_time == f[22]) {
			s->lp[i] = s->lp[--s->n];
			return lp;
		}
	}
	return NULL;
}

/*
 * LIVE: the tree as it is now, root first, each process with its tracker
 * and its copy (mem/live.h). The root must be copied live; another
 * process that cannot be (stopped, sharing its memory, ...) is copied
 * frozen like any process born during the rounds.
 */
static int live_tree(struct dump_ctx *c)
{
	pid_t *queue = xmalloc(sizeof(pid_t));
	int nq = 1, ret = 0;

	queue[0] = c->o->pid;
	for (int qi = 0; qi < nq && !ret; qi++) {
		pid_t pid = queue[qi], *kids;
		struct live_proc *lp;
		char state = 0;
		uint64_t f[PROC_STAT_FIELDS];
		bool shares = false;
		int nk;

		if (qi > 0) {
			/* Stopped or a zombie: frozen. Its memory shared with one
			 * already in the rounds: the freeze refuses it by name. */
			if (proc_stat_read(pid, f, &state) || state == 'T' || state == 't' ||
			    state == 'Z')
				goto kids;
			/* (kcmp failing counts as sharing: not copied live) */
			for (int i = 0; i < c->nlives && !shares; i++)
				shares = syscall(SYS_kcmp, pid, c->lives[i]->pid, KCMP_VM, 0, 0) <= 0;
			if (shares)
				goto kids;
		}
		lp = kept_take(c, pid);
		if (lp) {
			ret = live_resume(lp, c->has_prev ? c->prev_id : NULL, c->id);
			if (!ret)
				goto resumed;
			live_end(lp);
			free(lp);
		}
		lp = xzalloc(sizeof(*lp));
		ret = live_begin(lp, pid, c->has_prev ? c->prev_id : NULL, c->id);
resumed:
		if (ret && qi > 0) {
			pr_debug("pid %d: copied frozen (%s)", pid, strerror(-ret));
			live_end(lp);
			free(lp);
			ret = 0;
			goto kids;
		}
		c->lives = xrealloc(c->lives, (c->nlives + 1) * sizeof(*c->lives));
		c->lives[c->nlives++] = lp;
		if (ret)
			break;
kids:
		nk = proc_children(pid, &kids);
		if (nk < 0)
			continue;
		queue = xrealloc(queue, (nq + nk + 1) * sizeof(pid_t));
		for (int k = 0; k < nk; k++) {
			bool seen = false;
			for (int j = 0; j < nq && !seen; j++)
				seen = queue[j] == kids[k];
			if (!seen)
				queue[nq++] = kids[k];
		}
		free(kids);
	}
	free(queue);
	/* Kept copies of processes that are gone. */
	if (c->o->kept)
		live_set_free(c->o->kept);
	return ret;
}

/* A live dump succeeded: its copies, for the next (periodic) dump. */
static void keep_lives(struct dump_ctx *c)
{
	struct live_set *s = c->o->kept;

	for (int i = 0; i < c->np; i++) {
		struct live_proc *lp = c->p[i].lp;
		if (!lp || lp->gone)
			continue;
		live_keep(lp, c->id);     /* (not freed by dump_run() then) */
		answers_free(lp->answers);
		lp->answers = answers_take(c->p[i].proc, c->p[i].mm);
		lp->asked = false;
		s->lp = xrealloc(s->lp, (s->n + 1) * sizeof(*s->lp));
		s->lp[s->n++] = lp;
	}
}

/* After the final rounds: the pages each process in the rounds stores
 * and leaves in its parent, from its copy, into its Mm record. */
static int lives_pages(struct dump_ctx *c)
{
	int ret = 0;

	for (int i = 0; i < c->np && !ret; i++) {
		if (!c->p[i].lp)
			continue;
		ret = live_pages(c->p[i].lp, &c->p[i].vl, &c->ms);
		if (!ret)
			mem_mm_pages(c->p[i].mm, &c->p[i].vl);
	}
	return ret;
}

/* FROZEN: each process of the tree with its rounds, if it had them (the
 * same process: the same start time). */
static void live_match(struct dump_ctx *c)
{
	for (int i = 0; i < c->np; i++) {
		uint64_t f[PROC_STAT_FIELDS];
		struct pdump *p = &c->p[i];
		if (p->zombie || proc_stat_read(p->pid, f, NULL))
			continue;
		for (int k = 0; k < c->nlives && !p->lp; k++) {
			struct live_proc *lp = c->lives[k];
			if (lp->gone || lp->pid != p->pid || lp->start_time != f[22])
				continue;
			/* The same process, but an exec replaced its memory
			 * (and closed the tracker): its rounds were of the old. */
			if (!live_tracker_held(lp, lp->tr.target_fd)) {
				pr_warn("pid %d exec'd since its rounds began: copied frozen", p->pid);
				lp->gone = true;
				continue;
			}
			p->lp = lp;
		}
	}
}

int dump_run(const struct dump_opts *o, struct dump_result *res)
{
	struct dump_ctx c;
	pid_t *live;
	int nlive = 0, ret;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.t_start = now_ns();
	phase_start(&c.wall);
	install_handlers();

	/* PREFLIGHT: rtcr works in the tree's network namespace (its sockets,
	 * sock_diag, /proc/net, the network lock are per namespace). */
	ret = netns_enter_pid(o->pid);
	if (!ret)
		ret = task_preflight(o->pid);
	if (ret)
		return ret;
	{
		struct stat sb;
		if (stat(o->dir, &sb) < 0) {
			pr_perror("image directory %s", o->dir);
			return -ENOENT;
		}
		if (!S_ISDIR(sb.st_mode)) {
			pr_err("image directory %s: not a directory", o->dir);
			return -ENOTDIR;
		}
	}
	if (o->live && o->leave_running && o->tcp_established) {
		pr_err("--live --leave-running with --tcp-established: not supported yet (a live "
		       "dump that kills the process can take them)");
		return -ENOTSUP;
	}
	{
		/* Read now (it is read once): each cpuid traps to the
		 * hypervisor in a VM, ~50 us for all, not to be frozen time. */
		struct cpu_info ci;
		cpu_info_get(&ci);
	}
	ret = random_id(c.id);
	if (!ret && o->prev)
		ret = load_prev(&c);
	if (ret)
		return ret;

	/* LIVE: the tree's memory copied while it runs (mem/live.h). */
	if (o->live) {
		ret = live_tree(&c);
		phase_mark(&c.wall, "live-begin");
		if (!ret)
			ret = live_precopy(c.lives, c.nlives);
		phase_mark(&c.wall, "rounds");
		g_ctx = &c;
		for (int i = 0; i < c.nlives && !ret; i++)
			ret = live_ask(&c, c.lives[i]);
		g_ctx = NULL;
		phase_mark(&c.wall, "ask");
		test_pause_point("live-rounds-done");
		if (!ret)
			ret = check_signalled();
		if (ret)
			goto out;
	}

	/* FROZEN. The spare CPU's worker is woken first: a wake-up costs
	 * up to ~2 ms here (it yields its CPU to anything else there). */
	if (c.lives) {
		task_wait_quiet(o->pid, idle_wait_bound(&c), &c.quiet);
		phase_mark(&c.wall, "align");
		spare_arm();
	}
	g_ctx = &c;
	ret = freeze_tree(&c);
	if (ret)
		goto abort;
	test_kill_point("seized");
	phase_mark(&c.ph, "seize");
	live_match(&c);
	ret = check_tree_sharing(&c);
	if (ret)
		goto abort;
	phase_mark(&c.ph, "sharing");
	ret = frozen_areas(&c);
	if (ret)
		goto abort;
	phase_mark(&c.ph, "live-areas");
	/* Our own trackers (mem/track.h), and copies of them children got
	 * through fork, are not the processes' handles. */
	live = xmalloc(c.np * sizeof(pid_t));
	{
		struct fd_ref *own = xmalloc(c.np * sizeof(*own));
		int nown = 0;
		for (int i = 0; i < c.np; i++) {
			if (c.p[i].zombie)
				continue;
			if (c.p[i].lp)
				c.p[i].tr = c.p[i].lp->tr;    /* probed and taken already */
			else
				track_probe(&c.p[i].tr, c.p[i].pid, c.has_prev ? c.prev_id : NULL);
			if (c.has_prev && !c.p[i].tr.valid && !c.p[i].lp)
				pr_warn("pid %d: all its memory is stored: %s", c.p[i].pid,
					c.p[i].tr.why);
			if (c.p[i].tr.target_fd >= 0)
				own[nown++] = (struct fd_ref){ c.p[i].pid, c.p[i].tr.target_fd };
			live[nlive++] = c.p[i].pid;
		}
		ret = files_collect(&c.fc, live, nlive, own, nown);
		free(own);
	}
	free(live);
	phase_mark(&c.ph, "fd-collect");
	c.fc.unix_reconnect = o->unix_reconnect;
	c.fc.tcp_established = o->tcp_established;
	c.fc.shell_job = o->shell_job;
	/* The connections fall silent before any is read. */
	if (!ret)
		ret = inet_dump_lock(&c.fc, c.id);
	for (int i = 0, fi = 0; i < c.np && !ret; i++)
		ret = c.p[i].zombie ? dump_zombie(&c.p[i]) : dump_process(&c, &c.p[i], fi++);
	if (!ret)
		ret = check_tree_ids(&c);
	if (ret)
		goto abort;
	phase_mark(&c.ph, "registers");
	ret = frozen_answers(&c);
	if (ret)
		goto abort;
	phase_mark(&c.ph, "answers");
	/* Pages with data; a shared memory object's only once in the tree. */
	{
		struct vma_list **vls = xmalloc(c.np * sizeof(*vls));
		pid_t *pids = xmalloc(c.np * sizeof(*pids));
		bool *inc = xmalloc(c.np * sizeof(*inc));
		int nv = 0;
		for (int i = 0; i < c.np; i++)
			if (!c.p[i].zombie) {
				inc[nv] = c.p[i].tr.valid;
				pids[nv] = c.p[i].pid;
				vls[nv++] = &c.p[i].vl;
			}
		/* Objects first: they tell SysV areas their extent. */
		ret = memobj_collect(&c.objs, pids, vls, nv);
		if (!ret) {
			/* ...and the ones fds hold (memfds, deleted files). */
			Rtcr__Files **fl = xmalloc(c.np * sizeof(*fl));
			for (int i = 0; i < c.np; i++)
				fl[i] = c.p[i].files;
			ret = memobj_collect_fds(&c.objs, fl, c.np);
			free(fl);
		}
		phase_mark(&c.ph, "memobj");
		/* Live: the tracked areas of the root come from its copies
		 * (live_final() marks them with their mirror); the rest is found
		 * as usual. */
		for (int i = 0; i < c.np && !ret; i++)
			if (c.p[i].lp)
				ret = live_final(c.p[i].lp, &c.p[i].vl, &c.ms);
		spare_disarm();
		if (c.lives)
			phase_mark(&c.ph, "live-final");
		if (!ret)
			ret = mem_find_pages_tree(pids, vls, inc, nv, &c.ms);
		phase_mark(&c.ph, "page-scan");
		free(inc);
		free(vls);
		free(pids);
	}
	if (ret)
		goto abort;

	/* INJECTING -> CURED */
	for (int i = 0; i < c.np && !ret; i++)
		if (!c.p[i].zombie)
			ret = do_inject(&c, &c.p[i]);
	if (!ret)
		ret = check_signalled();
	if (ret)
		goto abort;
	phase_mark(&c.ph, "inject");

	/* Read while frozen: a live dump writes the image after the release,
	 * when the root may be gone. */
	c.vdso_hash = vdso_hash_of(c.p[0].pid, &c.p[0].vl);
	phase_mark(&c.ph, "vdso");

	/* Live, killing (a migration's last step): the tracked areas are in
	 * rtcr's memory; the image is written from them and, for the rest,
	 * from the frozen processes, then they are killed, as by any dump
	 * that kills. The frozen time is the last round plus this write. */
	if (c.lives && !o->leave_running) {
		for (int i = 0; i < c.nlives; i++)
			live_unwatch(c.lives[i]);
		if (!ret)
			ret = lives_pages(&c);
		if (ret)
			goto abort;
		phase_mark(&c.ph, "live-pages");
	}

	/* Live: everything is copied into rtcr's memory while frozen, the
	 * processes run again, then the image is written from the copies. */
	if (c.lives && o->leave_running) {
		for (int i = 0; i < c.np && !ret; i++) {
			struct pdump *p = &c.p[i];
			if (p->zombie)
				continue;
			if (p->lp) {
				ret = live_capture(&p->lp->m, &p->vl, &c.ms);
			} else {
				ret = mirror_init(&p->mir, p->pid);
				if (!ret)
					ret = live_capture(&p->mir, &p->vl, &c.ms);
			}
		}
		phase_mark(&c.ph, "capture");
		if (!ret)
			ret = memobj_snapshot(&c.objs);
		if (!ret)
			ret = check_signalled();
		if (ret)
			goto abort;
		phase_mark(&c.ph, "memobj-copy");
		for (int i = 0; i < c.np && o->kept; i++)
			if (c.p[i].lp)
				live_frozen_end(c.p[i].lp);
		if (inet_dump_done(INET_RESUME))   /* its per-dump state (no repair mode here) */
			ret = -EIO;
		detach_all(&c);
		c.t_thaw = now_ns();
		phase_mark(&c.ph, "release");
		phase_mark(&c.wall, "frozen");
		g_ctx = NULL;
		/* (Periodic dumps keep counting: live_resume().) */
		for (int i = 0; i < c.nlives && !o->kept; i++)
			live_unwatch(c.lives[i]);
		phase_mark(&c.wall, "unwatch");
		if (!ret)
			ret = lives_pages(&c);
		if (!ret)
			ret = write_image(&c);
		phase_mark(&c.wall, "write");
		if (!ret && img_commit(c.sink))
			ret = -EIO;
		phase_mark(&c.wall, "commit");
		img_close(c.sink);   /* deletes it if not committed */
		c.sink = NULL;
		if (ret) {
			pr_err("pid %d runs on; no image was written", o->pid);
			goto out;
		}
		if (o->kept)
			keep_lives(&c);
		goto done;
	}

	/* WRITTEN */
	ret = write_image(&c);
	if (ret)
		goto abort;
	phase_mark(&c.ph, "write");
	if (!o->leave_running) {
		img_close(c.sink);
		c.sink = NULL;
	}

	/* RELEASED: frozen time ends when the targets run again or are
	 * killed; the kernel's teardown of killed processes is not part of it. */
	if (o->leave_running) {
		if (inet_dump_done(INET_RESUME))
			ret = -EIO;
		detach_all(&c);
		c.t_thaw = now_ns();
		phase_mark(&c.ph, "release");
		/* The processes run on: the image's fsync and rename are not
		 * frozen time. (A dump that kills them commits first.) */
		if (!ret && img_commit(c.sink))
			ret = -EIO;
		img_close(c.sink);   /* deletes it if not committed */
		c.sink = NULL;
	} else {
		inet_dump_killing();
		for (int i = 0; i < c.np; i++)
			if (!c.p[i].zombie) {
				track_forget(c.p[i].pid);
				kill(c.p[i].pid, SIGKILL);
			}
		c.t_thaw = now_ns();
		phase_mark(&c.ph, "kill");
		/* Reap the traces so the pids are free when rtcr returns (once
		 * the real parents reap the zombies). Threads before their
		 * leader: a traced leader is only reapable after them. */
		for (int i = 0; i < c.np; i++)
			for (int t = c.p[i].ntids; t-- > 0; )
				while (waitpid(c.p[i].tids[t], NULL, __WALL) < 0 && errno == EINTR)
					;
		memobj_dumped_and_killed(&c.objs);
		/* Connections closed in repair mode: the peers see nothing. If
		 * one received bytes the image lacks, the image would restore
		 * it wrong: it is taken out of the way, not left complete. */
		if (inet_dump_done(INET_KILLED)) {
			char *img = xasprintf("%s/" IMG_FILE_NAME, o->dir);
			char *bad = xasprintf("%s/" IMG_FILE_NAME ".incomplete", o->dir);
			if (rename(img, bad) == 0)
				pr_err("%s renamed to %s: it lacks data a connection received", img, bad);
			else
				pr_perror("%s: it lacks data a connection received, and", img);
			free(img);
			free(bad);
			ret = -EIO;
		}
	}
	g_ctx = NULL;
done:
	if (o->track_mem || o->prev || o->live)
		track_prune();
	phase_mark(&c.wall, "prune");
	if (o->stats)
		print_stats(&c);
	if (res) {
		res->frozen_ns = c.t_thaw - c.t_freeze;
		res->pages = c.ms.pages;
		res->inherited = c.ms.inherited;
		res->image_bytes = c.image_bytes;
	}
	goto out;

abort:
	for (int i = 0; i < c.nlives; i++)
		live_final_abandon(c.lives[i]);
	spare_disarm();
	for (int i = 0; i < c.np; i++) {
		struct pdump *p = &c.p[i];
		if (!p->injecting)
			continue;
		if (p->sc.base && inject_unmap_scratch(&p->in))
			pr_err("pid %d: could not remove rtcr's scratch area", p->pid);
		if (inject_finish(&p->in))
			pr_err("pid %d: could not restore its registers", p->pid);
		p->injecting = false;
	}
	for (int i = 0; i < c.np; i++)
		inject_abandon(&c.p[i].in);
	(void)inet_dump_done(INET_RESUME);
	detach_all(&c);
	g_ctx = NULL;
	if (c.sink)
		img_close(c.sink);   /* deletes the partial image */
	c.sink = NULL;
out:
	/* (No final round may still walk p->vl once it is freed below.) */
	for (int i = 0; i < c.nlives; i++)
		live_final_abandon(c.lives[i]);
	memobj_table_free(&c.objs);
	files_collect_free(&c.fc);
	for (int i = 0; i < c.np; i++) {
		free(c.p[i].tids);
		vma_list_free(&c.p[i].vl);
		mirror_free(&c.p[i].mir);
		process_free(c.p[i].proc);
		mm_free(c.p[i].mm);
		files_free(c.p[i].files);
	}
	free(c.p);
	free(c.prev_rel);
	for (int i = 0; i < c.nlives; i++) {
		if (c.lives[i]->has_base)
			continue;    /* kept for the next dump */
		live_end(c.lives[i]);
		free(c.lives[i]);
	}
	free(c.lives);
	return ret;
}
