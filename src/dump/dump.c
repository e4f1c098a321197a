/*
 * rtcr dump: checkpointing a running process.
 *
 * The dump is a state machine; every state has one way forward and one
 * way back to a running, unmodified target:
 *
 *   PREFLIGHT   /proc checks that need no stop (threads, children,
 *      |        namespaces, seccomp, POSIX timers): refuse early
 *      v
 *   FROZEN      task_seize() + PTRACE_INTERRUPT; frozen time starts.
 *      |        Handles and memory areas are classified here, before
 *      |        anything is injected: a refusal detaches at once.
 *      v
 *   INJECTING   inject_begin(): signals blocked, scratch area mapped
 *      |        (its rollback frame returns the task to its saved state
 *      |        if rtcr dies); state only the task can ask for is read
 *      v        with injected calls
 *   CURED       inject_finish(): scratch unmapped, registers back
 *      |
 *      v
 *   WRITTEN     image streamed to DIR/.image.rtcr.partial; END; fsync;
 *      |        renamed to DIR/image.rtcr (img_commit)
 *      v
 *   RELEASED    default: SIGKILL the target; --leave-running: detach
 *
 * Any failure from FROZEN on goes to ABORT: cure if injecting, detach,
 * delete the partial image. Catchable signals to rtcr (SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT) and crashes take the same way out.
 */
#include "dump/dump.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "arch/x86/scratch_layout.h"
#include "common/proc.h"
#include "common/util.h"
#include "files/files.h"
#include "image/image.h"
#include "mem/mem.h"
#include "task/ptrace.h"
#include "task/task.h"
#include "common/version.h"

/* For the emergency exit: what is held right now. */
static volatile pid_t g_seized;
static struct inject *volatile g_inject;
static volatile sig_atomic_t g_signalled;

