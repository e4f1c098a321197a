/*
 * A stopped child. The child raise(SIGSTOP)s itself; the root sees the
 * stop with waitpid(WUNTRACED) before READY, so that report is consumed.
 * Prints "pids ROOT CHILD".
 *
 * After the trigger the root checks that the stop is not reported a
 * second time (the restore must not look like a new stop to the parent),
 * prints "waiting for SIGCONT", and waits: the test checks the child is
 * still stopped, then sends it SIGCONT. The root must see it continue
 * (WCONTINUED), then lets it go on (a byte through a pipe, so its exit
 * cannot overtake the continue report); it exits with status 33 after
 * checking its parent.
 */
#include "target.h"

#include <signal.h>
#include <sys/wait.h>

int main(void)
{
	pid_t c, root = getpid(), w;
	int st, p[2];
	char ch;

	if (pipe(p))
		fail("pipe");
	c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		close(p[1]);
		raise(SIGSTOP);
		if (read(p[0], &ch, 1) != 1)
			_exit(35);
		_exit(getppid() == root ? 33 : 34);
	}
	if (waitpid(c, &st, WUNTRACED) != c || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
		fail("the child did not stop (status %#x)", st);
	close(p[0]);
	printf("pids %d %d\n", root, c);
	ready();
	trigger_wait();

	w = waitpid(c, &st, WUNTRACED | WCONTINUED | WNOHANG);
	if (w != 0)
		fail("waitpid after the trigger returned %d, status %#x (stopped %d, sig %d): "
		     "a stop or continue reported again", w, st, WIFSTOPPED(st),
		     WIFSTOPPED(st) ? WSTOPSIG(st) : 0);
	printf("waiting for SIGCONT\n");
	fflush(stdout);
	w = waitpid(c, &st, WCONTINUED);
	CHECK(w == c, "waitpid(WCONTINUED): %s", strerror(errno));
	CHECK(WIFCONTINUED(st), "expected a continue report, got status %#x", st);
	CHECK(write(p[1], "x", 1) == 1, "write: %s", strerror(errno));
	w = waitpid(c, &st, 0);
	CHECK(w == c, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 33,
	      "child status %#x (exit 34: its parent changed; 35: the pipe broke)", st);
	pass();
}
