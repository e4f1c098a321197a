/*
 * Interval timers.
 *
 *   itimer real     ITIMER_REAL every 20 ms with a SIGALRM handler
 *                   (SA_RESTART). After the trigger: the interval reads
 *                   back, and SIGALRM keeps arriving (>= 10 in 400 ms).
 *   itimer expired  the same, but SIGALRM is blocked and already pending
 *                   at the dump: the timer has expired and is re-armed
 *                   only when the signal is dequeued, so it reads 0 with
 *                   a 20 ms interval. After: the interval is still there,
 *                   and unblocking brings the signal and then a steady
 *                   stream of them.
 *   itimer virtual  ITIMER_VIRTUAL armed for 200 ms of CPU time, interval
 *                   150 ms, and ITIMER_PROF for 100 s: the idle target
 *                   barely uses CPU, so both are still armed at the dump.
 *                   After: they read back (interval the same, value no
 *                   more than at the dump plus one tick: the kernel adds a
 *                   tick whenever a CPU timer is armed, 10 ms covers HZ>=100)
 *                   and burning CPU brings SIGVTALRM.
 */
#include "target.h"

#include <signal.h>
#include <sys/time.h>

static volatile int alrm, vtalrm;

static void h(int sig)
{
	if (sig == SIGALRM)
		alrm++;
	else
		vtalrm++;
}

static long us(const struct timeval *tv)
{
	return tv->tv_sec * 1000000L + tv->tv_usec;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int real = argc < 2 || !strcmp(argv[1], "real");
	int expired = argc > 1 && !strcmp(argv[1], "expired");
	struct sigaction sa;
	struct itimerval it, got, before;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGVTALRM, &sa, NULL);
	sigaction(SIGPROF, &sa, NULL);

	if (expired) {
		sigset_t alrm_set, p;
		sigemptyset(&alrm_set);
		sigaddset(&alrm_set, SIGALRM);
		sigprocmask(SIG_BLOCK, &alrm_set, NULL);
		it.it_interval = (struct timeval){ 0, 20000 };
		it.it_value = (struct timeval){ 0, 20000 };
		setitimer(ITIMER_REAL, &it, NULL);
		do {
			tick();
			sigpending(&p);
		} while (!sigismember(&p, SIGALRM));
		getitimer(ITIMER_REAL, &got);
		CHECK(us(&got.it_value) == 0 && us(&got.it_interval) == 20000,
		      "expired timer reads %ld/%ld us", us(&got.it_value), us(&got.it_interval));
		ready();
		trigger_wait();
		sigpending(&p);
		CHECK(sigismember(&p, SIGALRM), "SIGALRM no longer pending");
		getitimer(ITIMER_REAL, &got);
		CHECK(us(&got.it_interval) == 20000,
		      "ITIMER_REAL interval %ld us (value %ld), was 20000 with the timer expired",
		      us(&got.it_interval), us(&got.it_value));
		{
			/* One, the pending one; a second only if the timer's
			 * next period came meanwhile (a busy machine may hold
			 * this process past it between the two lines). */
			double tu = now();
			sigprocmask(SIG_UNBLOCK, &alrm_set, NULL);
			CHECK(alrm == 1 || (alrm == 2 && now() - tu >= 0.019),
			      "%d SIGALRM on unblocking", alrm);
		}
		{
			double t0 = now();
			while (now() - t0 < 0.4)
				tick();
			CHECK(alrm - 1 >= 10, "only %d SIGALRM in 400 ms after the first", alrm - 1);
		}
		pass();
	}

	if (real) {
		it.it_interval = (struct timeval){ 0, 20000 };
		it.it_value = (struct timeval){ 0, 20000 };
		setitimer(ITIMER_REAL, &it, NULL);
		while (alrm < 2)
			tick();
		ready();
		trigger_wait();
		getitimer(ITIMER_REAL, &got);
		CHECK(us(&got.it_interval) == 20000, "ITIMER_REAL interval %ld us, was 20000",
		      us(&got.it_interval));
		CHECK(us(&got.it_value) > 0 && us(&got.it_value) <= 20000,
		      "ITIMER_REAL value %ld us", us(&got.it_value));
		{
			int a0 = alrm;
			double t0 = now();
			while (now() - t0 < 0.4)
				tick();
			CHECK(alrm - a0 >= 10, "only %d SIGALRM in 400 ms after restore", alrm - a0);
		}
		pass();
	}

	it.it_interval = (struct timeval){ 0, 150000 };
	it.it_value = (struct timeval){ 0, 200000 };
	setitimer(ITIMER_VIRTUAL, &it, NULL);
	it.it_interval = (struct timeval){ 0, 0 };
	it.it_value = (struct timeval){ 100, 0 };
	setitimer(ITIMER_PROF, &it, NULL);
	getitimer(ITIMER_VIRTUAL, &before);
	printf("ITIMER_VIRTUAL %ld us before the dump\n", us(&before.it_value));
	ready();
	trigger_wait();
	getitimer(ITIMER_VIRTUAL, &got);
	CHECK(us(&got.it_value) > 0 && us(&got.it_value) <= us(&before.it_value) + 10000,
	      "ITIMER_VIRTUAL value %ld us, was %ld before the dump", us(&got.it_value),
	      us(&before.it_value));
	CHECK(us(&got.it_interval) == 150000, "ITIMER_VIRTUAL interval %ld us, was 150000",
	      us(&got.it_interval));
	getitimer(ITIMER_PROF, &got);
	CHECK(us(&got.it_value) > 99000000 && us(&got.it_value) <= 100010000,
	      "ITIMER_PROF value %ld us (armed 100 s)", us(&got.it_value));
	{
		double t0 = now();
		volatile unsigned long spin = 0;
		while (vtalrm < 2 && now() - t0 < 5)
			spin++;
		CHECK(vtalrm >= 2, "%d SIGVTALRM after %.1f s of CPU", vtalrm, now() - t0);
	}
	pass();
}