static void on_crash(int sig)
{
	pid_t pid = g_seized;
	struct inject *in = g_inject;

	if (pid) {
		/* Once the scratch exists its rollback frame restores the task
		 * when it runs on; before that, put the registers back. */
		if (in && !(in->sc && in->sc->base))
			ptrace(PTRACE_SETREGS, pid, 0, &in->saved);
		if (in)
			ptrace(PTRACE_SETSIGMASK, pid, (void *)8, &in->saved_sigmask);
		ptrace(PTRACE_DETACH, pid, 0, 0);
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
	char path[64], *timers;

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
	n = proc_children(pid, &ids);
	if (n < 0)
		return n;
	if (n > 0) {
		pr_err("pid %d has child process %d: process trees are not supported yet", pid, ids[0]);
		free(ids);
		return -ENOTSUP;
	}
	free(ids);
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
	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	n = read_file(path, &timers);
	if (n > 0) {
		int id = -1;
		sscanf(timers, "ID: %d", &id);
		free(timers);
		pr_err("pid %d: POSIX timer %d: not supported yet", pid, id);
		return -ENOTSUP;
	}
	if (n == 0)
		free(timers);
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

struct dump_ctx {
	const struct dump_opts *o;
	pid_t pid;
	pid_t *tids;                  /* seized threads, the main one first */
	int ntids;
	struct inject in;             /* the main thread's */
	struct scratch sc;
	bool injecting;
	bool stopped;                 /* target was group-stopped */
	uint64_t t_freeze, t_thaw;
	struct vma_list vl;
	Rtcr__Process *proc;
	Rtcr__Mm *mm;
	Rtcr__Files *files;
	struct mem_stats ms;
	struct img_stream *sink;
	uint64_t image_bytes;
	uint64_t t_start;
};

static int do_inject(struct dump_ctx *c)
{
	Rtcr__Thread *t = c->proc->threads[0];
	uint64_t gadget = 0;
	struct cpu_info ci;
	int ret;

	for (int i = 0; i < c->vl.nr && !gadget; i++)
		if (c->vl.v[i].kind == RTCR__VMA_KIND__VDSO)
			gadget = find_syscall_insn(c->pid, c->vl.v[i].start, c->vl.v[i].end);
	for (int i = 0; i < c->vl.nr && !gadget; i++)
		if ((c->vl.v[i].prot & PROT_EXEC) && (c->vl.v[i].prot & PROT_READ))
			gadget = find_syscall_insn(c->pid, c->vl.v[i].start, c->vl.v[i].end);
	if (!gadget) {
		pr_err("pid %d: no syscall instruction in its executable memory to inject with",
		       c->pid);
		return -ENOEXEC;
	}
	ret = inject_begin(&c->in, c->pid, gadget);
	if (ret)
		return ret;
	c->injecting = true;
	g_inject = &c->in;
	cpu_info_get(&ci);
	ret = inject_map_scratch(&c->in, &c->sc, 0, c->ntids, ci.xsave_size, t->xstate.data,
				 t->xstate.len);
	if (ret)
		return ret;
	test_kill_point("injecting");

	ret = attrs_dump(&c->in, c->pid, c->proc);
	if (!ret)
		ret = signals_dump(&c->in, c->pid, c->proc);
	test_kill_point("queried");
	if (!ret)
		ret = creds_dump(&c->in, c->pid, &c->proc->creds);
	if (!ret)
		ret = thread_dump_inj(&c->in, t);
	if (!ret)
		ret = mem_dump_mm(&c->in, c->pid, &c->vl, &c->mm);
	/* The other threads, each in its own scratch slot, one at a time. */
	for (int i = 1; i < c->ntids && !ret; i++) {
		Rtcr__Thread *ti = c->proc->threads[i];
		struct inject it;
		int fin;

		ret = inject_begin(&it, ti->tid, 0);
		if (ret)
			break;
		ret = inject_attach_scratch(&it, &c->sc, i, ti->xstate.data, ti->xstate.len);
		if (!ret)
			ret = thread_dump_inj(&it, ti);
		if (!ret)
			ret = creds_dump(&it, ti->tid, &ti->creds);
		if (!ret && creds_equal(ti->creds, c->proc->creds)) {
			rtcr__creds__free_unpacked(ti->creds, NULL);
			ti->creds = NULL;
		}
		fin = inject_finish(&it);
		inject_abandon(&it);
		if (!ret)
			ret = fin;
	}
	if (ret)
		return ret;
	ret = inject_unmap_scratch(&c->in);
	if (!ret)
		ret = inject_finish(&c->in);
	if (ret)
		return ret;
	c->injecting = false;
	g_inject = NULL;
	return 0;
}

/*
 * FROZEN: seize and stop every thread, again and again until no new one
 * appears (a running thread may create one while others are stopping;
 * once all are stopped none can). Threads that exit meanwhile are dropped.
 */
static int freeze_all(struct dump_ctx *c)
{
	for (;;) {
		pid_t *now;
		bool added = false;
		int n = proc_tasks(c->pid, &now);

		if (n < 0) {
			pr_err("pid %d: listing its threads: %s", c->pid, strerror(-n));
			return n;
		}
		/* The main thread first, so it is tids[0]. */
		for (int k = 0; k < n; k++)
			if (now[k] == c->pid) {
				now[k] = now[0];
				now[0] = c->pid;
			}
		for (int k = 0; k < n; k++) {
			struct stop st;
			bool known = false;
			int ret;

			for (int j = 0; j < c->ntids && !known; j++)
				known = c->tids[j] == now[k];
			if (known)
				continue;
			if (c->ntids >= SCRATCH_MAX_SLOTS) {
				pr_err("pid %d: more than %d threads: not supported", c->pid,
				       SCRATCH_MAX_SLOTS);
				free(now);
				return -ENOTSUP;
			}
			ret = task_seize(now[k], false);
			if (ret == -ESRCH && now[k] != c->pid)
				continue;         /* a thread that just exited */
			if (ret == -ESRCH)
				pr_err("pid %d: no such process", c->pid);
			if (ret) {
				free(now);
				return ret;
			}
			c->tids = xrealloc(c->tids, (c->ntids + 1) * sizeof(pid_t));
			c->tids[c->ntids++] = now[k];
			if (now[k] == c->pid) {
				g_seized = c->pid;
				c->t_freeze = now_ns();
			}
			ret = task_interrupt(now[k]);
			if (!ret)
				ret = task_wait_stop_quiet(now[k], &st);
			/* A signal being delivered as we stopped the thread must not
			 * be lost: let it be delivered (its handler frame is then part
			 * of the state) and take the next stop, ours. */
			while (!ret && st.kind == STOP_SIGNAL) {
				if (ptrace(PTRACE_CONT, now[k], 0, (void *)(long)st.sig) < 0)
					ret = -errno;
				else
					ret = task_wait_stop_quiet(now[k], &st);
			}
			if (ret == -ESRCH && now[k] != c->pid) {
				c->ntids--;       /* exited before it stopped */
				continue;
			}
			if (ret) {
				pr_err("pid %d: tid %d could not be stopped: %s", c->pid, now[k],
				       strerror(-ret));
				free(now);
				return ret;
			}
			if (now[k] == c->pid)
				c->stopped = st.kind == STOP_GROUP;
			added = true;
		}
		free(now);
		if (!added)
			return 0;
	}
}

static void detach_all(struct dump_ctx *c)
{
	for (int i = 0; i < c->ntids; i++)
		task_detach(c->tids[i], 0);
}

static int write_image(struct dump_ctx *c)
{
	Rtcr__Inventory inv;
	Rtcr__CpuInfo cpu;
	struct cpu_info ci;
	struct utsname u;
	struct imgw w;
	uint8_t id[16];
	char *bootid = read_boot_id();
	int ret, fd;

	cpu_info_get(&ci);
	uname(&u);
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read_full(fd, id, sizeof(id))) {
		pr_perror("/dev/urandom");
		if (fd >= 0)
			close(fd);
		free(bootid);
		return -EIO;
	}
	close(fd);
	fill_inventory(&inv, &cpu, &ci, c->pid, id, realtime_ns(), vdso_hash_of(c->pid, &c->vl),
		       c->o->leave_running, bootid, &u);

	ret = img_sink_file(c->o->dir, IMG_FILE_NAME, &c->sink);
	if (ret) {
		free(bootid);
		return ret;
	}
	ret = imgw_begin(&w, c->sink, id);
	if (!ret)
		ret = imgw_put_pb(&w, REC_INVENTORY, &inv.base);
	if (!ret)
		ret = imgw_put_pb(&w, REC_PROCESS, &c->proc->base);
	if (!ret)
		ret = imgw_put_pb(&w, REC_MM, &c->mm->base);
	if (!ret)
		ret = imgw_put_pb(&w, REC_FILES, &c->files->base);
	if (!ret)
		ret = check_signalled();
	if (!ret)
		ret = mem_dump_pages(&w, c->pid, &c->vl, &c->ms);
	test_kill_point("written");
	if (!ret)
		ret = check_signalled();
	if (!ret)
		ret = imgw_finish(&w);
	c->image_bytes = c->sink->pos;
	imgw_release(&w);
	free(bootid);
	return ret;
}

static void print_stats(struct dump_ctx *c)
{
	uint64_t bytes = c->ms.pages * PAGE_SIZE;
	double copy_s = c->ms.copy_ns / 1e9;
	char b1[32], b2[32];

	fprintf(stderr,
		"rtcr dump: pid %d: %s of memory in %llu pages, image %s\n"
		"  frozen      %8.3f ms\n"
		"  total       %8.3f ms\n"
		"  page scan   %8.3f ms\n"
		"  page copy   %8.3f ms (%.2f GiB/s)\n",
		c->pid, fmt_bytes(b1, sizeof(b1), bytes), (unsigned long long)c->ms.pages,
		fmt_bytes(b2, sizeof(b2), c->image_bytes), (c->t_thaw - c->t_freeze) / 1e6,
		(now_ns() - c->t_start) / 1e6, c->ms.scan_ns / 1e6, c->ms.copy_ns / 1e6,
		copy_s > 0 ? bytes / copy_s / (1ULL << 30) : 0.0);
	/* One machine-readable line for benchmarks. */
	fprintf(stderr, "STATS dump pid=%d pages=%llu bytes=%llu image=%llu frozen_ns=%llu "
		"copy_ns=%llu scan_ns=%llu total_ns=%llu\n", c->pid,
		(unsigned long long)c->ms.pages, (unsigned long long)bytes,
		(unsigned long long)c->image_bytes, (unsigned long long)(c->t_thaw - c->t_freeze),
		(unsigned long long)c->ms.copy_ns, (unsigned long long)c->ms.scan_ns,
		(unsigned long long)(now_ns() - c->t_start));
}

int dump_run(const struct dump_opts *o)
{
	struct dump_ctx c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.pid = o->pid;
	c.t_start = now_ns();
	install_handlers();

	/* PREFLIGHT */
	ret = task_preflight(c.pid);
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

	/* FROZEN */
	ret = freeze_all(&c);
	if (ret)
		goto abort;
	test_kill_point("seized");
	/* Re-check what may have changed before the stop. */
	ret = task_preflight(c.pid);
	if (!ret)
		ret = files_dump(c.pid, &c.files);
	if (!ret)
		ret = vma_list_read(c.pid, &c.vl);
	if (ret)
		goto abort;

	c.proc = xzalloc(sizeof(*c.proc));
	rtcr__process__init(c.proc);
	c.proc->stopped = c.stopped;
	c.proc->threads = xzalloc(c.ntids * sizeof(*c.proc->threads));
	for (int i = 0; i < c.ntids && !ret; i++) {
		Rtcr__Thread *t = xzalloc(sizeof(*t));
		rtcr__thread__init(t);
		c.proc->threads[c.proc->n_threads++] = t;
		ret = thread_dump_cpu(c.tids[i], t);
	}
	if (ret)
		goto abort;

	ret = mem_find_pages(c.pid, &c.vl, &c.ms);
	if (ret)
		goto abort;

	/* INJECTING -> CURED */
	ret = do_inject(&c);
	if (!ret)
		ret = check_signalled();
	if (ret)
		goto abort;

	/* WRITTEN */
	ret = write_image(&c);
	if (ret)
		goto abort;
	img_close(c.sink);
	c.sink = NULL;

	/* RELEASED: frozen time ends when the target runs again or is killed;
	 * the kernel's teardown of a killed process is not part of it. */
	if (o->leave_running) {
		detach_all(&c);
		c.t_thaw = now_ns();
	} else {
		kill(c.pid, SIGKILL);
		c.t_thaw = now_ns();
		/* Reap the traces so the pid is free when rtcr returns (once the
		 * real parent reaps the zombie). Other threads first: a traced
		 * leader is only reapable after them. */
		for (int i = c.ntids; i-- > 0; )
			while (waitpid(c.tids[i], NULL, __WALL) < 0 && errno == EINTR)
				;
	}
	g_seized = 0;
	if (o->stats)
		print_stats(&c);
	goto out;

abort:
	if (c.injecting) {
		if (c.sc.base && inject_unmap_scratch(&c.in))
			pr_err("pid %d: could not remove rtcr's scratch area", c.pid);
		if (inject_finish(&c.in))
			pr_err("pid %d: could not restore its registers", c.pid);
		g_inject = NULL;
	}
	inject_abandon(&c.in);
	detach_all(&c);
	g_seized = 0;
	if (c.sink)
		img_close(c.sink);   /* deletes the partial image */
	c.sink = NULL;
out:
	free(c.tids);
	vma_list_free(&c.vl);
	process_free(c.proc);
	mm_free(c.mm);
	files_free(c.files);
	return ret;
}
