/*
 * rtcr restore: bringing a process tree back from an image, without
 * loading any program.
 *
 *   LOAD        image read; structure, END record, metadata checksums, tree
 *     |
 *   PREFLIGHT   pids and tids free, files present and unchanged, CPU and
 *     |         vDSO compatible, limits and credentials grantable
 *     v
 *   PREPARED    every open file description and pipe opened once, in rtcr,
 *     |         at "carrier" fds (files_prepare()); memory objects made
 *     |         and filled: SysV segments with their ids, memfds, deleted
 *     |         files (memobj_prepare())
 *     v
 *   FORKED      clone3(set_tid = root pid); the parent seizes the root with
 *     |         PTRACE_O_EXITKILL and fork tracing: if rtcr dies, so does
 *     |         every process it is building
 *     v
 *   HOSTED      each process, still running rtcr's code: joins or leads its
 *     |         session and group, forks its children with their pids
 *     |         (clone3 set_tid; they are traced from birth), lets its
 *     |         zombie children die, puts its fds at their numbers from the
 *     |         carriers, sets cwd, root, umask, personality, signal actions;
 *     |         then stops itself (SIGSTOP)
 *     v
 *   ADDRESS     per process, driven by injected calls (task/inject.h):
 *     |         scratch area, rtcr's mappings unmapped, vDSO moved, saved
 *     |         areas mapped (shared memory from its first process) and
 *     |         filled, protections, PR_SET_MM_MAP
 *     v
 *   STATE       per process: threads created with their tids, thread state,
 *     |         limits, pending signals, credentials (per thread), dumpable,
 *     |         parent-death signal, interval timers
 *     v
 *   RUNNING     every thread's registers, xstate and signal mask set at its
 *               last syscall-exit stop; then all are detached together
 *
 * Any failure after FORKED kills the whole tree (SIGKILL to each process;
 * the root's death takes the rest through their parent-death signal) and
 * reaps it: no half-restored process is left behind. Messages name the
 * process and the object that failed.
 */
#include "restore/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "arch/x86/regs.h"
#include "common/proc.h"
#include "common/util.h"
#include "files/files.h"
#include "files/locks.h"
#include "files/netlock.h"
#include "image/load.h"
#include "common/phases.h"
#include "mem/lazy.h"
#include "mem/mem.h"
#include "mem/memobj.h"
#include "task/ptrace.h"
#include "task/task.h"

extern char rtcr_syscall_gadget[];

struct mapfile {
	const Rtcr__FileRef *ref;          /* a file opened by path, or... */
	uint32_t obj;                      /* ...a memory object rtcr re-created */
	int oflags;
};

/* One process of the image, and what restoring it needs. */
struct rproc {
	const Rtcr__Process *proc;
	const Rtcr__Mm *mm;                /* NULL for a zombie */
	const Rtcr__Files *files;
	bool zombie;
	int parent;                        /* index, -1 for the root */
	/* mapped files, opened in the hosted phase at fds mf_base + k */
	struct mapfile *mf;
	int nmf;
	int *vma_fd;                       /* per area: its file's fd, or -1 */
	int exe_fd;
	/* runtime */
	pid_t hpid;                        /* its pid as rtcr sees it (0: not yet) */
	pid_t *htid;                       /* per thread, likewise */
	bool hosted;                       /* stopped itself at the end of HOSTED */
	bool stopping;                     /* was stopped: sent into group stop */
	bool exited;                       /* a zombie that has died again */
	struct inject *tin;                /* per thread; tin[0] the main one */
	size_t ready;                      /* contexts begun */
	struct scratch sc;
	bool *extra_write;
	struct shm_place *shm;             /* shared memory objects this process made */
	int nshm;
};

struct rctx {
	struct loaded_image *im;
	struct rproc *p;
	int np;
	int ctl_fd;                        /* the error pipe, in restoring processes */
	int carrier_base;
	int mf_base;
	int top_fd;                        /* above every slot planned */
	struct files_restore_ctx fctx;
	struct memobj_restore objs;        /* memfds, deleted files, SysV segments */
	bool same_boot;
	bool detach;
	bool pidns;                        /* the tree in a new pid namespace */
	pid_t init;                        /* that namespace's init (rtcr's child) */
	bool shell_job;                    /* the job on rtcr's terminal (files/tty.c) */
	struct tty_job tty;
	bool lazy;                         /* --lazy: memory from the lazy page server */
	struct phases ph;                  /* where the time until running went */
	int cpu_held;                      /* lazy: rtcr stays on this CPU (-1: no) */
	struct lazy_client lz;
};

static int plan_file(struct rproc *rp, int base, const Rtcr__FileRef *ref, uint32_t obj, int oflags)
{
	for (int k = 0; k < rp->nmf; k++)
		if (rp->mf[k].oflags == oflags && rp->mf[k].obj == obj &&
		    (obj || !strcmp(rp->mf[k].ref->path, ref->path)))
			return base + k;
	rp->mf = xrealloc(rp->mf, (rp->nmf + 1) * sizeof(*rp->mf));
	rp->mf[rp->nmf].ref = obj ? NULL : ref;
	rp->mf[rp->nmf].obj = obj;
	rp->mf[rp->nmf].oflags = oflags;
	return base + rp->nmf++;
}

/* The tree runs (or is gone): rtcr and the page server on any CPU again. */
static void cpu_unhold(struct rctx *c)
{
	cpu_set_t all;

	if (c->cpu_held < 0)
		return;
	if (!inject_own_cpus(&all)) {
		if (c->lz.server > 0)
			sched_setaffinity(c->lz.server, sizeof(all), &all);
		/* --pidns: its init was forked on rtcr's CPU too. */
		if (c->init > 0)
			sched_setaffinity(c->init, sizeof(all), &all);
	}
	inject_cpu_release();
	c->cpu_held = -1;
}

