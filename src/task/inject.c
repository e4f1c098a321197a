#include "task/inject.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sched.h>

#include "arch/x86/regs.h"
#include "common/util.h"
#include "task/ptrace.h"

static int pin_choose(struct inject *in);
static void pin(struct inject *in, int cpu);

int inject_begin(struct inject *in, pid_t tid, uint64_t gadget)
{
	char path[64];
	int ret, cpu;

	memset(in, 0, sizeof(*in));
	in->tid = tid;
	in->gadget = gadget;
	in->memfd = -1;
	ret = task_get_regs(tid, &in->saved);
	if (ret)
		return ret;
	ret = task_get_sigmask(tid, &in->saved_sigmask);
	if (ret)
		return ret;
	ret = task_set_sigmask(tid, ~0ULL);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/mem", tid);
	in->memfd = open(path, O_RDWR | O_CLOEXEC);
	if (in->memfd < 0) {
		ret = -errno;
		pr_perror("%s", path);
		if (task_set_sigmask(tid, in->saved_sigmask)) {
			/* logged */
		}
		return ret;
	}
	/* On rtcr's CPU from the first call (see inject.h). */
	cpu = pin_choose(in);
	if (cpu >= 0)
		pin(in, cpu);
	return 0;
}

static int resume_to_syscall_stop(struct inject *in, const char *what)
{
	for (;;) {
		struct stop st;
		int ret;

		if (ptrace(PTRACE_SYSCALL, in->tid, 0, 0) < 0) {
			pr_perror("pid %d: PTRACE_SYSCALL", in->tid);
			return -errno;
		}
		in->resumed = true;
		ret = task_wait_stop(in->tid, &st);
		if (ret)
			return ret;
		if (st.kind == STOP_SYSCALL)
			return 0;
		if (st.kind == STOP_GROUP || (st.kind == STOP_SIGNAL && st.sig == SIGSTOP)) {
			/* Someone stopped the task meanwhile: note it and go on;
			 * inject_finish() sends the SIGSTOP again. */
			in->group_stop = true;
			continue;
		}
		if (st.kind == STOP_INTERRUPT)
			continue;
		/* An injected clone3 of a thread, traced with TRACECLONE. */
		if (st.kind == STOP_OTHER && st.event == PTRACE_EVENT_CLONE)
			continue;
		pr_err("pid %d: %s: unexpected stop (%s) during an injected system call", in->tid,
		       what, sig_name(st.sig));
		return -EFAULT;
	}
}

int inject_syscall(struct inject *in, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		   uint64_t a3, uint64_t a4, uint64_t a5, long *ret)
{
	struct user_regs_struct r = in->saved;
	char what[32];
	int err;

	if (in->ran_on)
		return -ETIMEDOUT;
	snprintf(what, sizeof(what), "syscall %ld", nr);
	r.rax = nr;
	r.orig_rax = (unsigned long long)-1;   /* never treated as a restart */
	r.rdi = a0;
	r.rsi = a1;
	r.rdx = a2;
	r.r10 = a3;
	r.r8 = a4;
	r.r9 = a5;
	r.rip = in->gadget;
	r.eflags &= ~0x100ULL;                 /* no single-step trap */
	/* Off any alternate signal stack: sigaltstack() judges by rsp. */
	if (in->sc && in->sc->base)
		r.rsp = in->sc->base + scratch_frame_off(in->sc->xsave_size, in->slot);
	err = task_set_regs(in->tid, &r);
	if (err)
		return err;
	err = resume_to_syscall_stop(in, what);   /* entry */
	if (err)
		return err;
	err = resume_to_syscall_stop(in, what);   /* exit */
	if (err)
		return err;
	err = task_get_regs(in->tid, &r);
	if (err)
		return err;
	in->nr_calls++;
	*ret = (long)r.rax;
	return 0;
}

