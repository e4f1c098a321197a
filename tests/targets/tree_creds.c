/*
 * Members running under other credentials.
 *
 *   root (uid 0)
 *     child: groups {1000, 2000}, gids 1000/1001/1002, uids 1000/1001/1002
 *       grandchild: forked by the child, then uids 1001/1001/1001
 *     nobody: groups {}, gids and uids 65534
 *
 * Those without root cannot open the trigger file (the test dir is 0700):
 * the root relays the trigger through shared memory. After it each
 * member checks its own ids (getresuid, getresgid, getgroups) and exits
 * with a distinct code if one differs. Prints "pids ROOT CHILD GRANDCHILD
 * NOBODY".
 */
#include "target.h"

#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static volatile unsigned long *shm;

static int ids_are(uid_t r, uid_t e, uid_t s, gid_t gr, gid_t ge, gid_t gs, int ng,
		   const gid_t *g)
{
	uid_t a, b, c;
	gid_t x, y, z, l[8];
	int n;

	if (getresuid(&a, &b, &c) || a != r || b != e || c != s)
		return 0;
	if (getresgid(&x, &y, &z) || x != gr || y != ge || z != gs)
		return 0;
	n = getgroups(8, l);
	if (n != ng)
		return 0;
	for (int i = 0; i < n; i++)
		if (l[i] != g[i])
			return 0;
	return 1;
}

/* Signal readiness, then wait for the root's go (about 10 s at most). */
static int ready_and_wait(int slot)
{
	shm[slot] = 1;
	for (int i = 0; i < 10000; i++) {
		if (shm[0])
			return 0;
		tick();
	}
	return -1;
}

int main(void)
{
	static const gid_t cg[2] = { 1000, 2000 };
	pid_t root = getpid(), c, n;
	int st;

	shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		fail("mmap");
	c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		pid_t g;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(2, cg) || setresgid(1000, 1001, 1002) || setresuid(1000, 1001, 1002))
			_exit(60);
		g = fork();
		if (g < 0)
			_exit(61);
		if (g == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (setresuid(1001, 1001, 1001))
				_exit(70);
			shm[5] = getpid();
			if (ready_and_wait(3))
				_exit(71);
			if (!ids_are(1001, 1001, 1001, 1000, 1001, 1002, 2, cg))
				_exit(72);
			_exit(0);
		}
		if (ready_and_wait(2))
			_exit(62);
		if (!ids_are(1000, 1001, 1002, 1000, 1001, 1002, 2, cg))
			_exit(63);
		if (waitpid(g, &st, 0) != g)
			_exit(64);
		if (!WIFEXITED(st))
			_exit(65);
		_exit(WEXITSTATUS(st));
	}
	n = fork();
	if (n < 0)
		fail("fork");
	if (n == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(80);
		if (ready_and_wait(4))
			_exit(81);
		if (!ids_are(65534, 65534, 65534, 65534, 65534, 65534, 0, NULL))
			_exit(82);
		_exit(0);
	}
	for (int i = 0; !(shm[2] && shm[3] && shm[4]); i++) {
		CHECK(i < 10000, "the members did not start");
		tick();
	}
	printf("pids %d %d %lu %d\n", root, c, shm[5], n);
	ready();
	trigger_wait();

	{
		uid_t a, b, c2;
		CHECK(getresuid(&a, &b, &c2) == 0 && a == 0 && b == 0 && c2 == 0,
		      "the root's uids %d/%d/%d", a, b, c2);
	}
	shm[0] = 1;
	CHECK(waitpid(c, &st, 0) == c, "waitpid(child): %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child status %#x (exit code %d: see tree_creds.c)", st,
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	CHECK(waitpid(n, &st, 0) == n, "waitpid(nobody): %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "nobody's status %#x (exit code %d: see tree_creds.c)", st,
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	pass();
}
