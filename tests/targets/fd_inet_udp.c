/*
 * UDP sockets with datagrams queued across a checkpoint.
 *
 *   fd 10  127.0.0.1, O_NONBLOCK: "one" from fd 13, "two-from-closed" from
 *          a socket closed since, "three" from fd 12, 30000 bytes from fd 13
 *   fd 11  [::1]: "six" from a closed IPv6 socket
 *   fd 12  127.0.0.1, connected to fd 10: "to-connected" from fd 10
 *   fd 13  127.0.0.1, SO_BROADCAST, nothing queued
 * After the trigger: every datagram in order, whole, from the address it
 * came from, the queues empty after them; fd 12 still connected; new
 * datagrams go through.
 */
#include "inet.h"

static int udp(int fam)
{
	union isa a;
	socklen_t al = lo_addr(&a, fam, 0);
	int s = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
	CHECK(s >= 0 && bind(s, &a.sa, al) == 0, "udp bind: %s", strerror(errno));
	return s;
}

static void send_to(int s, int fam, int port, const void *b, size_t n)
{
	union isa a;
	socklen_t al = lo_addr(&a, fam, port);
	CHECK(sendto(s, b, n, 0, &a.sa, al) == (ssize_t)n, "sendto: %s", strerror(errno));
}

static void recv_one(int fd, const void *want, size_t n, int from)
{
	static char b[70000];
	union isa a;
	socklen_t al = sizeof(a);
	ssize_t r = recvfrom(fd, b, sizeof(b), MSG_DONTWAIT, &a.sa, &al);
	int port;
	CHECK(r >= 0, "fd %d: expected a datagram of %zu bytes: %s", fd, n, strerror(errno));
	port = ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
	CHECK((size_t)r == n && !memcmp(b, want, n), "fd %d: datagram of %zd bytes, expected %zu ('%.*s')",
	      fd, r, n, (int)(n < 20 ? n : 20), (const char *)want);
	CHECK(port == from, "fd %d: datagram from port %d, expected %d", fd, port, from);
}

int main(void)
{
	static char big[30000];
	int one = 1, p10, p11, p12, p13, pc, pc6, s, r;
	union isa a;
	socklen_t al;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	move_to(udp(4), 10);
	move_to(udp(6), 11);
	move_to(udp(4), 12);
	move_to(udp(4), 13);
	setsockopt(13, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	p10 = port_of(10, false);
	p11 = port_of(11, false);
	p12 = port_of(12, false);
	p13 = port_of(13, false);
	al = lo_addr(&a, 4, p10);
	CHECK(connect(12, &a.sa, al) == 0, "connect: %s", strerror(errno));
	send_to(13, 4, p10, "one", 3);
	s = udp(4);
	pc = port_of(s, false);
	send_to(s, 4, p10, "two-from-closed", 15);
	close(s);
	CHECK(send(12, "three", 5, 0) == 5, "send: %s", strerror(errno));
	send_to(13, 4, p10, big, sizeof(big));
	s = udp(6);
	pc6 = port_of(s, false);
	send_to(s, 6, p11, "six", 3);
	close(s);
	send_to(10, 4, p12, "to-connected", 12);
	fcntl(10, F_SETFL, O_NONBLOCK);
	ready();
	trigger_wait();
	CHECK(port_of(10, false) == p10 && port_of(11, false) == p11 && port_of(12, false) == p12 &&
	      port_of(13, false) == p13 && port_of(12, true) == p10, "addresses changed");
	CHECK(fcntl(10, F_GETFL) & O_NONBLOCK, "fd 10 lost O_NONBLOCK");
	CHECK(getint(13, SOL_SOCKET, SO_BROADCAST) == 1, "fd 13 lost SO_BROADCAST");
	recv_one(10, "one", 3, p13);
	recv_one(10, "two-from-closed", 15, pc);
	recv_one(10, "three", 5, p12);
	recv_one(10, big, sizeof(big), p13);
	recv_one(11, "six", 3, pc6);
	recv_one(12, "to-connected", 12, p10);
	r = (int)recv(10, big, 1, MSG_DONTWAIT);
	CHECK(r < 0 && errno == EAGAIN, "fd 10: more datagrams than sent");
	r = (int)recv(12, big, 1, MSG_DONTWAIT);
	CHECK(r < 0 && errno == EAGAIN, "fd 12: more datagrams than sent");
	send_to(13, 4, p10, "after", 5);
	recv_one(10, "after", 5, p13);
	CHECK(send(12, "after2", 6, 0) == 6, "send: %s", strerror(errno));
	recv_one(10, "after2", 6, p12);
	pass();
}
