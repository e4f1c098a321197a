/*
 * Process and thread state other than memory and handles: CPU registers,
 * signals, credentials and the many small attributes (limits, umask,
 * personality, prctl flags...). Each domain has a dump function (run
 * while the target is frozen, some through injected system calls) and
 * restore functions: *_restore_child() run inside the restoring process
 * while it still runs rtcr's code; *_restore_inj() run through injected
 * calls once its address space is the target's.
 */
#ifndef RTCR_TASK_H
#define RTCR_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"
#include "image/pb.h"
#include "task/inject.h"

/*
 * Before a short pause of a running process (a live dump's freeze): wait
 * at most max_ms for its idle time (quiet.c): every thread asleep just
 * after one ran, or asleep for 2 ms. Nothing is stopped or changed.
 */
struct quiet {
	uint64_t waited_ns;
	bool found;              /* the pause begins in its idle time */
	const char *how;         /* for --stats */
};
void task_wait_quiet(pid_t pid, unsigned max_ms, struct quiet *q);

/* Checks that need no stopping: fails with a message naming the reason. */
int task_preflight(pid_t pid) __must_check;

/*
 * Process-wide attributes (everything in Process but threads/signals/creds).
 * The same batch of injected calls also queries what creds_dump() and
 * mem_dump_mm() need of the main thread: each call is a resume of it.
 */
struct attrs_more {
	long securebits;   /* PR_GET_SECUREBITS */
	long brk;          /* brk(0) */
};
int attrs_dump(struct inject *in, pid_t pid, Rtcr__Process *p, struct attrs_more *more) __must_check;
/* in NULL: only what /proc and calls on the pid tell (the caller has the
 * rest from answers_apply()). */
int attrs_restore_child(const Rtcr__Process *p, bool detach) __must_check;
/* Before credentials change (limits, prctl flags)... */
int attrs_restore_inj(struct inject *in, const Rtcr__Process *p) __must_check;
/* ...and after: dumpable and the parent-death signal are reset by a
 * credential change; interval timers start last. */
int attrs_restore_final(struct inject *in, const Rtcr__Process *p, bool detach) __must_check;
/* Can the restoring user set these limits? */
int attrs_check_rlimits(const Rtcr__Process *p) __must_check;

/* POSIX timers (timers.c): read through injected calls; re-created with
 * their ids and armed, injected in the restored process's main thread. */
int timers_dump(struct inject *in, pid_t pid, Rtcr__Process *p) __must_check;
int timers_restore_inj(struct inject *in, const Rtcr__Process *p) __must_check;
void timers_describe(const Rtcr__PosixTimer *t, char *buf, size_t len);

int signals_dump(struct inject *in, pid_t pid, Rtcr__Process *p) __must_check;
int signals_restore_child(const Rtcr__Process *p) __must_check;
/* Signals pending for the process (run in the main thread) and for one
 * thread (run in that thread). */
int signals_restore_pending(struct inject *in, const Rtcr__Process *p) __must_check;
int signals_restore_thread_pending(struct inject *in, pid_t pid, const Rtcr__Thread *t) __must_check;
/* Set one signal's saved action (or the default) by an injected call. */
int signals_restore_one(struct inject *in, const Rtcr__Process *p, int sig) __must_check;
int peek_pending(pid_t tid, bool shared, Rtcr__SigInfo ***out, size_t *n) __must_check;

/*
 * What a dump asked a process through injected calls (answers.c), kept
 * between periodic checkpoints and reused while nothing that could
 * change it was counted (mem/mapwatch.h: mw_attrs). answers_take():
 * NULL if the process's answers change by themselves (armed timers).
 */
struct answers;
struct answers *answers_take(const Rtcr__Process *p, const Rtcr__Mm *mm);
/* Answers for each of these threads? */
bool answers_cover(const struct answers *a, const pid_t *tids, int n);
/* The injected parts of p (its threads listed already), and more. */
void answers_apply(const struct answers *a, Rtcr__Process *p, struct attrs_more *more);
long answers_thread_securebits(const struct answers *a, pid_t tid);
void answers_free(struct answers *a);

/* securebits: queried already (attrs_dump()), or NULL to query them here. */
int creds_dump(struct inject *in, pid_t pid, const long *securebits, Rtcr__Creds **out) __must_check;
int creds_check(const Rtcr__Creds *c) __must_check;
bool creds_equal(const Rtcr__Creds *a, const Rtcr__Creds *b);
/* Same credentials as the restoring rtcr (nothing to change)? */
bool creds_same_as_self(const Rtcr__Creds *c);
int creds_restore_inj(struct inject *in, const Rtcr__Creds *c) __must_check;

/* One thread: registers, xstate, mask, pending, rseq, robust list... */
int thread_dump_cpu(pid_t tid, Rtcr__Thread *t) __must_check;
int thread_dump_inj(struct inject *in, Rtcr__Thread *t) __must_check;
int thread_restore_inj(struct inject *in, const Rtcr__Thread *t, uint64_t xcomp_perm) __must_check;
/* Scheduling policy, priority, nice value, CPU affinity: set from outside. */
int thread_dump_sched(pid_t tid, Rtcr__Thread *t) __must_check;
int thread_restore_sched(pid_t tid, const Rtcr__Thread *t) __must_check;
/* Its CPU set (the CPUs of it this machine has, or all), set once rtcr
 * no longer drives it on rtcr's CPU (task/inject.h). */
int thread_restore_affinity(pid_t tid, const Rtcr__Thread *t) __must_check;

void process_free(Rtcr__Process *p);

#endif
