/*
 * epoll instances across a checkpoint: the interest list with its fd
 * numbers, masks and data, level- and edge-triggered items, one-shot
 * items that already fired, a nested epoll, flags of the instance and of
 * its fds.
 *
 *   fd_epoll            the list below; after the trigger epoll_wait
 *                       must report exactly the expected events, and
 *                       EPOLL_CTL_ADD/MOD/DEL work on the saved numbers
 *   fd_epoll stale      an item whose fd was closed (its file lives on at
 *                       another fd): rtcr must refuse; after the trigger
 *                       the epoll must still work
 *   fd_epoll reused     the same, with another file now at that number
 *   fd_epoll tree       the list below, and a child holding the same
 *                       epoll (its owner, where the list is rebuilt, is
 *                       the parent): after the parent's checks the child
 *                       sees the parent's changes through its fds
 *
 * Layout (fd: what):
 *   10  outer epoll (EPOLL_CLOEXEC), 11 a dup of it without cloexec
 *   12  inner epoll, O_NONBLOCK, watched by the outer
 *   20/21 pipe A   outer: EPOLLIN level, data 0xa1..., 1 byte in flight
 *   22/23 pipe B   outer: EPOLLIN|EPOLLET, empty
 *   24/25 pipe C   outer: EPOLLIN|EPOLLONESHOT, fired (disarmed), 1 byte in flight
 *   26/27 pipe D   outer: EPOLLIN|EPOLLET|EPOLLONESHOT, fired, empty
 *   28/29 pipe E   inner: EPOLLIN level, 1 byte in flight
 *   30/31 pipe F   outer: write end, EPOLLOUT level
 *   32/33 pipe G   outer: EPOLLIN|EPOLLET, 1 byte arrived and not yet reported
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "target.h"

#define DA 0xa1a1a1a1a1a1a1a1ULL
#define DB 0xb2ULL
#define DC 0xc3c3c3c300000000ULL
#define DD 0xd4ULL
#define DE 0xe5e5ULL
#define DF 0x66ULL
#define DG 0x7777777777777777ULL
#define DI 0xf0f0ULL    /* the outer's item on the inner epoll */

static void pipe_at(int r, int w)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	CHECK(dup2(p[0], r) == r && dup2(p[1], w) == w, "dup2");
	close(p[0]);
	close(p[1]);
}

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD %d: %s", fd, strerror(errno));
}

static void put(int fd)
{
	CHECK(write(fd, "x", 1) == 1, "write %d: %s", fd, strerror(errno));
}

struct want {
	uint32_t events;
	uint64_t data;
};

/* epoll_wait must report exactly these (in any order), nothing else. */
static void expect(int ep, const char *step, const struct want *w, int n)
{
	struct epoll_event evs[16];
	int got, seen[16] = { 0 };

	do
		got = epoll_wait(ep, evs, 16, 0);
	while (got < 0 && errno == EINTR);
	CHECK(got >= 0, "%s: epoll_wait: %s", step, strerror(errno));
	for (int i = 0; i < got; i++) {
		int k;
		for (k = 0; k < n; k++)
			if (!seen[k] && w[k].data == evs[i].data.u64)
				break;
		CHECK(k < n, "%s: unexpected event %#x data %#llx", step, evs[i].events,
		      (unsigned long long)evs[i].data.u64);
		CHECK(evs[i].events == w[k].events, "%s: data %#llx: events %#x, expected %#x", step,
		      (unsigned long long)w[k].data, evs[i].events, w[k].events);
		seen[k] = 1;
	}
	for (int k = 0; k < n; k++)
		CHECK(seen[k], "%s: no event for data %#llx (%d events)", step,
		      (unsigned long long)w[k].data, got);
}

