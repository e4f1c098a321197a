/*
 * Helper for bench/tree_threads.sh: "subreaper REPORT CMD [ARGS...]" runs
 * CMD (with every fd above 2 closed) as a child of a child subreaper,
 * like tests/targets/reaper.c, and times it: when CMD ends it appends
 * "EXIT <status> <ns from fork to CMD's exit>" to the file REPORT (not to
 * stderr, which a dumped target shares and whose size restore checks). Processes CMD
 * leaves behind (a target's children killed by rtcr dump, the tree
 * rtcr restore --detach restored) become its children and are reaped as
 * soon as they die, so their pids are free again at once. Exits with
 * CMD's status once no child is left.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	int rc = 0, st;
	long long t0;
	pid_t c, w;
	FILE *rep;

	if (argc < 3) {
		fprintf(stderr, "usage: subreaper REPORT CMD [ARGS...]\n");
		return 2;
	}
	rep = fopen(argv[1], "a");
	if (!rep) {
		perror(argv[1]);
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	t0 = now_ns();
	c = fork();
	if (c < 0) {
		perror("fork");
		return 2;
	}
	if (c == 0) {
		syscall(SYS_close_range, 3, ~0U, 0);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
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
			long long t = now_ns() - t0;
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			fprintf(rep, "EXIT %d %lld\n", rc, t);
			fflush(rep);
		}
	}
	return rc;
}
