/*
 * Zombies killed by signals: the root has two children it killed, one
 * with SIGTERM and one with SIGUSR1, and has not reaped them at READY
 * (it waited for their deaths with WNOWAIT). A third child is alive and
 * runs on. Prints "pids ROOT TERMED USR1ED LIVE".
 *
 * After the trigger the root reaps each zombie: waitid() must report
 * CLD_KILLED with the right signal (no core dump), waitpid() then has
 * nothing more for it; the live child exits 0.
 */
#include "target.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static pid_t sleeper(void)
{
	pid_t p = fork();
	if (p < 0)
		fail("fork");
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return p;
}

int main(void)
{
	pid_t z1 = sleeper(), z2 = sleeper(), live, root = getpid();
	siginfo_t si;
	int st;

	live = fork();
	if (live < 0)
		fail("fork");
	if (live == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		trigger_wait();
		_exit(getppid() == root ? 0 : 1);
	}
	kill(z1, SIGTERM);
	kill(z2, SIGUSR1);
	for (int i = 0; i < 2; i++) {
		pid_t z = i ? z2 : z1;
		memset(&si, 0, sizeof(si));
		while (waitid(P_PID, z, &si, WEXITED | WNOWAIT))
			tick();
	}
	printf("pids %d %d %d %d\n", root, z1, z2, live);
	ready();
	trigger_wait();

	for (int i = 0; i < 2; i++) {
		pid_t z = i ? z2 : z1;
		int sig = i ? SIGUSR1 : SIGTERM;
		memset(&si, 0, sizeof(si));
		CHECK(waitid(P_PID, z, &si, WEXITED) == 0, "waitid(%d): %s", z, strerror(errno));
		CHECK(si.si_pid == z, "waitid(%d): si_pid %d", z, si.si_pid);
		CHECK(si.si_code == CLD_KILLED, "zombie %d: si_code %d, expected CLD_KILLED (%d)%s",
		      z, si.si_code, CLD_KILLED, si.si_code == CLD_DUMPED ? " (core dumped)" : "");
		CHECK(si.si_status == sig, "zombie %d: killed by signal %d, expected %d", z,
		      si.si_status, sig);
		CHECK(waitpid(z, &st, WNOHANG) < 0 && errno == ECHILD,
		      "zombie %d still waitable after being reaped", z);
	}
	CHECK(waitpid(live, &st, 0) == live, "waitpid(live): %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "live child status %#x", st);
	pass();
}
