/*
 * TCP across a checkpoint, with the peer outside the tree.
 *
 *   fd_inet_tcp server 4|6 [netlink]
 *       listens on loopback, port chosen by the kernel (fd 10, SO_REUSEADDR,
 *       backlog 8) and prints "PORT n"; accepts one client (fd 11), which
 *       sends "hello" then 1000 pattern bytes the server leaves unread; the
 *       server fills the connection the other way until the client's window
 *       and its own send buffer are full (the count is printed as "SENT n").
 *       With "netlink", fd 12 is a netlink socket (which rtcr refuses).
 *       After the trigger: same addresses, the 1000 bytes read, "#n\n"
 *       sent after the pattern, "ping" answered with "pong", then the
 *       client's orderly close (EOF, no reset).
 *   fd_inet_tcp client 4|6 PORT
 *       the client (not checkpointed): after its own trigger reads the
 *       pattern up to '#', checks the count, "ping" -> "pong", closes.
 *   fd_inet_tcp listen
 *       fd 10: 127.0.0.1 listener (SO_REUSEADDR, TCP_NODELAY, O_NONBLOCK,
 *       backlog 7); fd 11: [::] listener (IPV6_V6ONLY); fd 12: bound to
 *       127.0.0.1, not listening; fd 13: unbound IPv6. After the trigger:
 *       names and options as before, and new connections are accepted.
 */
#include <signal.h>

#include "inet.h"

static int listener(int fam, int port, int backlog)
{
	union isa a;
	socklen_t al = lo_addr(&a, fam, port);
	int one = 1, l = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_STREAM, 0);
	CHECK(l >= 0, "socket: %s", strerror(errno));
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(l, &a.sa, al) == 0 && listen(l, backlog) == 0, "listen: %s", strerror(errno));
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

