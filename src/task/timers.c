/*
 * POSIX timers (timer_create). Kept per timer: its id, clock, how it
 * notifies (a signal to the process or to one thread, or nothing), the
 * signal and its sigev_value, the time left and the interval.
 *
 * Dump: /proc/PID/timers lists the timers ("ID:", "signal: SIG/SIVAL",
 * "notify: signal|none/pid|tid.N", "ClockID:"); timer_gettime() and
 * timer_getoverrun(), injected, give the arming and the overrun count.
 *
 * Restore, injected in the restored process once its threads exist:
 * prctl(PR_TIMER_CREATE_RESTORE_IDS, ON) (Linux 6.16) makes timer_create()
 * take the id written in *timerid, so every timer gets its id back; each
 * is armed with the time it had left (relative: the time between dump and
 * restore does not count, as for interval timers). A periodic timer that
 * had just expired reads its next expiration one interval away. The
 * overrun count of the last delivered signal cannot be set: it starts at
 * 0. A timer signal pending at the dump is re-queued with the pending
 * signals (signals.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "task/task.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* The kernel's struct sigevent (64 bytes). */
struct ksigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};
_Static_assert(sizeof(struct ksigevent) == 64, "sigevent");

struct kitimerspec {
	int64_t int_sec, int_nsec, val_sec, val_nsec;
};

static uint64_t ts_ns(int64_t s, int64_t ns)
{
	return (uint64_t)s * 1000000000ULL + (uint64_t)ns;
}

/* Parse /proc/PID/timers into p->posix_timers (arming not filled yet). */
static int parse_timers(pid_t pid, const char *text, Rtcr__Process *p)
{
	Rtcr__PosixTimer *t = NULL;

	for (const char *l = text; l && *l; l = strchr(l, '\n')) {
		char how[16], who[8];
		unsigned long long sival;
		int sig, n;

		if (*l == '\n')
			l++;
		if (!strncmp(l, "ID:", 3)) {
			t = xzalloc(sizeof(*t));
			rtcr__posix_timer__init(t);
			t->id = (int32_t)strtol(l + 3, NULL, 10);
			p->posix_timers = xrealloc(p->posix_timers,
						   (p->n_posix_timers + 1) * sizeof(*p->posix_timers));
			p->posix_timers[p->n_posix_timers++] = t;
		} else if (!t) {
			continue;
		} else if (sscanf(l, "signal: %d/%llx", &sig, &sival) == 2) {
			t->signo = sig;
			t->sival = sival;
		} else if (sscanf(l, "notify: %15[a-z]/%7[a-z].%d", how, who, &n) == 3) {
			if (!strcmp(how, "signal"))
				t->notify = SIGEV_SIGNAL;
			else if (!strcmp(how, "none"))
				t->notify = SIGEV_NONE;
			else {
				pr_err("pid %d: POSIX timer %d: notification \"%s\": not supported", pid,
				       t->id, how);
				return -ENOTSUP;
			}
			if (!strcmp(who, "tid")) {
				t->notify |= SIGEV_THREAD_ID;
				t->has_notify_tid = 1;
				t->notify_tid = n;
			} else if (n != pid) {
				pr_err("pid %d: POSIX timer %d notifies process %d, not its own: not "
				       "supported", pid, t->id, n);
				return -ENOTSUP;
			}
		} else if (!strncmp(l, "ClockID:", 8)) {
			t->clockid = (int32_t)strtol(l + 8, NULL, 10);
		}
	}
	return 0;
}

static int cmp_timer(const void *a, const void *b)
{
	const Rtcr__PosixTimer *x = *(Rtcr__PosixTimer *const *)a, *y = *(Rtcr__PosixTimer *const *)b;
	return (x->id > y->id) - (x->id < y->id);
}

int timers_dump(struct inject *in, pid_t pid, Rtcr__Process *p)
{
	uint64_t data = inject_data(in);
	char path[64], *text;
	ssize_t n;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	n = read_file(path, &text);
	if (n < 0) {
		pr_err("pid %d: %s: %s", pid, path, strerror((int)-n));
		return (int)n;
	}
	ret = parse_timers(pid, text, p);
	free(text);
	/* The kernel lists them newest first. */
	if (p->n_posix_timers)
		qsort(p->posix_timers, p->n_posix_timers, sizeof(*p->posix_timers), cmp_timer);
	for (size_t i = 0; i < p->n_posix_timers && !ret; i++) {
		Rtcr__PosixTimer *t = p->posix_timers[i];
		struct kitimerspec its;
		char what[64];
		long ov;

		snprintf(what, sizeof(what), "POSIX timer %d: timer_gettime", t->id);
		ret = inject_call(in, what, __NR_timer_gettime, t->id, data, 0, 0, 0, 0, NULL);
		if (!ret)
			ret = inject_read(in, data, &its, sizeof(its));
		if (ret)
			break;
		t->value_ns = ts_ns(its.val_sec, its.val_nsec);
		t->interval_ns = ts_ns(its.int_sec, its.int_nsec);
		snprintf(what, sizeof(what), "POSIX timer %d: timer_getoverrun", t->id);
		ret = inject_call(in, what, __NR_timer_getoverrun, t->id, 0, 0, 0, 0, 0, &ov);
		if (!ret && ov) {
			t->has_overrun = 1;
			t->overrun = (int32_t)ov;
		}
	}
	return ret;
}

