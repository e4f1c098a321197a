/*
 * POSIX timers across a checkpoint. Before READY:
 *   a throwaway timer is created first and deleted last, so the kept
 *   timers have ids that are not the first free ones;
 *   timer A: CLOCK_MONOTONIC, SIGEV_SIGNAL SIGUSR1 with sival_ptr
 *            0xdeadbeefcafe, every 50 ms;
 *   timer B: CLOCK_MONOTONIC, SIGEV_NONE, one-shot in 30 s;
 *   timer C: CLOCK_BOOTTIME, SIGEV_THREAD_ID to the main thread,
 *            SIGRTMIN+2 with sival_int 4242, one-shot in 600 ms
 *            (fires after the restore).
 *   timer D: CLOCK_REALTIME, created and never armed.
 * After the trigger: every timer answers timer_gettime() at its old id
 * (A's interval 50 ms, B's time left between 30 s minus the time since
 * it was armed and 30 s, D disarmed); A's signals keep arriving, each
 * with SI_TIMER, its value and its id; C's signal comes once, with its
 * value; a new timer gets an id of its own.
 */
#include "target.h"

#include <signal.h>
#include <stdint.h>
#include <time.h>

#define SIVAL_A ((void *)0xdeadbeefcafeUL)

static volatile int na, nc, bad;
static volatile int a_timerid;
static char badwhy[160];

static void h(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGUSR1) {
		if (si->si_code != SI_TIMER || si->si_value.sival_ptr != SIVAL_A ||
		    si->si_timerid != a_timerid) {
			if (!bad)
				snprintf(badwhy, sizeof(badwhy), "SIGUSR1 code %d value %p timerid %d",
					 si->si_code, si->si_value.sival_ptr, si->si_timerid);
			bad = 1;
		}
		na++;
	} else {
		if (si->si_code != SI_TIMER || si->si_value.sival_int != 4242) {
			if (!bad)
				snprintf(badwhy, sizeof(badwhy), "SIGRTMIN+2 code %d value %d",
					 si->si_code, si->si_value.sival_int);
			bad = 1;
		}
		nc++;
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double secs(const struct timespec *ts)
{
	return ts->tv_sec + ts->tv_nsec / 1e9;
}

static void wait_s(double s)
{
	double end = now() + s;
	while (now() < end)
		tick();
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = h, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct sigevent se;
	struct itimerspec its, got;
	timer_t dummy, a, b, c, d, e;
	double armed_b;
	int native;

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGRTMIN + 2, &sa, NULL);

	memset(&se, 0, sizeof(se));
	se.sigev_notify = SIGEV_NONE;
	CHECK(!timer_create(CLOCK_MONOTONIC, &se, &dummy), "timer_create dummy: %s", strerror(errno));

	se.sigev_notify = SIGEV_SIGNAL;
	se.sigev_signo = SIGUSR1;
	se.sigev_value.sival_ptr = SIVAL_A;
	CHECK(!timer_create(CLOCK_MONOTONIC, &se, &a), "timer_create A: %s", strerror(errno));
	a_timerid = (int)(intptr_t)a;

	memset(&se, 0, sizeof(se));
	se.sigev_notify = SIGEV_NONE;
	CHECK(!timer_create(CLOCK_MONOTONIC, &se, &b), "timer_create B: %s", strerror(errno));

	memset(&se, 0, sizeof(se));
	se.sigev_notify = SIGEV_THREAD_ID;
	se.sigev_signo = SIGRTMIN + 2;
	se.sigev_value.sival_int = 4242;
	se._sigev_un._tid = getpid();
	CHECK(!timer_create(CLOCK_BOOTTIME, &se, &c), "timer_create C: %s", strerror(errno));

	memset(&se, 0, sizeof(se));
	se.sigev_notify = SIGEV_SIGNAL;
	se.sigev_signo = SIGUSR2;
	CHECK(!timer_create(CLOCK_REALTIME, &se, &d), "timer_create D: %s", strerror(errno));
	CHECK(!timer_delete(dummy), "timer_delete");

	its = (struct itimerspec){ { 0, 50000000 }, { 0, 50000000 } };
	CHECK(!timer_settime(a, 0, &its, NULL), "arming A");
	its = (struct itimerspec){ { 0, 0 }, { 30, 0 } };
	CHECK(!timer_settime(b, 0, &its, NULL), "arming B");
	armed_b = now();
	wait_s(0.15);
	CHECK(na >= 1, "A did not fire before the dump");
	/* C: 600 ms from now, after the dump. */
	its = (struct itimerspec){ { 0, 0 }, { 0, 600000000 } };
	CHECK(!timer_settime(c, 0, &its, NULL), "arming C");
	ready();
	trigger_wait();
	native = getenv("NATIVE") != NULL;
	(void)native;

	CHECK(!timer_gettime(a, &got), "timer_gettime A (id %d): %s", a_timerid, strerror(errno));
	CHECK(got.it_interval.tv_sec == 0 && got.it_interval.tv_nsec == 50000000,
	      "A's interval is %.9f s", secs(&got.it_interval));
	CHECK(secs(&got.it_value) > 0 && secs(&got.it_value) <= 0.05, "A's next in %.9f s",
	      secs(&got.it_value));

	CHECK(!timer_gettime(b, &got), "timer_gettime B: %s", strerror(errno));
	CHECK(got.it_interval.tv_sec == 0 && got.it_interval.tv_nsec == 0, "B became periodic");
	CHECK(secs(&got.it_value) <= 30.0 && secs(&got.it_value) >= 30.0 - (now() - armed_b) - 0.5,
	      "B has %.3f s left, armed %.3f s ago for 30 s", secs(&got.it_value), now() - armed_b);

	CHECK(!timer_gettime(d, &got), "timer_gettime D: %s", strerror(errno));
	CHECK(!got.it_value.tv_sec && !got.it_value.tv_nsec, "D became armed");

	/* A keeps firing, with its value and id. */
	na = 0;
	wait_s(0.5);
	CHECK(!bad, "bad timer signal: %s", badwhy);
	CHECK(na >= 3, "A fired %d times in 500 ms (every 50 ms)", na);

	/* C fires once (600 ms after it was armed, not counting the time away). */
	wait_s(1.0);
	CHECK(!bad, "bad timer signal: %s", badwhy);
	CHECK(nc == 1, "C fired %d times", nc);
	CHECK(!timer_gettime(c, &got) && !got.it_value.tv_sec && !got.it_value.tv_nsec,
	      "C still armed");

	/* A new timer gets a free id. */
	memset(&se, 0, sizeof(se));
	se.sigev_notify = SIGEV_NONE;
	CHECK(!timer_create(CLOCK_MONOTONIC, &se, &e), "timer_create after: %s", strerror(errno));
	CHECK(e != a && e != b && e != c && e != d, "new timer got id %d, already used",
	      (int)(intptr_t)e);
	pass();
}
