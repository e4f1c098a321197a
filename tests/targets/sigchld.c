/*
 * SIGCHLD's flags, which matter even at SIG_DFL.
 *
 *   sigchld nocldwait  SIG_DFL with SA_NOCLDWAIT: after the restore the
 *                      flag reads back and a child that exits leaves no
 *                      zombie: wait() fails with ECHILD.
 *   sigchld handler    an SA_SIGINFO handler with SA_NOCLDSTOP: a child
 *                      that stops raises no SIGCHLD, a child killed does,
 *                      with CLD_KILLED and its pid.
 *   sigchld pending    SIGCHLD blocked, a child exits with status 7 and
 *                      is reaped: the kernel's SIGCHLD (CLD_EXITED, the
 *                      child's pid and status) waits, pending. After the
 *                      restore, unblocking delivers it with that siginfo.
 */
#include "target.h"

#include <sys/prctl.h>

#include <signal.h>
#include <sys/wait.h>

static volatile int hits, code, spid, sstatus;

static void h(int sig, siginfo_t *si, void *uc)
{
	hits++;
	code = si->si_code;
	spid = si->si_pid;
	sstatus = si->si_status;
}

static void pending_mode(void)
{
	struct sigaction sa;
	sigset_t set, p;
	pid_t ch;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = h;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ch = fork();
	if (ch == 0)
		_exit(7);
	if (waitpid(ch, NULL, 0) != ch)
		fail("waitpid: %s", strerror(errno));
	sigpending(&p);
	CHECK(sigismember(&p, SIGCHLD), "SIGCHLD not pending after the child exited");
	ready();
	trigger_wait();
	sigpending(&p);
	CHECK(sigismember(&p, SIGCHLD), "SIGCHLD no longer pending");
	CHECK(hits == 0, "SIGCHLD delivered while blocked");
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	CHECK(hits == 1, "SIGCHLD handler ran %d times", hits);
	CHECK(code == CLD_EXITED && spid == ch && sstatus == 7,
	      "SIGCHLD siginfo: code %d pid %d status %d, expected %d %d 7", code, spid, sstatus,
	      CLD_EXITED, ch);
	pass();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "nocldwait";
	int nocldwait = !strcmp(mode, "nocldwait");
	struct sigaction sa, got;
	int flags;
	pid_t ch;

	if (!strcmp(mode, "pending"))
		pending_mode();
	memset(&sa, 0, sizeof(sa));
	if (nocldwait) {
		sa.sa_handler = SIG_DFL;
		sa.sa_flags = SA_NOCLDWAIT;
	} else {
		sa.sa_sigaction = h;
		sa.sa_flags = SA_SIGINFO | SA_NOCLDSTOP | SA_RESTART;
	}
	flags = sa.sa_flags;
	if (sigaction(SIGCHLD, &sa, NULL))
		fail("sigaction: %s", strerror(errno));
	ready();
	trigger_wait();

	sigaction(SIGCHLD, NULL, &got);
	CHECK((got.sa_flags & flags) == flags, "SIGCHLD flags %#x, expected %#x set",
	      got.sa_flags, flags);
	if (nocldwait) {
		int st;
		pid_t w;
		CHECK(got.sa_handler == SIG_DFL, "SIGCHLD handler no longer SIG_DFL");
		ch = fork();
		if (ch == 0)
			_exit(3);
		w = waitpid(-1, &st, 0);
		CHECK(w < 0 && errno == ECHILD,
		      "SA_NOCLDWAIT: wait returned %d (status %#x): the child became a zombie", w, st);
		pass();
	}
	CHECK(got.sa_sigaction == h, "SIGCHLD handler changed");
	ch = fork();
	if (ch == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never left stopped by a failed test */
		raise(SIGSTOP);
		_exit(0);
	}
	{
		int st;
		pid_t w = waitpid(ch, &st, WUNTRACED);
		CHECK(w == ch && WIFSTOPPED(st), "child did not stop");
		CHECK(hits == 0, "SA_NOCLDSTOP: SIGCHLD for a stopped child (code %d)", code);
		kill(ch, SIGKILL);
		w = waitpid(ch, &st, 0);
		CHECK(w == ch && WIFSIGNALED(st), "child not killed");
		CHECK(hits == 1 && code == CLD_KILLED && spid == ch,
		      "SIGCHLD: hits %d code %d pid %d (child %d)", hits, code, spid, ch);
	}
	pass();
}
