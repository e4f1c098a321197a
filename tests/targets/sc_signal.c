/*
 * Checkpointed while waiting for a signal. argv[1]:
 *   pause         pause(2) with a SIGUSR1 handler: the test sends SIGUSR1
 *                 after restore; pause must return EINTR once the handler
 *                 ran (and not before)
 *   sigsuspend    rt_sigsuspend(2) with SIGUSR1 (and SIGUSR2, SIGRTMIN+2)
 *                 blocked outside and unblocked inside: returns EINTR after
 *                 the handler, and the mask afterwards is the one from
 *                 before the call
 *   ppoll         ppoll(2) on no fds with a 60 s timeout and a mask that
 *                 unblocks SIGUSR1 (blocked outside): like sigsuspend, it
 *                 must return EINTR after the handler (not time out) and
 *                 leave the mask from before the call
 *   pselect       the same with pselect6(2)
 *   sigwaitinfo   SIGUSR2 blocked, rt_sigtimedwait without timeout: the
 *                 test sends SIGUSR2; EINTR (the dump's stop) is retried
 *   sigtimedwait  the same with a 60 s timeout, which must not expire
 */
#include "scwait.h"

static int is_blocked(int sig)
{
	sigset_t cur;
	CHECK(sigprocmask(SIG_BLOCK, NULL, &cur) == 0, "sigprocmask");
	return sigismember(&cur, sig);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "pause";
	int eintr = 0;
	long r;

	set_handler(SIGUSR1, on_signal);
	if (!strcmp(mode, "pause")) {
		ready();
		r = rawsys(SYS_pause, 0, 0, 0, 0, 0, 0);
		CHECK(r == -EINTR, "pause returned %ld (%s), expected EINTR", r,
		      r < 0 ? strerror(-r) : "no error");
		CHECK(handled == 1, "pause returned, the handler ran %d times", (int)handled);
	} else if (!strcmp(mode, "sigsuspend")) {
		sigset_t during;
		block(SIGUSR1);
		block(SIGUSR2);
		block(SIGRTMIN + 2);
		sigfillset(&during);
		sigdelset(&during, SIGUSR1);
		ready();
		r = rawsys(SYS_rt_sigsuspend, (long)&during, 8, 0, 0, 0, 0);
		CHECK(r == -EINTR, "rt_sigsuspend returned %ld (%s), expected EINTR", r,
		      r < 0 ? strerror(-r) : "no error");
		CHECK(handled == 1, "rt_sigsuspend returned, the handler ran %d times", (int)handled);
		CHECK(is_blocked(SIGUSR1) && is_blocked(SIGUSR2) && is_blocked(SIGRTMIN + 2),
		      "signal mask after rt_sigsuspend is not the one before it");
		CHECK(!is_blocked(SIGTERM) && !is_blocked(SIGINT) && !is_blocked(SIGRTMIN + 3),
		      "signal mask after rt_sigsuspend blocks more than before it (the "
		      "temporary mask stayed)");
	} else if (!strcmp(mode, "ppoll") || !strcmp(mode, "pselect")) {
		sigset_t during;
		struct timespec ts = { 60, 0 };
		struct { const sigset_t *set; size_t size; } ps = { &during, 8 };
		block(SIGUSR1);
		block(SIGRTMIN + 2);
		sigemptyset(&during);
		sigaddset(&during, SIGRTMIN + 2);
		ready();
		if (mode[1] == 'p')
			r = rawsys(SYS_ppoll, 0, 0, (long)&ts, (long)&during, 8, 0);
		else
			r = rawsys(SYS_pselect6, 0, 0, 0, 0, (long)&ts, (long)&ps);
		CHECK(r != 0, "%s timed out", mode);
		CHECK(r == -EINTR, "%s returned %ld (%s), expected EINTR", mode, r,
		      r < 0 ? strerror(-r) : "no error");
		CHECK(handled == 1, "%s returned, the handler ran %d times", mode, (int)handled);
		CHECK(ts.tv_sec > 30 && ts.tv_sec <= 60, "%s: the time left is %lld s", mode,
		      (long long)ts.tv_sec);
		CHECK(is_blocked(SIGUSR1) && is_blocked(SIGRTMIN + 2),
		      "signal mask after %s is not the one before it", mode);
		CHECK(!is_blocked(SIGUSR2) && !is_blocked(SIGTERM),
		      "signal mask after %s blocks more than before it", mode);
	} else if (!strcmp(mode, "sigwaitinfo") || !strcmp(mode, "sigtimedwait")) {
		int timed = !strcmp(mode, "sigtimedwait");
		int64_t deadline = mono_ns() + 60 * 1000000000LL;
		sigset_t set;
		siginfo_t si;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		block(SIGUSR2);
		ready();
		for (;;) {
			struct timespec ts = ns_to_ts(deadline - mono_ns());
			memset(&si, 0, sizeof(si));
			r = rawsys(SYS_rt_sigtimedwait, (long)&set, (long)&si, timed ? (long)&ts : 0, 8, 0,
				   0);
			if (r == -EINTR) {
				CHECK(++eintr < 5, "%s: EINTR again and again", mode);
				continue;
			}
			break;
		}
		CHECK(r != -EAGAIN, "%s timed out", mode);
		CHECK(r == SIGUSR2, "%s returned %ld (%s), expected SIGUSR2", mode, r,
		      r < 0 ? strerror(-r) : "");
		CHECK(si.si_signo == SIGUSR2 && si.si_code == SI_USER, "siginfo: signo %d code %d",
		      si.si_signo, si.si_code);
		CHECK(handled == 0, "the SIGUSR1 handler ran");
	} else {
		fail("unknown mode %s", mode);
	}
	printf("%s: done, %d EINTR\n", mode, eintr);
	pass();
}
