/*
 * Unix datagram sockets with names across a checkpoint.
 *
 *   fd_unix_dgram DIR      fd 10: bound to the abstract name
 *                          "\0rtcr-dgram-PID", with 4 messages queued:
 *                          2 from the unnamed fd 11 (sendto), 1 from fd 12
 *                          (bound to DIR/cli.sock), 1 from fd 13 (connected
 *                          to fd 10's name). After the trigger: the messages
 *                          in order, with their boundaries and senders'
 *                          addresses; the names; fd 10 answers fd 12 by its
 *                          path; fd 13 still sends to fd 10.
 *   fd_unix_dgram rights   fd 10 -> fd 11 (a socketpair): one message
 *                          carrying an fd (SCM_RIGHTS), unread: rtcr must
 *                          refuse; after the trigger the fd arrives.
 */
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "target.h"

static char abs_name[64];
static socklen_t abs_len;

static socklen_t abs_addr(struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, abs_name, abs_len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abs_len);
}

static socklen_t path_addr(struct sockaddr_un *a, const char *p)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", p);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(p) + 1);
}

static int sock_at(int fd)
{
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(s >= 0 && dup2(s, fd) == fd, "socket: %s", strerror(errno));
	close(s);
	return fd;
}

static void send_to(int fd, const char *m, size_t n, const struct sockaddr_un *a, socklen_t al)
{
	CHECK(sendto(fd, m, n, 0, (const struct sockaddr *)a, al) == (ssize_t)n, "sendto from %d: %s", fd,
	      strerror(errno));
}

/* The next message on fd 10: its data and its sender's address. */
static void expect(const char *m, size_t n, const struct sockaddr_un *from, socklen_t fl, const char *what)
{
	char b[4096];
	struct sockaddr_un a;
	socklen_t al = sizeof(a);
	ssize_t r = recvfrom(10, b, sizeof(b), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&a, &al);
	CHECK(r == (ssize_t)n && !memcmp(b, m, n), "%s: got %zd bytes (%s)", what, r, r < 0 ? strerror(errno) : "");
	CHECK(al == fl && (!from || !memcmp(a.sun_path, from->sun_path, fl - offsetof(struct sockaddr_un, sun_path))),
	      "%s: sender address of %d bytes, expected %d", what, (int)al, (int)fl);
}

static void rights(void)
{
	int sv[2], p[2], got = -1;
	char c = 'r';
	struct iovec iov = { &c, 1 };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cb;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof(cb.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0 && dup2(sv[0], 10) == 10 && dup2(sv[1], 11) == 11,
	      "socketpair");
	close(sv[0]);
	close(sv[1]);
	CHECK(pipe(p) == 0 && write(p[1], "P", 1) == 1, "pipe");
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
	CHECK(sendmsg(10, &mh, 0) == 1, "sendmsg: %s", strerror(errno));
	close(p[0]);
	close(p[1]);
	ready();
	trigger_wait();
	mh.msg_controllen = sizeof(cb.b);
	CHECK(recvmsg(11, &mh, MSG_DONTWAIT) == 1 && c == 'r', "recvmsg: %s", strerror(errno));
	cm = CMSG_FIRSTHDR(&mh);
	CHECK(cm && cm->cmsg_type == SCM_RIGHTS, "no fd with the message");
	memcpy(&got, CMSG_DATA(cm), sizeof(int));
	CHECK(read(got, &c, 1) == 1 && c == 'P', "the fd received is not the pipe");
	pass();
}

int main(int argc, char **argv)
{
	struct sockaddr_un a, cli, none;
	socklen_t al, cl;
	char clipath[108], big[1500];

	CHECK(argc == 2, "usage: fd_unix_dgram DIR | rights");
	if (!strcmp(argv[1], "rights"))
		rights();
	abs_len = (socklen_t)snprintf(abs_name + 1, sizeof(abs_name) - 1, "rtcr-dgram-%d", getpid()) + 1;
	snprintf(clipath, sizeof(clipath), "%s/cli.sock", argv[1]);
	al = abs_addr(&a);
	cl = path_addr(&cli, clipath);
	unlink(clipath);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 13);

	sock_at(10);
	CHECK(bind(10, (struct sockaddr *)&a, al) == 0, "bind abstract: %s", strerror(errno));
	sock_at(11);
	sock_at(12);
	CHECK(bind(12, (struct sockaddr *)&cli, cl) == 0, "bind %s: %s", clipath, strerror(errno));
	sock_at(13);
	CHECK(connect(13, (struct sockaddr *)&a, al) == 0, "connect: %s", strerror(errno));
	send_to(11, "one", 3, &a, al);
	send_to(12, big, sizeof(big), &a, al);
	send_to(11, "three!", 6, &a, al);
	CHECK(send(13, "four", 4, 0) == 4, "send: %s", strerror(errno));

	ready();
	trigger_wait();

	memset(&none, 0, sizeof(none));
	expect("one", 3, NULL, 0, "message 1");
	expect(big, sizeof(big), &cli, cl, "message 2");
	expect("three!", 6, NULL, 0, "message 3");
	expect("four", 4, NULL, 0, "message 4");
	{
		char c;
		CHECK(recv(10, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "more than 4 messages");
	}
	{
		struct sockaddr_un n;
		socklen_t nl = sizeof(n);
		CHECK(getsockname(10, (struct sockaddr *)&n, &nl) == 0 && nl == al && !memcmp(n.sun_path, a.sun_path, abs_len),
		      "fd 10: its abstract name changed (%d bytes)", (int)nl);
		nl = sizeof(n);
		CHECK(getsockname(12, (struct sockaddr *)&n, &nl) == 0 && nl == cl && !strcmp(n.sun_path, clipath),
		      "fd 12: its name changed");
		nl = sizeof(n);
		CHECK(getpeername(13, (struct sockaddr *)&n, &nl) == 0 && nl == al && !memcmp(n.sun_path, a.sun_path, abs_len),
		      "fd 13: its peer changed");
		nl = sizeof(n);
		CHECK(getpeername(11, (struct sockaddr *)&n, &nl) < 0 && errno == ENOTCONN, "fd 11: connected");
	}
	send_to(10, "reply", 5, &cli, cl);
	{
		char b[8];
		CHECK(recv(12, b, sizeof(b), MSG_DONTWAIT) == 5 && !memcmp(b, "reply", 5), "fd 12: no reply by its path");
	}
	CHECK(send(13, "five", 4, 0) == 4, "fd 13: send: %s", strerror(errno));
	expect("five", 4, NULL, 0, "message 5");
	unlink(clipath);
	pass();
}
