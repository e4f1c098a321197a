/*
 * Pending signals. Before READY, with them blocked:
 *   - SIGUSR1 by kill() to the process (shared pending, SI_USER);
 *   - SIGUSR2 by tgkill() to the thread (thread pending, SI_TKILL);
 *   - SIGRTMIN+5 value 50 by rt_tgsigqueueinfo to the thread;
 *   - real-time signals by sigqueue with values: RTMIN+2: 21, RTMIN+1: 11,
 *     RTMIN+2: 22, RTMIN+5: 51, RTMIN+2: 23, RTMIN+1: 12.
 * After the trigger: sigpending shows them all, the mask is unchanged;
 * they are unblocked and delivered one by one (every handler blocks all
 * signals) in the kernel's order: thread-directed first, lowest number
 * first, real-time instances in the order queued, each with its value.
 */
#include "target.h"

#include <signal.h>

struct rec {
	int sig, code, val, pid;
};
static struct rec got[32];
static volatile int ngot;

static void h(int sig, siginfo_t *si, void *uc)
{
	if (ngot < 32)
		got[ngot++] = (struct rec){ sig, si->si_code, si->si_value.sival_int, si->si_pid };
}

static int q(int sig, int val)
{
	union sigval v = { .sival_int = val };
	return sigqueue(getpid(), sig, v);
}

static int tq(int sig, int val)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = val;
	return syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, &si);
}

int main(void)
{
	const int R = SIGRTMIN;
	const int sigs[] = { SIGUSR1, SIGUSR2, R + 1, R + 2, R + 5 };
	sigset_t blk, p, cur;
	struct sigaction sa;
	struct rec want[] = {
		{ SIGUSR2, SI_TKILL, 0, 0 }, { R + 5, SI_QUEUE, 50, 0 },
		{ SIGUSR1, SI_USER, 0, 0 },
		{ R + 1, SI_QUEUE, 11, 0 }, { R + 1, SI_QUEUE, 12, 0 },
		{ R + 2, SI_QUEUE, 21, 0 }, { R + 2, SI_QUEUE, 22, 0 }, { R + 2, SI_QUEUE, 23, 0 },
		{ R + 5, SI_QUEUE, 51, 0 },
	};
	const int nwant = sizeof(want) / sizeof(want[0]);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = h;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	sigemptyset(&blk);
	for (int i = 0; i < 5; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&blk, sigs[i]);
	}
	sigaddset(&blk, SIGWINCH);   /* blocked, never sent */
	sigprocmask(SIG_SETMASK, &blk, NULL);

	if (kill(getpid(), SIGUSR1) || syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2) ||
	    tq(R + 5, 50) || q(R + 2, 21) || q(R + 1, 11) || q(R + 2, 22) || q(R + 5, 51) ||
	    q(R + 2, 23) || q(R + 1, 12))
		fail("sending: %s", strerror(errno));
	sigpending(&p);
	for (int i = 0; i < 5; i++)
		CHECK(sigismember(&p, sigs[i]), "before: signal %d not pending", sigs[i]);
	CHECK(ngot == 0, "a blocked signal was delivered");

	ready();
	trigger_wait();

	sigpending(&p);
	for (int s = 1; s <= 64; s++) {
		int expect = sigismember(&blk, s) && s != SIGWINCH;
		if (s == SIGKILL || s == SIGSTOP || (s > 31 && s < R))
			continue;
		CHECK(sigismember(&p, s) == expect, "after restore: signal %d %s pending", s,
		      expect ? "no longer" : "unexpectedly");
	}
	sigprocmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP && !(s > 31 && s < R))
			CHECK(sigismember(&cur, s) == sigismember(&blk, s),
			      "blocked mask changed at signal %d", s);
	CHECK(ngot == 0, "a blocked signal was delivered");

	/* Unblock: everything arrives before sigprocmask returns. */
	sigprocmask(SIG_UNBLOCK, &blk, NULL);
	for (int i = 0; i < ngot && i < nwant; i++) {
		CHECK(got[i].sig == want[i].sig && got[i].code == want[i].code &&
		      got[i].val == want[i].val,
		      "delivery %d: signal %d code %d value %d, expected signal %d code %d value %d",
		      i, got[i].sig, got[i].code, got[i].val, want[i].sig, want[i].code, want[i].val);
		CHECK(got[i].pid == getpid(), "delivery %d: si_pid %d, expected %d", i, got[i].pid,
		      getpid());
	}
	CHECK(ngot == nwant, "%d signals delivered, expected %d", ngot, nwant);
	sigpending(&p);
	CHECK(!sigismember(&p, SIGUSR1) && !sigismember(&p, R + 2), "signals still pending");
	pass();
}