static int build_plan(struct rctx *c)
{
	struct loaded_image *im = c->im;
	Rtcr__Files **live_files = xmalloc(im->nprocs * sizeof(*live_files));
	int maxfd = 2, nlive = 0, maxmf = 0;
	struct rlimit rl;
	char *bootid = NULL;

	c->np = im->nprocs;
	c->p = xzalloc(c->np * sizeof(*c->p));
	for (int i = 0; i < c->np; i++) {
		struct rproc *rp = &c->p[i];
		rp->proc = im->procs[i];
		rp->mm = im->mm[i];
		rp->files = im->files[i];
		rp->zombie = !rp->mm;
		rp->parent = i ? image_proc_index(im, rp->proc->ppid) : -1;
		rp->exe_fd = -1;
		if (rp->files) {
			maxfd = MAX(maxfd, files_max_fd(rp->files));
			live_files[nlive++] = (Rtcr__Files *)rp->files;
		}
	}
	/* Above every target fd: the error pipe, the carriers, then each
	 * process's mapped files. */
	c->ctl_fd = maxfd + 1;
	c->carrier_base = maxfd + 2;
	c->mf_base = c->carrier_base + files_ndescriptions(live_files, nlive);
	free(live_files);
	for (int i = 0; i < c->np; i++) {
		struct rproc *rp = &c->p[i];
		const Rtcr__Mm *mm = rp->mm;
		if (!mm)
			continue;
		rp->vma_fd = xmalloc((mm->n_vmas + 1) * sizeof(int));
		for (size_t k = 0; k < mm->n_vmas; k++) {
			const Rtcr__Vma *v = mm->vmas[k];
			rp->vma_fd[k] = -1;
			if (v->kind != RTCR__VMA_KIND__FILE_PRIVATE && v->kind != RTCR__VMA_KIND__FILE_SHARED)
				continue;
			if (!v->file && !v->has_object) {
				pr_err("image: pid %d: file mapping %llx-%llx without its file",
				       rp->proc->pid, (unsigned long long)v->start, (unsigned long long)v->end);
				return -EINVAL;
			}
			rp->vma_fd[k] = plan_file(rp, c->mf_base, v->file, v->has_object ? v->object : 0,
						  v->kind == RTCR__VMA_KIND__FILE_SHARED && v->may_write ?
						  O_RDWR : O_RDONLY);
		}
		rp->exe_fd = mm->exe ? plan_file(rp, c->mf_base, mm->exe, 0, O_RDONLY) : -1;
		maxmf = MAX(maxmf, rp->nmf);
	}
	c->top_fd = c->mf_base + maxmf + 1;
	/* The carriers can be many: take the hard limit as ours. */
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)(c->top_fd + 8) >= rl.rlim_cur && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((rlim_t)(c->top_fd + 8) >= rl.rlim_cur) {
		pr_err("the image needs fds up to %d; rtcr's RLIMIT_NOFILE (%llu) is too low",
		       c->top_fd + 8, (unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	if (read_file("/proc/sys/kernel/random/boot_id", &bootid) >= 0) {
		bootid[strcspn(bootid, "\n")] = 0;
		c->same_boot = !strcmp(bootid, im->inv->boot_id);
		free(bootid);
	}
	c->fctx.same_boot = c->same_boot;
	return 0;
}

static void plan_free(struct rctx *c)
{
	for (int i = 0; i < c->np; i++) {
		free(c->p[i].mf);
		free(c->p[i].vma_fd);
		free(c->p[i].tin);
		free(c->p[i].extra_write);
		free(c->p[i].shm);
		free(c->p[i].htid);
	}
	free(c->p);
	c->p = NULL;
	files_restore_ctx_free(&c->fctx);
}

/* Is this id free? A zombie holding it may be about to be reaped: give
 * its parent a moment (init reaps orphans lazily on some systems). */
static int id_free(pid_t id, const char *what, pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", id);
	for (int i = 0; i < 300 && access(path, F_OK) == 0; i++) {
		uint64_t f[PROC_STAT_FIELDS];
		char state = 0;
		if (proc_stat_read(id, f, &state) || state != 'Z')
			break;
		if (i == 299) {
			pr_err("%s %d is held by a zombie that its parent (pid %llu) has not reaped: "
			       "restore needs the saved ids free", what, id, (unsigned long long)f[4]);
			return -EEXIST;
		}
		usleep(10000);
	}
	if (access(path, F_OK) == 0) {
		char comm[64] = "?";
		if (proc_comm(id, id, comm, sizeof(comm))) {
			/* gone meanwhile; clone3 decides */
		}
		if (id == pid)
			pr_err("pid %d is in use (by '%s'): restore needs the saved pid free", id, comm);
		else
			pr_err("tid %d (a thread of pid %d) is in use (by '%s'): restore needs the saved "
			       "ids free", id, pid, comm);
		return -EEXIST;
	}
	return 0;
}

static int preflight(struct rctx *c)
{
	struct loaded_image *im = c->im;
	Rtcr__Files **live_files = xmalloc(c->np * sizeof(*live_files));
	struct cpu_info here, dumped;
	char msg[256];
	int ret = 0, nlive = 0;

	for (int i = 0; i < c->np && !ret && !c->pidns; i++) {
		const Rtcr__Process *p = c->p[i].proc;
		ret = id_free(p->pid, "pid", p->pid);
		for (size_t t = 1; t < p->n_threads && !ret; t++)
			ret = id_free(p->threads[t]->tid, "tid", p->pid);
	}
	if (ret)
		goto out;
	cpu_info_get(&here);
	memset(&dumped, 0, sizeof(dumped));
	dumped.xfeatures = im->inv->cpu->xfeatures;
	for (size_t i = 0; i < im->inv->cpu->n_features && i < CPU_NR_FEATURE_WORDS; i++)
		dumped.features[i] = im->inv->cpu->features[i];
	if (cpu_compatible(&dumped, &here, msg, sizeof(msg))) {
		pr_err("CPU: %s", msg);
		ret = -ENOTSUP;
		goto out;
	}
	for (int i = 0; i < c->np && !ret; i++) {
		struct rproc *rp = &c->p[i];
		if (rp->zombie)
			continue;
		live_files[nlive++] = (Rtcr__Files *)rp->files;
		ret = mem_check_vdso(im->inv, rp->mm);
		for (int k = 0; k < rp->nmf && !ret; k++)
			if (rp->mf[k].ref)
				ret = fileref_check(rp->mf[k].ref, "mapped file", c->same_boot, true);
		if (!ret)
			ret = attrs_check_rlimits(rp->proc);
		for (size_t t = 0; t < rp->proc->n_threads && !ret; t++) {
			const Rtcr__Thread *th = rp->proc->threads[t];
			const Rtcr__Creds *cr = th->creds ? th->creds : rp->proc->creds;
			if (!creds_same_as_self(cr))
				ret = creds_check(cr);
		}
	}
	if (!ret)
		ret = files_check(live_files, nlive, &c->fctx);
	if (!ret)
		ret = memobj_check(im);
out:
	free(live_files);
	return ret;
}

/* ---- HOSTED: each process, before it stops itself ---- */

static __attribute__((noreturn)) void hosted(struct rctx *c, int i, int sync_rd);

/* A child of a restoring process, with its saved pid. */
static pid_t fork_child(const struct rproc *kid)
{
	struct clone_args ca;
	pid_t want = kid->proc->pid;

	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = kid->proc->has_exit_signal ? kid->proc->exit_signal : SIGCHLD;
	ca.set_tid = (uintptr_t)&want;
	ca.set_tid_size = 1;
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

/* A zombie's second death: the same wait status for its parent. */
static __attribute__((noreturn)) void die_again(const Rtcr__Process *p)
{
	int st = p->exit_status;
	struct rlimit no_core = { 0, 0 };
	sigset_t all;

	if (WIFSIGNALED(st)) {
		/* No core file this time; the status keeps its core bit only if
		 * the kernel writes one, which it must not. */
		setrlimit(RLIMIT_CORE, &no_core);
		signal(WTERMSIG(st), SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		raise(WTERMSIG(st));
	}
	_exit(WEXITSTATUS(st));
}

static __attribute__((noreturn)) void hosted(struct rctx *c, int i, int sync_rd)
{
	struct rproc *rp = &c->p[i];
	const Rtcr__Process *p = rp->proc;
	int *keep = xmalloc((rp->nmf + 1) * sizeof(int));
	sigset_t all, chld;
	char ch;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (sync_rd >= 0 && read(sync_rd, &ch, 1) != 1)
		_exit(1);
	log_set_fd(c->ctl_fd);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (rp->zombie)
		die_again(p);

	/* Session and group before the children, who inherit them. The
	 * root keeps rtcr's session unless it led its own; a shell job's
	 * root leads its group (a new one if the old was led from outside). */
	if (p->sid == p->pid) {
		if (setsid() < 0) {
			pr_perror("pid %d: setsid (it led its session)", p->pid);
			_exit(1);
		}
	} else if (i == 0 && c->shell_job && p->pgid != p->pid) {
		pr_warn("pid %d was in process group %d, led from outside the tree: the job is "
			"process group %d now", p->pid, p->pgid, p->pid);
		if (setpgid(0, 0) < 0) {
			pr_perror("pid %d: leading a process group", p->pid);
			_exit(1);
		}
	} else if (p->pgid == p->pid || (rp->parent >= 0 &&
					  p->pgid != c->p[rp->parent].proc->pgid)) {
		if (setpgid(0, p->pgid) < 0) {
			pr_perror("pid %d: joining process group %d", p->pid, p->pgid);
			_exit(1);
		}
	}
	for (int k = 0; k < c->np; k++) {
		pid_t kid;
		if (c->p[k].parent != i)
			continue;
		kid = fork_child(&c->p[k]);
		if (kid < 0) {
			pr_perror("pid %d: creating its child %d", p->pid, c->p[k].proc->pid);
			_exit(1);
		}
		if (kid == 0)
			hosted(c, k, -1);
		/* A later sibling may join this child's group: make it exist now
		 * (as shells do), unless the child will lead a session. */
		if (c->p[k].proc->pgid == c->p[k].proc->pid && c->p[k].proc->sid != c->p[k].proc->pid)
			setpgid(kid, kid);
	}
	/* Zombie children must be dead, and their SIGCHLD must not look like
	 * a new event: it was delivered, or is in the saved pending set. */
	for (int k = 0; k < c->np; k++) {
		siginfo_t si;
		if (c->p[k].parent != i || !c->p[k].zombie)
			continue;
		if (waitid(P_PID, c->p[k].proc->pid, &si, WEXITED | WNOWAIT) < 0) {
			pr_perror("pid %d: waiting for its zombie child %d", p->pid, c->p[k].proc->pid);
			_exit(1);
		}
	}
	/* A stopped child whose stop this process had collected before the
	 * dump: its stop (made at the end of its HOSTED) is collected again,
	 * so the restored process does not see it twice. */
	for (int k = 0; k < c->np; k++) {
		siginfo_t si;
		const Rtcr__Process *kp = c->p[k].proc;
		if (c->p[k].parent != i || c->p[k].zombie || !kp->stopped || !kp->stop_reported)
			continue;
		if (waitid(P_PID, kp->pid, &si, WSTOPPED) < 0) {
			pr_perror("pid %d: collecting the stop of its child %d", p->pid, kp->pid);
			_exit(1);
		}
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (sigtimedwait(&chld, NULL, &(struct timespec){ 0, 0 }) > 0)
		;

	/* Mapped files at their helper fds, then the fds from the carriers. */
	keep[0] = c->ctl_fd;
	for (int k = 0; k < rp->nmf; k++) {
		char objpath[64];
		const char *path = rp->mf[k].ref ? rp->mf[k].ref->path : objpath;
		int fd;
		/* A re-created object: a new open of rtcr's file (inherited). */
		snprintf(objpath, sizeof(objpath), "/proc/self/fd/%d", memobj_fd(&c->objs, rp->mf[k].obj));
		fd = open(path, rp->mf[k].oflags | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("pid %d: mapped file %s", p->pid, path);
			_exit(1);
		}
		if (fd != c->mf_base + k) {
			if (dup2(fd, c->mf_base + k) < 0) {
				pr_perror("pid %d: mapped file %s: dup2", p->pid, path);
				_exit(1);
			}
			close(fd);
		}
		keep[k + 1] = c->mf_base + k;
	}
	if (files_restore(rp->files, &c->fctx, keep, rp->nmf + 1) ||
	    attrs_restore_child(p, c->detach && i == 0) || signals_restore_child(p))
		_exit(1);
	raise(SIGSTOP);
	/* rtcr rebuilds this process from here on; it never returns here. */
	_exit(1);
}

static void relay_child_messages(int ctl_rd)
{
	char buf[4096];
	ssize_t n;
	fcntl(ctl_rd, F_SETFL, O_NONBLOCK);
	while ((n = read(ctl_rd, buf, sizeof(buf))) > 0)
		if (write(STDERR_FILENO, buf, n) < 0)
			break;
}

/* Which process is host pid w? New ones are known by their own pid. */
static int proc_index(struct rctx *c, pid_t w)
{
	pid_t own;

	for (int i = 0; i < c->np; i++)
		if (c->p[i].hpid == w)
			return i;
	own = c->pidns ? proc_ns_id(w) : w;
	for (int i = 0; i < c->np; i++)
		if (!c->p[i].hpid && c->p[i].proc->pid == own) {
			c->p[i].hpid = w;
			return i;
		}
	return -1;
}

/*
 * Drive HOSTED to its end: every new process is traced from birth (fork
 * tracing), runs on, and ends stopped by its own SIGSTOP; zombies die.
 */
static int host_loop(struct rctx *c, int ctl_rd)
{
	int pending = c->np;

	while (pending > 0) {
		int status, i;
		pid_t w = waitpid(-1, &status, __WALL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("waitpid");
			return -errno;
		}
		if (w == c->init) {
			relay_child_messages(ctl_rd);
			pr_err("the new pid namespace's init died while the tree was built");
			return -EIO;
		}
		i = proc_index(c, w);
		if (i < 0)
			continue;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (c->p[i].zombie && !c->p[i].exited) {
				c->p[i].exited = true;
				pending--;
				continue;
			}
			relay_child_messages(ctl_rd);
			pr_err("pid %d died while its handles and attributes were set up",
			       c->p[i].proc->pid);
			return -EIO;
		}
		if (!WIFSTOPPED(status))
			continue;
		if (c->p[i].stopping && (status >> 16) == PTRACE_EVENT_STOP) {
			/* A stopped process in its group stop, as it was: it stays
			 * there (SIGNAL_STOP_STOPPED outlives the tracing, so it is
			 * stopped again when detached, without a new report). */
			c->p[i].stopping = false;
			c->p[i].hosted = true;
			pending--;
			continue;
		}
		if (status >> 16) {
			/* fork/clone events, the first stop of a new process */
			if (ptrace(PTRACE_CONT, w, 0, 0) < 0) {
				pr_perror("pid %d: PTRACE_CONT", w);
				return -errno;
			}
			continue;
		}
		if (WSTOPSIG(status) == SIGSTOP && !c->p[i].zombie && !c->p[i].hosted &&
		    c->p[i].proc->stopped && !c->p[i].stopping) {
			/* Its own SIGSTOP, let through: the group stop it was in
			 * (its parent, in HOSTED, may be waiting to collect it). */
			c->p[i].stopping = true;
			if (ptrace(PTRACE_CONT, w, 0, (void *)(long)SIGSTOP) < 0) {
				pr_perror("pid %d: PTRACE_CONT", w);
				return -errno;
			}
			continue;
		}
		if (WSTOPSIG(status) == SIGSTOP && !c->p[i].zombie && !c->p[i].hosted) {
			c->p[i].hosted = true;
			pending--;
			continue;
		}
		/* Any other signal (a zombie's own death): deliver it. */
		if (ptrace(PTRACE_CONT, w, 0, (void *)(long)WSTOPSIG(status)) < 0) {
			pr_perror("pid %d: PTRACE_CONT", w);
			return -errno;
		}
	}
	return 0;
}

/* ---- ADDRESS, STATE, RUNNING: driving the stopped processes ---- */

/*
 * Create thread tid in the process: an injected clone3 in its main
 * thread, with the saved tid. With PTRACE_O_TRACECLONE the new thread
 * starts traced and stopped, before it runs a single instruction.
 */
static int create_thread(struct inject *main_in, pid_t tid, bool pidns, pid_t *htid)
{
	struct clone_args ca;
	uint64_t data = inject_data(main_in);
	uint64_t want = tid;
	struct stop st;
	long r;
	int ret;

	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	ca.set_tid = data + 128;
	ca.set_tid_size = 1;
	ret = inject_write(main_in, data, &ca, sizeof(ca));
	if (!ret)
		ret = inject_write(main_in, data + 128, &want, sizeof(want));
	if (!ret)
		ret = inject_syscall(main_in, __NR_clone3, data, sizeof(ca), 0, 0, 0, 0, &r);
	if (ret)
		return ret;
	if (r != tid) {
		pr_err("creating thread %d: %s", tid, r < 0 ? strerror((int)-r) : "got another tid");
		return r < 0 ? (int)r : -EINVAL;
	}
	*htid = pidns ? proc_host_tid(main_in->tid, tid) : tid;
	if (*htid < 0) {
		pr_err("thread %d: not found among the threads of pid %d", tid, main_in->tid);
		return -ESRCH;
	}
	ret = task_wait_stop(*htid, &st);
	if (!ret && st.kind != STOP_INTERRUPT && st.kind != STOP_GROUP &&
	    !(st.kind == STOP_SIGNAL && st.sig == SIGSTOP)) {
		pr_err("thread %d: unexpected first stop (%s)", tid, sig_name(st.sig));
		ret = -EINVAL;
	}
	return ret;
}

static int set_thread_final(pid_t tid, const Rtcr__Thread *t, const struct cpu_info *ci)
{
	struct user_regs_struct regs;
	void *host_xs = NULL, *xs;
	int host_xs_len, ret;

	regs_from_image(t->regs, &regs);
	regs_resume_syscall(&regs);
	host_xs_len = task_get_xstate(tid, &host_xs);
	if (host_xs_len < 0)
		return host_xs_len;
	xs = xstate_adapt(t->xstate.data, t->xstate.len, host_xs_len, ci->xfeatures);
	ret = xs ? task_set_regs(tid, &regs) : -EINVAL;
	if (!ret)
		ret = task_set_xstate(tid, xs, host_xs_len);
	if (!ret)
		ret = task_set_sigmask(tid, t->blocked);
	free(host_xs);
	free(xs);
	return ret;
}

/* Who made shared memory object id, and where it sits there. */
static const struct shm_place *find_shm(void *arg, uint64_t id)
{
	const struct rctx *c = arg;
	for (int i = 0; i < c->np; i++)
		for (int k = 0; k < c->p[i].nshm; k++)
			if (c->p[i].shm[k].id == id)
				return &c->p[i].shm[k];
	return NULL;
}

static int address_phase(struct rctx *c, int i, struct mem_stats *ms)
{
	struct rproc *rp = &c->p[i];
	const Rtcr__Process *proc = rp->proc;
	size_t nt = proc->n_threads;
	struct rseq_conf rc;
	struct cpu_info ci;
	int ret;

	rp->tin = xzalloc(nt * sizeof(*rp->tin));
	rp->htid = xzalloc(nt * sizeof(*rp->htid));
	rp->htid[0] = rp->hpid;
	for (size_t t = 0; t < nt; t++)
		rp->tin[t].memfd = -1;
	rp->extra_write = xzalloc((rp->mm->n_vmas + 1) * sizeof(bool));
	cpu_info_get(&ci);
	ret = inject_begin(&rp->tin[0], rp->hpid, (uint64_t)(uintptr_t)rtcr_syscall_gadget);
	if (ret)
		return ret;
	rp->ready = 1;
	phase_mark(&c->ph, "inject-begin");
	for (int n = 0;; n++) {
		uint64_t addr = mem_find_gap(rp->mm, scratch_size(ci.xsave_size, nt) + (2 << 20), n);
		if (!addr) {
			pr_err("pid %d: no free address range for rtcr's scratch area", proc->pid);
			return -ENOMEM;
		}
		ret = inject_map_scratch(&rp->tin[0], &rp->sc, addr, nt, ci.xsave_size, NULL, 0);
		if (ret != -EEXIST)
			break;
	}
	if (ret)
		return ret;
	/* rtcr's glibc registered rseq in the child: undo before its area goes. */
	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, rp->hpid, (void *)sizeof(rc), &rc) >= 0 &&
	    rc.rseq_abi_pointer) {
		ret = inject_call(&rp->tin[0], "unregistering rtcr's rseq area", __NR_rseq,
				  rc.rseq_abi_pointer, rc.rseq_abi_size, 1 /* RSEQ_FLAG_UNREGISTER */,
				  rc.signature, 0, 0, NULL);
		if (ret)
			return ret;
	}
	phase_mark(&c->ph, "scratch");
	ret = mem_unmap_all_but(&rp->tin[0], rp->hpid);
	if (!ret)
		ret = mem_move_vdso(&rp->tin[0], rp->hpid, rp->mm, rp->sc.base + rp->sc.len + (1 << 20));
	phase_mark(&c->ph, "unmap+vdso");
	/* SysV attachments first: shmat makes each whole, then it is trimmed
	 * to what the process had, before other areas take the rest. */
	if (!ret)
		ret = memobj_attach_sysv(&rp->tin[0], rp->mm, &c->objs);
	if (!ret)
		ret = mem_map_areas(&rp->tin[0], rp->mm, rp->vma_fd, rp->extra_write);
	if (!ret)
		ret = mem_map_shared(&rp->tin[0], proc->pid, rp->mm, rp->extra_write, find_shm, c, &rp->shm,
				     &rp->nshm);
	phase_mark(&c->ph, "map");
	if (!ret && c->lazy)
		ret = mem_fill_pages_lazy(&rp->tin[0], c->im, proc->pid, &c->lz, ms);
	else if (!ret)
		ret = mem_fill_pages(&rp->tin[0], c->im, proc->pid, ms);
	phase_mark(&c->ph, "pages");
	if (!ret)
		ret = mem_finish_areas(&rp->tin[0], rp->mm, rp->extra_write, rp->exe_fd);
	phase_mark(&c->ph, "finish-areas");
	/* A batch ends in int3, whose forced SIGTRAP resets that signal's
	 * action when it is blocked: put the saved one back. */
	if (!ret)
		ret = signals_restore_one(&rp->tin[0], proc, SIGTRAP);
	return ret;
}

static int state_phase(struct rctx *c, int i)
{
	struct rproc *rp = &c->p[i];
	const Rtcr__Process *proc = rp->proc;
	size_t nt = proc->n_threads;
	int ret = 0;

	/* The other threads, with their tids, each driven in its own slot. */
	if (nt > 1 && ptrace(PTRACE_SETOPTIONS, rp->hpid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD |
			     PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE)) < 0) {
		pr_perror("pid %d: PTRACE_SETOPTIONS", proc->pid);
		return -errno;
	}
	for (size_t t = 1; t < nt && !ret; t++) {
		pid_t tid = proc->threads[t]->tid;
		ret = create_thread(&rp->tin[0], tid, c->pidns, &rp->htid[t]);
		if (!ret)
			ret = inject_begin(&rp->tin[t], rp->htid[t], 0);
		if (!ret) {
			rp->ready = t + 1;
			ret = inject_attach_scratch(&rp->tin[t], &rp->sc, t, NULL, 0);
		}
	}
	for (size_t t = 0; t < nt && !ret; t++) {
		ret = thread_restore_inj(&rp->tin[t], proc->threads[t], proc->xcomp_perm);
		if (!ret)
			ret = thread_restore_sched(rp->htid[t], proc->threads[t]);
	}
	if (!ret)
		ret = attrs_restore_inj(&rp->tin[0], proc);
	if (!ret)
		ret = signals_restore_pending(&rp->tin[0], proc);
	/* Every process of the tree exists: pidfds can be opened. */
	if (!ret)
		ret = pidfds_restore_inj(&rp->tin[0], rp->files);
	for (size_t t = 0; t < nt && !ret; t++)
		ret = signals_restore_thread_pending(&rp->tin[t], proc->pid, proc->threads[t]);
	return ret;
}

/* Credentials per thread, the main thread's last (it created the others
 * with privileges it may now give up); then what a credential change
 * resets; then rtcr's leftovers go. */
static int final_phase(struct rctx *c, int i)
{
	struct rproc *rp = &c->p[i];
	const Rtcr__Process *proc = rp->proc;
	size_t nt = proc->n_threads;
	int ret = 0;

	ret = mem_unmap_shared_sources(&rp->tin[0], rp->shm, rp->nshm);
	for (size_t k = 0; k < nt && !ret; k++) {
		size_t t = (k + 1) % nt;
		const Rtcr__Creds *cr = proc->threads[t]->creds ? proc->threads[t]->creds : proc->creds;
		if (!creds_same_as_self(cr))
			ret = creds_restore_inj(&rp->tin[t], cr);
	}
	if (!ret)
		ret = attrs_restore_final(&rp->tin[0], proc, c->detach && i == 0);
	if (!ret)
		ret = timers_restore_inj(&rp->tin[0], proc);
	if (!ret)
		ret = inject_call(&rp->tin[0], "closing rtcr's helper fds", __NR_close_range, c->ctl_fd,
				  ~0U, 0, 0, 0, 0, NULL);
	/* With its own credentials, and no helper fd left whose close would
	 * drop a POSIX lock: fd owners, O_ASYNC, file locks. */
	if (!ret)
		ret = fdstate_restore_inj(&rp->tin[0], rp->files, &c->fctx);
	if (!ret)
		ret = inject_unmap_scratch(&rp->tin[0]);
	return ret;
}

static int rebuild(struct rctx *c, struct mem_stats *ms)
{
	struct cpu_info ci;
	int ret = 0;

	cpu_info_get(&ci);
	/* Tree order: a shared memory object's first process makes it
	 * before the others map it. */
	for (int i = 0; i < c->np && !ret; i++)
		if (!c->p[i].zombie)
			ret = address_phase(c, i, ms);
	/* Every process has its mappings: seals, SHM_DEST again. */
	if (!ret)
		ret = memobj_all_mapped(&c->objs);
	for (int i = 0; i < c->np && !ret; i++)
		if (!c->p[i].zombie)
			ret = state_phase(c, i);
	phase_mark(&c->ph, "state");
	for (int i = c->np; i-- > 0 && !ret; )
		if (!c->p[i].zombie)
			ret = final_phase(c, i);
	phase_mark(&c->ph, "final");
	/* RUNNING: every thread sits at the exit of its last injected call. */
	for (int i = 0; i < c->np && !ret; i++)
		for (size_t t = 0; t < c->p[i].proc->n_threads && !ret && !c->p[i].zombie; t++)
			ret = set_thread_final(c->p[i].htid[t], c->p[i].proc->threads[t], &ci);
	for (int i = 0; i < c->np; i++)
		for (size_t t = 0; t < c->p[i].ready; t++)
			inject_abandon(&c->p[i].tin[t]);
	/* Driven on rtcr's CPU until now (task/inject.h): their own sets. */
	for (int i = 0; i < c->np && !ret; i++)
		for (size_t t = 0; t < c->p[i].proc->n_threads && !ret && !c->p[i].zombie; t++)
			ret = thread_restore_affinity(c->p[i].htid[t], c->p[i].proc->threads[t]);
	if (ret)
		return ret;
	/* Children first: a parent never runs before its whole tree is back. */
	for (int i = c->np; i-- > 0; )
		for (size_t t = c->p[i].zombie ? 0 : c->p[i].proc->n_threads; t-- > 0; )
			if (task_detach(c->p[i].htid[t], 0))
				ret = -EIO;
	return ret;
}

/* ---- --pidns: the tree under an init of a new pid namespace ---- */

/*
 * The namespace's init (pid 1 there): rtcr's code, forked with
 * CLONE_NEWPID | CLONE_NEWNS. It mounts a /proc of the new namespace (so
 * /proc/PID of the restored processes, seen from inside, is theirs),
 * forks the root with its saved pid, and then only reaps: orphans of the
 * tree are re-parented to it. Until rtcr says the restore is done ('d' on
 * go_rd) it waits on that pipe, and exits if rtcr dies (end of file),
 * which ends the namespace. It exits with the root's status once it has
 * no child left.
 */
static __attribute__((noreturn)) void ns_init(struct rctx *c, int sync_rd, int go_rd)
{
	struct clone_args ca;
	pid_t want = c->p[0].proc->pid, root;
	int status, root_status = 0, devnull;
	char ch = 0;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		pr_perror("the new pid namespace: mounting its /proc");
		_exit(1);
	}
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uintptr_t)&want;
	ca.set_tid_size = 1;
	root = syscall(SYS_clone3, &ca, sizeof(ca));
	if (root < 0) {
		pr_perror("the new pid namespace: creating pid %d", want);
		_exit(1);
	}
	if (root == 0) {
		close(go_rd);
		hosted(c, 0, sync_rd);
	}
	/* Only the go pipe: the carriers and rtcr's pipes are the tree's. */
	devnull = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3 && devnull >= 0; fd++)
		dup2(devnull, fd);
	if (go_rd != 3 && dup2(go_rd, 3) == 3)
		go_rd = 3;
	syscall(SYS_close_range, 4, ~0U, 0);
	/* rtcr died or failed (the pipe's end closed): the namespace ends. */
	if (read(go_rd, &ch, 1) != 1 || ch != 'd')
		_exit(1);
	close(go_rd);
	for (;;) {
		pid_t w = waitpid(-1, &status, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		if (w == root)
			root_status = status;
	}
	if (WIFSIGNALED(root_status))
		_exit(128 + WTERMSIG(root_status));
	_exit(WEXITSTATUS(root_status));
}

