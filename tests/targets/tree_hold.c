/*
 * A three-level tree (root, child, grandchild) where one member holds
 * something rtcr refuses, for checking that a refused dump names the
 * member and the object and leaves every member running untouched.
 *
 *   tree_hold KIND WHO [PATH]
 *
 * KIND: none, pipe (PATH: a pipe whose other end is outside the tree, as
 * /proc/PID/fd/N, opened at fd 5), io_uring, userfaultfd (with an area
 * registered for missing faults) or
 * orphan_session (the root is a child subreaper; the child calls setsid,
 * forks the grandchild and exits: the grandchild is adopted by the root
 * but stays in the dead child's session and group).
 * WHO: root, child or grandchild (ignored for none and orphan_session).
 *
 * No member has a parent-death signal: the tree also serves to check a
 * restore refused because a member's pid is in use. Each member counts
 * in shared memory until the trigger; then checks that it went on
 * counting and that its handle still works. Prints "pids ROOT CHILD
 * GRANDCHILD" (without the child for orphan_session).
 */
#include "target.h"

#include <fcntl.h>
#include <stdint.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/wait.h>

static volatile unsigned long *shm;
static const char *kind, *who, *path;

/* Take the handle if this member is the one: returns its fd or -1. */
static int hold(const char *me)
{
	int fd = -1;

	if (strcmp(who, me) || !strcmp(kind, "none") || !strcmp(kind, "orphan_session"))
		return -1;
	if (!strcmp(kind, "pipe")) {
		int p = path ? open(path, O_RDONLY) : -1;
		if (p < 0 || dup2(p, 5) < 0)
			_exit(90);
		close(p);
		fd = 5;
	} else if (!strcmp(kind, "io_uring")) {
		struct io_uring_params pa;
		memset(&pa, 0, sizeof(pa));
		fd = syscall(__NR_io_uring_setup, 4, &pa);
		if (fd < 0)
			_exit(77);
	} else if (!strcmp(kind, "userfaultfd")) {
		/* A userfaultfd with an area registered for missing faults. */
		struct uffdio_api api = { .api = UFFD_API };
		struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
		char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		fd = syscall(__NR_userfaultfd, O_CLOEXEC);
		if (fd < 0 || p == MAP_FAILED || ioctl(fd, UFFDIO_API, &api))
			_exit(77);
		reg.range.start = (uintptr_t)p;
		reg.range.len = 4096;
		if (ioctl(fd, UFFDIO_REGISTER, &reg))
			_exit(91);
	} else {
		_exit(92);
	}
	return fd;
}

/* Count until the trigger; then check the count went on and the fd. */
static int run(int idx, int fd)
{
	unsigned long before;

	while (!trigger_set(trigger_path())) {
		shm[idx]++;
		tick();
	}
	before = shm[idx];
	if (before < 10)
		return 1;
	if (fd >= 0 && fcntl(fd, F_GETFD) < 0)
		return 2;
	return 0;
}

int main(int argc, char **argv)
{
	int orphan, st, fd;
	pid_t root = getpid(), c, g;

	if (argc < 3)
		fail("usage: tree_hold KIND WHO [PATH]");
	kind = argv[1];
	who = argv[2];
	path = argc > 3 ? argv[3] : NULL;
	orphan = !strcmp(kind, "orphan_session");
	shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		fail("mmap");
	if (orphan && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		fail("PR_SET_CHILD_SUBREAPER");
	c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		int cfd;
		if (orphan && setsid() < 0)
			_exit(93);
		cfd = hold("child");
		g = fork();
		if (g < 0)
			_exit(94);
		if (g == 0) {
			int gfd = hold("grandchild");
			if (orphan)
				while (getppid() != root)
					tick();
			shm[2] = getpid();
			_exit(run(3, gfd) ? 95 : 0);
		}
		if (orphan)
			_exit(0);
		shm[1] = 1;
		if (run(4, cfd))
			_exit(96);
		if (waitpid(g, &st, 0) != g || !WIFEXITED(st))
			_exit(97);
		_exit(WEXITSTATUS(st));
	}
	fd = hold("root");
	if (orphan) {
		CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child status %#x", st);
	}
	for (int i = 0; !shm[2] || (!orphan && !shm[1]); i++) {
		CHECK(i < 10000, "the members did not start");
		tick();
	}
	if (orphan)
		printf("pids %d %lu\n", root, shm[2]);
	else
		printf("pids %d %d %lu\n", root, c, shm[2]);
	ready();
	CHECK(run(5, fd) == 0, "the root stopped counting or lost its fd");
	g = orphan ? (pid_t)shm[2] : c;
	CHECK(waitpid(g, &st, 0) == g, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (code %d: see tree_hold.c)", st,
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	pass();
}
