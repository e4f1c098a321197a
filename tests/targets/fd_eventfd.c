/*
 * eventfds across a checkpoint. Before READY:
 *   fd 10: eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK), fd 11 a dup of it
 *          (one description);
 *   fd 12: a counter eventfd, FD_CLOEXEC, holding 2^40 + 7 (wider than
 *          eventfd()'s 32-bit initial value);
 *   fd 13: a nonblocking counter at 0.
 * After the trigger: the flags are the same; the semaphore gives 1 five
 * times (shared between fd 10 and 11) and then EAGAIN; fd 12 reads its
 * whole count; fd 13 is empty, then counts what is written.
 */
#include "target.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing eventfd at %d: %s", at, strerror(errno));
	close(fd);
}

static uint64_t rd(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));
	if (n != sizeof(v))
		fail("read fd %d: %zd (%s)", fd, n, strerror(errno));
	return v;
}

int main(void)
{
	const uint64_t big = (1ULL << 40) + 7;
	uint64_t v = big;

	place(eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK), 10);
	if (dup2(10, 11) != 11)
		fail("dup2");
	place(eventfd(0, 0), 12);
	if (fcntl(12, F_SETFD, FD_CLOEXEC) < 0 || write(12, &v, sizeof(v)) != sizeof(v))
		fail("setting up fd 12");
	place(eventfd(0, EFD_NONBLOCK), 13);
	ready();
	trigger_wait();

	CHECK(fcntl(10, F_GETFL) & O_NONBLOCK, "fd 10 lost O_NONBLOCK");
	CHECK(!(fcntl(12, F_GETFL) & O_NONBLOCK), "fd 12 became nonblocking");
	CHECK(fcntl(13, F_GETFL) & O_NONBLOCK, "fd 13 lost O_NONBLOCK");
	CHECK(fcntl(12, F_GETFD) == FD_CLOEXEC, "fd 12 lost FD_CLOEXEC");
	CHECK(fcntl(10, F_GETFD) == 0, "fd 10 gained FD_CLOEXEC");

	/* The semaphore: 1 at a time, five in all, across both fds. */
	CHECK(rd(10) == 1, "semaphore read is not 1");
	for (int i = 0; i < 4; i++)
		CHECK(rd(i % 2 ? 10 : 11) == 1, "semaphore read %d is not 1", i + 2);
	CHECK(read(11, &v, sizeof(v)) < 0 && errno == EAGAIN,
	      "semaphore not empty after 5 reads (shared description?)");
	/* One description: a flag change on fd 11 shows on fd 10. */
	CHECK(fcntl(11, F_SETFL, 0) == 0 && !(fcntl(10, F_GETFL) & O_NONBLOCK),
	      "fd 10 and 11 are not one description");

	v = rd(12);
	CHECK(v == big, "fd 12 count %llu, expected %llu", (unsigned long long)v,
	      (unsigned long long)big);

	CHECK(read(13, &v, sizeof(v)) < 0 && errno == EAGAIN, "fd 13 not empty");
	v = 3;
	CHECK(write(13, &v, sizeof(v)) == sizeof(v), "write fd 13");
	v = 4;
	CHECK(write(13, &v, sizeof(v)) == sizeof(v), "write fd 13");
	CHECK(rd(13) == 7, "fd 13 did not count (not a counter eventfd?)");
	pass();
}