int inject_call(struct inject *in, const char *what, long nr, uint64_t a0, uint64_t a1,
		uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, long *res)
{
	long r;
	int ret = inject_syscall(in, nr, a0, a1, a2, a3, a4, a5, &r);
	if (ret)
		return ret;
	if (r < 0 && r > -4096) {
		pr_err("%s: %s", what, strerror((int)-r));
		return (int)r;
	}
	if (res)
		*res = r;
	return 0;
}

/*
 * The thread at its stub's syscall exit, as a call through the stub
 * leaves it: not to be restarted, so that if rtcr dies from here on,
 * the stub's next instructions roll it back at once.
 */
static int park(struct inject *in, struct user_regs_struct *r)
{
	r->rip = in->sc->base + scratch_stub_off(in->slot) + 2;
	r->orig_rax = (unsigned long long)-1;
	r->rax = (unsigned long long)-EINTR;
	return task_set_regs(in->tid, r);
}

/*
 * The dump-safe end of a batch: once the executor set done, the thread
 * waits in its stub's ppoll; interrupt it there. A stop on the way (a
 * SIGSTOP) is noted and the batch goes on.
 */
static int batch_wait_done(struct inject *in, uint64_t done_addr)
{
	uint64_t t0 = now_ns(), done = 0;
	struct user_regs_struct r;
	struct stop st;
	int err, rerr;

	for (unsigned i = 0;; i++) {
		err = inject_read(in, done_addr, &done, sizeof(done));
		if (err || done)
			break;
		err = task_poll_stop(in->tid, &st);
		if (err < 0)
			return err;
		if (err > 0) {
			/* A SIGCONT's trap (an interrupt stop) goes on, as
			 * between single calls. */
			if (st.kind != STOP_GROUP && st.kind != STOP_INTERRUPT &&
			    !(st.kind == STOP_SIGNAL && st.sig == SIGSTOP)) {
				pr_err("pid %d: unexpected stop (%s) during a batch of injected calls",
				       in->tid, sig_name(st.sig));
				return -EFAULT;
			}
			if (st.kind != STOP_INTERRUPT)
				in->group_stop = true;    /* sent again by inject_finish() */
			if (ptrace(PTRACE_CONT, in->tid, 0, 0) < 0) {
				pr_perror("pid %d: PTRACE_CONT", in->tid);
				return -errno;
			}
			continue;
		}
		if (now_ns() - t0 > 1000000000ULL) {
			pr_err("pid %d: a batch of injected calls did not finish in 1 s", in->tid);
			err = -ETIMEDOUT;
			break;
		}
		/* It runs on rtcr's CPU (inject_begin()): give it the CPU. */
		if (i < 64)
			sched_yield();
		else
			usleep(20);
	}
	if (done) {
		test_kill_point("batch-done");
		test_pause_point("batch-done");
	}
	/* Stopped where it is (in its stub's wait, unless it timed out). */
	if (task_interrupt(in->tid) == 0) {
		int werr;
		while (!(werr = task_wait_stop(in->tid, &st)) && st.kind != STOP_INTERRUPT &&
		       st.kind != STOP_GROUP) {
			if (!(st.kind == STOP_SIGNAL && st.sig == SIGSTOP)) {
				pr_err("pid %d: unexpected stop (%s) after a batch of injected calls",
				       in->tid, sig_name(st.sig));
				return -EFAULT;
			}
			in->group_stop = true;
			if (ptrace(PTRACE_CONT, in->tid, 0, 0) < 0 || task_interrupt(in->tid))
				return -errno;
		}
		if (st.kind == STOP_GROUP)
			in->group_stop = true;
		if (!err)
			err = werr;
	} else if (!err) {
		err = -errno;
	}
	if (err && err != -ETIMEDOUT)
		return err;
	/* Still in rtcr's code (its rollback included: it has not run its
	 * own yet): it did not time out and roll back, which needs rtcr off
	 * the CPU for 2 s. Checked after rtcr's own timeout too. */
	rerr = task_get_regs(in->tid, &r);
	if (rerr)
		return rerr;
	if (r.rip < in->sc->base || r.rip >= in->sc->base + SCRATCH_DATA_OFF) {
		pr_err("pid %d: ran on after a batch of injected calls (rtcr was not scheduled "
		       "for 2 s): the dump is abandoned", in->tid);
		/* It rolled back and ran its own code: what rtcr saved is no
		 * longer its state. Its state now is what inject_finish() puts
		 * back, and nothing more runs in it (its scratch area stays,
		 * as when rtcr is killed in a call). */
		in->saved = r;
		if (task_get_sigmask(in->tid, &in->saved_sigmask))
			pr_err("pid %d: its signal mask could not be read again", in->tid);
		in->ran_on = true;
		return -ETIMEDOUT;
	}
	if (err)
		return err;
	/* In the wait: parked there. */
	if (r.rip == in->sc->base + scratch_stub_off(in->slot) + 2)
		err = park(in, &r);
	return err;
}

