/*
 * Did a process make certain system calls? Counts, without stopping it,
 * the calls of a set its threads make, at their entry and at their exit:
 *
 * mw_memory: what can change its memory map (mmap, mprotect, madvise,
 * mlock, prctl, ...; the full list in mapwatch.c). A live dump reads
 * /proc/PID/smaps (the areas and their VmFlags) while the process runs,
 * in its last copy round. If no such call entered or left between that
 * read and the freeze, the flags it read are the ones at the freeze:
 * every flag change is made by such a call, between its entry and its
 * exit, and a frozen thread has left its call through the exit. The
 * freeze then reads only /proc/PID/maps (no page walk; smaps walks every
 * page, ~12 ms/GiB) to check the bounds, which also move by themselves
 * (a stack growing).
 *
 * mw_attrs: what can change what only injected calls read (signal
 * actions, alternate stacks, prctl settings, timers, ...), and the
 * signals delivered (a delivery resets a SA_RESETHAND action). A
 * periodic checkpoint reuses the last one's answers while none was
 * counted since (task/answers.c).
 *
 * The counters are perf events on the raw_syscalls tracepoints, filtered
 * by syscall number, one pair per thread (with signal_deliver's and
 * restart_syscall's where the set has them), inherited by the threads
 * and children made after. Numbers of the 64-bit, x32 and i386 (int 0x80)
 * system calls are counted, so an i386 number that is also a 64-bit one
 * counts too: a false alarm only costs the read (smaps, the injected
 * calls). The one that is not rare, 64-bit restart_syscall (i386
 * madvise; a sleep interrupted by one of rtcr's ptrace stops restarts
 * through it), is counted apart by the syscalls:*_restart_syscall
 * tracepoints (64-bit calls only) and subtracted, in a set that has it.
 */
#ifndef RTCR_MEM_MAPWATCH_H
#define RTCR_MEM_MAPWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"

struct mapwatch {
	int *fds;
	bool *neg;     /* a count of 64-bit restart_syscall, subtracted */
	int nfd;
};

struct mw_calls {
	const char *what;        /* for messages: "memory-map" */
	const int *native;       /* 64-bit numbers, counted with the x32 bit too */
	size_t nnative;
	const int *i386;
	size_t ni386;
	bool deliveries;         /* and every signal delivered (signal:signal_deliver) */
};
extern const struct mw_calls mw_memory, mw_attrs;

/* Start counting pid's calls of a set. -ENOTSUP (with a debug message)
 * if the kernel cannot (no tracepoints, no perf events): the caller
 * reads what the count would have spared. */
int mapwatch_open(struct mapwatch *w, pid_t pid, const struct mw_calls *calls);
/* The calls counted so far (entries and exits); -errno if unreadable. */
int mapwatch_count(struct mapwatch *w, uint64_t *count) __must_check;
void mapwatch_close(struct mapwatch *w);

#endif