/* The root's pid as rtcr sees it: init's only child, once it exists. */
static pid_t ns_root(pid_t init)
{
	for (int i = 0; i < 5000; i++) {
		pid_t *kids;
		int n = proc_children(init, &kids);
		pid_t root = n > 0 ? kids[0] : 0;
		if (n >= 0)
			free(kids);
		if (root > 0)
			return root;
		if (n < 0 || waitpid(init, NULL, WNOHANG) == init)
			break;
		usleep(1000);
	}
	return -1;
}

static volatile pid_t g_child;

static void forward(int sig, siginfo_t *si, void *uc)
{
	/* Signals someone sent to rtcr go on to the process it restored;
	 * terminal signals (SI_KERNEL) reach it directly. */
	if (g_child && si->si_code != SI_KERNEL)
		kill(g_child, sig);
}

/* Wait for pid (rtcr's child); signals to rtcr go on to fwd. A shell
 * job's stops are relayed (rtcr stops too), and its end gives the
 * terminal back to rtcr. */
static int wait_child(pid_t pid, pid_t fwd_to, struct tty_job *tj)
{
	static const int fwd[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	struct sigaction sa;
	int status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	g_child = fwd_to;
	for (size_t i = 0; i < ARRAY_SIZE(fwd); i++)
		sigaction(fwd[i], &sa, NULL);
	for (;;) {
		if (waitpid(pid, &status, tj ? WUNTRACED : 0) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("waiting for pid %d", pid);
			if (tj)
				tty_job_release(tj);
			return -errno;
		}
		if (!WIFSTOPPED(status))
			break;
		tty_job_stopped(tj, WSTOPSIG(status));
	}
	g_child = 0;
	if (tj)
		tty_job_release(tj);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	pr_warn("restored process %d was killed by %s", fwd_to, sig_name(WTERMSIG(status)));
	return 128 + WTERMSIG(status);
}

/* Kill everything built so far and reap what is ours to reap. */
static void kill_tree(struct rctx *c)
{
	lazy_abort(&c->lz);       /* the server first: it is a child too */
	if (c->init > 0)
		kill(c->init, SIGKILL);     /* takes its whole namespace */
	for (int i = 0; i < c->np; i++)
		if (c->p[i].hpid > 0)
			kill(c->p[i].hpid, SIGKILL);
	/* Also what rtcr never heard of yet (a child forked just before its
	 * parent failed): its first stop is still to be reported. */
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, __WALL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		if (WIFSTOPPED(st))
			kill(w, SIGKILL);
	}
}