int inject_batch(struct inject *in, struct inj_call *calls, size_t n, size_t *failed)
{
	_Static_assert(sizeof(struct inj_call) == BATCH_CALL_SIZE, "batch table entry");
	uint64_t data;

	*failed = n;
	if (!in->sc || !in->sc->base)
		return -EINVAL;
	if (in->ran_on)
		return -ETIMEDOUT;
	data = in->sc->base + SCRATCH_DATA_OFF;
	for (size_t base = 0; base < n; base += BATCH_MAX) {
		size_t cnt = MIN(n - base, (size_t)BATCH_MAX);
		/* count, done, the stub wait's timeout: 2 s */
		uint64_t hdr[4] = { cnt, 0, 2, 0 };
		struct user_regs_struct r = in->saved;
		const struct inj_call *last;
		struct stop st;
		int err;

		err = inject_write(in, data + BATCH_TABLE, calls + base, cnt * sizeof(*calls));
		if (!err)
			err = inject_write(in, data + BATCH_COUNT, hdr, sizeof(hdr));
		if (err)
			return err;
		r.orig_rax = (unsigned long long)-1;
		r.rip = in->sc->base + SCRATCH_BATCH_OFF;
		r.rsp = in->sc->base + scratch_frame_off(in->sc->xsave_size, in->slot);
		r.eflags &= ~0x100ULL;
		/* With a rollback frame, the executor ends waiting in the stub
		 * (dump-safe); else in int3. */
		r.r15 = in->rollback ? in->sc->base + scratch_stub_off(in->slot) : 0;
		err = task_set_regs(in->tid, &r);
		if (err)
			return err;
		if (ptrace(PTRACE_CONT, in->tid, 0, 0) < 0) {
			pr_perror("pid %d: PTRACE_CONT", in->tid);
			return -errno;
		}
		in->resumed = true;
		if (in->rollback) {
			err = batch_wait_done(in, data + BATCH_DONE);
		} else {
			err = task_wait_stop(in->tid, &st);
			if (!err && (st.kind != STOP_SIGNAL || st.sig != SIGTRAP)) {
				pr_err("pid %d: batch of injected calls ended with an unexpected stop "
				       "(%s)", in->tid, sig_name(st.sig));
				err = -EFAULT;
			}
		}
		if (err)
			return err;
		err = inject_read(in, data + BATCH_COUNT, hdr, 2 * sizeof(uint64_t));
		if (!err && hdr[1] > cnt)
			err = -EIO;
		if (!err)
			err = inject_read(in, data + BATCH_TABLE, calls + base, hdr[1] * sizeof(*calls));
		if (err)
			return err;
		in->nr_calls += hdr[1];
		last = &calls[base + cnt - 1];
		if (hdr[1] != cnt || ((uint64_t)last->ret >= (uint64_t)-4095 &&
				      !(last->nr & INJ_MAY_FAIL))) {
			size_t i = base + (hdr[1] ? hdr[1] - 1 : 0);
			*failed = i;
			return calls[i].ret < 0 ? (int)calls[i].ret : -EIO;
		}
	}
	return 0;
}

