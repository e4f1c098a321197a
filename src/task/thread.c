/*
 * One thread: general registers, the complete xstate, fs/gs base (in the
 * registers), blocked mask, thread-directed pending signals, alternate
 * signal stack, rseq registration, clear_child_tid, robust futex list,
 * name.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/x86/regs.h"
#include "common/proc.h"
#include "common/util.h"
#include "task/inject.h"
#include "task/ptrace.h"
#include "task/task.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int thread_dump_cpu(pid_t tid, Rtcr__Thread *t)
{
	struct user_regs_struct regs;
	struct rseq_conf rc;
	void *xs;
	char comm[64];
	long head = 0;
	size_t len = 0;
	int ret, n;

	t->tid = tid;
	ret = task_get_regs(tid, &regs);
	if (ret)
		return ret;
	t->regs = xzalloc(sizeof(*t->regs));
	rtcr__x86_regs__init(t->regs);
	regs_to_image(&regs, t->regs);
	n = task_get_xstate(tid, &xs);
	if (n < 0)
		return n;
	t->xstate.data = xs;
	t->xstate.len = n;
	ret = task_get_sigmask(tid, &t->blocked);
	if (ret)
		return ret;
	ret = peek_pending(tid, false, &t->pending, &t->n_pending);
	if (ret)
		return ret;
	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(rc), &rc) >= 0 &&
	    rc.rseq_abi_pointer) {
		t->rseq = xzalloc(sizeof(*t->rseq));
		rtcr__rseq__init(t->rseq);
		t->rseq->ptr = rc.rseq_abi_pointer;
		t->rseq->len = rc.rseq_abi_size;
		t->rseq->sig = rc.signature;
	}
	if (syscall(SYS_get_robust_list, tid, &head, &len) < 0) {
		pr_perror("tid %d: get_robust_list", tid);
		return -errno;
	}
	t->robust_list = head;
	t->robust_len = len;
	ret = proc_comm(tid, tid, comm, sizeof(comm));
	if (ret)
		return ret;
	t->comm = xstrdup(comm);
	return thread_dump_sched(tid, t);
}

int thread_dump_sched(pid_t tid, Rtcr__Thread *t)
{
	struct sched_param sp;
	cpu_set_t cpus;
	int pol;

	pol = sched_getscheduler(tid);
	if (pol < 0 || sched_getparam(tid, &sp) < 0) {
		pr_perror("tid %d: scheduling policy", tid);
		return -errno;
	}
	t->sched_policy = pol;
	t->sched_priority = sp.sched_priority;
	errno = 0;
	t->nice = getpriority(PRIO_PROCESS, tid);
	if (errno) {
		pr_perror("tid %d: nice value", tid);
		return -errno;
	}
	if (sched_getaffinity(tid, sizeof(cpus), &cpus) < 0) {
		pr_perror("tid %d: CPU affinity", tid);
		return -errno;
	}
	t->has_affinity = 1;
	t->affinity.len = sizeof(cpus);
	t->affinity.data = xmalloc(sizeof(cpus));
	memcpy(t->affinity.data, &cpus, sizeof(cpus));
	return 0;
}

int thread_restore_sched(pid_t tid, const Rtcr__Thread *t)
{
	struct sched_param sp = { .sched_priority = (int)t->sched_priority };

	if (sched_setscheduler(tid, (int)t->sched_policy, &sp) < 0) {
		pr_perror("tid %d: restoring scheduling policy %u priority %u", tid, t->sched_policy,
			  t->sched_priority);
		return -errno;
	}
	/* SCHED_OTHER/BATCH: the nice value; the others ignore it. */
	if (setpriority(PRIO_PROCESS, tid, t->nice) < 0) {
		pr_perror("tid %d: restoring nice value %d", tid, t->nice);
		return -errno;
	}
	return 0;
}

