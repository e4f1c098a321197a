/*
 * An eventfd, a timerfd and a signalfd shared by a parent and its child
 * through fork (one description each, in two processes). Before READY:
 *   fd 20: eventfd(4, EFD_SEMAPHORE | EFD_NONBLOCK);
 *   fd 21: timerfd CLOCK_MONOTONIC, every 100 ms, blocking;
 *   fd 22: signalfd for SIGUSR1 (blocked), nonblocking; the child has a
 *          SIGUSR1 of its own pending (raised before READY).
 * After the trigger: the child reads its pending SIGUSR1 (a signalfd
 * reads its reader's signals), takes one from the semaphore, sees the
 * timer tick, and exits 0; then the parent finds 3 left in the semaphore
 * (the count is shared), no SIGUSR1 of its own, and a ticking timer.
 */
#include "target.h"

#include <sys/prctl.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing fd %d: %s", at, strerror(errno));
	close(fd);
}

static uint64_t wait_read(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, ms) != 1)
		fail("pid %d: fd %d: not readable within %d ms", getpid(), fd, ms);
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		fail("pid %d: read fd %d: %s", getpid(), fd, strerror(errno));
	return v;
}

static void common_checks(const char *who)
{
	CHECK(fcntl(20, F_GETFL) & O_NONBLOCK, "%s: eventfd lost O_NONBLOCK", who);
	CHECK(!(fcntl(21, F_GETFL) & O_NONBLOCK), "%s: timerfd became nonblocking", who);
	CHECK(fcntl(22, F_GETFL) & O_NONBLOCK, "%s: signalfd lost O_NONBLOCK", who);
	CHECK(wait_read(21, 1000) >= 1, "%s: timer did not tick", who);
}

int main(void)
{
	struct itimerspec its = { { 0, 100000000 }, { 0, 100000000 } };
	struct signalfd_siginfo si;
	sigset_t m;
	int sync[2], st;
	pid_t kid;
	char c;
	uint64_t v;

	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &m, NULL))
		fail("sigprocmask");
	place(eventfd(4, EFD_SEMAPHORE | EFD_NONBLOCK), 20);
	place(timerfd_create(CLOCK_MONOTONIC, 0), 21);
	if (timerfd_settime(21, 0, &its, NULL))
		fail("timerfd_settime");
	place(signalfd(-1, &m, SFD_NONBLOCK), 22);
	if (pipe(sync))
		fail("pipe");
	kid = fork();
	if (kid < 0)
		fail("fork");
	if (kid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlives a failed test */
		close(sync[0]);
		if (raise(SIGUSR1) || write(sync[1], "x", 1) != 1)
			fail("child setup");
		close(sync[1]);
		trigger_wait();
		common_checks("child");
		CHECK(read(22, &si, sizeof(si)) == sizeof(si), "child: no SIGUSR1 on the signalfd (%s)",
		      strerror(errno));
		CHECK(si.ssi_signo == SIGUSR1 && si.ssi_pid == (uint32_t)getpid(),
		      "child: read signal %u from %u", si.ssi_signo, si.ssi_pid);
		CHECK(wait_read(20, 0) == 1, "child: semaphore read is not 1");
		exit(0);
	}
	close(sync[1]);
	if (read(sync[0], &c, 1) != 1)
		fail("child did not set up");
	close(sync[0]);
	ready();
	trigger_wait();
	if (waitpid(kid, &st, 0) != kid)
		fail("waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	common_checks("parent");
	CHECK(read(22, &si, sizeof(si)) < 0 && errno == EAGAIN,
	      "parent: signalfd has a signal (the child's?)");
	for (int i = 0; i < 3; i++)
		CHECK(wait_read(20, 0) == 1, "parent: semaphore read %d is not 1", i + 1);
	CHECK(read(20, &v, sizeof(v)) < 0 && errno == EAGAIN,
	      "parent: semaphore not empty after 3 (the count is not shared?)");
	pass();
}
