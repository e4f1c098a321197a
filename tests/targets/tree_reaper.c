/*
 * A child subreaper with an orphan. The root sets PR_SET_CHILD_SUBREAPER
 * and forks a child, which forks a grandchild and exits (status 5); the
 * grandchild is re-parented to the root. The root does not reap the
 * child before READY: it is a zombie. Prints "pids ROOT CHILD ORPHAN".
 *
 * After the trigger: the root is still a subreaper, the orphan's parent
 * is the root (seen by both), the root reaps the zombie child (status 5)
 * and then the orphan (status 0, or 1 if its parent was wrong).
 */
#include "target.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

int main(void)
{
	pid_t root = getpid(), c, g;
	int p[2], st, sub = 0;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	if (pipe(p))
		fail("pipe");
	c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		g = fork();
		if (g < 0)
			_exit(6);
		if (g == 0) {
			/* Wait to be adopted by the root, then for the trigger. */
			while (getppid() != root)
				tick();
			trigger_wait();
			_exit(getppid() == root ? 0 : 1);
		}
		if (write(p[1], &g, sizeof(g)) != sizeof(g))
			_exit(7);
		_exit(5);
	}
	close(p[1]);
	if (read(p[0], &g, sizeof(g)) != sizeof(g))
		fail("reading the grandchild's pid");
	close(p[0]);
	/* The child is dead (not reaped) and the grandchild adopted. */
	while (waitid(P_PID, c, &(siginfo_t){ 0 }, WEXITED | WNOWAIT))
		tick();
	for (int i = 0; ; i++) {
		char path[64];
		FILE *f;
		int ppid = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", g);
		f = fopen(path, "r");
		if (f && fscanf(f, "%*d (%*[^)]) %*c %d", &ppid) != 1)
			ppid = 0;
		if (f)
			fclose(f);
		if (ppid == root)
			break;
		CHECK(i < 10000, "the grandchild was not adopted (ppid %d)", ppid);
		tick();
	}
	printf("pids %d %d %d\n", root, c, g);
	ready();
	trigger_wait();

	CHECK(prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0) == 0 && sub == 1,
	      "the root is no longer a child subreaper (%d)", sub);
	CHECK(waitpid(c, &st, 0) == c, "waitpid(zombie child): %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5, "zombie child status %#x", st);
	CHECK(waitpid(g, &st, 0) == g, "waitpid(orphan): %s (not the root's child?)", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "orphan status %#x (1: its parent was wrong)", st);
	pass();
}