uint64_t inject_data(const struct inject *in)
{
	return in->sc->base + SCRATCH_DATA_OFF;
}

uint64_t inject_batch_out(const struct inject *in)
{
	return in->sc->base + SCRATCH_DATA_OFF + INJ_BATCH_OUT_LEN;
}

int inject_write(struct inject *in, uint64_t raddr, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = pwrite(in->memfd, p, len, raddr);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			pr_err("pid %d: writing %zu bytes at %#llx: %s", in->tid, len,
			       (unsigned long long)raddr, n < 0 ? strerror(errno) : "short write");
			return n < 0 ? -errno : -EIO;
		}
		p += n;
		raddr += n;
		len -= n;
	}
	return 0;
}

int inject_read(struct inject *in, uint64_t raddr, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = pread(in->memfd, p, len, raddr);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			pr_err("pid %d: reading %zu bytes at %#llx: %s", in->tid, len,
			       (unsigned long long)raddr, n < 0 ? strerror(errno) : "short read");
			return n < 0 ? -errno : -EIO;
		}
		p += n;
		raddr += n;
		len -= n;
	}
	return 0;
}

/*
 * rtcr's own CPU set while it drives tasks pinned to its CPU (npinned of
 * them), given back when the last is unpinned.
 */
static cpu_set_t own_cpus;
static int npinned, pin_cpu = -1;

int inject_cpu_hold(void)
{
	int cpu = npinned ? pin_cpu : sched_getcpu();
	cpu_set_t one;

	if (getenv("RTCR_NO_PIN") || cpu < 0 || cpu >= CPU_SETSIZE)
		return -1;
	if (!npinned) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_getaffinity(0, sizeof(own_cpus), &own_cpus) ||
		    sched_setaffinity(0, sizeof(one), &one))
			return -1;
		pin_cpu = cpu;
	}
	npinned++;
	return cpu;
}

void inject_cpu_release(void)
{
	if (npinned && --npinned == 0) {
		sched_setaffinity(0, sizeof(own_cpus), &own_cpus);
		pin_cpu = -1;
	}
}

int inject_own_cpus(cpu_set_t *cpus)
{
	if (npinned) {
		*cpus = own_cpus;
		return 0;
	}
	return sched_getaffinity(0, sizeof(*cpus), cpus) ? -errno : 0;
}

/* The CPU to pin tid to (rtcr's, if tid may run there), with tid's own
 * CPU set in in->saved_cpus; -1: do not pin. */
static int pin_choose(struct inject *in)
{
	int cpu = npinned ? pin_cpu : sched_getcpu();

	_Static_assert(sizeof(in->saved_cpus) == SCRATCH_CPUSET_LEN, "CPU set in the frame");
	if (getenv("RTCR_NO_PIN") || cpu < 0 || cpu >= CPU_SETSIZE)
		return -1;
	if (sched_getaffinity(in->tid, sizeof(in->saved_cpus), &in->saved_cpus) ||
	    !CPU_ISSET(cpu, &in->saved_cpus))
		return -1;
	return cpu;
}

static void pin(struct inject *in, int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (!npinned) {
		if (sched_getaffinity(0, sizeof(own_cpus), &own_cpus) ||
		    sched_setaffinity(0, sizeof(one), &one))
			return;
		pin_cpu = cpu;
	}
	if (sched_setaffinity(in->tid, sizeof(one), &one)) {
		if (!npinned)
			sched_setaffinity(0, sizeof(own_cpus), &own_cpus);
		return;
	}
	in->pinned = true;
	npinned++;
}

