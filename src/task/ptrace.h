/*
 * Freezing a task with ptrace: PTRACE_SEIZE + PTRACE_INTERRUPT stops it
 * without sending it any signal; PTRACE_DETACH lets it go on as if
 * nothing happened.
 */
#ifndef RTCR_TASK_PTRACE_H
#define RTCR_TASK_PTRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>

#include "common/log.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
struct rseq_conf {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

enum stop_kind {
	STOP_INTERRUPT,   /* PTRACE_EVENT_STOP from PTRACE_INTERRUPT */
	STOP_GROUP,       /* the task was (or became) stopped by SIGSTOP & co */
	STOP_SIGNAL,      /* signal-delivery-stop: a signal was being delivered */
	STOP_SYSCALL,     /* syscall entry or exit (TRACESYSGOOD) */
	STOP_OTHER,
};

struct stop {
	enum stop_kind kind;
	int sig;
	int event;        /* PTRACE_EVENT_* for STOP_OTHER and STOP_INTERRUPT */
};

/* Seize one task. Fails with a message naming the task, except -ESRCH
 * (it is gone), which the caller reports or ignores (a thread that just
 * exited). */
int task_seize(pid_t tid, bool exitkill) __must_check;
int task_interrupt(pid_t tid) __must_check;
/*
 * Wait for tid to stop and classify the stop. -ESRCH (logged) if it
 * exited or was killed.
 */
int task_wait_stop(pid_t tid, struct stop *st) __must_check;
/* The same without a message when the task is gone (-ESRCH). */
int task_wait_stop_quiet(pid_t tid, struct stop *st) __must_check;
/* A stop that is there now: 1 and *st, 0 if none (the task runs), -errno. */
int task_poll_stop(pid_t tid, struct stop *st) __must_check;
/*
 * Stop a seized task (PTRACE_INTERRUPT) and wait for the stop. A signal
 * being delivered as it stops is let through (its handler frame is then
 * part of the state) and the next stop, ours, taken. -ESRCH (quiet) if
 * it exited first.
 */
int task_stop(pid_t tid, struct stop *st) __must_check;
int task_get_regs(pid_t tid, struct user_regs_struct *r) __must_check;
int task_set_regs(pid_t tid, const struct user_regs_struct *r) __must_check;
/* xstate into a malloc'ed buffer; returns length or -errno. */
int task_get_xstate(pid_t tid, void **buf) __must_check;
int task_set_xstate(pid_t tid, const void *buf, size_t len) __must_check;
int task_get_sigmask(pid_t tid, uint64_t *mask) __must_check;
int task_set_sigmask(pid_t tid, uint64_t mask) __must_check;
int task_detach(pid_t tid, int sig);

#endif
