/*
 * signalfds across a checkpoint. SIGUSR1, SIGUSR2, SIGTERM and
 * SIGRTMIN+3 are blocked. Before READY:
 *   fd 7: signalfd for SIGUSR1, SIGTERM, SIGRTMIN+3, nonblocking; fd 12
 *         a dup of it;
 *   fd 8: signalfd for SIGUSR2, blocking, FD_CLOEXEC;
 *   pending (blocked): SIGTERM by kill(), SIGRTMIN+3 by sigqueue (value 42).
 * The test sends SIGUSR1 after the restore, then triggers.
 * After the trigger: fd 7 reads SIGUSR1 (from another process), SIGTERM
 * and SIGRTMIN+3 with its value, then EAGAIN; fd 8 has nothing until
 * SIGUSR2 is raised, then reads it; flags and the shared description hold.
 */
#include "target.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

static void place(int fd, int at)
{
	if (fd < 0 || dup3(fd, at, fcntl(fd, F_GETFD) & FD_CLOEXEC ? O_CLOEXEC : 0) != at)
		fail("placing signalfd at %d: %s", at, strerror(errno));
	close(fd);
}

static struct signalfd_siginfo rd(int fd)
{
	struct signalfd_siginfo si;
	ssize_t n = read(fd, &si, sizeof(si));
	if (n != sizeof(si))
		fail("read signalfd %d: %zd (%s)", fd, n, strerror(errno));
	return si;
}

int main(void)
{
	const int rt = SIGRTMIN + 3;
	sigset_t blk, m1, m2;
	struct signalfd_siginfo si;
	struct pollfd pfd = { .fd = 8, .events = POLLIN };
	union sigval val = { .sival_int = 42 };

	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	sigaddset(&blk, SIGUSR2);
	sigaddset(&blk, SIGTERM);
	sigaddset(&blk, rt);
	if (sigprocmask(SIG_BLOCK, &blk, NULL))
		fail("sigprocmask");
	sigemptyset(&m1);
	sigaddset(&m1, SIGUSR1);
	sigaddset(&m1, SIGTERM);
	sigaddset(&m1, rt);
	sigemptyset(&m2);
	sigaddset(&m2, SIGUSR2);
	place(signalfd(-1, &m1, SFD_NONBLOCK), 7);
	if (dup2(7, 12) != 12)
		fail("dup2");
	place(signalfd(-1, &m2, SFD_CLOEXEC), 8);
	if (kill(getpid(), SIGTERM) || sigqueue(getpid(), rt, val))
		fail("queueing signals");
	ready();
	trigger_wait();

	CHECK(fcntl(7, F_GETFL) & O_NONBLOCK, "fd 7 lost O_NONBLOCK");
	CHECK(!(fcntl(8, F_GETFL) & O_NONBLOCK), "fd 8 became nonblocking");
	CHECK(fcntl(8, F_GETFD) == FD_CLOEXEC, "fd 8 lost FD_CLOEXEC");
	CHECK(fcntl(7, F_GETFD) == 0, "fd 7 gained FD_CLOEXEC");

	/* Lowest standard signal first, then the real-time one. */
	si = rd(7);
	CHECK(si.ssi_signo == SIGUSR1, "first signal %u, expected SIGUSR1 (sent after restore)",
	      si.ssi_signo);
	CHECK(si.ssi_pid != (uint32_t)getpid(), "SIGUSR1 came from ourselves?");
	si = rd(12);
	CHECK(si.ssi_signo == SIGTERM, "second signal %u, expected SIGTERM (pending at dump)",
	      si.ssi_signo);
	CHECK(si.ssi_pid == (uint32_t)getpid(), "SIGTERM sender %u", si.ssi_pid);
	si = rd(7);
	CHECK(si.ssi_signo == (uint32_t)rt, "third signal %u, expected SIGRTMIN+3", si.ssi_signo);
	CHECK(si.ssi_int == 42, "SIGRTMIN+3 value %d, expected 42", si.ssi_int);
	CHECK(read(7, &si, sizeof(si)) < 0 && errno == EAGAIN, "fd 7 not empty after 3 signals");

	CHECK(poll(&pfd, 1, 0) == 0, "fd 8 readable with no SIGUSR2 pending");
	CHECK(raise(SIGUSR2) == 0, "raise");
	si = rd(8);
	CHECK(si.ssi_signo == SIGUSR2, "fd 8 read %u, expected SIGUSR2", si.ssi_signo);

	/* fd 8 reads only its own mask: a SIGUSR1 stays for fd 7. */
	CHECK(raise(SIGUSR1) == 0, "raise");
	CHECK(poll(&pfd, 1, 0) == 0, "fd 8 readable with only SIGUSR1 pending (mask lost?)");
	si = rd(7);
	CHECK(si.ssi_signo == SIGUSR1, "fd 7 read %u, expected SIGUSR1", si.ssi_signo);

	/* One description: a flag change on fd 12 shows on fd 7. */
	CHECK(fcntl(12, F_SETFL, 0) == 0 && !(fcntl(7, F_GETFL) & O_NONBLOCK),
	      "fd 7 and 12 are not one description");
	pass();
}
