/*
 * Checkpointed while blocked in epoll_wait(2) (argv[1] "wait") or
 * epoll_pwait(2) ("pwait"), no timeout, on an epoll whose one item is
 * stdin (a pipe) with data 0x5ca1ab1e. After restore stdin is rtcr
 * restore's stdin: the item is added again on fd 0, which is now that
 * pipe; the test writes "rtcr-input-<argv[2]>\n" there. epoll_wait must
 * report fd 0's item with its data; it may fail once with EINTR (the
 * kernel never restarts it: the freeze interrupts it) and is called
 * again, like any program does.
 */
#include <sys/epoll.h>

#include "scwait.h"

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "wait";
	int ep = epoll_create1(EPOLL_CLOEXEC), eintr = 0;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x5ca1ab1e }, out;
	char want[64], buf[128];
	ssize_t n;
	long r;

	snprintf(want, sizeof(want), "rtcr-input-%s\n", argc > 2 ? argv[2] : "0");
	CHECK(ep >= 0, "epoll_create1: %s", strerror(errno));
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) == 0, "epoll_ctl: %s", strerror(errno));
	ready();
	for (;;) {
		memset(&out, 0, sizeof(out));
		if (!strcmp(mode, "wait"))
			r = rawsys(SYS_epoll_wait, ep, (long)&out, 1, -1, 0, 0);
		else if (!strcmp(mode, "pwait"))
			r = rawsys(SYS_epoll_pwait, ep, (long)&out, 1, -1, 0, 8);
		else
			fail("unknown mode %s", mode);
		if (r == -EINTR) {
			CHECK(++eintr < 5, "epoll_%s: EINTR again and again", mode);
			continue;
		}
		CHECK(r >= 0, "epoll_%s: %s", mode, strerror(-r));
		CHECK(r == 1, "epoll_%s returned %ld", mode, r);
		CHECK(out.events == EPOLLIN && out.data.u64 == 0x5ca1ab1e,
		      "epoll_%s: events %#x data %#llx", mode, out.events, (unsigned long long)out.data.u64);
		break;
	}
	n = read(0, buf, sizeof(buf) - 1);
	CHECK(n >= 0, "read(stdin): %s", strerror(errno));
	buf[n] = 0;
	CHECK(!strcmp(buf, want), "read '%s' from stdin, expected '%s'", buf, want);
	printf("epoll_%s: got the input, %d EINTR\n", mode, eintr);
	pass();
}