static int server(int fam, bool netlink)
{
	int lport, cport, c;
	size_t sent;
	char b[1000], num[32];

	move_to(listener(fam, 0, 8), 10);
	lport = port_of(10, false);
	printf("PORT %d\n", lport);
	fflush(stdout);
	c = accept(10, NULL, NULL);
	CHECK(c >= 0, "accept: %s", strerror(errno));
	move_to(c, 11);
	cport = port_of(11, true);
	expect(11, "hello");
	sent = fill(11, 'a');
	wait_inq(11, 1000);
	if (netlink) {
		int n = socket(AF_NETLINK, SOCK_RAW, 0);
		CHECK(n >= 0, "netlink: %s", strerror(errno));
		move_to(n, 12);
	}
	usleep(200000);   /* every ACK on the wire */
	printf("SENT %zu\n", sent);
	ready();
	trigger_wait();
	CHECK(port_of(10, false) == lport && port_of(11, false) == lport && port_of(11, true) == cport,
	      "addresses changed: %d %d %d", port_of(10, false), port_of(11, false), port_of(11, true));
	CHECK(getint(10, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 10 is not listening");
	get(11, b, sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		CHECK(b[i] == 'A' + (char)(i % 26), "client byte %zu is %d", i, b[i]);
	snprintf(num, sizeof(num), "#%zu\n", sent);
	put(11, num, strlen(num));
	expect(11, "ping");
	put(11, "pong", 4);
	{
		ssize_t r = recv(11, b, 1, 0);
		CHECK(r == 0, "expected the client's close, got %zd (%s)", r, r < 0 ? strerror(errno) : "data");
	}
	pass();
}

static int client(int fam, int port)
{
	int s = connect_to(fam, port);
	char b[1000], num[32];
	size_t n = 0, got = 0;

	put(s, "hello", 5);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = 'A' + (char)(i % 26);
	put(s, b, sizeof(b));
	ready();
	trigger_wait();
	for (;;) {
		char c;
		ssize_t r = recv(s, &c, 1, 0);
		CHECK(r == 1, "after %zu pattern bytes: %s", got, r < 0 ? strerror(errno) : "EOF");
		if (c == '#')
			break;
		CHECK(c == 'a' + (char)(got % 26), "pattern byte %zu is %d", got, c);
		got++;
	}
	for (;;) {
		char c;
		CHECK(recv(s, &c, 1, 0) == 1, "reading the count: %s", strerror(errno));
		if (c == '\n')
			break;
		CHECK(n < sizeof(num) - 1, "count too long");
		num[n++] = c;
	}
	num[n] = 0;
	CHECK(strtoull(num, NULL, 10) == got, "server says it sent %s bytes, %zu arrived", num, got);
	put(s, "ping", 4);
	expect(s, "pong");
	close(s);
	printf("GOT %zu\n", got);
	pass();
}

static int listen_mode(void)
{
	int one = 1, p10, p11, p12, s, c;
	union isa a;
	socklen_t al;

	s = listener(4, 0, 7);
	setsockopt(s, SOL_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(s, F_SETFL, O_NONBLOCK);
	move_to(s, 10);
	s = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK(s >= 0 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == 0, "v6 socket");
	memset(&a, 0, sizeof(a));
	a.in6.sin6_family = AF_INET6;
	CHECK(bind(s, &a.sa, sizeof(a.in6)) == 0 && listen(s, 5) == 0, "v6 listen: %s", strerror(errno));
	move_to(s, 11);
	s = socket(AF_INET, SOCK_STREAM, 0);
	al = lo_addr(&a, 4, 0);
	CHECK(s >= 0 && bind(s, &a.sa, al) == 0, "bind: %s", strerror(errno));
	move_to(s, 12);
	s = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK(s >= 0, "socket");
	move_to(s, 13);
	p10 = port_of(10, false);
	p11 = port_of(11, false);
	p12 = port_of(12, false);
	printf("PORTS %d %d %d\n", p10, p11, p12);
	ready();
	trigger_wait();
	CHECK(port_of(10, false) == p10 && port_of(11, false) == p11 && port_of(12, false) == p12 &&
	      port_of(13, false) == 0, "ports changed");
	CHECK(getint(10, SOL_SOCKET, SO_ACCEPTCONN) == 1 && getint(11, SOL_SOCKET, SO_ACCEPTCONN) == 1 &&
	      getint(12, SOL_SOCKET, SO_ACCEPTCONN) == 0, "listening states");
	CHECK(getint(10, SOL_SOCKET, SO_REUSEADDR) == 1 && getint(12, SOL_SOCKET, SO_REUSEADDR) == 0,
	      "SO_REUSEADDR");
	CHECK(getint(10, SOL_TCP, TCP_NODELAY) == 1, "TCP_NODELAY");
	CHECK(getint(11, IPPROTO_IPV6, IPV6_V6ONLY) == 1 && getint(13, IPPROTO_IPV6, IPV6_V6ONLY) == 0,
	      "IPV6_V6ONLY");
	CHECK(fcntl(10, F_GETFL) & O_NONBLOCK, "fd 10 lost O_NONBLOCK");
	CHECK(!(fcntl(11, F_GETFL) & O_NONBLOCK), "fd 11 got O_NONBLOCK");
	CHECK(accept(10, NULL, NULL) < 0 && errno == EAGAIN, "fd 10: a connection was waiting");
	/* New connections. */
	s = connect_to(4, p10);
	{
		struct pollfd pf = { 10, POLLIN, 0 };
		CHECK(poll(&pf, 1, 5000) == 1, "fd 10: no connection to accept");
	}
	c = accept(10, NULL, NULL);
	CHECK(c >= 0, "accept on fd 10: %s", strerror(errno));
	put(s, "over-v4", 7);
	expect(c, "over-v4");
	close(c);
	close(s);
	s = connect_to(6, p11);
	c = accept(11, NULL, NULL);
	CHECK(c >= 0, "accept on fd 11: %s", strerror(errno));
	put(c, "over-v6", 7);
	expect(s, "over-v6");
	close(c);
	close(s);
	CHECK(listen(12, 1) == 0, "fd 12: listen: %s", strerror(errno));
	s = connect_to(4, p12);
	c = accept(12, NULL, NULL);
	CHECK(c >= 0, "accept on fd 12: %s", strerror(errno));
	pass();
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]), argc > 3 && !strcmp(argv[3], "netlink"));
	if (argc == 4 && !strcmp(argv[1], "client"))
		return client(atoi(argv[2]), atoi(argv[3]));
	if (argc == 2 && !strcmp(argv[1], "listen"))
		return listen_mode();
	fail("usage: fd_inet_tcp server 4|6 [netlink] | client 4|6 PORT | listen");
}
