/*
 * Signal-driven I/O across a checkpoint. Before READY:
 *   fd 10/11  a pipe; fd 10 O_ASYNC|O_NONBLOCK, F_SETOWN to the process,
 *             F_SETSIG SIGRTMIN+2 (siginfo carries the fd and POLL_IN)
 *   fd 12/13  a socketpair; fd 12 O_ASYNC, F_SETOWN_EX to the main
 *             thread (F_OWNER_TID), default SIGIO
 * Each signal source is tried once before READY (native control).
 * (A regular file keeps no O_ASYNC: it has no fasync, the kernel drops it.)
 * After the trigger: owners, signals and O_ASYNC are back; data written
 * into the pipe and the socket raises their signals, with their fds.
 */
#include "target.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

static volatile int rt_count, rt_fd, rt_code, io_count;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	rt_count++;
	rt_fd = si->si_fd;
	rt_code = si->si_code;
}

static void on_io(int sig)
{
	io_count++;
}

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing fd at %d: %s", at, strerror(errno));
	close(fd);
}

static void wait_count(volatile int *c, int want, const char *what)
{
	for (int i = 0; i < 5000 && *c < want; i++)
		usleep(1000);
	CHECK(*c >= want, "%s: no signal (count %d)", what, *c);
}

static void round_trip(int want)
{
	char b[16];
	CHECK(write(11, "x", 1) == 1, "write pipe");
	wait_count(&rt_count, want, "pipe");
	CHECK(rt_fd == 10 && rt_code == POLL_IN, "pipe signal: fd %d code %d", rt_fd, rt_code);
	CHECK(read(10, b, sizeof(b)) == 1, "read pipe");
	CHECK(write(13, "y", 1) == 1, "write socket");
	wait_count(&io_count, want, "socket");
	CHECK(read(12, b, sizeof(b)) == 1, "read socket");
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	struct f_owner_ex own;
	int p[2], sp[2];

	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	CHECK(!sigaction(SIGRTMIN + 2, &sa, NULL), "sigaction");
	signal(SIGIO, on_io);
	CHECK(!pipe(p) && !socketpair(AF_UNIX, SOCK_STREAM, 0, sp), "pipe");
	place(p[0], 10);
	place(p[1], 11);
	place(sp[0], 12);
	place(sp[1], 13);
	CHECK(!fcntl(10, F_SETOWN, getpid()), "F_SETOWN");
	CHECK(!fcntl(10, F_SETSIG, SIGRTMIN + 2), "F_SETSIG");
	CHECK(!fcntl(10, F_SETFL, O_ASYNC | O_NONBLOCK), "F_SETFL 10");
	own.type = F_OWNER_TID;
	own.pid = (pid_t)syscall(SYS_gettid);
	CHECK(!fcntl(12, F_SETOWN_EX, &own), "F_SETOWN_EX");
	CHECK(!fcntl(12, F_SETFL, O_ASYNC), "F_SETFL 12");
	round_trip(1);
	ready();
	trigger_wait();

	CHECK(fcntl(10, F_GETOWN) == getpid(), "fd 10 owner %d", fcntl(10, F_GETOWN));
	CHECK(fcntl(10, F_GETSIG) == SIGRTMIN + 2, "fd 10 signal %d", fcntl(10, F_GETSIG));
	CHECK((fcntl(10, F_GETFL) & (O_ASYNC | O_NONBLOCK | O_ACCMODE)) == (O_ASYNC | O_NONBLOCK),
	      "fd 10 flags %#x", fcntl(10, F_GETFL));
	CHECK(!fcntl(12, F_GETOWN_EX, &own) && own.type == F_OWNER_TID && own.pid == getpid(),
	      "fd 12 owner %d/%d", own.type, own.pid);
	CHECK(fcntl(12, F_GETSIG) == 0, "fd 12 signal");
	CHECK(fcntl(12, F_GETFL) & O_ASYNC, "fd 12 O_ASYNC");
	CHECK(!(fcntl(11, F_GETFL) & O_ASYNC) && !(fcntl(13, F_GETFL) & O_ASYNC), "O_ASYNC on 11/13");
	CHECK(rt_count == 1 && io_count == 1, "signals before data: %d %d", rt_count, io_count);
	round_trip(2);
	pass();
}
