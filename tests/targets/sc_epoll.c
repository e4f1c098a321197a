/*
 * Holds an epoll fd and blocks in epoll_wait() (1 ms at a time, polling
 * the trigger): rtcr must refuse to dump it, naming epoll, and leave it
 * running. After the trigger it checks its epoll fd still works.
 */
#include <sys/epoll.h>

#include "target.h"

int main(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), p[2];
	struct epoll_event ev = { .events = EPOLLIN }, out;

	CHECK(ep >= 0, "epoll_create1: %s", strerror(errno));
	CHECK(pipe(p) == 0, "pipe");
	ev.data.fd = p[0];
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0, "epoll_ctl: %s", strerror(errno));
	ready();
	while (!trigger_set(trigger_path()))
		CHECK(epoll_wait(ep, &out, 1, 1) == 0 || errno == EINTR, "epoll_wait: %s",
		      strerror(errno));
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(epoll_wait(ep, &out, 1, 1000) == 1 && out.data.fd == p[0], "epoll fd broken");
	pass();
}