int thread_restore_affinity(pid_t tid, const Rtcr__Thread *t)
{
	cpu_set_t cpus, online;
	int err = inject_own_cpus(&online);

	if (err) {
		pr_err("rtcr's CPU affinity: %s", strerror(-err));
		return err;
	}
	cpus = online;
	if (t->has_affinity) {
		CPU_ZERO(&cpus);
		memcpy(&cpus, t->affinity.data, MIN(t->affinity.len, sizeof(cpus)));
		/* CPUs this machine lacks cannot be kept; none left: all. */
		CPU_AND(&cpus, &cpus, &online);
		if (!CPU_COUNT(&cpus))
			cpus = online;
	}
	if (sched_setaffinity(tid, sizeof(cpus), &cpus) < 0) {
		pr_perror("tid %d: restoring CPU affinity", tid);
		return -errno;
	}
	return 0;
}

int thread_dump_inj(struct inject *in, Rtcr__Thread *t)
{
	uint64_t out = inject_batch_out(in);
	struct {
		uint64_t sp;
		int32_t flags, pad;
		uint64_t size;
		uint64_t tid_addr;
	} q;
	struct inj_call c[] = {
		{ .nr = __NR_sigaltstack, .a = { 0, out } },
		{ .nr = __NR_prctl, .a = { PR_GET_TID_ADDRESS, out + 24 } },
	};
	size_t failed;
	int ret;

	ret = inject_batch(in, c, ARRAY_SIZE(c), &failed);
	if (!ret)
		ret = inject_read(in, out, &q, sizeof(q));
	if (ret) {
		pr_err("tid %d: reading alternate stack and clear_child_tid: %s", t->tid,
		       strerror(-ret));
		return ret;
	}
	if (!(q.flags & SS_DISABLE)) {
		t->altstack = xzalloc(sizeof(*t->altstack));
		rtcr__sig_alt_stack__init(t->altstack);
		t->altstack->sp = q.sp;
		t->altstack->size = q.size;
		t->altstack->flags = q.flags & ~SS_ONSTACK;
	}
	t->clear_tid = q.tid_addr;
	return 0;
}

int thread_restore_inj(struct inject *in, const Rtcr__Thread *t, uint64_t xcomp_perm)
{
	uint64_t data = inject_data(in);
	int ret;

	ret = inject_call(in, "restoring clear_child_tid", __NR_set_tid_address, t->clear_tid, 0, 0, 0, 0, 0, NULL);
	if (!ret && t->robust_list)
		ret = inject_call(in, "restoring robust futex list", __NR_set_robust_list, t->robust_list,
			  t->robust_len, 0, 0, 0, 0, NULL);
	if (!ret && t->rseq)
		ret = inject_call(in, "restoring rseq registration", __NR_rseq, t->rseq->ptr, t->rseq->len, 0,
			  t->rseq->sig, 0, 0, NULL);
	if (!ret && t->altstack) {
		struct { uint64_t sp; int32_t flags, pad; uint64_t size; } ss = {
			t->altstack->sp, (int32_t)t->altstack->flags, 0, t->altstack->size
		};
		ret = inject_write(in, data, &ss, sizeof(ss));
		if (!ret)
			ret = inject_call(in, "restoring alternate signal stack", __NR_sigaltstack, data, 0, 0, 0, 0, 0, NULL);
	}
	if (!ret) {
		ret = inject_write(in, data, t->comm, MIN(strlen(t->comm) + 1, 16));
		if (!ret)
			ret = inject_call(in, "restoring the thread name", __NR_prctl, PR_SET_NAME, data,
					  0, 0, 0, 0, NULL);
	}
	if (!ret && (xcomp_perm & (1ULL << XFEATURE_XTILEDATA)))
		ret = inject_call(in, "restoring AMX permission", __NR_arch_prctl, ARCH_REQ_XCOMP_PERM,
			  XFEATURE_XTILEDATA, 0, 0, 0, 0, NULL);
	return ret;
}

void process_free(Rtcr__Process *p)
{
	if (p)
		rtcr__process__free_unpacked(p, NULL);
}
