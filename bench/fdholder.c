/*
 * Benchmark target for bench/fds.sh (not a test: it checks nothing after
 * restore, it only has to be restorable and idle).
 *
 *   fdholder N DIR
 *
 * Raises its RLIMIT_NOFILE to the hard limit, then opens N fds (rounded
 * down to a multiple of 10) in groups of ten, each group:
 *   4 regular files   DIR/f0..f15 opened again (each its own description)
 *   2 a pipe          16 bytes in flight
 *   1 an eventfd      count 7
 *   2 a socketpair    unix stream, 16 bytes queued one way
 *   1 an epoll        watching the group's eventfd and pipe read end
 * then prints "PIDS pid" and "READY" and sleeps in pause().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stdout, "FAIL: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) / 10 : 1;
	const char *dir = argc > 2 ? argv[2] : "/tmp";
	char path[4096];
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit");
	if ((rlim_t)n * 10 + 16 > rl.rlim_max) {
		errno = EMFILE;
		die("the hard RLIMIT_NOFILE is too low");
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("setrlimit");
	for (int k = 0; k < 16; k++) {
		int fd;
		snprintf(path, sizeof(path), "%s/f%d", dir, k);
		fd = open(path, O_RDWR | O_CREAT, 0600);
		if (fd < 0 || pwrite(fd, "0123456789abcdef", 16, 0) != 16)
			die(path);
		close(fd);
	}
	for (int g = 0; g < n; g++) {
		int p[2], sp[2], ev, ep;
		struct epoll_event e = { .events = EPOLLIN };
		for (int k = 0; k < 4; k++) {
			snprintf(path, sizeof(path), "%s/f%d", dir, (g * 4 + k) % 16);
			if (open(path, k & 1 ? O_RDONLY : O_RDWR) < 0)
				die(path);
		}
		if (pipe(p) || write(p[1], "in flight pipe..", 16) != 16)
			die("pipe");
		ev = eventfd(7, 0);
		if (ev < 0)
			die("eventfd");
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || write(sp[0], "in flight sock..", 16) != 16)
			die("socketpair");
		ep = epoll_create1(0);
		if (ep < 0)
			die("epoll_create1");
		e.data.fd = ev;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e))
			die("epoll_ctl");
		e.data.fd = p[0];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e))
			die("epoll_ctl");
	}
	printf("PIDS %d\nREADY\n", getpid());
	fflush(stdout);
	for (;;)
		pause();
}