int timers_restore_inj(struct inject *in, const Rtcr__Process *p)
{
	uint64_t data = inject_data(in);
	long r;
	int ret;

	if (!p->n_posix_timers)
		return 0;
	ret = inject_syscall(in, __NR_prctl, PR_TIMER_CREATE_RESTORE_IDS,
			     PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0, 0, &r);
	if (ret)
		return ret;
	if (r < 0) {
		pr_err("pid %d: its %zu POSIX timers need their ids back, which needs "
		       "PR_TIMER_CREATE_RESTORE_IDS (Linux 6.16): %s", p->pid, p->n_posix_timers,
		       strerror((int)-r));
		return (int)r;
	}
	for (size_t i = 0; i < p->n_posix_timers && !ret; i++) {
		const Rtcr__PosixTimer *t = p->posix_timers[i];
		struct ksigevent se;
		struct kitimerspec its;
		uint64_t value = t->value_ns;
		int32_t id = t->id;
		char what[80];

		memset(&se, 0, sizeof(se));
		se.value = t->sival;
		se.signo = t->signo;
		se.notify = (int32_t)t->notify;
		se.tid = t->has_notify_tid ? t->notify_tid : 0;
		ret = inject_write(in, data, &se, sizeof(se));
		if (!ret)
			ret = inject_write(in, data + 64, &id, sizeof(id));
		snprintf(what, sizeof(what), "POSIX timer %d: timer_create", t->id);
		if (!ret)
			ret = inject_call(in, what, __NR_timer_create, (uint64_t)(int64_t)t->clockid, data,
					  data + 64, 0, 0, 0, NULL);
		if (!ret)
			ret = inject_read(in, data + 64, &id, sizeof(id));
		if (ret)
			break;
		if (id != t->id) {
			pr_err("pid %d: POSIX timer %d came back as timer %d", p->pid, t->id, id);
			ret = -EEXIST;
			break;
		}
		/* Expired periodic timer: the next expiration is one interval away. */
		if (!value)
			value = t->interval_ns;
		if (!value)
			continue;   /* disarmed */
		its.int_sec = t->interval_ns / 1000000000ULL;
		its.int_nsec = t->interval_ns % 1000000000ULL;
		its.val_sec = value / 1000000000ULL;
		its.val_nsec = value % 1000000000ULL;
		snprintf(what, sizeof(what), "POSIX timer %d: timer_settime", t->id);
		ret = inject_write(in, data + 128, &its, sizeof(its));
		if (!ret)
			ret = inject_call(in, what, __NR_timer_settime, t->id, 0, data + 128, 0, 0, 0,
					  NULL);
	}
	if (!ret)
		ret = inject_call(in, "PR_TIMER_CREATE_RESTORE_IDS off", __NR_prctl,
				  PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0,
				  0, NULL);
	return ret;
}

void timers_describe(const Rtcr__PosixTimer *t, char *buf, size_t len)
{
	static const char *const clocks[] = { "realtime", "monotonic", "process-cputime",
		"thread-cputime", "monotonic-raw", "realtime-coarse", "monotonic-coarse",
		"boottime", "realtime-alarm", "boottime-alarm", NULL, "tai" };
	char clk[24], how[64], arm[80];

	if (t->clockid >= 0 && t->clockid < (int)ARRAY_SIZE(clocks) && clocks[t->clockid])
		snprintf(clk, sizeof(clk), "%s", clocks[t->clockid]);
	else
		snprintf(clk, sizeof(clk), "clock %d", t->clockid);
	if ((t->notify & ~SIGEV_THREAD_ID) == SIGEV_NONE)
		snprintf(how, sizeof(how), "no signal");
	else if (t->notify & SIGEV_THREAD_ID)
		snprintf(how, sizeof(how), "%s to thread %d, value %#" PRIx64, sig_name(t->signo),
			 t->notify_tid, t->sival);
	else
		snprintf(how, sizeof(how), "%s, value %#" PRIx64, sig_name(t->signo), t->sival);
	if (!t->value_ns && !t->interval_ns)
		snprintf(arm, sizeof(arm), "disarmed");
	else if (t->interval_ns)
		snprintf(arm, sizeof(arm), "interval %.3fs next in %.3fs", t->interval_ns / 1e9,
			 t->value_ns / 1e9);
	else
		snprintf(arm, sizeof(arm), "next in %.3fs", t->value_ns / 1e9);
	snprintf(buf, len, "POSIX timer %d: %s, %s, %s", t->id, clk, how, arm);
	if (t->has_overrun) {
		size_t k = strlen(buf);
		snprintf(buf + k, len - k, ", overrun %d", t->overrun);
	}
}
