/*
 * A token ring through three generations, for repeated cycles:
 *
 *   root --pipe--> child --pipe--> grandchild --pipe--> root
 *
 * Each hop adds 1 to the token; each member checks that what it receives
 * is what it last sent plus 2 (the other two added one each), and counts
 * its rounds in shared memory. The root sleeps 1 ms per round and writes
 * its round count to STATUSFILE (pwrite of a fixed-size line; the file
 * is opened before the forks, so all three share that description).
 * Prints "pids ROOT CHILD GRANDCHILD".
 *
 * After the trigger the root sends a stop token around, checks the
 * others' round counts against its own and their exit statuses, prints
 * "count N" and PASS.
 */
#include "target.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define STOP (~0UL)

static volatile unsigned long *shm;

static int get(int fd, unsigned long *v)
{
	ssize_t n;
	do
		n = read(fd, v, sizeof(*v));
	while (n < 0 && errno == EINTR);
	return n == sizeof(*v) ? 0 : -1;
}

static int put(int fd, unsigned long v)
{
	ssize_t n;
	do
		n = write(fd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	return n == sizeof(v) ? 0 : -1;
}

/* A forwarding member: exit codes base+0.. say what went wrong. */
static void member(int in, int out, int idx, int base)
{
	unsigned long v, last = STOP;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		if (get(in, &v))
			_exit(base + 1);
		if (v == STOP) {
			if (put(out, STOP))
				_exit(base + 2);
			return;
		}
		if (last != STOP && v != last + 2)
			_exit(base + 3);
		last = v + 1;
		shm[idx]++;
		if (put(out, last))
			_exit(base + 4);
	}
}

int main(int argc, char **argv)
{
	int rc[2], cg[2], gr[2], fd, st;
	pid_t c, g;
	unsigned long v, last = 0;
	char line[21];

	if (argc < 2)
		fail("usage: tree_ring STATUSFILE");
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || shm == MAP_FAILED || pipe(rc) || pipe(cg) || pipe(gr))
		fail("setup: %s", strerror(errno));
	snprintf(line, sizeof(line), "%19lu\n", 0UL);
	if (pwrite(fd, line, 20, 0) != 20)
		fail("status write");
	c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		close(rc[1]);
		close(gr[0]);
		g = fork();
		if (g < 0)
			_exit(9);
		if (g == 0) {
			close(rc[0]);
			close(cg[1]);
			member(cg[0], gr[1], 2, 20);
			_exit(0);
		}
		close(cg[0]);
		close(gr[1]);
		shm[10] = g;
		member(rc[0], cg[1], 1, 10);
		close(cg[1]);
		if (waitpid(g, &st, 0) != g || !WIFEXITED(st))
			_exit(8);
		_exit(WEXITSTATUS(st));
	}
	close(rc[0]);
	close(cg[0]);
	close(cg[1]);
	close(gr[1]);
	while (!shm[10])
		tick();
	printf("pids %d %d %lu\n", getpid(), c, shm[10]);
	fflush(stdout);
	if (put(rc[1], 0))
		fail("first write");
	for (int r = 0; r < 20; r++) {   /* a few rounds before READY */
		if (get(gr[0], &v))
			fail("the ring broke before READY");
		CHECK(v == last + 2, "root got %lu after sending %lu", v, last);
		shm[0]++;
		last = v + 1;
		if (put(rc[1], last))
			fail("write");
	}
	ready();
	for (;;) {
		if (get(gr[0], &v)) {
			waitpid(c, &st, 0);
			fail("the ring broke after %lu rounds; child status %#x (code %d: see tree_ring.c)",
			     shm[0], st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		}
		if (v == STOP)
			break;
		CHECK(v == last + 2, "root got %lu after sending %lu", v, last);
		shm[0]++;
		last = v + 1;
		snprintf(line, sizeof(line), "%19lu\n", shm[0]);
		if (pwrite(fd, line, 20, 0) != 20)
			fail("status write: %s", strerror(errno));
		tick();
		if (put(rc[1], trigger_set(trigger_path()) ? STOP : last))
			fail("write: %s", strerror(errno));
	}
	CHECK(waitpid(c, &st, 0) == c, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x (code %d: see tree_ring.c)",
	      st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	CHECK(shm[1] == shm[0] && shm[2] == shm[0], "round counts root %lu child %lu grandchild %lu",
	      shm[0], shm[1], shm[2]);
	printf("count %lu\n", shm[0]);
	pass();
}
