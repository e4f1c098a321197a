/*
 * pidfds across a checkpoint, in a parent and its child. Before READY:
 *   parent: fd 10 a pidfd of the child (PIDFD_NONBLOCK), fd 11 a pidfd
 *           of itself (FD_CLOEXEC);
 *   child:  fd 12 a pidfd of its parent.
 * After the trigger: the child checks that fd 12 refers to its parent
 * (fdinfo Pid, pidfd_send_signal(0)) and exits 0 (1 if not); the parent
 * checks its fds' pids and flags, sees fd 10 not readable while the
 * child lives, then readable once it exited, and collects it through it
 * (waitid(P_PIDFD)) with its status.
 */
#include "target.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#include <sys/prctl.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing fd at %d: %s", at, strerror(errno));
	close(fd);
}

static int fdinfo_pid(int fd)
{
	char p[64], buf[512], *s;
	FILE *f;
	size_t n;
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = fopen(p, "r");
	if (!f)
		return -2;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	s = strstr(buf, "\nPid:");
	return s ? atoi(s + 5) : -3;
}

int main(void)
{
	struct pollfd pfd;
	siginfo_t si;
	pid_t kid, me = getpid();

	kid = fork();
	if (kid < 0)
		fail("fork");
	if (kid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		place(pidfd_open(me, 0), 12);
		trigger_wait();
		if (fdinfo_pid(12) != getppid() || syscall(SYS_pidfd_send_signal, 12, 0, NULL, 0))
			_exit(1);
		_exit(0);
	}
	place(pidfd_open(kid, PIDFD_NONBLOCK), 10);
	place(pidfd_open(me, 0), 11);
	CHECK(!fcntl(11, F_SETFD, FD_CLOEXEC), "FD_CLOEXEC");
	/* The child has its pidfd before READY. */
	for (int i = 0; i < 5000; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/fd/12", kid);
		if (!access(p, F_OK))
			break;
		tick();
	}
	ready();
	trigger_wait();

	CHECK(fdinfo_pid(10) == kid, "fd 10 refers to pid %d, not the child %d", fdinfo_pid(10), kid);
	CHECK(fdinfo_pid(11) == me, "fd 11 refers to pid %d, not %d", fdinfo_pid(11), me);
	CHECK(fcntl(10, F_GETFL) & O_NONBLOCK, "fd 10 lost PIDFD_NONBLOCK");
	CHECK(!(fcntl(11, F_GETFL) & O_NONBLOCK), "fd 11 became nonblocking");
	CHECK(fcntl(11, F_GETFD) == FD_CLOEXEC && fcntl(10, F_GETFD) == 0, "FD_CLOEXEC");
	CHECK(!syscall(SYS_pidfd_send_signal, 11, 0, NULL, 0), "pidfd_send_signal to self");
	/* The child exits once it saw the trigger: fd 10 becomes readable. */
	pfd = (struct pollfd){ .fd = 10, .events = POLLIN };
	CHECK(poll(&pfd, 1, 10000) == 1 && (pfd.revents & POLLIN), "fd 10 never readable");
	memset(&si, 0, sizeof(si));
	CHECK(!waitid(P_PIDFD, 10, &si, WEXITED), "waitid(P_PIDFD): %s", strerror(errno));
	CHECK(si.si_pid == kid && si.si_code == CLD_EXITED, "waitid: pid %d code %d", si.si_pid,
	      si.si_code);
	CHECK(si.si_status == 0, "the child's pidfd of its parent was wrong (status %d)", si.si_status);
	pass();
}
