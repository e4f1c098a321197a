/*
 * A program with its own SIGTRAP handler (JITs and in-process debuggers
 * have one). rtcr's restore ends its batches of injected calls with int3,
 * whose forced SIGTRAP resets a blocked SIGTRAP's action: the saved
 * action must still be in place afterwards, and work.
 */
#include "target.h"

#include <signal.h>

static volatile sig_atomic_t trapped;

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	trapped = si->si_code == SI_TKILL ? 1 : 2;
}

int main(void)
{
	struct sigaction sa, now;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaddset(&sa.sa_mask, SIGUSR1);
	if (sigaction(SIGTRAP, &sa, NULL))
		fail("sigaction");
	ready();
	trigger_wait();
	if (sigaction(SIGTRAP, NULL, &now))
		fail("sigaction read");
	CHECK(now.sa_sigaction == on_trap, "SIGTRAP handler lost (now %p)", (void *)now.sa_sigaction);
	CHECK((now.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART),
	      "SIGTRAP flags %#x", now.sa_flags);
	CHECK(sigismember(&now.sa_mask, SIGUSR1), "SIGTRAP mask lost SIGUSR1");
	raise(SIGTRAP);
	CHECK(trapped == 1, "handler did not run (%d)", (int)trapped);
	pass();
}
