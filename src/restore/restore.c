/*
 * rtcr restore: bringing a process back from an image, without loading
 * its program.
 *
 *   LOAD        image read; structure, END record, metadata checksums
 *     |
 *   PREFLIGHT   pid free, files present and unchanged, CPU and vDSO
 *     |         compatible, limits and credentials grantable
 *     v
 *   FORKED      clone3(set_tid = saved pid); the parent seizes the child
 *     |         with PTRACE_O_EXITKILL: if rtcr dies, so does the child
 *     v
 *   HOSTED      the child, still running rtcr's code: fds at their
 *     |         numbers, cwd, root, umask, personality, session, signal
 *     |         actions; then it stops itself (SIGSTOP)
 *     v
 *   ADDRESS     the parent drives it with injected calls (task/inject.h):
 *     |         scratch area, rtcr's mappings unmapped, vDSO moved, saved
 *     |         areas mapped and filled, protections, PR_SET_MM_MAP
 *     v
 *   STATE       thread state, limits, pending signals, credentials,
 *     |         dumpable, parent-death signal, interval timers
 *     v
 *   RUNNING     scratch unmapped; registers, xstate and signal mask set
 *               at the syscall-exit stop; detached
 *
 * Any failure after FORKED kills the child and reaps it: no half-restored
 * process is ever left behind. Messages name the object that failed.
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
#include "image/load.h"
#include "mem/mem.h"
#include "task/ptrace.h"
#include "task/task.h"

extern char rtcr_syscall_gadget[];

struct mapfile {
	const Rtcr__FileRef *ref;
	int oflags;
};

struct plan {
	int base;               /* first helper fd in the child: the control pipe */
	struct mapfile *mf;     /* distinct mapped files, at fds base+1+k */
	int nmf;
	int *vma_fd;            /* per area: the child's fd of its file, or -1 */
	int exe_fd;
	bool same_boot;
};

static int plan_file(struct plan *p, const Rtcr__FileRef *ref, int oflags)
{
	for (int k = 0; k < p->nmf; k++)
		if (!strcmp(p->mf[k].ref->path, ref->path) && p->mf[k].oflags == oflags)
			return p->base + 1 + k;
	p->mf = xrealloc(p->mf, (p->nmf + 1) * sizeof(*p->mf));
	p->mf[p->nmf].ref = ref;
	p->mf[p->nmf].oflags = oflags;
	return p->base + 1 + p->nmf++;
}

