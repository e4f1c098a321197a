/*
 * Unix socketpairs between a parent and its child across a checkpoint:
 * data queued both ways, message boundaries, shutdown, a closed peer,
 * socket options and flags.
 *
 * Layout (parent fd / child fd: what):
 *   10/11  stream: 3 writes each way, unread (5000 + 300 bytes); fd 10
 *          SO_SNDBUF 50000 (getsockopt says 100000)
 *   12/13  dgram: child -> parent 3 messages (1, 100, 2000 bytes), parent
 *          -> child 2 (7, 0 bytes); fd 12 O_NONBLOCK
 *   14/15  seqpacket: parent -> child 2 records; fd 14 SO_PASSCRED, nothing
 *          queued for it
 *   16/17  stream: the parent wrote "bye" and shut its writing side; the
 *          child wrote "back"
 *   18     stream, parent only: its peer wrote "last" and was closed
 * After the trigger each side checks what it holds, the child after the
 * parent (a pipe orders them), and the parent waits for the child.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "target.h"

static void pair_at(int type, int a, int b)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, type, 0, sv) == 0, "socketpair: %s", strerror(errno));
	CHECK(dup2(sv[0], a) == a && dup2(sv[1], b) == b, "dup2");
	close(sv[0]);
	close(sv[1]);
}

static void fill(char *b, size_t n, char seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(seed + i * 7);
}

static void put(int fd, const void *b, size_t n)
{
	CHECK(send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n, "send on %d: %s", fd, strerror(errno));
}

/* Read exactly n bytes from a stream (several reads if need be). */
static void get_stream(int fd, char *b, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t r = recv(fd, b + off, n - off, MSG_DONTWAIT);
		CHECK(r > 0, "fd %d: read %zu of %zu bytes (%s)", fd, off, n, r < 0 ? strerror(errno) : "EOF");
		off += r;
	}
}

/* The next message must be exactly 'want' (len bytes). */
static void get_msg(int fd, const char *want, size_t len)
{
	char b[4096];
	ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT | MSG_TRUNC);
	CHECK(r == (ssize_t)len, "fd %d: message of %zd bytes, expected %zu (%s)", fd, r, len,
	      r < 0 ? strerror(errno) : "");
	CHECK(!memcmp(b, want, len), "fd %d: message of %zu bytes differs", fd, len);
}

static void nothing_more(int fd)
{
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
	CHECK(r < 0 && errno == EAGAIN, "fd %d: more data than expected (%zd)", fd, r);
}

static char p2c[5000], c2p[300], m1[1], m2[100], m3[2000];

static void child_side(int sync)
{
	char b[5000], c;

	trigger_wait();
	CHECK(read(sync, &c, 1) == 1, "child: sync");
	get_stream(11, b, sizeof(p2c));
	CHECK(!memcmp(b, p2c, sizeof(p2c)), "child: stream data differs");
	nothing_more(11);
	get_msg(13, "seven77", 7);
	get_msg(13, "", 0);
	nothing_more(13);
	get_msg(15, "rec-one", 7);
	get_msg(15, "record-two", 10);
	nothing_more(15);
	get_stream(17, b, 3);
	CHECK(!memcmp(b, "bye", 3), "child: 'bye' differs");
	CHECK(recv(17, b, 1, MSG_DONTWAIT) == 0, "child: no EOF after 'bye'");
	/* Both connections still work the other way. */
	put(11, "z", 1);
	put(15, "rec-three", 9);
	exit(0);
}