int restore_run(const struct restore_opts *o)
{
	struct loaded_image im;
	struct rctx c;
	struct mem_stats ms = { 0 };
	struct clone_args ca;
	Rtcr__Files **live_files;
	int sync[2] = { -1, -1 }, ctl[2] = { -1, -1 }, go[2] = { -1, -1 }, ret, nlive = 0;
	uint64_t t0 = now_ns(), t_fork = 0, t_run = 0;
	bool unlocked = false;
	pid_t pid, want;

	memset(&c, 0, sizeof(c));
	c.cpu_held = -1;
	phase_start(&c.ph);
	c.lz.server = -1;
	c.lz.sock = -1;
	ret = image_load(o->dir, &im);
	if (!ret)
		ret = image_load_chain(&im);
	if (ret) {
		image_unload(&im);
		return ret;
	}
	phase_mark(&c.ph, "load");
	c.im = &im;
	c.detach = o->detach;
	c.pidns = o->pidns;
	c.shell_job = o->shell_job;
	c.tty.fd = -1;
	/* Everything is built in the target network namespace: sockets, and
	 * the processes, which inherit it. */
	if (o->netns) {
		ret = netns_enter(o->netns);
		if (ret) {
			image_unload(&im);
			return ret;
		}
	}
	c.lazy = o->lazy;
	ret = build_plan(&c);
	if (!ret && o->shell_job) {
		ret = tty_job_find(&c.tty, im.files, im.nprocs);
		c.fctx.tty_path = c.tty.path;
	}
	if (!ret)
		ret = preflight(&c);
	phase_mark(&c.ph, "plan");
	/* The lazy page server: forked now, before rtcr holds any of the
	 * tree's fds (it must keep none of them open). */
	/* Lazy: rtcr, and the tree it builds, stay on one CPU; the server,
	 * which finds every page meanwhile (~1.5 ms/GiB), on the others. */
	if (!ret && c.lazy) {
		cpu_set_t others;
		bool apart = false;
		if ((c.cpu_held = inject_cpu_hold()) >= 0 && !inject_own_cpus(&others)) {
			CPU_CLR(c.cpu_held, &others);
			apart = CPU_COUNT(&others) > 0;
		}
		ret = lazy_start(&c.lz, &im, c.top_fd, o->stats, apart ? &others : NULL);
	}
	if (ret)
		goto out_plan;
	phase_mark(&c.ph, "lazy-server");

	/* rtcr's own pipes above every slot planned below, so placing the
	 * carriers and the error pipe cannot land on them. */
	if (pipe2(sync, O_CLOEXEC) || pipe2(ctl, O_CLOEXEC) || pipe2(go, O_CLOEXEC)) {
		ret = -errno;
		pr_perror("pipe");
		goto out_plan;
	}
	for (int k = 0; k < 3; k++) {
		int *fds = k == 2 ? go : k ? ctl : sync;
		for (int e = 0; e < 2; e++) {
			int hi = fcntl(fds[e], F_DUPFD_CLOEXEC, c.top_fd);
			if (hi < 0) {
				ret = -errno;
				pr_perror("moving rtcr's pipe above %d", c.top_fd);
				goto out_plan;
			}
			close(fds[e]);
			fds[e] = hi;
		}
	}

	/* PREPARED: descriptions at carriers, the error pipe at its fd. */
	live_files = xmalloc(c.np * sizeof(*live_files));
	for (int i = 0; i < c.np; i++)
		if (c.p[i].files)
			live_files[nlive++] = (Rtcr__Files *)c.p[i].files;
	/* Memory objects made and filled, their fds above every slot: first,
	 * as fds on memfds and deleted files open them. */
	ret = memobj_prepare(&c.objs, &im, c.top_fd);
	if (ret) {
		free(live_files);
		goto out_carriers;
	}
	c.fctx.private_base = c.top_fd;
	c.fctx.objs = &c.objs;
	ret = files_prepare(live_files, nlive, &c.fctx, c.carrier_base);
	free(live_files);
	if (ret)
		goto out_carriers;
	/* Every connection is back, in repair mode: its segments may come
	 * through again (they reach the new socket), before any leaves
	 * repair mode in its process. */
	ret = netlock_release_image(im.inv, c.same_boot);
	if (ret)
		goto out_carriers;
	unlocked = true;
	phase_mark(&c.ph, "prepare");
	if (dup2(ctl[1], c.ctl_fd) < 0) {
		ret = -errno;
		pr_perror("error pipe");
		goto out_carriers;
	}
	close(ctl[1]);
	ctl[1] = -1;

	/* FORKED: the root, with its pid; or with --pidns the init of a new
	 * pid namespace, which forks the root with its pid there. */
	want = im.procs[0]->pid;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	if (c.pidns) {
		ca.flags = CLONE_NEWPID | CLONE_NEWNS;
	} else {
		ca.set_tid = (uintptr_t)&want;
		ca.set_tid_size = 1;
	}
	fflush(NULL);
	t_fork = now_ns();
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		ret = -errno;
		if (c.pidns)
			pr_perror("creating a new pid namespace");
		else if (errno == EEXIST)
			pr_err("pid %d is in use: restore needs the saved pid free (or --pidns)", want);
		else if (errno == EPERM)
			pr_err("creating pid %d: permission denied (needs CAP_CHECKPOINT_RESTORE or "
			       "CAP_SYS_ADMIN)", want);
		else
			pr_perror("clone3(set_tid=%d)", want);
		goto out_carriers;
	}
	if (pid == 0) {
		close(sync[1]);
		close(ctl[0]);
		close(go[1]);
		if (c.pidns)
			ns_init(&c, sync[0], go[0]);
		close(go[0]);
		hosted(&c, 0, sync[0]);
	}
	close(sync[0]);
	sync[0] = -1;
	close(go[0]);
	go[0] = -1;
	if (c.pidns) {
		c.init = pid;
		pid = ns_root(c.init);
		if (pid < 0) {
			ret = -EIO;
			relay_child_messages(ctl[0]);
			pr_err("the new pid namespace's init did not create pid %d", want);
			kill(c.init, SIGKILL);
			waitpid(c.init, NULL, 0);
			goto out_carriers;
		}
	}
	c.p[0].hpid = pid;
	/* The root has the carriers now; rtcr's copies would keep pipes open. */
	for (uint32_t k = 0; k < c.fctx.ncarrier; k++)
		if (c.fctx.carrier[k] >= 0)
			close(c.fctx.carrier[k]);
	close(c.ctl_fd);
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
			PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE)) < 0) {
		ret = -errno;
		pr_perror("pid %d: PTRACE_SEIZE", pid);
		kill_tree(&c);
		goto out_plan;
	}
	if (write(sync[1], "g", 1) != 1) {
		ret = -errno;
		goto kill_all;
	}

	phase_mark(&c.ph, "fork");
	/* HOSTED */
	ret = host_loop(&c, ctl[0]);
	relay_child_messages(ctl[0]);
	if (ret)
		goto kill_all;
	phase_mark(&c.ph, "hosted");
	/* The job's group exists, none of it runs: it takes the terminal. */
	if (c.tty.img && (ret = tty_job_attach(&c.tty, getpgid(pid), o->detach)))
		goto kill_all;

	/* ADDRESS, STATE, RUNNING */
	ret = rebuild(&c, &ms);
	relay_child_messages(ctl[0]);
	if (ret)
		goto kill_all;
	t_run = now_ns();
	phase_mark(&c.ph, "resume");
	cpu_unhold(&c);
	tty_job_running(&c.tty);
	if (c.lazy && lazy_resumed(&c.lz, t_run))
		pr_warn("the lazy page server did not hear the processes run: it serves on");
	if (o->stats) {
		char b[32];
		fprintf(stderr,
			"rtcr restore: pid %d: %d process%s, %s in %llu pages\n"
			"  until running %8.3f ms (fork to running %.3f ms)\n"
			"  page copy     %8.3f ms (%.2f GiB/s, %llu pages by UFFDIO_COPY, %llu left "
			"to the lazy page server)\n",
			pid, c.np, c.np == 1 ? "" : "es", fmt_bytes(b, sizeof(b), ms.pages * PAGE_SIZE),
			(unsigned long long)ms.pages, (t_run - t0) / 1e6, (t_run - t_fork) / 1e6,
			ms.copy_ns / 1e6,
			ms.copy_ns ? ms.pages * PAGE_SIZE / (ms.copy_ns / 1e9) / (1ULL << 30) : 0.0,
			(unsigned long long)ms.uffd_pages, (unsigned long long)ms.lazy_pages);
		phases_print(&c.ph, stderr, "  until running: ");
		fprintf(stderr, "STATS restore pid=%d processes=%d pages=%llu total_ns=%llu "
			"fork_to_run_ns=%llu copy_ns=%llu\n", pid, c.np, (unsigned long long)ms.pages,
			(unsigned long long)(t_run - t0), (unsigned long long)(t_run - t_fork),
			(unsigned long long)ms.copy_ns);
	}
	if (c.pidns && write(go[1], "d", 1) != 1) {
		ret = -errno;
		pr_perror("telling the new pid namespace's init the restore is done");
		goto kill_all;
	}
	close(ctl[0]);
	close(sync[1]);
	close(go[1]);
	memobj_restore_done(&c.objs, false);
	plan_free(&c);
	image_unload(&im);
	if (o->detach) {
		printf("%d\n", pid);
		fflush(stdout);
		return 0;
	}
	ret = wait_child(c.pidns ? c.init : pid, pid, c.tty.pgid > 0 ? &c.tty : NULL);
	/* The rest of the tree may still take pages: the server ends when
	 * all are in or its processes are gone. */
	if (c.lazy && lazy_wait(&c.lz) && ret == 0)
		pr_warn("the lazy page server failed");
	return ret;