static int build_plan(const struct loaded_image *im, struct plan *p)
{
	const Rtcr__Mm *mm = im->mm;
	struct rlimit rl;
	char *bootid = NULL;

	memset(p, 0, sizeof(*p));
	p->base = files_max_fd(im->files) + 1;
	p->vma_fd = xmalloc((mm->n_vmas + 1) * sizeof(int));
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		p->vma_fd[i] = -1;
		if (v->kind == RTCR__VMA_KIND__FILE_PRIVATE || v->kind == RTCR__VMA_KIND__FILE_SHARED) {
			if (!v->file) {
				pr_err("image: file mapping %llx-%llx without its file",
				       (unsigned long long)v->start, (unsigned long long)v->end);
				return -EINVAL;
			}
			p->vma_fd[i] = plan_file(p, v->file,
						 v->kind == RTCR__VMA_KIND__FILE_SHARED && v->may_write ?
						 O_RDWR : O_RDONLY);
		}
	}
	p->exe_fd = mm->exe ? plan_file(p, mm->exe, O_RDONLY) : -1;
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)(p->base + 1 + p->nmf) >= rl.rlim_cur) {
		pr_err("the process used fd %d; rtcr's RLIMIT_NOFILE (%llu) is too low to restore it",
		       p->base - 1, (unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	if (read_file("/proc/sys/kernel/random/boot_id", &bootid) >= 0) {
		bootid[strcspn(bootid, "\n")] = 0;
		p->same_boot = !strcmp(bootid, im->inv->boot_id);
		free(bootid);
	}
	return 0;
}

static void plan_free(struct plan *p)
{
	free(p->mf);
	free(p->vma_fd);
}

static int preflight(const struct loaded_image *im, const struct plan *pl)
{
	const Rtcr__Process *proc = im->proc;
	struct files_restore_ctx ctx = { .same_boot = pl->same_boot };
	struct cpu_info here, dumped;
	char msg[256], path[64];
	int ret;

	for (size_t i = 1; i < proc->n_threads; i++) {
		snprintf(path, sizeof(path), "/proc/%d", proc->threads[i]->tid);
		if (access(path, F_OK) == 0) {
			pr_err("tid %d (a thread of pid %d) is in use: restore needs the saved ids free",
			       proc->threads[i]->tid, proc->pid);
			return -EEXIST;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d", proc->pid);
	/* A zombie holding the pid may be about to be reaped: give its
	 * parent a moment (init reaps orphans lazily on some systems). */
	for (int i = 0; i < 300 && access(path, F_OK) == 0; i++) {
		uint64_t f[PROC_STAT_FIELDS];
		char state = 0;
		if (proc_stat_read(proc->pid, f, &state) || state != 'Z')
			break;
		if (i == 299) {
			pr_err("pid %d is held by a zombie that its parent (pid %llu) has not reaped: "
			       "restore needs the saved pid free", proc->pid, (unsigned long long)f[4]);
			return -EEXIST;
		}
		usleep(10000);
	}
	if (access(path, F_OK) == 0) {
		char comm[64] = "?";
		if (proc_comm(proc->pid, proc->pid, comm, sizeof(comm))) {
			/* gone meanwhile; clone3 decides */
		}
		pr_err("pid %d is in use (by '%s'): restore needs the saved pid free", proc->pid, comm);
		return -EEXIST;
	}
	cpu_info_get(&here);
	memset(&dumped, 0, sizeof(dumped));
	dumped.xfeatures = im->inv->cpu->xfeatures;
	for (size_t i = 0; i < im->inv->cpu->n_features && i < CPU_NR_FEATURE_WORDS; i++)
		dumped.features[i] = im->inv->cpu->features[i];
	if (cpu_compatible(&dumped, &here, msg, sizeof(msg))) {
		pr_err("CPU: %s", msg);
		return -ENOTSUP;
	}
	ret = mem_check_vdso(im->inv, im->mm);
	if (ret)
		return ret;
	for (int k = 0; k < pl->nmf; k++) {
		ret = fileref_check(pl->mf[k].ref, "mapped file", pl->same_boot, true);
		if (ret)
			return ret;
	}
	ret = files_check(im->files, &ctx);
	if (!ret)
		ret = attrs_check_rlimits(proc);
	for (size_t i = 0; i < proc->n_threads && !ret; i++) {
		const Rtcr__Creds *c = proc->threads[i]->creds ? proc->threads[i]->creds : proc->creds;
		if (!creds_same_as_self(c))
			ret = creds_check(c);
	}
	return ret;
}

/* ---- HOSTED: the child, before it stops itself ---- */

static __attribute__((noreturn)) void child_main(const struct loaded_image *im,
						 const struct plan *pl, int sync_rd, int ctl_wr,
						 bool detach)
{
	struct files_restore_ctx ctx = { .same_boot = pl->same_boot };
	int *keep = xmalloc((pl->nmf + 1) * sizeof(int));
	sigset_t all;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (read(sync_rd, &c, 1) != 1)
		_exit(1);
	if (dup2(ctl_wr, pl->base) < 0)
		_exit(1);
	log_set_fd(pl->base);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	keep[0] = pl->base;
	for (int k = 0; k < pl->nmf; k++) {
		int fd = open(pl->mf[k].ref->path, pl->mf[k].oflags | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("mapped file %s", pl->mf[k].ref->path);
			_exit(1);
		}
		if (fd != pl->base + 1 + k) {
			if (dup2(fd, pl->base + 1 + k) < 0) {
				pr_perror("mapped file %s: dup2", pl->mf[k].ref->path);
				_exit(1);
			}
			close(fd);
		}
		keep[k + 1] = pl->base + 1 + k;
	}
	if (files_restore(im->files, &ctx, keep, pl->nmf + 1) ||
	    attrs_restore_child(im->proc, detach) || signals_restore_child(im->proc))
		_exit(1);
	raise(SIGSTOP);
	/* The parent rebuilds this process from here on; it never returns
	 * to this code. */
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

/* ---- ADDRESS and STATE: the parent drives the stopped child ---- */

/*
 * Create thread t in the child: an injected clone3 in the main thread,
 * with the saved tid. With PTRACE_O_TRACECLONE the new thread starts
 * traced and stopped, before it runs a single instruction.
 */
static int create_thread(struct inject *main_in, pid_t tid)
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
	ret = task_wait_stop(tid, &st);
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

static int rebuild(struct loaded_image *im, const struct plan *pl, pid_t pid, bool detach,
		   struct mem_stats *ms)
{
	const Rtcr__Process *proc = im->proc;
	size_t nt = proc->n_threads, ready = 0;
	struct inject *tin = xzalloc(nt * sizeof(*tin));   /* tin[0]: the main thread */
	struct scratch sc;
	struct rseq_conf rc;
	struct cpu_info ci;
	bool *extra_write = xzalloc((im->mm->n_vmas + 1) * sizeof(bool));
	int ret;
	long r;

	for (size_t i = 0; i < nt; i++)
		tin[i].memfd = -1;
	memset(&sc, 0, sizeof(sc));
	cpu_info_get(&ci);
	ret = inject_begin(&tin[0], pid, (uint64_t)(uintptr_t)rtcr_syscall_gadget);
	if (ret)
		goto out;
	ready = 1;
	for (int n = 0;; n++) {
		uint64_t addr = mem_find_gap(im->mm, scratch_size(ci.xsave_size, nt) + (2 << 20), n);
		if (!addr) {
			pr_err("no free address range for rtcr's scratch area in the saved layout");
			ret = -ENOMEM;
			goto out;
		}
		ret = inject_map_scratch(&tin[0], &sc, addr, nt, ci.xsave_size, NULL, 0);
		if (ret != -EEXIST)
			break;
	}
	if (ret)
		goto out;

	/* rtcr's glibc registered rseq in the child: undo before its area goes. */
	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, (void *)sizeof(rc), &rc) >= 0 &&
	    rc.rseq_abi_pointer) {
		ret = inject_call(&tin[0], "unregistering rtcr's rseq area", __NR_rseq,
				  rc.rseq_abi_pointer, rc.rseq_abi_size, 1 /* RSEQ_FLAG_UNREGISTER */,
				  rc.signature, 0, 0, NULL);
		if (ret)
			goto out;
	}
	ret = mem_unmap_all_but(&tin[0], pid);
	if (!ret)
		ret = mem_move_vdso(&tin[0], pid, im->mm, sc.base + sc.len + (1 << 20));
	if (!ret)
		ret = mem_map_areas(&tin[0], im->mm, pl->vma_fd, extra_write);
	if (!ret)
		ret = mem_fill_pages(&tin[0], im, pid, ms);
	if (!ret)
		ret = mem_finish_areas(&tin[0], im->mm, extra_write, pl->exe_fd);
	if (ret)
		goto out;
	/* A batch ends in int3, whose forced SIGTRAP resets that signal's
	 * action when it is blocked: put the saved one back. */
	ret = signals_restore_one(&tin[0], proc, SIGTRAP);
	if (ret)
		goto out;

	/* The other threads, with their tids, each driven in its own slot. */
	if (nt > 1 && ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD |
			     PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE)) < 0) {
		ret = -errno;
		pr_perror("PTRACE_SETOPTIONS");
		goto out;
	}
	for (size_t i = 1; i < nt && !ret; i++) {
		pid_t tid = proc->threads[i]->tid;
		ret = create_thread(&tin[0], tid);
		if (!ret)
			ret = inject_begin(&tin[i], tid, 0);
		if (!ret) {
			ready = i + 1;
			ret = inject_attach_scratch(&tin[i], &sc, i, NULL, 0);
		}
	}
	if (!ret && nt > 1 && ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD |
				     PTRACE_O_EXITKILL)) < 0)
		ret = -errno;
	for (size_t i = 0; i < nt && !ret; i++) {
		ret = thread_restore_inj(&tin[i], proc->threads[i], proc->xcomp_perm);
		if (!ret)
			ret = thread_restore_sched(proc->threads[i]->tid, proc->threads[i]);
	}
	if (!ret)
		ret = attrs_restore_inj(&tin[0], proc);
	if (!ret)
		ret = signals_restore_pending(&tin[0], proc);
	for (size_t i = 0; i < nt && !ret; i++)
		ret = signals_restore_thread_pending(&tin[i], proc->pid, proc->threads[i]);
	/* Credentials are per thread; the main thread's last (it created the
	 * others with privileges it may now give up). */
	for (size_t k = 0; k < nt && !ret; k++) {
		size_t i = (k + 1) % nt;
		const Rtcr__Creds *c = proc->threads[i]->creds ? proc->threads[i]->creds : proc->creds;
		if (!creds_same_as_self(c))
			ret = creds_restore_inj(&tin[i], c);
	}
	if (!ret)
		ret = attrs_restore_final(&tin[0], proc, detach);
	if (!ret)
		ret = inject_call(&tin[0], "closing rtcr's helper fds", __NR_close_range, pl->base, ~0U,
				  0, 0, 0, 0, NULL);
	if (!ret)
		ret = inject_unmap_scratch(&tin[0]);
	if (ret)
		goto out;

	/* RUNNING: every thread sits at the exit of its last injected call. */
	for (size_t i = 0; i < nt && !ret; i++)
		ret = set_thread_final(proc->threads[i]->tid, proc->threads[i], &ci);
	if (ret)
		goto out;
	if (proc->stopped)
		kill(pid, SIGSTOP);
	for (size_t i = nt; i-- > 0 && !ret; )
		ret = task_detach(proc->threads[i]->tid, 0);
