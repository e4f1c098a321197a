/*
 * Process attributes: identity (pid, session, process group), comm, cwd,
 * root, umask, personality, resource limits, and prctl state (no_new_privs,
 * dumpable, parent-death signal, child subreaper, THP, timer slack),
 * interval timers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "task/task.h"

#define ARCH_GET_XCOMP_PERM 0x1022

static const char *const rlimit_names[] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
	"RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
	"RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
	"RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

static int dump_rlimits(pid_t pid, Rtcr__Process *p)
{
	uint64_t cur[16], max[16];
	bool from_proc = false;

	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit rl;
		if (!from_proc && prlimit(pid, r, NULL, &rl) == 0) {
			cur[r] = rl.rlim_cur;
			max[r] = rl.rlim_max;
			continue;
		}
		if (from_proc || errno != EPERM) {
			pr_perror("pid %d: reading %s", pid, rlimit_names[r]);
			return -errno;
		}
		/* Another user's process and no CAP_SYS_RESOURCE: /proc says it all. */
		if (proc_limits(pid, cur, max)) {
			pr_err("pid %d: cannot read its resource limits (prlimit refused, "
			       "/proc/%d/limits unreadable)", pid, pid);
			return -EPERM;
		}
		from_proc = true;
		break;
	}
	p->rlimits = xzalloc(RLIM_NLIMITS * sizeof(*p->rlimits));
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		Rtcr__Rlimit *l = xzalloc(sizeof(*l));
		rtcr__rlimit__init(l);
		l->resource = r;
		l->cur = cur[r];
		l->max = max[r];
		p->rlimits[p->n_rlimits++] = l;
	}
	return 0;
}

int attrs_dump(struct inject *in, pid_t pid, Rtcr__Process *p, struct attrs_more *more)
{
	uint64_t f[PROC_STAT_FIELDS], v;
	struct proc_status ps;
	uint64_t out = in ? inject_batch_out(in) : 0;
	char path[64], *s;
	char comm[64];
	long xr;
	int ret;

	ret = proc_stat_read(pid, f, NULL);
	if (ret)
		return ret;
	p->pid = pid;
	p->ppid = f[4];
	p->pgid = f[5];
	p->sid = f[6];
	ret = proc_comm(pid, pid, comm, sizeof(comm));
	if (ret)
		return ret;
	p->comm = xstrdup(comm);

	ret = proc_status_read(pid, &ps);
	if (ret)
		return ret;
	if (!proc_status_u64(&ps, "Umask", &v, 8))
		p->umask = v;
	if (!proc_status_u64(&ps, "NoNewPrivs", &v, 10))
		p->no_new_privs = v;
	proc_status_free(&ps);

	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	if (read_file(path, &s) >= 0) {
		p->personality = strtoul(s, NULL, 16);
		free(s);
	}
	snprintf(path, sizeof(path), "/proc/%d/timerslack_ns", pid);
	if (read_file(path, &s) >= 0) {
		p->timerslack_ns = strtoull(s, NULL, 10);
		free(s);
	}
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	p->cwd = xreadlink(path);
	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	p->root = xreadlink(path);
	if (!p->cwd || !p->root) {
		pr_perror("pid %d: reading cwd/root", pid);
		return -errno;
	}
	ret = dump_rlimits(pid, p);
	if (ret || !in)
		return ret;

	/* One batch: the results land at out, past the batch's table. */
	{
		static const char *const what[] = {
			"PR_GET_DUMPABLE", "PR_GET_THP_DISABLE", "PR_GET_PDEATHSIG",
			"PR_GET_CHILD_SUBREAPER", "ARCH_GET_XCOMP_PERM", "getitimer",
			"getitimer", "getitimer", "PR_GET_SECUREBITS", "brk",
		};
		struct inj_call c[] = {
			{ .nr = __NR_prctl, .a = { PR_GET_DUMPABLE } },
			{ .nr = __NR_prctl, .a = { PR_GET_THP_DISABLE } },
			{ .nr = __NR_prctl, .a = { PR_GET_PDEATHSIG, out } },
			{ .nr = __NR_prctl, .a = { PR_GET_CHILD_SUBREAPER, out + 8 } },
			/* Not every kernel has XCOMP_PERM (no AMX support): then it is 0. */
			{ .nr = __NR_arch_prctl | INJ_MAY_FAIL, .a = { ARCH_GET_XCOMP_PERM, out + 16 } },
			{ .nr = __NR_getitimer, .a = { 0, out + 32 } },
			{ .nr = __NR_getitimer, .a = { 1, out + 64 } },
			{ .nr = __NR_getitimer, .a = { 2, out + 96 } },
			{ .nr = __NR_prctl, .a = { PR_GET_SECUREBITS } },
			{ .nr = __NR_brk, .a = { 0 } },
		};
		size_t failed;
		ret = inject_batch(in, c, ARRAY_SIZE(c), &failed);
		if (ret) {
			if (failed < ARRAY_SIZE(c))
				pr_err("pid %d: %s: %s", pid, what[failed], strerror(-ret));
			return ret;
		}
		p->dumpable = c[0].ret;
		p->thp_disable = c[1].ret;
		xr = c[4].ret;
		more->securebits = c[8].ret;
		more->brk = c[9].ret;
	}
	{
		struct {
			int32_t pdeathsig, pad;
			int32_t subreaper, pad2;
			uint64_t xcomp;
			uint64_t pad3;
			struct itimerval it[3];
		} q;
		_Static_assert(sizeof(struct itimerval) == 32, "itimerval");
		ret = inject_read(in, out, &q, sizeof(q));
		if (ret)
			return ret;
		p->pdeathsig = q.pdeathsig;
		p->child_subreaper = q.subreaper;
		p->xcomp_perm = xr == 0 ? q.xcomp : 0;
		p->itimers = xzalloc(3 * sizeof(*p->itimers));
		for (int which = 0; which < 3; which++) {
			struct itimerval *it = &q.it[which];
			Rtcr__ITimer *t;
			/* A periodic timer that just fired reads value 0 (the
			 * kernel re-arms it when the signal is taken): keep it. */
			if (!it->it_value.tv_sec && !it->it_value.tv_usec &&
			    !it->it_interval.tv_sec && !it->it_interval.tv_usec)
				continue;
			t = xzalloc(sizeof(*t));
			rtcr__itimer__init(t);
			t->which = which;
			t->interval_us = it->it_interval.tv_sec * 1000000ULL + it->it_interval.tv_usec;
			t->value_us = it->it_value.tv_sec * 1000000ULL + it->it_value.tv_usec;
			p->itimers[p->n_itimers++] = t;
		}
	}
	return 0;
}