int main(void)
{
	int sync[2], up[2], v;
	socklen_t vl = sizeof(v);
	pid_t child;
	char c;

	fill(p2c, sizeof(p2c), 'a');
	fill(c2p, sizeof(c2p), 'K');
	fill(m1, sizeof(m1), '1');
	fill(m2, sizeof(m2), '2');
	fill(m3, sizeof(m3), '3');
	pair_at(SOCK_STREAM, 10, 11);
	pair_at(SOCK_DGRAM, 12, 13);
	pair_at(SOCK_SEQPACKET, 14, 15);
	pair_at(SOCK_STREAM, 16, 17);
	pair_at(SOCK_STREAM, 18, 19);
	v = 50000;
	CHECK(setsockopt(10, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) == 0, "SO_SNDBUF");
	v = 1;
	CHECK(setsockopt(14, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v)) == 0, "SO_PASSCRED");
	CHECK(fcntl(12, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	put(19, "last", 4);
	close(19);
	CHECK(pipe(sync) == 0 && pipe(up) == 0, "pipe");

	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sync[1]);
		close(up[0]);
		close(10);
		close(12);
		close(14);
		close(16);
		close(18);
		put(11, c2p, 100);
		put(11, c2p + 100, 150);
		put(11, c2p + 250, 50);
		put(13, m1, sizeof(m1));
		put(13, m2, sizeof(m2));
		put(13, m3, sizeof(m3));
		put(17, "back", 4);
		CHECK(write(up[1], "u", 1) == 1, "child: up");
		close(up[1]);
		child_side(sync[0]);
	}
	close(sync[0]);
	close(up[1]);
	close(11);
	close(13);
	close(15);
	close(17);
	CHECK(read(up[0], &c, 1) == 1, "the child did not come up");
	close(up[0]);
	put(10, p2c, 1000);
	put(10, p2c + 1000, 3000);
	put(10, p2c + 4000, 1000);
	put(12, "seven77", 7);
	put(12, "", 0);
	put(14, "rec-one", 7);
	put(14, "record-two", 10);
	put(16, "bye", 3);
	CHECK(shutdown(16, SHUT_WR) == 0, "shutdown");

	printf("pids %d %d\n", getpid(), child);
	ready();
	trigger_wait();

	{
		char b[300];
		get_stream(10, b, sizeof(c2p));
		CHECK(!memcmp(b, c2p, sizeof(c2p)), "stream data from the child differs");
		nothing_more(10);
	}
	CHECK(getsockopt(10, SOL_SOCKET, SO_SNDBUF, &v, &vl) == 0 && v == 100000,
	      "fd 10: SO_SNDBUF %d, expected 100000", v);
	get_msg(12, m1, sizeof(m1));
	get_msg(12, m2, sizeof(m2));
	get_msg(12, m3, sizeof(m3));
	CHECK(recv(12, &c, 1, 0) < 0 && errno == EAGAIN, "fd 12: not nonblocking, or more data");
	CHECK(fcntl(12, F_GETFL) & O_NONBLOCK, "fd 12: O_NONBLOCK lost");
	CHECK(!(fcntl(10, F_GETFL) & O_NONBLOCK), "fd 10: O_NONBLOCK set");
	vl = sizeof(v);
	CHECK(getsockopt(14, SOL_SOCKET, SO_PASSCRED, &v, &vl) == 0 && v == 1, "fd 14: SO_PASSCRED lost");
	vl = sizeof(v);
	CHECK(getsockopt(10, SOL_SOCKET, SO_PASSCRED, &v, &vl) == 0 && v == 0, "fd 10: SO_PASSCRED set");
	nothing_more(14);
	{
		char b[8];
		get_stream(16, b, 4);
		CHECK(!memcmp(b, "back", 4), "fd 16: 'back' differs");
		CHECK(send(16, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE,
		      "fd 16: writing after SHUT_WR did not fail with EPIPE");
		get_stream(18, b, 4);
		CHECK(!memcmp(b, "last", 4), "fd 18: 'last' differs");
		CHECK(recv(18, b, 1, MSG_DONTWAIT) == 0, "fd 18: no EOF after its peer closed");
	}
	{
		int st;
		char b[16];
		struct msghdr mh;
		struct iovec iov = { b, sizeof(b) };
		union {
			struct cmsghdr h;
			char c[CMSG_SPACE(sizeof(struct ucred))];
		} cb;
		struct cmsghdr *cm;

		CHECK(write(sync[1], "s", 1) == 1, "sync");
		CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
		get_stream(10, b, 1);
		CHECK(b[0] == 'z', "fd 10: the child's late byte differs");
		/* SO_PASSCRED holds: the record comes with the child's credentials. */
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.c;
		mh.msg_controllen = sizeof(cb.c);
		CHECK(recvmsg(14, &mh, MSG_DONTWAIT) == 9 && !memcmp(b, "rec-three", 9), "fd 14: late record");
		cm = CMSG_FIRSTHDR(&mh);
		CHECK(cm && cm->cmsg_type == SCM_CREDENTIALS, "fd 14: no credentials with the record");
		CHECK(((struct ucred *)CMSG_DATA(cm))->pid == child, "fd 14: credentials of pid %d, not %d",
		      ((struct ucred *)CMSG_DATA(cm))->pid, child);
	}
	pass();
}
