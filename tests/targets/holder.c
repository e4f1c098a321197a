/*
 * Holds one kind of handle or state rtcr does not support (argv[1]), and
 * keeps counting. Used to check that a dump refuses by name and leaves
 * the process running untouched: after the trigger it checks that it
 * kept counting all along and that its handle still works.
 * HOLDER_MIB=N: it also holds N MiB of written memory (a live dump then
 * shares its final walk with the spare CPU), unchanged at the end.
 */
#include "target.h"

#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/wait.h>

static volatile unsigned long counter;
static char linked[64];

static void unlink_linked(void)
{
	unlink(linked);
}

static int sleeper(void *a)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;)
		pause();
	return 0;
}

static void *spin(void *a)
{
	for (;;)
		pause();
	return a;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "";
	int fd = -1, fds[2];
	(void)fds;
	unsigned long before;
	char *mem = NULL;
	size_t nmem = 0;

	if (!strcmp(kind, "pipe")) {
		/* argv[2]: a pipe whose other end is outside, as /proc/PID/fd/N */
		int p = argc > 2 ? open(argv[2], O_RDONLY) : -1;
		if (p < 0 || dup2(p, 5) < 0)
			fail("opening the outside pipe %s", argc > 2 ? argv[2] : "(none)");
		close(p);
		fd = 5;
	} else if (!strcmp(kind, "eventfd")) {
		fd = eventfd(3, 0);
	} else if (!strcmp(kind, "pidfd")) {
		/* Of its parent, outside the checkpointed process. */
		fd = syscall(SYS_pidfd_open, getppid(), 0);
	} else if (!strcmp(kind, "socket")) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
			fail("socketpair");
		fd = fds[0];
	} else if (!strcmp(kind, "netlink")) {
		fd = socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */);
		if (fd < 0)
			fail("netlink socket");
	} else if (!strcmp(kind, "epoll")) {
		fd = epoll_create1(0);
	} else if (!strcmp(kind, "io_uring")) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		fd = syscall(__NR_io_uring_setup, 4, &p);
		if (fd < 0)
			skip("io_uring_setup unavailable");
	} else if (!strcmp(kind, "thread")) {
		pthread_t t;
		pthread_create(&t, NULL, spin, NULL);
	} else if (!strcmp(kind, "child")) {
		if (fork() == 0) {
			/* Goes when the holder goes: tests kill only what they track. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
	} else if (!strcmp(kind, "clone_files")) {
		/* A child process sharing the fd table (not a thread). */
		static char stack[64 << 10] __attribute__((aligned(16)));
		if (clone(sleeper, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL) < 0)
			fail("clone(CLONE_FILES)");
	} else if (!strcmp(kind, "memfd_map")) {
		int m = memfd_create("held", 0);
		char *p;
		if (ftruncate(m, 4096))
			fail("ftruncate");
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
		if (p == MAP_FAILED)
			fail("mmap");
		p[0] = 1;
		close(m);
	} else if (!strcmp(kind, "sysv_outside")) {
		/* A SysV segment also attached by a process outside the tree:
		 * a grandchild, orphaned, which prints its pid and dies with
		 * this process. The segment goes with the last of them. */
		int id = shmget(IPC_PRIVATE, 4096, 0600 | IPC_CREAT);
		char *p = id >= 0 ? shmat(id, NULL, 0) : (void *)-1;
		pid_t k;
		if (p == (void *)-1)
			fail("shmget/shmat: %s", strerror(errno));
		shmctl(id, IPC_RMID, NULL);
		p[0] = 1;
		fflush(stdout);
		k = fork();
		if (k == 0) {
			pid_t holder = getppid();
			if (fork() == 0) {
				while (kill(holder, 0) == 0)
					tick();
				_exit(0);
			}
			_exit(0);
		}
		waitpid(k, NULL, 0);
	} else if (!strcmp(kind, "deleted_file")) {
		/* Deleted while open, and too big to go into the image. */
		char path[] = "/tmp/rtcr-holder-XXXXXX";
		fd = mkstemp(path);
		unlink(path);
		if (fd >= 0 && ftruncate(fd, 65 << 20))
			fail("ftruncate");
	} else if (!strcmp(kind, "deleted_linked")) {
		/* Deleted under one name, still linked under another. */
		char path[] = "/tmp/rtcr-holder-XXXXXX";
		fd = mkstemp(path);
		snprintf(linked, sizeof(linked), "%s-link", path);
		if (fd < 0 || link(path, linked))
			fail("link");
		unlink(path);
	} else if (!strcmp(kind, "async_outside")) {
		/* Signal-driven I/O whose signals go to process argv[2]. */
		if (argc < 3 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) ||
		    fcntl(fds[0], F_SETOWN, atoi(argv[2])) ||
		    fcntl(fds[0], F_SETFL, O_ASYNC))
			fail("async socket");
		fd = fds[0];
	} else if (!strcmp(kind, "lease")) {
		/* A read lease (F_SETLEASE) on a file of its own. */
		snprintf(linked, sizeof(linked), "/tmp/rtcr-holder-lease-XXXXXX");
		fd = mkstemp(linked);
		if (fd >= 0)
			close(fd);
		fd = open(linked, O_RDONLY);
		if (fd < 0 || fcntl(fd, F_SETLEASE, F_RDLCK))
			fail("lease: %s", strerror(errno));
	} else if (strcmp(kind, "none")) {
		fail("unknown kind %s", kind);
	}
	if (fd < 0 && (!strcmp(kind, "eventfd") || !strcmp(kind, "epoll") || !strcmp(kind, "pidfd") ||
		       !strcmp(kind, "deleted_file")))
		fail("creating %s", kind);
	if (linked[0])
		atexit(unlink_linked);
	if (getenv("HOLDER_MIB")) {
		size_t len = strtoull(getenv("HOLDER_MIB"), NULL, 10) << 20;
		mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			fail("mmap %zu bytes", len);
		for (size_t i = 0; i < len / 4096; i++)
			mem[i * 4096] = (char)(i * 7 + 1);
		nmem = len / 4096;
	}
	ready();
	while (!trigger_set(trigger_path())) {
		counter++;
		tick();
	}
	before = counter;
	/* Still alive and counting, and the handle still works. */
	for (int i = 0; i < 5; i++)
		tick();
	if (fd >= 0)
		CHECK(fcntl(fd, F_GETFD) >= 0, "fd %d of kind %s was closed", fd, kind);
	CHECK(counter == before, "counter moved unexpectedly");
	for (size_t i = 0; i < nmem; i++)
		CHECK(mem[i * 4096] == (char)(i * 7 + 1), "page %zu of its memory changed", i);
	CHECK(counter > 10, "barely counted (%lu): was the process stopped?", counter);
	pass();
}