int attrs_check_rlimits(const Rtcr__Process *p)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		const Rtcr__Rlimit *l = p->rlimits[i];
		struct rlimit mine;
		if (l->resource >= RLIM_NLIMITS || getrlimit(l->resource, &mine))
			continue;
		if (l->max > mine.rlim_max || l->cur > l->max) {
			char a[32], b[32];
			snprintf(a, sizeof(a), l->max == RLIM_INFINITY ? "unlimited" : "%llu",
				 (unsigned long long)l->max);
			snprintf(b, sizeof(b), mine.rlim_max == RLIM_INFINITY ? "unlimited" : "%llu",
				 (unsigned long long)mine.rlim_max);
			pr_err("%s: the process had hard limit %s, above this rtcr's %s; raising a hard "
			       "limit needs CAP_SYS_RESOURCE, which rtcr lacks here",
			       rlimit_names[l->resource], a, b);
			return -EPERM;
		}
	}
	return 0;
}

int attrs_restore_child(const Rtcr__Process *p, bool detach)
{
	umask(p->umask);
	if (prctl(PR_SET_NAME, p->comm, 0, 0, 0) < 0) {
		pr_perror("comm %s", p->comm);
		return -errno;
	}
	/* Session and group: hosted() in restore.c, before the children. */
	if (chdir(p->cwd) < 0) {
		pr_perror("working directory %s", p->cwd);
		return -errno;
	}
	if (strcmp(p->root, "/") && chroot(p->root) < 0) {
		pr_perror("root directory %s", p->root);
		return -errno;
	}
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		pr_perror("PR_SET_NO_NEW_PRIVS");
		return -errno;
	}
	(void)detach;
	return 0;
}