/* Give tid its own CPU set back (and rtcr its own, after the last). */
static int unpin(struct inject *in)
{
	int err = 0;

	if (!in->pinned)
		return 0;
	if (sched_setaffinity(in->tid, sizeof(in->saved_cpus), &in->saved_cpus) &&
	    errno != ESRCH) {
		err = -errno;
		pr_perror("pid %d: giving back its CPU set", in->tid);
	}
	in->pinned = false;
	if (--npinned == 0) {
		sched_setaffinity(0, sizeof(own_cpus), &own_cpus);
		pin_cpu = -1;
	}
	return err;
}

/* Plant slot's rollback frame (if xstate), then step onto its stub: from
 * here on the instruction after the thread's syscall is its rollback. */
static int take_slot(struct inject *in, struct scratch *sc, unsigned slot, const void *xstate,
		     size_t xstate_len)
{
	struct user_regs_struct r;
	int err;

	in->sc = sc;
	in->slot = slot;
	if (xstate) {
		size_t flen = scratch_frame_size(sc->xsave_size);
		uint64_t remote = sc->base + scratch_frame_off(sc->xsave_size, slot);
		uint8_t *frame = xzalloc(flen);
		err = scratch_frame(frame, flen, remote, &in->saved, xstate, xstate_len,
				    in->saved_sigmask);
		/* The rollback gives the task its CPU set back (an empty set,
		 * if it is not moved, changes nothing). */
		if (!err && in->pinned)
			memcpy(frame + scratch_cpuset_off(sc->xsave_size), &in->saved_cpus,
			       SCRATCH_CPUSET_LEN);
		if (!err)
			err = inject_write(in, remote, frame, flen);
		free(frame);
		if (err) {
			pr_err("pid %d: cannot build the rollback frame", in->tid);
			return err;
		}
	}
	in->gadget = sc->base + scratch_stub_off(slot);
	in->rollback = xstate != NULL;
	/* Parked on its stub without running a call through it. */
	r = in->saved;
	r.eflags &= ~0x100ULL;
	err = park(in, &r);
	in->parked = !err;
	return err;
}

int inject_map_scratch(struct inject *in, struct scratch *sc, uint64_t addr, unsigned nslots,
		       size_t xsave_size, const void *xstate, size_t xstate_len)
{
	uint8_t *code;
	size_t clen;
	long ret;
	int err;

	if (!nslots || nslots > SCRATCH_MAX_SLOTS) {
		pr_err("pid %d: %u threads: at most %d can be driven at once", in->tid, nslots,
		       SCRATCH_MAX_SLOTS);
		return -E2BIG;
	}
	memset(sc, 0, sizeof(*sc));
	sc->xsave_size = MAX(xsave_size, xstate_len);
	sc->nslots = nslots;
	sc->len = scratch_size(sc->xsave_size, nslots);
	err = inject_syscall(in, __NR_mmap, addr, sc->len, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS | (addr ? MAP_FIXED_NOREPLACE : 0),
			     (uint64_t)-1, 0, &ret);
	if (err)
		return err;
	if (ret < 0 && ret > -4096) {
		if (!(addr && ret == -EEXIST))
			pr_err("pid %d: mapping the scratch area: %s", in->tid, strerror(-ret));
		return (int)ret;
	}
	if (addr && (uint64_t)ret != addr) {
		pr_err("pid %d: scratch area landed at %#lx, not %#llx", in->tid, ret,
		       (unsigned long long)addr);
		return -EINVAL;
	}
	sc->base = ret;
	code = xmalloc(SCRATCH_DATA_OFF);
	clen = scratch_code(code, sc->xsave_size, nslots);
	err = inject_write(in, sc->base, code, clen);
	free(code);
	if (err)
		return err;
	return take_slot(in, sc, 0, xstate, xstate_len);
}

int inject_attach_scratch(struct inject *in, struct scratch *sc, unsigned slot,
			  const void *xstate, size_t xstate_len)
{
	if (!sc->base || slot >= sc->nslots)
		return -EINVAL;
	return take_slot(in, sc, slot, xstate, xstate_len);
}

