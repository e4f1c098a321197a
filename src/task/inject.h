/*
 * Remote system calls: making a stopped task execute one system call of
 * rtcr's choosing, then putting it back exactly as it was.
 *
 * This is how rtcr learns what only the task itself can ask the kernel
 * (its signal handlers, alternate stack, clear_child_tid...) and how it
 * builds a restored address space. No code of the task is modified:
 *
 *   1. The first call runs at a 'syscall' instruction that already exists
 *      in the task (the vDSO, at dump; rtcr's own text in a restoring
 *      child) and maps a scratch area (regs.h has its layout).
 *   2. Later calls run at the scratch's own 'syscall'. Right after it the
 *      scratch holds an rt_sigreturn back to the task's saved state, so
 *      if rtcr dies while the task is between calls, the task returns to
 *      where it was instead of running on with rtcr's registers.
 *   3. inject_finish() unmaps the scratch, brings the task into a
 *      signal-delivery context (PTRACE_INTERRUPT) and writes its saved
 *      registers back there, so the kernel applies its own syscall
 *      restart rule exactly as for any ptrace stop.
 *
 * All signals are blocked in the task while calls run (PTRACE_SETSIGMASK);
 * nothing is delivered or lost, and the original mask comes back at the end.
 *
 * From inject_begin() on, the task and rtcr are moved to the CPU rtcr
 * runs on, until the scratch is unmapped or the task put back.
 * Each call is two ptrace stops; with the task on another CPU, each stop
 * wakes that CPU from idle (~100 us in a VM: 200 us a call), on one CPU it
 * is a context switch (~30 us a call). The task's own CPU set is in its
 * rollback frame: if rtcr dies, the rollback restores it too. (A
 * restoring child has no rollback: it dies with rtcr. Its saved CPU set
 * is rtcr's, inherited; restore sets the image's once all are unpinned.)
 */
#ifndef RTCR_TASK_INJECT_H
#define RTCR_TASK_INJECT_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "arch/x86/scratch_layout.h"
#include "common/log.h"

/* The scratch area of one process, shared by its threads' contexts. */
struct scratch {
	uint64_t base;                   /* remote address, 0 if none */
	size_t len;
	size_t xsave_size;               /* sizes the per-slot frames */
	unsigned nslots;
};

struct inject {
	pid_t tid;
	int memfd;                       /* /proc/TID/mem */
	struct user_regs_struct saved;   /* the state inject_finish() returns to */
	uint64_t saved_sigmask;
	uint64_t gadget;                 /* address of a syscall instruction */
	struct scratch *sc;              /* NULL until mapped or attached */
	unsigned slot;                   /* this thread's stub and frame */
	bool rollback;                   /* its frame planted: a batch ends in the stub */
	bool ran_on;                     /* it rolled back after a batch (rtcr too late) */
	unsigned nr_calls;
	bool resumed;                    /* the task ran since inject_begin() */
	bool parked;                     /* its registers set on its stub (take_slot()) */
	bool pinned;                     /* moved to rtcr's CPU; its own set: */
	cpu_set_t saved_cpus;
	bool group_stop;                 /* a SIGSTOP arrived while we worked */
};

/*
 * rtcr stays on the CPU it drives tasks on (the one it runs on now) until
 * the matching release, so the caller can keep other work off it (lazy
 * restore: the page server). The CPU, or -1 (then nothing to release).
 */
int inject_cpu_hold(void);
void inject_cpu_release(void);
/* rtcr's own CPU set, as it is when nothing holds it on one CPU. */
int inject_own_cpus(cpu_set_t *cpus) __must_check;

/* Start: 'gadget' is a syscall instruction mapped executable in tid. */
int inject_begin(struct inject *in, pid_t tid, uint64_t gadget) __must_check;
/*
 * Run nr(a0..a5) in the task. Returns 0 and the raw result in *ret (a
 * negative errno is the call's own failure), or -errno (logged) if the
 * task could not be driven.
 */
int inject_syscall(struct inject *in, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		   uint64_t a3, uint64_t a4, uint64_t a5, long *ret) __must_check;
/*
 * inject_syscall() for a call whose failure is an error: a result in
 * -4095..-1 is logged as "WHAT: strerror" and returned; otherwise it is
 * stored in *res (if res is not NULL) and 0 returned.
 */
int inject_call(struct inject *in, const char *what, long nr, uint64_t a0, uint64_t a1,
		uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, long *res) __must_check;

/*
 * A batch of calls run by the scratch's executor in one resume: in order,
 * stopping at the first that fails (unless its nr has INJ_MAY_FAIL). One
 * resume and one stop for the lot (~30 us, as for a single call).
 * A thread with a rollback frame (a dump's) ends the batch waiting in its
 * stub, where rtcr interrupts it; if rtcr died, the wait times out (2 s)
 * and the thread rolls back to its saved state. Without one (a restoring
 * child, which dies with rtcr), the batch ends in int3.
 */
struct inj_call {
	uint64_t nr, a[6];
	int64_t ret;            /* filled in; unset for calls after a failure */
};
#define INJ_MAY_FAIL (1ULL << BATCH_MAY_FAIL_BIT)
/* Run n calls (any n; split in BATCH_MAX chunks). Returns 0 if all
 * succeeded, else -errno with *failed = the index of the failing call
 * (its result in calls[*failed].ret), or a driving error (logged). */
int inject_batch(struct inject *in, struct inj_call *calls, size_t n, size_t *failed) __must_check;

/*
 * Map the scratch area with nslots thread slots (at 'addr' exactly if
 * nonzero, else anywhere) into in's process, and take slot 0 for in.
 * With 'xstate', also plant in's rollback frame: the rt_sigreturn that
 * returns the thread to its saved state if rtcr dies.
 */
int inject_map_scratch(struct inject *in, struct scratch *sc, uint64_t addr, unsigned nslots,
		       size_t xsave_size, const void *xstate, size_t xstate_len) __must_check;
/* Another thread of the same process takes slot 'slot' (rollback frame
 * planted if xstate is given). */
int inject_attach_scratch(struct inject *in, struct scratch *sc, unsigned slot,
			  const void *xstate, size_t xstate_len) __must_check;
/* Remote address of the scratch data area (SCRATCH_DATA_LEN bytes). */
uint64_t inject_data(const struct inject *in);
/* Where a batch's calls may write their results: the second half of the
 * data area (a batch's table takes the first: up to 127 calls then). */
uint64_t inject_batch_out(const struct inject *in);
#define INJ_BATCH_OUT_LEN (SCRATCH_DATA_LEN / 2)
/* Unmap the scratch from in's thread; no thread may use it afterwards. */
int inject_unmap_scratch(struct inject *in) __must_check;
int inject_write(struct inject *in, uint64_t raddr, const void *buf, size_t len) __must_check;
int inject_read(struct inject *in, uint64_t raddr, void *buf, size_t len) __must_check;
/* Back to the saved state, task left stopped and traced. */
int inject_finish(struct inject *in) __must_check;
/* Release resources without touching the task (it is being killed). */
void inject_abandon(struct inject *in);

/* Find a 'syscall' instruction in [start, end) of tid's memory; 0 if none. */
uint64_t find_syscall_insn(pid_t tid, uint64_t start, uint64_t end);

#endif