out:
	for (size_t i = 0; i < ready; i++)
		inject_abandon(&tin[i]);
	free(tin);
	free(extra_write);
	(void)r;
	return ret;
}

static volatile pid_t g_child;

static void forward(int sig, siginfo_t *si, void *uc)
{
	/* Signals someone sent to rtcr go on to the process it restored;
	 * terminal signals (SI_KERNEL) reach it directly. */
	if (g_child && si->si_code != SI_KERNEL)
		kill(g_child, sig);
}

static int wait_child(pid_t pid)
{
	static const int fwd[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	struct sigaction sa;
	int status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	g_child = pid;
	for (size_t i = 0; i < ARRAY_SIZE(fwd); i++)
		sigaction(fwd[i], &sa, NULL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pr_perror("waiting for pid %d", pid);
			return -errno;
		}
	}
	g_child = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	pr_warn("restored process %d was killed by %s", pid, sig_name(WTERMSIG(status)));
	return 128 + WTERMSIG(status);
}

int restore_run(const struct restore_opts *o)
{
	struct loaded_image im;
	struct plan pl;
	struct mem_stats ms = { 0 };
	struct clone_args ca;
	int sync[2] = { -1, -1 }, ctl[2] = { -1, -1 }, ret, status;
	uint64_t t0 = now_ns(), t_fork = 0, t_run = 0;
	pid_t pid, want;

	ret = image_load(o->dir, &im);
	if (ret)
		return ret;
	ret = build_plan(&im, &pl);
	if (!ret)
		ret = preflight(&im, &pl);
	if (ret)
		goto out_plan;
	if (pipe2(sync, O_CLOEXEC) || pipe2(ctl, O_CLOEXEC)) {
		ret = -errno;
		pr_perror("pipe");
		goto out_plan;
	}

	/* FORKED */
	want = im.proc->pid;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uintptr_t)&want;
	ca.set_tid_size = 1;
	fflush(NULL);
	t_fork = now_ns();
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		ret = -errno;
		if (errno == EEXIST)
			pr_err("pid %d is in use: restore needs the saved pid free", want);
		else if (errno == EPERM)
			pr_err("creating pid %d: permission denied (needs CAP_CHECKPOINT_RESTORE or "
			       "CAP_SYS_ADMIN)", want);
		else
			pr_perror("clone3(set_tid=%d)", want);
		goto out_plan;
	}
	if (pid == 0) {
		close(sync[1]);
		close(ctl[0]);
		child_main(&im, &pl, sync[0], ctl[1], o->detach);
	}
	close(sync[0]);
	close(ctl[1]);
	sync[0] = ctl[1] = -1;
	ret = task_seize(pid, true);
	if (ret) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out_plan;
	}
	if (write(sync[1], "g", 1) != 1) {
		ret = -errno;
		goto kill_child;
	}

	/* HOSTED: wait until the child stops itself. */
	for (;;) {
		pid_t w = waitpid(pid, &status, __WALL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ret = -errno;
			pr_perror("waitpid");
			goto kill_child;
		}
		if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP && !(status >> 16))
			break;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			relay_child_messages(ctl[0]);
			pr_err("restore of pid %d failed while setting up its handles and attributes",
			       want);
			ret = -EIO;
			goto out_plan;
		}
		/* other stops (group-stop notifications): let it go on */
		ptrace(PTRACE_CONT, pid, 0, 0);
	}
	relay_child_messages(ctl[0]);

	/* ADDRESS, STATE, RUNNING */
	ret = rebuild(&im, &pl, pid, o->detach, &ms);
	relay_child_messages(ctl[0]);
	if (ret)
		goto kill_child;
	t_run = now_ns();
	if (o->stats) {
		char b[32];
		fprintf(stderr,
			"rtcr restore: pid %d: %s in %llu pages\n"
			"  until running %8.3f ms (fork to running %.3f ms)\n"
			"  page copy     %8.3f ms (%.2f GiB/s, %llu pages by UFFDIO_COPY)\n",
			pid, fmt_bytes(b, sizeof(b), ms.pages * PAGE_SIZE), (unsigned long long)ms.pages,
			(t_run - t0) / 1e6, (t_run - t_fork) / 1e6, ms.copy_ns / 1e6,
			ms.copy_ns ? ms.pages * PAGE_SIZE / (ms.copy_ns / 1e9) / (1ULL << 30) : 0.0,
			(unsigned long long)ms.uffd_pages);
		fprintf(stderr, "STATS restore pid=%d pages=%llu total_ns=%llu fork_to_run_ns=%llu "
			"copy_ns=%llu\n", pid, (unsigned long long)ms.pages,
			(unsigned long long)(t_run - t0), (unsigned long long)(t_run - t_fork),
			(unsigned long long)ms.copy_ns);
	}
	close(ctl[0]);
	close(sync[1]);
	image_unload(&im);
	plan_free(&pl);
	if (o->detach) {
		printf("%d\n", pid);
		fflush(stdout);
		return 0;
	}
	return wait_child(pid);

kill_child:
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
	pr_err("restore of pid %d failed; the partly restored process was killed", want);
out_plan:
	for (int i = 0; i < 2; i++) {
		if (sync[i] >= 0)
			close(sync[i]);
		if (ctl[i] >= 0)
			close(ctl[i]);
	}
	plan_free(&pl);
	image_unload(&im);
	return ret < 0 ? ret : -EIO;
}