int inject_unmap_scratch(struct inject *in)
{
	long ret;
	int err, pin_err;

	if (!in->sc || !in->sc->base)
		return 0;
	/* No rollback once it is unmapped: the CPU set first (a failure,
	 * logged, does not stop the unmapping). */
	pin_err = unpin(in);
	if (in->ran_on) {
		in->sc->base = 0;      /* left mapped: no more calls in this thread */
		return pin_err;
	}
	/* The call runs on the thread's own stub; the task never returns to
	 * the unmapped code after it: the tracer takes it at the syscall exit. */
	err = inject_syscall(in, __NR_munmap, in->sc->base, in->sc->len, 0, 0, 0, 0, &ret);
	if (err)
		return err;
	if (ret) {
		pr_err("pid %d: unmapping the scratch area: %s", in->tid, strerror((int)-ret));
		return (int)ret;
	}
	in->sc->base = 0;
	in->gadget = 0;
	return pin_err;
}

int inject_finish(struct inject *in)
{
	struct stop st;
	int err, pin_err;

	/* Its CPU set first; a failure (logged) does not keep it from
	 * getting its registers and mask back. */
	pin_err = unpin(in);
	if (in->resumed) {
		/* Take the task from its syscall-exit stop into a stop inside
		 * signal delivery; registers written there go through the
		 * kernel's restart rule when the task resumes. */
		err = task_interrupt(in->tid);
		if (err)
			return err;
		if (ptrace(PTRACE_CONT, in->tid, 0, 0) < 0) {
			pr_perror("pid %d: PTRACE_CONT", in->tid);
			return -errno;
		}
		do {
			err = task_wait_stop(in->tid, &st);
			if (err)
				return err;
			if (st.kind == STOP_GROUP || (st.kind == STOP_SIGNAL && st.sig == SIGSTOP))
				in->group_stop = true;
			if (st.kind != STOP_INTERRUPT && st.kind != STOP_GROUP &&
			    ptrace(PTRACE_CONT, in->tid, 0, 0) < 0) {
				pr_perror("pid %d: PTRACE_CONT", in->tid);
				return -errno;
			}
		} while (st.kind != STOP_INTERRUPT && st.kind != STOP_GROUP);
		err = task_set_regs(in->tid, &in->saved);
		if (err)
			return err;
	} else if (in->parked) {
		/* Never ran since its seize stop: its registers as they were
		 * there are exact (not on a stub that may be unmapped). */
		err = task_set_regs(in->tid, &in->saved);
		if (err)
			return err;
	}
	err = task_set_sigmask(in->tid, in->saved_sigmask);
	if (err)
		return err;
	/* A SIGSTOP taken while rtcr drove the task was suppressed: send it
	 * again, so the task stops once rtcr lets it go. */
	if (in->group_stop)
		kill(in->tid, SIGSTOP);
	if (in->memfd >= 0)
		close(in->memfd);
	in->memfd = -1;
	in->resumed = false;
	in->parked = false;
	return pin_err;
}

void inject_abandon(struct inject *in)
{
	if (unpin(in)) {
		/* logged */
	}
	if (in->memfd >= 0)
		close(in->memfd);
	in->memfd = -1;
}

uint64_t find_syscall_insn(pid_t tid, uint64_t start, uint64_t end)
{
	size_t len = end - start;
	struct iovec l, r;
	uint8_t *buf;
	uint64_t found = 0;

	if (!len || len > (16 << 20))
		return 0;
	buf = xmalloc(len);
	l.iov_base = buf;
	l.iov_len = len;
	r.iov_base = (void *)start;
	r.iov_len = len;
	if (process_vm_readv(tid, &l, 1, &r, 1, 0) == (ssize_t)len) {
		for (size_t i = 0; i + 1 < len; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
				found = start + i;
				break;
			}
	}
	free(buf);
	return found;
}