static int stale(int reuse)
{
	int ep = epoll_create1(0), p[2];

	CHECK(ep >= 0 && dup2(ep, 7) == 7, "epoll at 7");
	close(ep);
	CHECK(pipe(p) == 0 && dup2(p[0], 9) == 9 && dup2(p[1], 10) == 10, "pipe at 9/10");
	close(p[0]);
	close(p[1]);
	add(7, 9, EPOLLIN, 0x99);
	/* The file lives on at 20; the item (keyed by fd 9) stays. */
	CHECK(dup2(9, 20) == 20, "dup2");
	close(9);
	if (reuse) {
		int n = open("/dev/null", O_RDONLY);
		CHECK(n >= 0 && dup2(n, 9) == 9, "/dev/null at 9");
		close(n);
	}
	ready();
	trigger_wait();
	put(10);
	{
		struct want w[] = { { EPOLLIN, 0x99 } };
		expect(7, "after the refused dump", w, 1);
	}
	pass();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int ep, in, tree = !strcmp(mode, "tree"), sync[2] = { -1, -1 }, up[2] = { -1, -1 };
	pid_t child = -1;

	if (!strcmp(mode, "stale") || !strcmp(mode, "reused"))
		stale(!strcmp(mode, "reused"));
	CHECK(!*mode || tree, "unknown mode %s", mode);

	ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0 && dup3(ep, 10, O_CLOEXEC) == 10 && dup2(10, 11) == 11, "outer epoll");
	close(ep);
	in = epoll_create1(0);
	CHECK(in >= 0 && dup2(in, 12) == 12, "inner epoll");
	close(in);
	CHECK(fcntl(12, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	for (int fd = 20; fd < 34; fd += 2)
		pipe_at(fd, fd + 1);

	/* The one-shot items fire first, alone, and are left disarmed. */
	add(10, 24, EPOLLIN | EPOLLONESHOT, DC);
	add(10, 26, EPOLLIN | EPOLLET | EPOLLONESHOT, DD);
	put(25);
	put(27);
	{
		struct want w[] = { { EPOLLIN, DC }, { EPOLLIN, DD } };
		char c;
		expect(10, "firing the one-shot items", w, 2);
		CHECK(read(26, &c, 1) == 1, "draining D");
	}
	add(10, 20, EPOLLIN, DA);
	add(10, 22, EPOLLIN | EPOLLET, DB);
	add(11, 12, EPOLLIN, DI);       /* through the dup: the same instance */
	add(10, 31, EPOLLOUT, DF);
	add(10, 32, EPOLLIN | EPOLLET, DG);
	add(12, 28, EPOLLIN, DE);
	put(21);
	put(29);
	put(33);
	if (tree) {
		CHECK(pipe(sync) == 0 && pipe(up) == 0, "pipe");
		child = fork();
		CHECK(child >= 0, "fork");
		if (child == 0) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x42 };
			char c;
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(sync[1]);
			close(up[0]);
			close(25);    /* the parent's check of C's hangup needs it */
			CHECK(write(up[1], "u", 1) == 1, "child: up");
			close(up[1]);
			trigger_wait();
			CHECK(read(sync[0], &c, 1) == 1, "child: sync");
			/* The parent deleted A: the same instance. */
			CHECK(epoll_ctl(11, EPOLL_CTL_DEL, 20, NULL) < 0 && errno == ENOENT,
			      "child: A still in the epoll");
			CHECK(epoll_ctl(10, EPOLL_CTL_ADD, 20, &ev) == 0, "child: ADD A: %s",
			      strerror(errno));
			exit(0);
		}
		close(sync[0]);
		close(up[1]);
		{
			char c;
			CHECK(read(up[0], &c, 1) == 1, "the child did not come up");
			close(up[0]);
		}
	}

	ready();
	trigger_wait();

	CHECK(fcntl(10, F_GETFD) == FD_CLOEXEC, "fd 10: FD_CLOEXEC lost");
	CHECK(fcntl(11, F_GETFD) == 0, "fd 11: FD_CLOEXEC set");
	CHECK(fcntl(12, F_GETFL) & O_NONBLOCK, "fd 12: O_NONBLOCK lost");
	CHECK(!(fcntl(10, F_GETFL) & O_NONBLOCK), "fd 10: O_NONBLOCK set");
	{
		struct want w[] = { { EPOLLIN, DA }, { EPOLLIN, DI }, { EPOLLOUT, DF }, { EPOLLIN, DG } };
		expect(10, "first wait", w, 4);
		/* G was edge-triggered: reported once. */
		expect(11, "second wait", w, 3);
	}
	{
		/* B: a new edge. D: stays disarmed however much arrives. */
		struct want w[] = { { EPOLLIN, DA }, { EPOLLIN, DI }, { EPOLLOUT, DF }, { EPOLLIN, DB } };
		put(23);
		put(27);
		expect(10, "after writing to B and D", w, 4);
		expect(10, "B's edge consumed", w, 3);
	}
	{
		/* C is disarmed for good: not even EPOLLHUP when its writer goes. */
		struct want w[] = { { EPOLLIN, DA }, { EPOLLIN, DI }, { EPOLLOUT, DF } };
		close(25);
		expect(10, "C's writer closed", w, 3);
	}
	{
		/* C re-armed by MOD on its saved number, with new data. */
		struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = DC + 1 };
		struct want w[] = { { EPOLLIN, DA }, { EPOLLIN, DI }, { EPOLLOUT, DF },
				    { EPOLLIN | EPOLLHUP, DC + 1 } };
		CHECK(epoll_ctl(11, EPOLL_CTL_MOD, 24, &ev) == 0, "MOD C: %s", strerror(errno));
		expect(10, "C re-armed", w, 4);
		expect(10, "C fired again", w, 3);
	}
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = DA };
		struct want w[] = { { EPOLLIN, DI }, { EPOLLOUT, DF } };
		CHECK(epoll_ctl(10, EPOLL_CTL_ADD, 20, &ev) < 0 && errno == EEXIST,
		      "ADD of A again: not EEXIST (%s)", strerror(errno));
		CHECK(epoll_ctl(10, EPOLL_CTL_DEL, 20, NULL) == 0, "DEL A: %s", strerror(errno));
		CHECK(epoll_ctl(10, EPOLL_CTL_DEL, 20, NULL) < 0 && errno == ENOENT, "DEL A twice");
		CHECK(epoll_ctl(10, EPOLL_CTL_DEL, 28, NULL) < 0 && errno == ENOENT,
		      "E (the inner's) is in the outer");
		expect(10, "A deleted", w, 2);
	}
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = DD };
		struct want w[] = { { EPOLLIN, DI }, { EPOLLOUT, DF }, { EPOLLIN, DD } };
		struct want wi[] = { { EPOLLIN, DE } };
		CHECK(epoll_ctl(10, EPOLL_CTL_MOD, 26, &ev) == 0, "MOD D: %s", strerror(errno));
		expect(10, "D re-armed, level", w, 3);
		expect(12, "inner", wi, 1);
	}
	if (tree) {
		struct want w[] = { { EPOLLIN, DI }, { EPOLLOUT, DF }, { EPOLLIN, DD }, { EPOLLIN, 0x42 } };
		int st;
		CHECK(write(sync[1], "s", 1) == 1, "sync");
		CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
		/* The child's item, keyed by its fd 20, which is the same file. */
		expect(10, "after the child's ADD", w, 4);
	}
	pass();
}
