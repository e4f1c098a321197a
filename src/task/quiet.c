/*
 * Waiting for a process's idle time before pausing it (task.h:
 * task_wait_quiet()).
 *
 * A periodic task (a control loop) runs a little, then sleeps until its
 * next period. A pause that begins while it runs delays that period's
 * work; one that begins as it goes to sleep falls into its idle time
 * and delays nothing if it ends before the next wake. The threads are
 * polled through open /proc/PID/task/TID/stat and schedstat files (a
 * pread regenerates one, ~4 us): as soon as every thread sleeps (state
 * S) after one ran (its run time in schedstat grew: on rtcr's CPU, a
 * real-time thread runs while rtcr cannot look), that is the start of
 * the idle time. A process found asleep throughout QUIET_IDLE_MS is
 * idle (a server waiting): its pause begins then. One never all asleep
 * throughout QUIET_BUSY_MS keeps running (a computation, a writer: each
 * ms waited would be pages more to copy frozen): its pause begins then.
 * In any case the wait ends after max_ms.
 */
#include "task/task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"

#define QUIET_MAX_THREADS 16
#define QUIET_IDLE_MS     2
#define QUIET_BUSY_MS     2

/* The state letter of an open stat file, or 0. */
static char state_of(int fd)
{
	char buf[512], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* The run time (ns) of an open schedstat file, or 0. */
static uint64_t run_ns_of(int fd)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strtoull(buf, NULL, 10);
}

void task_wait_quiet(pid_t pid, unsigned max_ms, struct quiet *q)
{
	uint64_t t0 = now_ns(), asleep_since = 0, last_asleep = t0;
	int fds[QUIET_MAX_THREADS], sfds[QUIET_MAX_THREADS], nfd = 0;
	uint64_t run0[QUIET_MAX_THREADS];
	bool ran = false;
	pid_t *tids;
	int n;

	memset(q, 0, sizeof(*q));
	q->how = "not waited for";
	if (!max_ms)
		return;
	n = proc_tasks(pid, &tids);
	if (n < 0)
		return;
	if (!n) {
		free(tids);
		return;
	}
	if (n > QUIET_MAX_THREADS) {
		q->how = "too many threads to watch";
		free(tids);
		return;
	}
	for (int i = 0; i < n; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tids[i]);
		fds[nfd] = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tids[i]);
		sfds[nfd] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[nfd] >= 0 && sfds[nfd] >= 0) {
			run0[nfd] = run_ns_of(sfds[nfd]);
			nfd++;
		} else {
			if (fds[nfd] >= 0)
				close(fds[nfd]);
			if (sfds[nfd] >= 0)
				close(sfds[nfd]);
		}
	}
	free(tids);
	if (!nfd) {
		q->how = "its threads cannot be watched";
		return;
	}
	q->how = "it kept running";
	for (;;) {
		uint64_t t = now_ns();
		bool all_asleep = nfd > 0;

		for (int i = 0; i < nfd; i++) {
			char st = state_of(fds[i]);
			if (st == 'R' || (!ran && run_ns_of(sfds[i]) != run0[i]))
				ran = true;
			/* (A thread gone, or a main thread that exited before
			 * the others, a zombie: not waited for.) */
			if (st && st != 'S' && st != 'Z' && st != 'X')
				all_asleep = false;
		}
		if (!all_asleep) {
			asleep_since = 0;
			if (t - last_asleep >= QUIET_BUSY_MS * 1000000ull)
				break;
		} else if (ran) {
			q->found = true;
			q->how = "as its threads went to sleep";
			break;
		} else if (!asleep_since) {
			asleep_since = last_asleep = t;
		} else if ((last_asleep = t) - asleep_since >= QUIET_IDLE_MS * 1000000ull) {
			q->found = true;
			q->how = "while its threads slept";
			break;
		}
		if (t - t0 >= max_ms * 1000000ull)
			break;
	}
	for (int i = 0; i < nfd; i++) {
		close(fds[i]);
		close(sfds[i]);
	}
	q->waited_ns = now_ns() - t0;
}
