/* Small helpers shared by the fd_inet_* targets. */
#ifndef INET_H
#define INET_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "target.h"

union isa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Loopback of a family (4 or 6), port p. */
static inline socklen_t lo_addr(union isa *a, int fam, int port)
{
	memset(a, 0, sizeof(*a));
	if (fam == 4) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons(port);
		a->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(a->in);
	}
	a->in6.sin6_family = AF_INET6;
	a->in6.sin6_port = htons(port);
	a->in6.sin6_addr = in6addr_loopback;
	return sizeof(a->in6);
}

static inline int port_of(int fd, bool peer)
{
	union isa a;
	socklen_t l = sizeof(a);
	int r = peer ? getpeername(fd, &a.sa, &l) : getsockname(fd, &a.sa, &l);
	CHECK(r == 0, "fd %d: get%sname: %s", fd, peer ? "peer" : "sock", strerror(errno));
	return ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
}

static inline int getint(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof(v);
	CHECK(getsockopt(fd, level, opt, &v, &l) == 0, "fd %d: getsockopt %d/%d: %s", fd, level, opt,
	      strerror(errno));
	return v;
}

static inline void move_to(int fd, int to)
{
	CHECK(dup2(fd, to) == to, "dup2 %d: %s", to, strerror(errno));
	close(fd);
}

static inline void put(int fd, const void *s, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t r = send(fd, (const char *)s + off, n - off, MSG_NOSIGNAL);
		CHECK(r > 0, "fd %d: send: %s", fd, strerror(errno));
		off += r;
	}
}

static inline void get(int fd, void *b, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t r = recv(fd, (char *)b + off, n - off, 0);
		CHECK(r > 0, "fd %d: expected %zu bytes, got %zu then %s", fd, n, off,
		      r < 0 ? strerror(errno) : "EOF");
		off += r;
	}
}

static inline void expect(int fd, const char *s)
{
	char b[256];
	size_t n = strlen(s);
	get(fd, b, n);
	CHECK(!memcmp(b, s, n), "fd %d: expected '%s', got '%.*s'", fd, s, (int)n, b);
}

/* Write pattern bytes base+(i%26) without blocking until the peer's
 * window and our buffer are full. Returns how many. */
static inline size_t fill(int fd, char base)
{
	char b[16384];
	size_t total = 0;
	int idle = 0;
	while (idle < 5) {
		ssize_t r;
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = base + (char)((total + i) % 26);
		r = send(fd, b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			total += r;
			idle = 0;
			continue;
		}
		CHECK(errno == EAGAIN, "fd %d: filling: %s", fd, strerror(errno));
		idle++;
		usleep(40000);
	}
	return total;
}

/* Read n pattern bytes as fill() wrote them. */
static inline void drain(int fd, char base, size_t n)
{
	char b[16384];
	size_t off = 0;
	while (off < n) {
		ssize_t r = recv(fd, b, n - off < sizeof(b) ? n - off : sizeof(b), 0);
		CHECK(r > 0, "fd %d: after %zu of %zu pattern bytes: %s", fd, off, n,
		      r < 0 ? strerror(errno) : "EOF");
		for (ssize_t i = 0; i < r; i++)
			CHECK(b[i] == base + (char)((off + i) % 26), "fd %d: pattern byte %zu is %d", fd,
			      off + i, b[i]);
		off += r;
	}
}

/* Wait until fd has at least n bytes to read (5 s). */
static inline void wait_inq(int fd, int n)
{
	for (int i = 0; i < 500; i++) {
		int q = 0;
		ioctl(fd, FIONREAD, &q);
		if (q >= n)
			return;
		usleep(10000);
	}
	fail("fd %d: %d bytes never arrived", fd, n);
}

#endif
