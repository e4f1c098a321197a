/*
 * Both ends of TCP connections inside the tree: the parent listens on
 * 127.0.0.1 (fd 10) and ::1 (fd 12), its child connects to both (its fds
 * 20 and 21), the parent accepts (fds 11 and 13). Over IPv4 each side
 * fills the connection until the other's window and its own send buffer
 * are full; over IPv6 a few bytes wait each way. The counts go through a pipe before READY.
 * After the trigger: addresses as before, every byte in order both ways,
 * then ping/pong on both connections and an orderly close.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "inet.h"

static int listener(int fam)
{
	union isa a;
	socklen_t al = lo_addr(&a, fam, 0);
	int l = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_STREAM, 0);
	CHECK(l >= 0 && bind(l, &a.sa, al) == 0 && listen(l, 4) == 0, "listen: %s", strerror(errno));
	return l;
}

static int connect_to(int fam, int port)
{
	union isa a;
	socklen_t al = lo_addr(&a, fam, port);
	int s = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_STREAM, 0);
	CHECK(s >= 0 && connect(s, &a.sa, al) == 0, "connect to port %d: %s", port, strerror(errno));
	return s;
}

int main(void)
{
	int p4, p6, up[2], down[2], st;
	size_t mine, theirs;
	pid_t child;
	int names[4];

	signal(SIGPIPE, SIG_IGN);
	move_to(listener(4), 10);
	move_to(listener(6), 12);
	p4 = port_of(10, false);
	p6 = port_of(12, false);
	CHECK(pipe(up) == 0 && pipe(down) == 0, "pipe");
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(10);
		close(12);
		move_to(connect_to(4, p4), 20);
		move_to(connect_to(6, p6), 21);
		names[0] = port_of(20, false);
		names[1] = port_of(21, false);
		put(21, "c6", 2);
		mine = fill(20, 'A');
		CHECK(write(up[1], &mine, sizeof(mine)) == sizeof(mine), "pipe");
		CHECK(read(down[0], &theirs, sizeof(theirs)) == sizeof(theirs), "pipe");
		trigger_wait();
		CHECK(port_of(20, false) == names[0] && port_of(20, true) == p4 && port_of(21, false) == names[1] &&
		      port_of(21, true) == p6, "child: addresses changed");
		expect(21, "p6");
		drain(20, 'a', theirs);
		put(20, "ping4", 5);
		expect(20, "pong4");
		put(21, "ping6", 5);
		expect(21, "pong6");
		close(20);
		close(21);
		_exit(0);
	}
	move_to(accept(10, NULL, NULL), 11);
	move_to(accept(12, NULL, NULL), 13);
	names[2] = port_of(11, true);
	names[3] = port_of(13, true);
	put(13, "p6", 2);
	mine = fill(11, 'a');
	CHECK(write(down[1], &mine, sizeof(mine)) == sizeof(mine), "pipe");
	CHECK(read(up[0], &theirs, sizeof(theirs)) == sizeof(theirs), "pipe");
	wait_inq(13, 2);
	usleep(200000);
	printf("FILLED %zu %zu\n", mine, theirs);
	ready();
	trigger_wait();
	CHECK(port_of(11, false) == p4 && port_of(11, true) == names[2] && port_of(13, false) == p6 &&
	      port_of(13, true) == names[3], "parent: addresses changed");
	expect(13, "c6");
	drain(11, 'A', theirs);
	expect(11, "ping4");
	put(11, "pong4", 5);
	expect(13, "ping6");
	put(13, "pong6", 5);
	CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	{
		char c;
		CHECK(recv(11, &c, 1, 0) == 0 && recv(13, &c, 1, 0) == 0, "no orderly close: %s", strerror(errno));
	}
	pass();
}