kill_all:
	relay_child_messages(ctl[0]);
	kill_tree(&c);
	if (c.tty.fd >= 0)
		tty_job_release(&c.tty);
	if (c.np == 1)
		pr_err("restore of pid %d failed; the partly restored process was killed", want);
	else
		pr_err("restore of pid %d failed; the %d partly restored processes were killed", want,
		       c.np);
	goto out_plan;
out_carriers:
	for (uint32_t k = 0; c.fctx.carrier && k < c.fctx.ncarrier; k++)
		if (c.fctx.carrier[k] >= 0)
			close(c.fctx.carrier[k]);
out_plan:
	for (int i = 0; i < 2; i++) {
		if (sync[i] >= 0)
			close(sync[i]);
		if (ctl[i] >= 0)
			close(ctl[i]);
		if (go[i] >= 0)
			close(go[i]);
	}
	/* The processes are dead: what was made for them goes too. */
	cpu_unhold(&c);
	lazy_abort(&c.lz);
	memobj_restore_done(&c.objs, true);
	if (im.inv && im.inv->net_lock && !unlocked)
		pr_err("the network lock (nft table inet %s) stays: the connections wait for a restore; "
		       "'rtcr unlock -D %s' gives them up", im.inv->net_lock->table, o->dir);
	plan_free(&c);
	image_unload(&im);
	return ret < 0 ? ret : -EIO;
}

int restore_unlock(const char *dir, const char *netns)
{
	struct loaded_image im;
	char *bootid = NULL;
	bool same_boot = false;
	int ret = image_load(dir, &im);

	if (ret) {
		image_unload(&im);
		return ret;
	}
	if (!im.inv->net_lock) {
		fprintf(stderr, "rtcr unlock: %s holds no network lock\n", dir);
		image_unload(&im);
		return 0;
	}
	if (read_file("/proc/sys/kernel/random/boot_id", &bootid) >= 0) {
		bootid[strcspn(bootid, "\n")] = 0;
		same_boot = !strcmp(bootid, im.inv->boot_id);
		free(bootid);
	}
	ret = netns ? netns_enter(netns) : 0;
	if (!ret)
		ret = netlock_release_image(im.inv, same_boot);
	if (!ret)
		fprintf(stderr, "rtcr unlock: network lock %s removed: the %zu connection%s of %s are "
			"given up (their peers get a reset at their next segment)\n",
			im.inv->net_lock->table, im.inv->net_lock->n_connections,
			im.inv->net_lock->n_connections == 1 ? "" : "s", dir);
	image_unload(&im);
	return ret;
}
