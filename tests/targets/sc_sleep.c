/*
 * Checkpointed inside a sleep. argv[1] picks the call, argv[2] the total
 * time in ms (default 2000):
 *   nanosleep        raw nanosleep(2), relative
 *   clock_nanosleep  raw clock_nanosleep(CLOCK_MONOTONIC), relative
 *   abs              raw clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
 *   sleep            glibc sleep() (whole seconds, argv[2] rounded up)
 * The relative calls may come back with EINTR and the time left (the
 * kernel's restart block cannot be checkpointed): the target sleeps on
 * for what is left, as a program must. The absolute one restarts: it
 * must return 0, not EINTR. In every case the target must have slept at
 * least the requested time in total, must never have been woken early
 * without EINTR, and the time left it was told must be sane. Then it
 * waits for the trigger.
 */
#include "scwait.h"

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "nanosleep";
	int64_t total = (argc > 2 ? atol(argv[2]) : 2000) * 1000000LL;
	int64_t t0, t1, deadline;
	int eintr = 0;
	long r;

	if (!strcmp(mode, "sleep"))
		total = (total + 999999999) / 1000000000 * 1000000000;
	t0 = mono_ns();
	deadline = t0 + total;
	ready();
	if (!strcmp(mode, "nanosleep") || !strcmp(mode, "clock_nanosleep")) {
		struct timespec req = ns_to_ts(total), rem;
		for (;;) {
			int64_t before = mono_ns();
			memset(&rem, 0xff, sizeof(rem));
			if (mode[0] == 'n')
				r = rawsys(SYS_nanosleep, (long)&req, (long)&rem, 0, 0, 0, 0);
			else
				r = rawsys(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (long)&req, (long)&rem, 0,
					   0);
			if (r == 0) {
				CHECK(mono_ns() - before >= ts_to_ns(&req),
				      "%s returned 0 after %lld ns, asked %lld ns", mode,
				      (long long)(mono_ns() - before), (long long)ts_to_ns(&req));
				break;
			}
			CHECK(r == -EINTR, "%s: %s", mode, strerror(-r));
			eintr++;
			CHECK(eintr < 5, "%s: EINTR again and again", mode);
			CHECK(rem.tv_sec >= 0 && rem.tv_nsec >= 0 && rem.tv_nsec < 1000000000 &&
			      ts_to_ns(&rem) <= ts_to_ns(&req),
			      "%s: EINTR with a bad time left: %lld.%09ld of %lld.%09ld", mode,
			      (long long)rem.tv_sec, rem.tv_nsec, (long long)req.tv_sec, req.tv_nsec);
			req = rem;
		}
	} else if (!strcmp(mode, "abs")) {
		struct timespec dl = ns_to_ts(deadline);
		r = rawsys(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, (long)&dl, 0, 0, 0);
		CHECK(r == 0, "clock_nanosleep(TIMER_ABSTIME) returned %s, expected 0 (a restart)",
		      strerror(-r));
	} else if (!strcmp(mode, "sleep")) {
		unsigned left = total / 1000000000;
		while (left) {
			unsigned was = left;
			left = sleep(left);
			CHECK(left <= was, "sleep() returned %u of %u", left, was);
			if (left)
				eintr++;
			CHECK(eintr < 5, "sleep() interrupted again and again");
		}
	} else {
		fail("unknown mode %s", mode);
	}
	t1 = mono_ns();
	/* glibc sleep() returns whole seconds left, rounded down: each
	 * interruption may lose up to a second. */
	if (!strcmp(mode, "sleep"))
		deadline -= eintr * 1000000000LL;
	CHECK(t1 >= deadline, "%s: woke up %lld ms early overall", mode,
	      (long long)(deadline - t1) / 1000000);
	printf("slept %lld ms in total, %d EINTR\n", (long long)(t1 - t0) / 1000000, eintr);
	trigger_wait();
	pass();
}
