/*
 * A Unix stream server across a checkpoint, and the client side of a
 * connection to a server outside the tree.
 *
 *   fd_unix_server PATH     the parent listens on PATH (fd 10, backlog 16)
 *                           and has accepted the child's first connection
 *                           (fd 11; the child's end is its fd 20); the
 *                           child's second connection (its fd 21) waits in
 *                           the backlog. In flight: "hello-from-A" to the
 *                           parent, "welcome" to the child. After the
 *                           trigger: the names match, exactly one
 *                           connection is waiting and accept() gives it,
 *                           data flows on both.
 *   fd_unix_server listen PATH
 *                           an echo server on PATH, one connection after
 *                           the other (not checkpointed: the outside peer)
 *   fd_unix_server client PATH
 *                           connects to PATH (fd 10) and checks one echo;
 *                           after the trigger: connected to PATH again,
 *                           echoes work (what --unix-reconnect restores)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "target.h"

static socklen_t addr_of(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static void connect_at(const char *path, int fd)
{
	struct sockaddr_un a;
	socklen_t al = addr_of(&a, path);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(s >= 0 && connect(s, (struct sockaddr *)&a, al) == 0, "connect %s: %s", path, strerror(errno));
	CHECK(dup2(s, fd) == fd, "dup2");
	close(s);
}

/* getsockname/getpeername must give PATH (or nothing if path is NULL). */
static void name_is(int fd, bool peer, const char *path)
{
	struct sockaddr_un a;
	socklen_t al = sizeof(a);
	int r = peer ? getpeername(fd, (struct sockaddr *)&a, &al) : getsockname(fd, (struct sockaddr *)&a, &al);
	CHECK(r == 0, "fd %d: get%sname: %s", fd, peer ? "peer" : "sock", strerror(errno));
	if (!path) {
		CHECK(al == sizeof(sa_family_t), "fd %d: %s named (%d bytes), expected unnamed", fd,
		      peer ? "peer" : "socket", (int)al);
		return;
	}
	CHECK(al == offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1 && !strcmp(a.sun_path, path),
	      "fd %d: %s name '%.*s' (len %d), expected %s", fd, peer ? "peer" : "socket",
	      (int)(al > 2 ? al - 2 : 0), a.sun_path, (int)al, path);
}

static void put(int fd, const char *s)
{
	CHECK(send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s), "send on %d: %s", fd, strerror(errno));
}

static void expect(int fd, const char *s, bool wait)
{
	char b[64];
	size_t n = strlen(s), off = 0;
	while (off < n) {
		ssize_t r = recv(fd, b + off, n - off, wait ? 0 : MSG_DONTWAIT);
		CHECK(r > 0, "fd %d: expected '%s', got %zu bytes then %s", fd, s, off,
		      r < 0 ? strerror(errno) : "EOF");
		off += r;
	}
	CHECK(!memcmp(b, s, n), "fd %d: expected '%s', got '%.*s'", fd, s, (int)n, b);
}

static int echo_server(const char *path)
{
	struct sockaddr_un a;
	socklen_t al = addr_of(&a, path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);

	unlink(path);
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, al) == 0 && listen(l, 4) == 0, "listen %s: %s", path,
	      strerror(errno));
	ready();
	for (;;) {
		int c = accept(l, NULL, NULL);
		char b[256];
		ssize_t n;
		if (c < 0)
			continue;
		while ((n = read(c, b, sizeof(b))) > 0)
			if (write(c, b, n) != n)
				break;
		close(c);
	}
}

static int client(const char *path)
{
	connect_at(path, 10);
	put(10, "first");
	expect(10, "first", true);
	ready();
	trigger_wait();
	name_is(10, true, path);
	name_is(10, false, NULL);
	put(10, "after-restore");
	expect(10, "after-restore", true);
	pass();
}

int main(int argc, char **argv)
{
	struct sockaddr_un a;
	socklen_t al;
	const char *path;
	int sync[2], up[2], l, c;
	pid_t child;
	char ch;

	if (argc == 3 && !strcmp(argv[1], "listen"))
		return echo_server(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "client"))
		return client(argv[2]);
	CHECK(argc == 2, "usage: fd_unix_server PATH | listen PATH | client PATH");
	path = argv[1];
	al = addr_of(&a, path);
	unlink(path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, al) == 0, "bind %s: %s", path, strerror(errno));
	CHECK(listen(l, 16) == 0 && dup2(l, 10) == 10, "listen");
	close(l);
	CHECK(pipe(sync) == 0 && pipe(up) == 0, "pipe");
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(10);
		close(sync[1]);
		close(up[0]);
		connect_at(path, 20);
		put(20, "hello-from-A");
		CHECK(write(up[1], "1", 1) == 1, "child: up");
		CHECK(read(sync[0], &ch, 1) == 1, "child: sync 1");
		connect_at(path, 21);
		CHECK(write(up[1], "2", 1) == 1, "child: up");
		close(up[1]);
		trigger_wait();
		CHECK(read(sync[0], &ch, 1) == 1, "child: sync 2");
		name_is(20, true, path);
		name_is(20, false, NULL);
		name_is(21, true, path);
		expect(20, "welcome", false);
		put(21, "from-B");
		put(20, "more-from-A");
		exit(0);
	}
	close(sync[0]);
	close(up[1]);
	CHECK(read(up[0], &ch, 1) == 1, "the child did not connect");
	c = accept(10, NULL, NULL);
	CHECK(c >= 0 && dup2(c, 11) == 11, "accept: %s", strerror(errno));
	close(c);
	put(11, "welcome");
	CHECK(write(sync[1], "s", 1) == 1, "sync");
	CHECK(read(up[0], &ch, 1) == 1, "the child did not connect twice");
	close(up[0]);

	printf("pids %d %d\n", getpid(), child);
	ready();
	trigger_wait();

	name_is(10, false, path);
	name_is(11, false, path);
	name_is(11, true, NULL);
	{
		int v;
		socklen_t vl = sizeof(v);
		CHECK(getsockopt(10, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0 && v, "fd 10: not listening");
	}
	expect(11, "hello-from-A", false);
	CHECK(fcntl(10, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	c = accept(10, NULL, NULL);
	CHECK(c >= 0, "no connection waiting: %s", strerror(errno));
	CHECK(accept(10, NULL, NULL) < 0 && errno == EAGAIN, "more than one connection waiting");
	name_is(c, false, path);
	name_is(c, true, NULL);
	CHECK(write(sync[1], "s", 1) == 1, "sync");
	expect(c, "from-B", true);
	expect(11, "more-from-A", true);
	{
		int st;
		CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	}
	/* The path is a live listener: a new client gets in. */
	connect_at(path, 30);
	c = accept(10, NULL, NULL);
	CHECK(c >= 0, "accepting a new client: %s", strerror(errno));
	pass();
}
