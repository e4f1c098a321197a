/*
 * Signal state: actions (handler, flags, restorer, mask) of every signal
 * that is not at its default, and the signals pending for the process.
 * The blocked mask and thread-directed pending signals are per thread
 * (thread.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "task/task.h"

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

int signals_dump(struct inject *in, pid_t pid, Rtcr__Process *p)
{
	struct proc_status ps;
	uint64_t ign = 0, cgt = 0, want;
	struct ksigaction ka[64];
	struct inj_call calls[64];
	uint64_t out = inject_batch_out(in);
	size_t failed;
	int ret, nq = 0, sigs[64];

	ret = proc_status_read(pid, &ps);
	if (ret)
		return ret;
	proc_status_u64(&ps, "SigIgn", &ign, 16);
	proc_status_u64(&ps, "SigCgt", &cgt, 16);
	proc_status_free(&ps);
	/* SIGCHLD's flags matter even at SIG_DFL (SA_NOCLDWAIT, SA_NOCLDSTOP). */
	want = ign | cgt | (1ULL << (SIGCHLD - 1));

	_Static_assert(sizeof(ka) <= INJ_BATCH_OUT_LEN, "sigactions fit");
	for (int sig = 1; sig <= 64; sig++) {
		if (!(want & (1ULL << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP)
			continue;
		calls[nq] = (struct inj_call){ .nr = __NR_rt_sigaction,
					       .a = { sig, 0, out + nq * sizeof(ka[0]), 8 } };
		sigs[nq++] = sig;
	}
	/* One batch for all of them. */
	ret = inject_batch(in, calls, nq, &failed);
	if (ret) {
		if (failed < (size_t)nq)
			pr_err("pid %d: reading the action of %s: %s", pid, sig_name(sigs[failed]),
			       strerror(-ret));
		return ret;
	}
	ret = inject_read(in, out, ka, nq * sizeof(ka[0]));
	if (ret)
		return ret;
	p->sigactions = xzalloc((nq ? nq : 1) * sizeof(*p->sigactions));
	for (int i = 0; i < nq; i++) {
		Rtcr__SigAction *a;
		if (ka[i].handler == (uint64_t)SIG_DFL && !ka[i].flags && !ka[i].mask)
			continue;
		a = xzalloc(sizeof(*a));
		rtcr__sig_action__init(a);
		a->sig = sigs[i];
		a->handler = ka[i].handler;
		a->flags = ka[i].flags;
		a->restorer = ka[i].restorer;
		a->mask = ka[i].mask;
		p->sigactions[p->n_sigactions++] = a;
	}
	return peek_pending(pid, true, &p->shared_pending, &p->n_shared_pending);
}

int peek_pending(pid_t tid, bool shared, Rtcr__SigInfo ***out, size_t *n)
{
	struct __ptrace_peeksiginfo_args a = {
		.off = 0,
		.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
		.nr = 1,
	};
	siginfo_t si;

	*out = NULL;
	*n = 0;
	for (;;) {
		long r = ptrace(PTRACE_PEEKSIGINFO, tid, &a, &si);
		Rtcr__SigInfo *s;
		if (r < 0) {
			pr_perror("pid %d: PTRACE_PEEKSIGINFO", tid);
			return -errno;
		}
		if (r == 0)
			break;
		s = xzalloc(sizeof(*s));
		rtcr__sig_info__init(s);
		s->raw.len = sizeof(si);
		s->raw.data = xmalloc(sizeof(si));
		memcpy(s->raw.data, &si, sizeof(si));
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = s;
		a.off++;
	}
	return 0;
}

int signals_restore_child(const Rtcr__Process *p)
{
	/* The child starts with rtcr's actions (a sanitizer runtime's, say):
	 * every signal goes back to the default first. */
	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction k = { (uint64_t)SIG_DFL, 0, 0, 0 };
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, sig, &k, NULL, 8) < 0 && errno != EINVAL) {
			pr_perror("resetting the action of %s", sig_name(sig));
			return -errno;
		}
	}
	for (size_t i = 0; i < p->n_sigactions; i++) {
		const Rtcr__SigAction *a = p->sigactions[i];
		struct ksigaction k = { a->handler, a->flags, a->restorer, a->mask };
		if (syscall(SYS_rt_sigaction, a->sig, &k, NULL, 8) < 0) {
			pr_perror("restoring the action of %s", sig_name(a->sig));
			return -errno;
		}
	}
	return 0;
}

int signals_restore_one(struct inject *in, const Rtcr__Process *p, int sig)
{
	struct ksigaction k = { (uint64_t)SIG_DFL, 0, 0, 0 };
	long r;
	int ret;

	for (size_t i = 0; i < p->n_sigactions; i++)
		if ((int)p->sigactions[i]->sig == sig) {
			const Rtcr__SigAction *a = p->sigactions[i];
			k = (struct ksigaction){ a->handler, a->flags, a->restorer, a->mask };
		}
	ret = inject_write(in, inject_data(in), &k, sizeof(k));
	if (!ret)
		ret = inject_syscall(in, __NR_rt_sigaction, sig, inject_data(in), 0, 8, 0, 0, &r);
	if (!ret && r) {
		pr_err("restoring the action of %s: %s", sig_name(sig), strerror((int)-r));
		ret = (int)r;
	}
	return ret;
}

static int queue(struct inject *in, pid_t pid, pid_t tid, const Rtcr__SigInfo *s)
{
	siginfo_t si;
	long r;
	int ret;

	if (s->raw.len != sizeof(si)) {
		pr_err("pending signal: bad siginfo size %zu", s->raw.len);
		return -EINVAL;
	}
	memcpy(&si, s->raw.data, sizeof(si));
	ret = inject_write(in, inject_data(in), &si, sizeof(si));
	if (ret)
		return ret;
	if (tid)
		ret = inject_syscall(in, __NR_rt_tgsigqueueinfo, pid, tid, si.si_signo, inject_data(in),
				     0, 0, &r);
	else
		ret = inject_syscall(in, __NR_rt_sigqueueinfo, pid, si.si_signo, inject_data(in), 0, 0,
				     0, &r);
	if (ret)
		return ret;
	if (r) {
		pr_err("re-queueing pending %s: %s", sig_name(si.si_signo), strerror((int)-r));
		return (int)r;
	}
	return 0;
}

/*
 * The kernel lets a task queue a siginfo that claims a user origin
 * (kill, tgkill, sigqueue) only to itself: the process's pending signals
 * are queued by the main thread, each thread's by that thread.
 */
int signals_restore_pending(struct inject *in, const Rtcr__Process *p)
{
	for (size_t i = 0; i < p->n_shared_pending; i++) {
		int ret = queue(in, p->pid, 0, p->shared_pending[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int signals_restore_thread_pending(struct inject *in, pid_t pid, const Rtcr__Thread *t)
{
	for (size_t i = 0; i < t->n_pending; i++) {
		int ret = queue(in, pid, t->tid, t->pending[i]);
		if (ret)
			return ret;
	}
	return 0;
}
