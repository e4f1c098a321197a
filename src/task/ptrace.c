#include "task/ptrace.h"

#include <elf.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "common/proc.h"
#include "common/util.h"

int task_seize(pid_t tid, bool exitkill)
{
	long opts = PTRACE_O_TRACESYSGOOD | (exitkill ? PTRACE_O_EXITKILL : 0);

	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)opts) == 0)
		return 0;
	if (errno == EPERM) {
		struct proc_status ps;
		uint64_t tracer = 0;
		if (!proc_status_read(tid, &ps)) {
			proc_status_u64(&ps, "TracerPid", &tracer, 10);
			proc_status_free(&ps);
		}
		if (tracer) {
			pr_err("pid %d is already traced by pid %llu: only one tracer is possible",
			       tid, (unsigned long long)tracer);
			return -EBUSY;
		}
	}
	if (errno == ESRCH)
		return -ESRCH;
	pr_perror("pid %d: PTRACE_SEIZE", tid);
	return -errno;
}

int task_interrupt(pid_t tid)
{
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
		pr_perror("pid %d: PTRACE_INTERRUPT", tid);
		return -errno;
	}
	return 0;
}

/*
 * 0 and *st, or 1 if nohang and no stop is there, or -errno. A stop
 * usually comes within microseconds of the request (a resume, an
 * interrupt); a tracer asleep in waitpid() is woken only after it, which
 * costs 0.05-2 ms on this VM when the tracee stops on another CPU. So the
 * wait polls first (WAIT_SPIN_US, yielding its CPU at each turn should
 * the tracee need it), then sleeps.
 */
#define WAIT_SPIN_US 300

static int wait_stop_how(pid_t tid, struct stop *st, bool quiet, bool nohang)
{
	uint64_t spin_end = nohang ? 0 : now_ns() + WAIT_SPIN_US * 1000ull;
	int status;

	for (;;) {
		bool spin = spin_end && now_ns() < spin_end;
		pid_t w = waitpid(tid, &status, __WALL | (nohang || spin ? WNOHANG : 0));
		if (!w && spin) {
			sched_yield();
			continue;
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("pid %d: waitpid", tid);
			return -errno;
		}
		if (!w)
			return 1;
		break;
	}
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		if (quiet)
			return -ESRCH;
		if (WIFEXITED(status))
			pr_err("pid %d exited (status %d) while rtcr held it", tid, WEXITSTATUS(status));
		else
			pr_err("pid %d was killed by %s while rtcr held it", tid,
			       sig_name(WTERMSIG(status)));
		return -ESRCH;
	}
	if (!WIFSTOPPED(status)) {
		pr_err("pid %d: unexpected wait status %#x", tid, status);
		return -EINVAL;
	}
	st->sig = WSTOPSIG(status);
	st->event = status >> 16;
	if (status >> 16 == PTRACE_EVENT_STOP) {
		switch (st->sig) {
		case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
			st->kind = STOP_GROUP;
			break;
		default:
			st->kind = STOP_INTERRUPT;
		}
	} else if (st->sig == (SIGTRAP | 0x80)) {
		st->kind = STOP_SYSCALL;
	} else if (status >> 16) {
		st->kind = STOP_OTHER;
	} else {
		st->kind = STOP_SIGNAL;
	}
	return 0;
}

int task_wait_stop(pid_t tid, struct stop *st)
{
	return wait_stop_how(tid, st, false, false);
}

int task_wait_stop_quiet(pid_t tid, struct stop *st)
{
	return wait_stop_how(tid, st, true, false);
}

int task_poll_stop(pid_t tid, struct stop *st)
{
	int ret = wait_stop_how(tid, st, false, true);
	return ret < 0 ? ret : !ret;
}

int task_get_regs(pid_t tid, struct user_regs_struct *r)
{
	if (ptrace(PTRACE_GETREGS, tid, 0, r) < 0) {
		pr_perror("pid %d: PTRACE_GETREGS", tid);
		return -errno;
	}
	return 0;
}

int task_set_regs(pid_t tid, const struct user_regs_struct *r)
{
	if (ptrace(PTRACE_SETREGS, tid, 0, r) < 0) {
		pr_perror("pid %d: PTRACE_SETREGS", tid);
		return -errno;
	}
	return 0;
}

int task_get_xstate(pid_t tid, void **buf)
{
	size_t cap = 64 << 10;
	struct iovec iov;

	*buf = xzalloc(cap);
	iov.iov_base = *buf;
	iov.iov_len = cap;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0) {
		int e = errno;
		pr_perror("pid %d: PTRACE_GETREGSET(NT_X86_XSTATE)", tid);
		free(*buf);
		*buf = NULL;
		return -e;
	}
	return (int)iov.iov_len;
}

int task_set_xstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0) {
		pr_perror("pid %d: PTRACE_SETREGSET(NT_X86_XSTATE, %zu bytes)", tid, len);
		return -errno;
	}
	return 0;
}

int task_get_sigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(*mask), mask) < 0) {
		pr_perror("pid %d: PTRACE_GETSIGMASK", tid);
		return -errno;
	}
	return 0;
}

int task_set_sigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0) {
		pr_perror("pid %d: PTRACE_SETSIGMASK", tid);
		return -errno;
	}
	return 0;
}

int task_detach(pid_t tid, int sig)
{
	if (ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig) < 0 && errno != ESRCH) {
		pr_perror("pid %d: PTRACE_DETACH", tid);
		return -errno;
	}
	return 0;
}

int task_stop(pid_t tid, struct stop *st)
{
	int ret = task_interrupt(tid);

	if (!ret)
		ret = task_wait_stop_quiet(tid, st);
	while (!ret && st->kind == STOP_SIGNAL) {
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)st->sig) < 0)
			ret = -errno;
		else
			ret = task_wait_stop_quiet(tid, st);
	}
	return ret;
}
