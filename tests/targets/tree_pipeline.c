/*
 * A three-level pipeline with data in flight, its pipes full at the dump.
 *
 *   root --fork--> child (setsid: leads its session)
 *                    --fork--> grandchild (setpgid: leads its own group
 *                                          in the child's session)
 *
 * The grandchild writes numbered lines "%08u\n" (0 .. TOTAL-1) into pipe
 * A; the child copies pipe A to pipe B; the root reads pipe B and checks
 * that every line is the next number (no loss, no duplicate, no garbage).
 * Before READY the root reads the first PRE lines, then stops reading and
 * waits until both writers are blocked in write(2): both pipes are full.
 * The root prints "pids ROOT CHILD GRANDCHILD" before READY.
 *
 * After the trigger the root reads everything. At their end (which is
 * after any restore, since both were blocked at READY), the grandchild
 * and the child check their own session, process group and parent, and
 * exit with a distinct status if one is wrong; the root checks theirs,
 * the count of lines, and the exit statuses it reaps.
 */
#include "target.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define TOTAL 40000u
#define PRE 1000u
#define LINE 9

/* Is pid blocked in write(2)? /proc/PID/syscall starts with the number. */
static int in_write(pid_t pid)
{
	char path[64], buf[64] = "";
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return atoi(buf) == SYS_write && buf[0] != 'r';
}

static void write_all(int fd, const char *p, size_t n, int err)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(err);
		p += w;
		n -= w;
	}
}

static __attribute__((noreturn)) void grandchild(int wfd, pid_t child)
{
	char line[LINE + 1];

	if (setpgid(0, 0))
		_exit(20);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (unsigned i = 0; i < TOTAL; i++) {
		snprintf(line, sizeof(line), "%08u\n", i);
		write_all(wfd, line, LINE, 21);
	}
	close(wfd);
	if (getppid() != child)
		_exit(22);
	if (getsid(0) != child)
		_exit(23);
	if (getpgid(0) != getpid())
		_exit(24);
	_exit(0);
}

static __attribute__((noreturn)) void child(int wfd, pid_t root)
{
	int a[2], st;
	pid_t gc;
	char buf[4096];
	ssize_t n;

	if (setsid() != getpid())
		_exit(30);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (pipe(a))
		_exit(31);
	gc = fork();
	if (gc < 0)
		_exit(32);
	if (gc == 0) {
		close(a[0]);
		close(wfd);
		grandchild(a[1], getppid());
	}
	close(a[1]);
	/* Tell the root the grandchild's pid through the pipe's first bytes. */
	write_all(wfd, (char *)&gc, sizeof(gc), 33);
	for (;;) {
		n = read(a[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(34);
		if (n == 0)
			break;
		write_all(wfd, buf, n, 35);
	}
	close(wfd);
	/* The grandchild (maybe a zombie by now) still has its ids. */
	if (getpgid(gc) != gc || getsid(gc) != getpid())
		_exit(40);
	if (waitpid(gc, &st, 0) != gc)
		_exit(36);
	if (!WIFEXITED(st))
		_exit(37);
	if (WEXITSTATUS(st))
		_exit(WEXITSTATUS(st));  /* the grandchild's own code, 20-24 */
	if (getppid() != root)
		_exit(38);
	if (getsid(0) != getpid() || getpgid(0) != getpid())
		_exit(39);
	_exit(0);
}

/* Read lines from fd, checking each is the next number; up to max lines. */
static unsigned next;
static char part[LINE];
static size_t npart;

static int consume(int fd, unsigned max)
{
	char buf[LINE * 64];

	while (next < max) {
		size_t want = (size_t)(max - next) * LINE - npart;
		ssize_t n = read(fd, buf, want < sizeof(buf) ? want : sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("read: %s", strerror(errno));
		if (n == 0)
			return 0;   /* EOF */
		for (ssize_t k = 0; k < n; k++) {
			part[npart++] = buf[k];
			if (npart < LINE)
				continue;
			char expect[LINE + 1];
			snprintf(expect, sizeof(expect), "%08u\n", next);
			if (memcmp(part, expect, LINE))
				fail("line %u: got '%.8s' (lost, duplicated or garbled data)", next, part);
			next++;
			npart = 0;
		}
	}
	return 1;
}

int main(void)
{
	int b[2], st, avail = 0;
	pid_t c, gc;
	char extra;

	if (pipe(b))
		fail("pipe");
	c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		close(b[0]);
		child(b[1], getppid());
	}
	close(b[1]);
	if (read(b[0], &gc, sizeof(gc)) != sizeof(gc))
		fail("reading the grandchild's pid (child status?)");
	printf("pids %d %d %d\n", getpid(), c, gc);
	fflush(stdout);
	if (!consume(b[0], PRE))
		fail("EOF after %u lines", next);
	/* Both writers blocked in write: both pipes are full. Check twice
	 * in a row, some time apart. */
	for (int ok = 0; ok < 2; ) {
		for (int i = 0; i < 20; i++)
			tick();
		ok = in_write(c) && in_write(gc) ? ok + 1 : 0;
	}
	ioctl(b[0], FIONREAD, &avail);
	printf("in flight in pipe B: %d bytes\n", avail);
	ready();
	trigger_wait();

	if (getsid(c) != c)
		fail("child's session %d, expected %d", getsid(c), c);
	if (getpgid(c) != c)
		fail("child's process group %d, expected %d", getpgid(c), c);
	if (getpgid(gc) != gc)
		fail("grandchild's process group %d, expected %d", getpgid(gc), gc);
	if (getsid(gc) != c)
		fail("grandchild's session %d, expected %d", getsid(gc), c);
	if (!consume(b[0], TOTAL))
		fail("EOF after %u lines of %u", next, TOTAL);
	if (npart)
		fail("a partial line after the last");
	if (read(b[0], &extra, 1) != 0)
		fail("data after line %u", TOTAL - 1);
	if (waitpid(c, &st, 0) != c)
		fail("waitpid(child): %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail("child status %#x (exit code %d: see tree_pipeline.c)", st,
		     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	printf("%u lines in sequence\n", next);
	pass();
}