int attrs_restore_inj(struct inject *in, const Rtcr__Process *p)
{
	uint64_t out = inject_batch_out(in);
	struct inj_call *c = xzalloc((p->n_rlimits + 3) * sizeof(*c));
	const char **what = xzalloc((p->n_rlimits + 3) * sizeof(*what));
	uint64_t (*v)[2] = xzalloc((p->n_rlimits + 1) * sizeof(*v));
	size_t n = 0, nv = 0, failed;
	int ret;

	/* One batch: the limits (their values in the batch's out area), then
	 * the prctl settings. */
	_Static_assert(RLIM_NLIMITS * 16 <= INJ_BATCH_OUT_LEN, "limits fit");
	for (size_t i = 0; i < p->n_rlimits && nv < RLIM_NLIMITS; i++) {
		const Rtcr__Rlimit *l = p->rlimits[i];
		if (l->resource >= RLIM_NLIMITS)
			continue;
		v[nv][0] = l->cur;
		v[nv][1] = l->max;
		what[n] = rlimit_names[l->resource];
		c[n++] = (struct inj_call){ .nr = __NR_prlimit64, .a = { 0, l->resource, out + nv * 16 } };
		nv++;
	}
	if (p->child_subreaper) {
		what[n] = "restoring child subreaper";
		c[n++] = (struct inj_call){ .nr = __NR_prctl, .a = { PR_SET_CHILD_SUBREAPER, 1 } };
	}
	if (p->thp_disable) {
		what[n] = "restoring THP disable";
		c[n++] = (struct inj_call){ .nr = __NR_prctl, .a = { PR_SET_THP_DISABLE, 1 } };
	}
	if (p->timerslack_ns) {
		what[n] = "restoring timer slack";
		c[n++] = (struct inj_call){ .nr = __NR_prctl, .a = { PR_SET_TIMERSLACK, p->timerslack_ns } };
	}
	ret = nv ? inject_write(in, out, v, nv * sizeof(*v)) : 0;
	if (!ret && n) {
		ret = inject_batch(in, c, n, &failed);
		if (ret && failed < n)
			pr_err("%s: %s", what[failed], strerror(-ret));
	}
	free(c);
	free(what);
	free(v);
	return ret;
}

/* The kernel adds one scheduler tick when a CPU-time itimer is armed;
 * measure it once on ourselves. */
static uint64_t cpu_tick_us(void)
{
	static uint64_t tick = ~0ULL;
	if (tick == ~0ULL) {
		struct itimerval set = { { 0, 0 }, { 1, 0 } }, got, off = { { 0, 0 }, { 0, 0 } };
		tick = 0;
		if (!setitimer(ITIMER_PROF, &set, NULL) && !getitimer(ITIMER_PROF, &got)) {
			int64_t d = got.it_value.tv_sec * 1000000LL + got.it_value.tv_usec - 1000000;
			if (d > 0 && d < 100000)
				tick = d;
		}
		setitimer(ITIMER_PROF, &off, NULL);
	}
	return tick;
}

int attrs_restore_final(struct inject *in, const Rtcr__Process *p, bool detach)
{
	uint64_t data = inject_data(in);
	int ret;

	/* Last: READ_IMPLIES_EXEC would have added PROT_EXEC to every area
	 * mapped after it. */
	ret = inject_call(in, "restoring personality", __NR_personality, p->personality, 0, 0, 0, 0, 0, NULL);
	if (!ret)
		ret = inject_call(in, "restoring dumpable", __NR_prctl, PR_SET_DUMPABLE, p->dumpable, 0, 0, 0, 0, NULL);
	/* Always set: the restoring child ran with SIGKILL as its
	 * parent-death signal until now. */
	if (p->pdeathsig && detach)
		pr_warn("parent-death signal %s not restored: with --detach the parent (rtcr) "
			"exits at once", sig_name(p->pdeathsig));
	if (!ret)
		ret = inject_call(in, "restoring parent-death signal", __NR_prctl, PR_SET_PDEATHSIG,
			  detach ? 0 : p->pdeathsig, 0, 0, 0, 0, NULL);
	for (size_t i = 0; i < p->n_itimers && !ret; i++) {
		const Rtcr__ITimer *t = p->itimers[i];
		uint64_t value = t->value_us;
		struct itimerval it;

		/* Expired periodic timer (value 0): its signal is pending, the
		 * next expiry is one interval away. */
		if (!value)
			value = t->interval_us;
		/* Arming a CPU-time timer adds one tick; take it back so a
		 * restore does not lengthen the timer. */
		if (t->which != ITIMER_REAL && value > cpu_tick_us() + 1)
			value -= cpu_tick_us();
		it.it_interval.tv_sec = t->interval_us / 1000000;
		it.it_interval.tv_usec = t->interval_us % 1000000;
		it.it_value.tv_sec = value / 1000000;
		it.it_value.tv_usec = value % 1000000;
		ret = inject_write(in, data, &it, sizeof(it));
		if (!ret)
			ret = inject_call(in, "restoring interval timer", __NR_setitimer, t->which, data, 0, 0, 0, 0, NULL);
	}
	return ret;
}
