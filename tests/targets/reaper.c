/*
 * Test helper, not a checkpoint target: "reaper CMD [ARGS...]" runs CMD
 * as a child subreaper. Processes that CMD leaves behind (rtcr restore
 * --detach's restored process) become its children, and it reaps them
 * as soon as they die, so their pid is free again at once (this
 * machine's init reaps orphans only every few seconds). Prints
 * "EXIT <status>" on stderr when CMD ends, and exits with that status
 * once no child is left.
 */
#include "target.h"

#include <sys/prctl.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	int rc = 0, st;
	pid_t c, w;

	if (argc < 2) {
		fprintf(stderr, "usage: reaper CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	c = fork();
	if (c == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	for (;;) {
		w = wait(&st);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (w == c) {
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			fprintf(stderr, "EXIT %d\n", rc);
			fflush(stderr);
		}
	}
	return rc;
}
