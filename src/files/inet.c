/*
 * IPv4 and IPv6 sockets: TCP (unbound, bound, listening, established)
 * and UDP (bound or not, connected or not, with datagrams queued).
 *
 * Dump works on a pidfd_getfd() copy of each socket: addresses
 * (getsockname/getpeername), options (SO_REUSEADDR, SO_REUSEPORT,
 * IPV6_V6ONLY, TCP_NODELAY, SO_KEEPALIVE, SO_BROADCAST; buffer sizes when
 * not the default of a new socket), the state and a listener's backlog
 * (TCP_INFO: for a listener tcpi_sacked is the backlog and tcpi_unacked
 * the connections waiting to be accepted). A UDP socket's datagrams are
 * read without consuming them: MSG_PEEK with SO_PEEK_OFF walking forward
 * (the target's own peek offset is put back), each with its sender.
 *
 * An established TCP connection is dumped only with --tcp-established
 * (else refused by name): the socket is put in repair mode (TCP_REPAIR,
 * on the shared struct sock through the copy) and stays so until the
 * dump ends. In repair mode the kernel reads out the sequence numbers
 * (TCP_QUEUE_SEQ of each queue), both queues (TCP_REPAIR_QUEUE + MSG_PEEK:
 * the send queue too), the windows (TCP_REPAIR_WINDOW), mss_clamp
 * (TCP_MAXSEG), the timestamp clock (TCP_TIMESTAMP) and the options
 * negotiated (TCP_INFO: window scales, SACK, timestamps). Before any
 * connection enters repair mode, the network lock (netlock.h) drops their
 * segments both ways, until the restore has rebuilt them (the kernel
 * still receives and acknowledges data in repair mode, and answers a
 * segment for a connection that is gone with a reset); just before the
 * image is committed rtcr still checks that nothing arrived since it read
 * the receive queue (else the dump fails and the connection goes on). At the
 * end: an aborted dump or --leave-running takes the sockets out of repair
 * mode (SO_REUSEADDR put back: leaving repair mode clears it); a dump that
 * kills the tree keeps its copies until the processes are reaped and then
 * closes them still in repair mode, which makes the kernel drop the
 * connection without a FIN or RST: the peer sees nothing.
 *
 * Restore builds every inet socket of the image at the first one's open():
 * first the listening, bound and UDP sockets (bound, listening), then the
 * connections: a new socket in repair mode gets its sequence numbers,
 * is bound to its local address (IP_FREEBIND; repair mode forces address
 * reuse, so a listener on the same port is no obstacle), "connected" (no
 * SYN in repair mode), gets its options, its receive queue and the part
 * of its send queue that had been sent (TCP_REPAIR_QUEUE), its windows and
 * timestamp clock. It leaves repair mode in its owner process (install,
 * once every fd is at its number, just before the processes run), which
 * sends a window probe to resync with the peer; the bytes never sent are
 * then sent normally. UDP datagrams are sent again to their socket from a
 * socket bound to their sender's address (IP_FREEBIND, IP_TRANSPARENT),
 * before a connected socket is connected (which would filter them).
 *
 * Refused by name: TCP sockets in other states (SYN_SENT, FIN_WAIT,
 * CLOSE_WAIT...), a listener with connections waiting to be accepted
 * (they cannot be put back in its queue), urgent data, other protocols
 * (raw, SCTP, MPTCP: not matched here).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"
#include "files/netlock.h"

#define ST_ESTABLISHED 1
#define ST_CLOSE 7
#define ST_LISTEN 10

union isa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static const char *const tcp_states[] = {
	[1] = "established", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1",
	[5] = "FIN_WAIT2", [6] = "TIME_WAIT", [7] = "closed", [8] = "CLOSE_WAIT",
	[9] = "LAST_ACK", [10] = "listening", [11] = "CLOSING", [12] = "NEW_SYN_RECV",
};

static const char *state_name(unsigned st)
{
	return st < ARRAY_SIZE(tcp_states) && tcp_states[st] ? tcp_states[st] : "?";
}

/* "127.0.0.1:80", "[::1]:80" */
static const char *addr_str(unsigned family, const ProtobufCBinaryData *a, uint32_t port, char *buf,
			    size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (family == AF_INET && a->len == 4)
		inet_ntop(AF_INET, a->data, ip, sizeof(ip));
	else if (family == AF_INET6 && a->len == 16)
		inet_ntop(AF_INET6, a->data, ip, sizeof(ip));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
	return buf;
}

/* "tcp 127.0.0.1:6379 <- 127.0.0.1:51234" */
static const char *ep_str(const Rtcr__InetSk *s, char *buf, size_t len)
{
	char l[64], r[64];
	addr_str(s->family, &s->laddr, s->lport, l, sizeof(l));
	if (s->raddr.len)
		snprintf(buf, len, "%s %s %s %s", s->proto == IPPROTO_TCP ? "tcp" : "udp", l,
			 s->passive ? "<-" : "->", addr_str(s->family, &s->raddr, s->rport, r, sizeof(r)));
	else
		snprintf(buf, len, "%s %s", s->proto == IPPROTO_TCP ? "tcp" : "udp", l);
	return buf;
}

static void set_bytes(ProtobufCBinaryData *b, const void *p, size_t len)
{
	b->data = xmalloc(len ? len : 1);
	memcpy(b->data, p, len);
	b->len = len;
}

/* Address and port of a sockaddr into a bytes field. */
static uint32_t from_sa(const union isa *a, ProtobufCBinaryData *b, uint32_t *scope)
{
	if (a->sa.sa_family == AF_INET) {
		set_bytes(b, &a->in.sin_addr, 4);
		return ntohs(a->in.sin_port);
	}
	set_bytes(b, &a->in6.sin6_addr, 16);
	if (scope)
		*scope = a->in6.sin6_scope_id;
	return ntohs(a->in6.sin6_port);
}

static socklen_t to_sa(union isa *a, unsigned family, const ProtobufCBinaryData *b, uint32_t port,
		       uint32_t scope)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons((uint16_t)port);
		if (b->len == 4)
			memcpy(&a->in.sin_addr, b->data, 4);
		return sizeof(a->in);
	}
	a->in6.sin6_family = AF_INET6;
	a->in6.sin6_port = htons((uint16_t)port);
	a->in6.sin6_scope_id = scope;
	if (b->len == 16)
		memcpy(&a->in6.sin6_addr, b->data, 16);
	return sizeof(a->in6);
}

static bool addr_any(const ProtobufCBinaryData *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->data[i])
			return false;
	return true;
}

static int sysctl_int(const char *path, int field)
{
	char *s = NULL, *p;
	int v = -1;
	if (read_file(path, &s) < 0)
		return -1;
	p = s;
	for (int i = 0; i <= field && p; i++) {
		char *e;
		long x = strtol(p, &e, 10);
		if (e == p)
			break;
		if (i == field)
			v = (int)x;
		p = e;
	}
	free(s);
	return v;
}

static int getint(int fd, int level, int opt, int *v)
{
	socklen_t l = sizeof(*v);
	*v = 0;
	return getsockopt(fd, level, opt, v, &l);
}

static int setint(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

/* ---- dump ---- */

static bool inet_match(const struct fd_info *fi)
{
	int sfd, d = -1, p = -1, t = -1;
	bool ok;

	if (!S_ISSOCK(fi->st.st_mode))
		return false;
	sfd = fd_copy(fi);
	if (sfd < 0)
		return false;
	ok = !getint(sfd, SOL_SOCKET, SO_DOMAIN, &d) && !getint(sfd, SOL_SOCKET, SO_PROTOCOL, &p) &&
	     !getint(sfd, SOL_SOCKET, SO_TYPE, &t) && (d == AF_INET || d == AF_INET6) &&
	     ((p == IPPROTO_TCP && t == SOCK_STREAM) || (p == IPPROTO_UDP && t == SOCK_DGRAM));
	close(sfd);
	return ok;
}

/* Connections in repair mode while the dump runs. */
struct repaired {
	int fd;               /* rtcr's copy */
	pid_t pid;
	int tfd;
	bool reuse;           /* SO_REUSEADDR to put back when leaving repair mode */
	uint32_t rcv_seq;     /* what the image holds up to */
	char ep[160];
};
static struct repaired *rep;
static int nrep;

/* Is there a TCP listener on this port (so this end was accepted)? */
static bool listener_on(uint32_t port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	bool found = false;
	for (size_t f = 0; f < 2 && !found; f++) {
		char *s = NULL, *l;
		if (read_file(files[f], &s) < 0)
			continue;
		for (l = strchr(s, '\n'); l && *l && !found; l = strchr(l, '\n')) {
			char la[80];
			unsigned lp, st;
			l++;
			if (sscanf(l, "%*d: %79[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", la, &lp, &st) == 3 &&
			    st == ST_LISTEN && lp == port)
				found = true;
		}
		free(s);
	}
	return found;
}

/*
 * The guardian: a child of rtcr holding a copy of every connection in
 * repair mode, and the name of the network lock. If rtcr dies before the
 * end of the dump (even by SIGKILL), the guardian sees its end of a
 * socketpair close without a "done" and takes every connection out of
 * repair mode, then removes the lock, so the processes (which the kernel
 * resumes when their tracer dies) keep their connections working. Once
 * the tree is being killed ("keep"), it only closes its copies, still in
 * repair mode, and leaves the lock for the restore (the image is
 * committed and records it).
 */
static int guard_fd = -1;
static pid_t guard_pid;

enum guard_what { G_FD, G_DONE, G_TABLE, G_KEEP };

struct guard_msg {
	int what;
	int reuse;
	char table[64];
};

static void guardian(int s)
{
	int *fds = NULL, *reuse = NULL, n = 0;
	char table[64] = "";
	bool keep = false;
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);   /* a ^C to rtcr's group is rtcr's */
	setsid();
	for (;;) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cb;
		struct guard_msg m;
		struct iovec iov = { &m, sizeof(m) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
				     .msg_controllen = sizeof(cb.b) };
		ssize_t r;
		struct cmsghdr *c;

		memset(&m, 0, sizeof(m));
		r = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;          /* rtcr is gone */
		if (m.what == G_DONE)
			_exit(0);
		if (m.what == G_KEEP)
			keep = true;
		if (m.what == G_TABLE)
			memcpy(table, m.table, sizeof(table) - 1);
		c = CMSG_FIRSTHDR(&mh);
		if (m.what == G_FD && c && c->cmsg_type == SCM_RIGHTS) {
			/* Every connection: one left in repair mode is dead. */
			fds = xrealloc(fds, (n + 1) * sizeof(*fds));
			reuse = xrealloc(reuse, (n + 1) * sizeof(*reuse));
			memcpy(&fds[n], CMSG_DATA(c), sizeof(int));
			reuse[n++] = m.reuse;
		}
	}
	for (int i = 0; i < n; i++) {
		if (!keep) {
			setint(fds[i], SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
			setint(fds[i], SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
			if (reuse[i])
				setint(fds[i], SOL_SOCKET, SO_REUSEADDR, 1);
		}
		close(fds[i]);
	}
	if (!keep && table[0])
		(void)netlock_release(table, true);
	_exit(0);
}

static int guard_send(const struct guard_msg *m, int sfd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cb;
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (sfd >= 0) {
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof(cb.b);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &sfd, sizeof(int));
	}
	if (sendmsg(guard_fd, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static int guard_start(void)
{
	int sv[2];

	if (guard_fd >= 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	guard_pid = fork();
	if (guard_pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (guard_pid == 0) {
		/* Only the socketpair end: nothing else of rtcr's stays open here. */
		if (sv[1] > 0)
			close_range(0, sv[1] - 1, 0);
		close_range(sv[1] + 1, ~0U, 0);
		guardian(sv[1]);
	}
	close(sv[1]);
	guard_fd = sv[0];
	return 0;
}

/* Hand a connection about to enter repair mode to the guardian. */
static int guard(int sfd, bool reuse)
{
	struct guard_msg m = { .what = G_FD, .reuse = reuse };
	int ret = guard_start();
	return ret ? ret : guard_send(&m, sfd);
}

/* The dump ends: the guardian lets go without touching anything. */
static void guard_release(void)
{
	struct guard_msg m = { .what = G_DONE };
	if (guard_fd < 0)
		return;
	if (guard_send(&m, -1) < 0)
		pr_perror("inet: releasing the guardian");
	close(guard_fd);
	guard_fd = -1;
	while (waitpid(guard_pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/*
 * The network lock (netlock.h), taken before any connection enters repair
 * mode: the established connections of the tree, each description once.
 */
static char lock_table[64];
static struct net_tuple *locked;
static int nlocked;
static Rtcr__NetLock lock_pb;

static void tuple_addr(const union isa *a, uint8_t out[16], uint16_t *port)
{
	if (a->sa.sa_family == AF_INET) {
		memcpy(out, &a->in.sin_addr, 4);
		*port = ntohs(a->in.sin_port);
	} else {
		memcpy(out, &a->in6.sin6_addr, 16);
		*port = ntohs(a->in6.sin6_port);
	}
}

/* The 4-tuple of an established TCP socket (a copy of the target's). */
static bool conn_tuple(int sfd, struct net_tuple *t)
{
	int d = -1, p = -1;
	struct tcp_info ti;
	socklen_t tl = sizeof(ti), al;
	union isa a;

	memset(t, 0, sizeof(*t));
	memset(&ti, 0, sizeof(ti));
	if (getint(sfd, SOL_SOCKET, SO_DOMAIN, &d) || getint(sfd, SOL_SOCKET, SO_PROTOCOL, &p) ||
	    (d != AF_INET && d != AF_INET6) || p != IPPROTO_TCP ||
	    getsockopt(sfd, SOL_TCP, TCP_INFO, &ti, &tl) < 0 || ti.tcpi_state != ST_ESTABLISHED)
		return false;
	t->family = d;
	al = sizeof(a);
	if (getsockname(sfd, &a.sa, &al) < 0)
		return false;
	tuple_addr(&a, t->laddr, &t->lport);
	al = sizeof(a);
	if (getpeername(sfd, &a.sa, &al) < 0)
		return false;
	tuple_addr(&a, t->raddr, &t->rport);
	return true;
}

int inet_dump_lock(const struct files_collect *fc, const uint8_t id[16])
{
	struct guard_msg m = { .what = G_TABLE };
	int ret;

	rtcr__net_lock__init(&lock_pb);
	if (!fc->tcp_established)
		return 0;
	for (int i = 0; i < fc->nprocs; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++) {
			const struct fd_info *fi = &fc->procs[i].fds[j];
			struct net_tuple t;
			int sfd;
			if (!S_ISSOCK(fi->st.st_mode) || !fi->desc_first)
				continue;
			sfd = fd_copy(fi);
			if (sfd < 0)
				continue;   /* its dump says why */
			if (conn_tuple(sfd, &t)) {
				Rtcr__InetSk sk = RTCR__INET_SK__INIT;
				char ep[160];
				size_t al = t.family == AF_INET ? 4 : 16;
				locked = xrealloc(locked, (nlocked + 1) * sizeof(*locked));
				locked[nlocked++] = t;
				sk.family = (uint32_t)t.family;
				sk.proto = IPPROTO_TCP;
				sk.laddr = (ProtobufCBinaryData){ al, t.laddr };
				sk.raddr = (ProtobufCBinaryData){ al, t.raddr };
				sk.lport = t.lport;
				sk.rport = t.rport;
				sk.passive = listener_on(t.lport);
				lock_pb.connections = xrealloc(lock_pb.connections,
							       nlocked * sizeof(*lock_pb.connections));
				lock_pb.connections[nlocked - 1] = xstrdup(ep_str(&sk, ep, sizeof(ep)));
				lock_pb.n_connections = (size_t)nlocked;
			}
			close(sfd);
		}
	if (!nlocked)
		return 0;
	netlock_name(id, lock_table, sizeof(lock_table));
	memcpy(m.table, lock_table, sizeof(m.table) - 1);
	ret = guard_start();
	if (!ret)
		ret = guard_send(&m, -1);
	if (ret) {
		pr_err("network lock: a guardian process: %s", strerror(-ret));
		lock_table[0] = 0;
		return ret;
	}
	ret = netlock_take(lock_table, locked, nlocked);
	if (ret) {
		lock_table[0] = 0;
		return ret;
	}
	lock_pb.table = lock_table;
	return 0;
}

const Rtcr__NetLock *inet_dump_netlock(void)
{
	return lock_table[0] ? &lock_pb : NULL;
}

/* Is this connection under the lock? */
static bool is_locked(const Rtcr__InetSk *sk)
{
	for (int i = 0; i < nlocked; i++)
		if (locked[i].family == (int)sk->family && locked[i].lport == sk->lport &&
		    locked[i].rport == sk->rport && !memcmp(locked[i].laddr, sk->laddr.data, sk->laddr.len) &&
		    !memcmp(locked[i].raddr, sk->raddr.data, sk->raddr.len))
			return lock_table[0] != 0;
	return false;
}

/* The tree is about to be killed, the image committed: if rtcr dies now,
 * the lock stays for the restore. */
void inet_dump_killing(void)
{
	struct guard_msg m = { .what = G_KEEP };
	if (guard_fd >= 0 && guard_send(&m, -1) < 0)
		pr_perror("inet: telling the guardian the tree is killed");
}
static int peek_all(int sfd, ProtobufCBinaryData *b, int len, const char *who, int fd,
		    const char *what)
{
	int n = 0;
	b->data = xmalloc(len ? len : 1);
	b->len = 0;
	if (len > 0)
		n = (int)recv(sfd, b->data, len, MSG_PEEK | MSG_DONTWAIT);
	if (n != len) {
		pr_err("%sfd %d: tcp: read %d of the %d bytes of its %s queue: %s", who, fd, n, len, what,
		       n < 0 ? strerror(errno) : "short");
		return -EIO;
	}
	b->len = len;
	return 0;
}

static int dump_conn(int sfd, const struct fd_info *fi, Rtcr__InetSk *sk, const char *who,
		     const char *ep)
{
	Rtcr__TcpConn *c = xzalloc(sizeof(*c));
	struct repaired *r;
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t l;
	int inq = 0, outq = 0, nsd = 0, v, peek0 = -1, ret = 0;
	uint32_t seq;

	rtcr__tcp_conn__init(c);
	sk->tcp = c;
	rep = xrealloc(rep, (nrep + 1) * sizeof(*rep));
	r = &rep[nrep];
	memset(r, 0, sizeof(*r));
	r->pid = fi->pid;
	r->tfd = fi->fd;
	r->reuse = sk->reuseaddr;
	snprintf(r->ep, sizeof(r->ep), "%s", ep);
	if (!is_locked(sk)) {
		pr_err("%sfd %d: %s established during the dump (not under the network lock): dump again",
		       who, fi->fd, ep);
		return -EAGAIN;
	}
	ret = guard(sfd, sk->reuseaddr);
	if (ret) {
		pr_err("%sfd %d: %s established: a guardian process: %s", who, fi->fd, ep, strerror(-ret));
		return ret;
	}
	if (setint(sfd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: %s established: TCP_REPAIR", who, fi->fd, ep);
		return ret;
	}
	r->fd = fcntl(sfd, F_DUPFD_CLOEXEC, 0);
	if (r->fd < 0) {
		ret = -errno;
		setint(sfd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
		if (sk->reuseaddr)
			setint(sfd, SOL_SOCKET, SO_REUSEADDR, 1);
		return ret;
	}
	nrep++;

	/* A peek offset the program set would shift the peeks. */
	if (getint(sfd, SOL_SOCKET, SO_PEEK_OFF, &peek0) == 0 && peek0 >= 0)
		setint(sfd, SOL_SOCKET, SO_PEEK_OFF, -1);
	l = sizeof(seq);
	if (setint(sfd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
	    getsockopt(sfd, SOL_TCP, TCP_QUEUE_SEQ, &seq, &l) < 0 || ioctl(sfd, SIOCINQ, &inq) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: %s established: its receive queue", who, fi->fd, ep);
		goto out;
	}
	c->rcv_seq = r->rcv_seq = seq;
	ret = peek_all(sfd, &c->rcvq, inq, who, fi->fd, "receive");
	if (ret)
		goto out;
	l = sizeof(seq);
	if (setint(sfd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 ||
	    getsockopt(sfd, SOL_TCP, TCP_QUEUE_SEQ, &seq, &l) < 0 || ioctl(sfd, SIOCOUTQ, &outq) < 0 ||
	    ioctl(sfd, SIOCOUTQNSD, &nsd) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: %s established: its send queue", who, fi->fd, ep);
		goto out;
	}
	c->snd_seq = seq;
	c->sndq_unsent = (uint32_t)nsd;
	ret = peek_all(sfd, &c->sndq, outq, who, fi->fd, "send");
	setint(sfd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (ret)
		goto out;
	if (getint(sfd, SOL_TCP, TCP_MAXSEG, &v) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: %s: TCP_MAXSEG", who, fi->fd, ep);
		goto out;
	}
	c->mss = (uint32_t)v;
	l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(sfd, SOL_TCP, TCP_INFO, &ti, &l) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: %s: TCP_INFO", who, fi->fd, ep);
		goto out;
	}
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		c->has_wscale = c->has_snd_wscale = c->has_rcv_wscale = 1;
		c->wscale = true;
		c->snd_wscale = ti.tcpi_snd_wscale;
		c->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (ti.tcpi_options & TCPI_OPT_SACK) {
		c->has_sack = 1;
		c->sack = true;
	}
	if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) {
		c->has_timestamps = 1;
		c->timestamps = true;
		if (getint(sfd, SOL_TCP, TCP_TIMESTAMP, &v) == 0) {
			c->has_ts_val = 1;
			c->ts_val = (uint32_t)v;
		}
	}
	l = sizeof(w);
	if (getsockopt(sfd, SOL_TCP, TCP_REPAIR_WINDOW, &w, &l) == 0) {
		c->has_snd_wl1 = c->has_snd_wnd = c->has_max_window = c->has_rcv_wnd = c->has_rcv_wup = 1;
		c->snd_wl1 = w.snd_wl1;
		c->snd_wnd = w.snd_wnd;
		c->max_window = w.max_window;
		c->rcv_wnd = w.rcv_wnd;
		c->rcv_wup = w.rcv_wup;
	}
	if (ti.tcpi_state != ST_ESTABLISHED) {
		pr_err("%sfd %d: %s: left the established state during the dump", who, fi->fd, ep);
		ret = -EAGAIN;
	}
	sk->has_queued_bytes = 1;
	sk->queued_bytes = (uint64_t)inq;
out:
	if (peek0 >= 0)
		setint(sfd, SOL_SOCKET, SO_PEEK_OFF, peek0);
	return ret;
}

static void add_dgram(Rtcr__InetSk *sk, const void *data, size_t len, const union isa *from)
{
	Rtcr__InetDgram *d = xzalloc(sizeof(*d));
	rtcr__inet_dgram__init(d);
	set_bytes(&d->data, data, len);
	if (from->sa.sa_family == AF_INET || from->sa.sa_family == AF_INET6) {
		d->has_addr = d->has_port = 1;
		d->port = from_sa(from, &d->addr, NULL);
	}
	sk->dgrams = xrealloc(sk->dgrams, (sk->n_dgrams + 1) * sizeof(*sk->dgrams));
	sk->dgrams[sk->n_dgrams++] = d;
	sk->queued_bytes += len;
}

/* The datagrams queued, peeked one after the other. */
static int peek_dgrams(int sfd, Rtcr__InetSk *sk, const char *who, int fd, const char *ep)
{
	size_t bsz = 65536 + 64;
	char *buf = xmalloc(bsz);
	int off0 = -1, pos = 0, ret = 0;

	if (getint(sfd, SOL_SOCKET, SO_PEEK_OFF, &off0) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: %s: SO_PEEK_OFF", who, fd, ep);
		free(buf);
		return ret;
	}
	sk->has_queued_bytes = 1;
	for (;;) {
		union isa from;
		struct iovec iov = { buf, bsz };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				     .msg_iovlen = 1 };
		ssize_t n;

		if (setint(sfd, SOL_SOCKET, SO_PEEK_OFF, pos) < 0) {
			ret = -errno;
			pr_perror("%sfd %d: %s: SO_PEEK_OFF", who, fd, ep);
			break;
		}
		memset(&from, 0, sizeof(from));
		n = recvmsg(sfd, &mh, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			ret = -errno;
			pr_perror("%sfd %d: %s: reading its queue", who, fd, ep);
			break;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			pr_err("%sfd %d: %s: a datagram in flight too large to read", who, fd, ep);
			ret = -EMSGSIZE;
			break;
		}
		add_dgram(sk, buf, (size_t)n, &from);
		pos += (int)n;
		if (n == 0 || sk->n_dgrams > 100000) {
			/* An empty datagram cannot be stepped over with a peek offset. */
			pr_err("%sfd %d: %s: %s queued: not supported", who, fd, ep,
			       n ? "more than 100000 datagrams" : "an empty datagram");
			ret = -ENOTSUP;
			break;
		}
	}
	if (setint(sfd, SOL_SOCKET, SO_PEEK_OFF, off0) < 0 && !ret) {
		ret = -errno;
		pr_perror("%sfd %d: %s: putting SO_PEEK_OFF back", who, fd, ep);
	}
	free(buf);
	return ret;
}

/* Every fd of a socket carries all of it: the later ones a copy of the first. */
struct dumped {
	uint32_t file_id;
	Rtcr__InetSk *sk;
};
static struct dumped *dumped;
static int ndumped;

static Rtcr__InetSk *sk_copy(const Rtcr__InetSk *s)
{
	size_t len = rtcr__inet_sk__get_packed_size(s);
	uint8_t *b = xmalloc(len ? len : 1);
	Rtcr__InetSk *c;
	rtcr__inet_sk__pack(s, b);
	c = rtcr__inet_sk__unpack(NULL, len, b);
	free(b);
	return c;
}

static int inet_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		     Rtcr__Files *files)
{
	Rtcr__InetFd *u = xzalloc(sizeof(*u));
	Rtcr__InetSk *sk;
	union isa a;
	socklen_t al;
	char who[48] = "", ep[160];
	int sfd, v, ret = 0, type = 0;

	(void)files;
	rtcr__inet_fd__init(u);
	u->flags = fi->flags;
	out->inet = u;
	if (fc->nprocs > 1)
		snprintf(who, sizeof(who), "pid %d: ", fi->pid);
	for (int i = 0; i < ndumped; i++)
		if (dumped[i].file_id == fi->file_id) {
			u->sk = sk_copy(dumped[i].sk);
			return u->sk ? 0 : -ENOMEM;
		}
	sk = u->sk = xzalloc(sizeof(*sk));
	rtcr__inet_sk__init(sk);

	sfd = fd_copy(fi);
	if (sfd < 0) {
		pr_err("%sfd %d: inet socket: pidfd_getfd: %s", who, fi->fd, strerror(-sfd));
		return sfd;
	}
	getint(sfd, SOL_SOCKET, SO_DOMAIN, &v);
	sk->family = (uint32_t)v;
	getint(sfd, SOL_SOCKET, SO_PROTOCOL, &v);
	sk->proto = (uint32_t)v;
	getint(sfd, SOL_SOCKET, SO_TYPE, &type);
	al = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(sfd, &a.sa, &al) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: inet socket: getsockname", who, fi->fd);
		goto out;
	}
	sk->lport = from_sa(&a, &sk->laddr, &sk->scope_id);
	sk->has_scope_id = sk->scope_id != 0;
	al = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(sfd, &a.sa, &al) == 0) {
		uint32_t sc = 0;
		sk->has_raddr = sk->has_rport = 1;
		sk->rport = from_sa(&a, &sk->raddr, &sc);
		if (sc) {
			sk->has_scope_id = 1;
			sk->scope_id = sc;
		}
	}

	/* Options (SO_REUSEADDR before any repair mode, which changes it). */
#define FLAG(field, level, opt)                                                    \
	do {                                                                       \
		if (getint(sfd, level, opt, &v) == 0 && v) {                       \
			sk->has_##field = 1;                                       \
			sk->field = true;                                          \
		}                                                                  \
	} while (0)
	FLAG(reuseaddr, SOL_SOCKET, SO_REUSEADDR);
	FLAG(reuseport, SOL_SOCKET, SO_REUSEPORT);
	FLAG(keepalive, SOL_SOCKET, SO_KEEPALIVE);
	if (sk->family == AF_INET6)
		FLAG(v6only, IPPROTO_IPV6, IPV6_V6ONLY);
	if (sk->proto == IPPROTO_TCP)
		FLAG(nodelay, SOL_TCP, TCP_NODELAY);
	else
		FLAG(broadcast, SOL_SOCKET, SO_BROADCAST);
#undef FLAG
	if (getint(sfd, SOL_SOCKET, SO_SNDBUF, &v) == 0) {
		sk->has_cur_sndbuf = 1;
		sk->cur_sndbuf = (uint32_t)v;
	}
	if (getint(sfd, SOL_SOCKET, SO_RCVBUF, &v) == 0) {
		sk->has_cur_rcvbuf = 1;
		sk->cur_rcvbuf = (uint32_t)v;
	}

	if (sk->proto == IPPROTO_TCP) {
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (getsockopt(sfd, SOL_TCP, TCP_INFO, &ti, &tl) < 0) {
			ret = -errno;
			pr_perror("%sfd %d: tcp socket: TCP_INFO", who, fi->fd);
			goto out;
		}
		sk->state = ti.tcpi_state;
		if (sk->state == ST_ESTABLISHED)
			sk->has_passive = 1, sk->passive = listener_on(sk->lport);
		ep_str(sk, ep, sizeof(ep));
		if (sk->state == ST_LISTEN) {
			sk->has_backlog = 1;
			sk->backlog = ti.tcpi_sacked;
			if (ti.tcpi_unacked) {
				pr_err("%sfd %d: %s listening: %u connection%s waiting to be accepted: not "
				       "supported (they cannot be put back in its queue)", who, fi->fd, ep,
				       ti.tcpi_unacked, ti.tcpi_unacked > 1 ? "s" : "");
				ret = -ENOTSUP;
				goto out;
			}
		} else if (sk->state == ST_ESTABLISHED) {
			int urg = 0;
			if (!fc->tcp_established) {
				pr_err("%sfd %d: %s established: needs --tcp-established", who, fi->fd, ep);
				ret = -ENOTSUP;
				goto out;
			}
			if (ioctl(sfd, SIOCATMARK, &urg) == 0 && urg) {
				pr_err("%sfd %d: %s: urgent data pending: not supported", who, fi->fd, ep);
				ret = -ENOTSUP;
				goto out;
			}
			ret = dump_conn(sfd, fi, sk, who, ep);
			if (ret)
				goto out;
		} else if (sk->state != ST_CLOSE) {
			pr_err("%sfd %d: %s in state %s: not supported", who, fi->fd, ep, state_name(sk->state));
			ret = -ENOTSUP;
			goto out;
		}
		/* Buffer sizes the program set (a new socket has tcp_[rw]mem[1];
		 * an established one's are autotuned and left so). */
		if (sk->state != ST_ESTABLISHED) {
			int dr = sysctl_int("/proc/sys/net/ipv4/tcp_rmem", 1);
			int dw = sysctl_int("/proc/sys/net/ipv4/tcp_wmem", 1);
			if (sk->has_cur_rcvbuf && (int)sk->cur_rcvbuf != dr)
				sk->has_rcvbuf = 1, sk->rcvbuf = sk->cur_rcvbuf;
			if (sk->has_cur_sndbuf && (int)sk->cur_sndbuf != dw)
				sk->has_sndbuf = 1, sk->sndbuf = sk->cur_sndbuf;
		}
	} else {
		int dr = sysctl_int("/proc/sys/net/core/rmem_default", 0);
		int dw = sysctl_int("/proc/sys/net/core/wmem_default", 0);
		sk->state = sk->raddr.len ? ST_ESTABLISHED : ST_CLOSE;
		ep_str(sk, ep, sizeof(ep));
		if (sk->has_cur_rcvbuf && (int)sk->cur_rcvbuf != dr)
			sk->has_rcvbuf = 1, sk->rcvbuf = sk->cur_rcvbuf;
		if (sk->has_cur_sndbuf && (int)sk->cur_sndbuf != dw)
			sk->has_sndbuf = 1, sk->sndbuf = sk->cur_sndbuf;
		ret = peek_dgrams(sfd, sk, who, fi->fd, ep);
	}
	if (!ret) {
		dumped = xrealloc(dumped, (ndumped + 1) * sizeof(*dumped));
		dumped[ndumped].file_id = fi->file_id;
		dumped[ndumped++].sk = sk;
	}
out:
	close(sfd);
	return ret;
}

int inet_dump_verify(void)
{
	int ret = 0;
	for (int i = 0; i < nrep; i++) {
		uint32_t seq = 0;
		socklen_t l = sizeof(seq);
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (setint(rep[i].fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
		    getsockopt(rep[i].fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, &l) < 0 ||
		    getsockopt(rep[i].fd, SOL_TCP, TCP_INFO, &ti, &tl) < 0) {
			pr_perror("pid %d: fd %d: %s: checking it", rep[i].pid, rep[i].tfd, rep[i].ep);
			ret = -EIO;
		} else if (seq != rep[i].rcv_seq || ti.tcpi_state != ST_ESTABLISHED) {
			pr_err("pid %d: fd %d: %s: %s during the dump (not in the image): dump again",
			       rep[i].pid, rep[i].tfd, rep[i].ep,
			       ti.tcpi_state != ST_ESTABLISHED ? "the connection changed state" :
								 "the peer sent data");
			ret = -EAGAIN;
		}
		setint(rep[i].fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	}
	return ret;
}

int inet_dump_done(enum inet_done how)
{
	int ret = 0;
	if (how == INET_KILLED) {
		/* First: the guardian's copies must be gone before ours close. */
		guard_release();
		for (int i = 0; i < nrep; i++) {
			uint32_t seq = 0;
			socklen_t l = sizeof(seq);
			if (setint(rep[i].fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) == 0 &&
			    getsockopt(rep[i].fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, &l) == 0 &&
			    seq != rep[i].rcv_seq) {
				pr_err("pid %d: fd %d: %s: the peer sent %u bytes while the dump ended: they are "
				       "acknowledged but not in the image", rep[i].pid, rep[i].tfd, rep[i].ep,
				       seq - rep[i].rcv_seq);
				ret = -EIO;
			}
			close(rep[i].fd);   /* still in repair mode: no FIN, no RST */
		}
		/* The lock stays: the image records it, restore removes it. */
	} else {
		for (int i = 0; i < nrep; i++) {
			setint(rep[i].fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
			if (setint(rep[i].fd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) < 0) {
				pr_perror("pid %d: fd %d: %s: leaving repair mode", rep[i].pid, rep[i].tfd,
					  rep[i].ep);
				ret = -EIO;
			}
			if (rep[i].reuse && setint(rep[i].fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
				pr_perror("pid %d: fd %d: %s: SO_REUSEADDR", rep[i].pid, rep[i].tfd, rep[i].ep);
			close(rep[i].fd);
		}
		/* The connections live again: their segments may pass. The
		 * guardian (which would do the same if rtcr died) goes last. */
		if (lock_table[0] && netlock_release(lock_table, false)) {
			pr_err("the connections stay locked: remove the lock with 'nft delete table inet %s'",
			       lock_table);
			ret = -EIO;
		}
		guard_release();
	}
	free(rep);
	rep = NULL;
	nrep = 0;
	free(dumped);      /* the entries belong to the image */
	dumped = NULL;
	ndumped = 0;
	for (size_t i = 0; i < lock_pb.n_connections; i++)
		free(lock_pb.connections[i]);
	free(lock_pb.connections);
	rtcr__net_lock__init(&lock_pb);
	free(locked);
	locked = NULL;
	nlocked = 0;
	lock_table[0] = 0;
	return ret;
}

/* ---- restore ---- */

struct isk {
	const Rtcr__Fd *e;
	int fd;
};

static struct {
	struct isk *v;
	size_t n;
	bool tried;
	int err;
	int top;
} irt;

static struct isk *irt_find(uint32_t file_id)
{
	for (size_t i = 0; i < irt.n; i++)
		if (irt.v[i].e->file_id == file_id)
			return &irt.v[i];
	return NULL;
}

static int new_sock(int family, int type, int proto)
{
	int s = socket(family, type | SOCK_CLOEXEC, proto), h;
	if (s < 0)
		return -errno;
	h = fcntl(s, F_DUPFD_CLOEXEC, irt.top);
	close(s);
	return h < 0 ? -errno : h;
}

static void set_buf(int fd, int opt, uint32_t v)
{
	setint(fd, SOL_SOCKET, opt, (int)(v / 2));
}

/* Options to set before bind. Not SO_REUSEADDR in repair mode, which
 * forces reuse (so a listener on the port is no conflict) and would lose
 * that: it is set again when the connection leaves repair mode. */
static int pre_bind(int fd, const Rtcr__InetSk *s, int img_fd, const char *ep)
{
	if ((s->reuseaddr && !s->tcp && setint(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) ||
	    (s->reuseport && setint(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) ||
	    (s->family == AF_INET6 && setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, s->v6only) < 0) ||
	    (s->keepalive && setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1) < 0) ||
	    (s->nodelay && setint(fd, SOL_TCP, TCP_NODELAY, 1) < 0) ||
	    (s->broadcast && setint(fd, SOL_SOCKET, SO_BROADCAST, 1) < 0)) {
		pr_perror("fd %d: %s: socket options", img_fd, ep);
		return -errno;
	}
	if (s->has_sndbuf)
		set_buf(fd, SO_SNDBUFFORCE, s->sndbuf);
	if (s->has_rcvbuf)
		set_buf(fd, SO_RCVBUFFORCE, s->rcvbuf);
	return 0;
}

static int do_bind(int fd, const Rtcr__InetSk *s, int img_fd, const char *ep)
{
	union isa a;
	socklen_t al;
	if (!s->lport && addr_any(&s->laddr))
		return 0;
	al = to_sa(&a, s->family, &s->laddr, s->lport, s->scope_id);
	if (bind(fd, &a.sa, al) < 0) {
		int e = errno;
		char b[64];
		pr_err("fd %d: %s: bind to %s: %s", img_fd, ep, addr_str(s->family, &s->laddr, s->lport, b,
		       sizeof(b)), strerror(e));
		return -e;
	}
	return 0;
}

static int build_plain(struct isk *k)
{
	const Rtcr__InetSk *s = k->e->inet->sk;
	char ep[160];
	int fd, ret;

	ep_str(s, ep, sizeof(ep));
	fd = new_sock((int)s->family, s->proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM, (int)s->proto);
	if (fd < 0) {
		pr_err("fd %d: %s: socket: %s", k->e->fd, ep, strerror(-fd));
		return fd;
	}
	k->fd = fd;
	ret = pre_bind(fd, s, k->e->fd, ep);
	if (!ret)
		ret = do_bind(fd, s, k->e->fd, ep);
	if (!ret && s->state == ST_LISTEN && listen(fd, (int)s->backlog) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: listen", k->e->fd, ep);
	}
	return ret;
}

static int send_queue(int fd, const uint8_t *p, size_t len, int img_fd, const char *ep, const char *what)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, p + off, MIN(len - off, (size_t)65536), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("fd %d: %s: putting its %s queue back (%zu of %zu bytes): %s", img_fd, ep, what,
			       off, len, n < 0 ? strerror(errno) : "no progress");
			return n < 0 ? -errno : -EIO;
		}
		off += (size_t)n;
	}
	return 0;
}

static int build_conn(struct isk *k)
{
	const Rtcr__InetSk *s = k->e->inet->sk;
	const Rtcr__TcpConn *c = s->tcp;
	union isa a;
	socklen_t al;
	char ep[160];
	struct tcp_repair_opt opts[4];
	int no = 0, fd, ret;
	size_t sent = c->sndq.len - MIN(c->sndq_unsent, c->sndq.len);

	ep_str(s, ep, sizeof(ep));
	fd = new_sock((int)s->family, SOCK_STREAM, IPPROTO_TCP);
	if (fd < 0) {
		pr_err("fd %d: %s: socket: %s", k->e->fd, ep, strerror(-fd));
		return fd;
	}
	k->fd = fd;
	if (setint(fd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: TCP_REPAIR (needs CAP_NET_ADMIN)", k->e->fd, ep);
		return ret;
	}
	ret = pre_bind(fd, s, k->e->fd, ep);
	if (ret)
		return ret;
	if (setint(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
	    setint(fd, SOL_TCP, TCP_QUEUE_SEQ, (int)(c->rcv_seq - (uint32_t)c->rcvq.len)) < 0 ||
	    setint(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 ||
	    setint(fd, SOL_TCP, TCP_QUEUE_SEQ, (int)(c->snd_seq - (uint32_t)c->sndq.len)) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: sequence numbers", k->e->fd, ep);
		return ret;
	}
	setint(fd, s->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
	       s->family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND, 1);
	ret = do_bind(fd, s, k->e->fd, ep);
	if (ret)
		return ret;
	al = to_sa(&a, s->family, &s->raddr, s->rport, s->scope_id);
	if (connect(fd, &a.sa, al) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: connect in repair mode", k->e->fd, ep);
		return ret;
	}
	setint(fd, s->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
	       s->family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND, 0);
	opts[no].opt_code = TCPOPT_MAXSEG;
	opts[no++].opt_val = c->mss;
	if (c->wscale) {
		opts[no].opt_code = TCPOPT_WINDOW;
		opts[no++].opt_val = c->snd_wscale | (c->rcv_wscale << 16);
	}
	if (c->timestamps) {
		opts[no].opt_code = TCPOPT_TIMESTAMP;
		opts[no++].opt_val = 0;
	}
	if (c->sack) {
		opts[no].opt_code = TCPOPT_SACK_PERMITTED;
		opts[no++].opt_val = 0;
	}
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, opts, (socklen_t)(no * sizeof(opts[0]))) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: TCP_REPAIR_OPTIONS", k->e->fd, ep);
		return ret;
	}
	/* Room for the queues (the original had it). */
	if (c->rcvq.len) {
		uint32_t need = (uint32_t)MIN(c->rcvq.len * 2 + 65536, (size_t)1 << 30);
		set_buf(fd, SO_RCVBUFFORCE, MAX(need, s->cur_rcvbuf));
	}
	if (c->sndq.len) {
		uint32_t need = (uint32_t)MIN(c->sndq.len * 2 + 65536, (size_t)1 << 30);
		set_buf(fd, SO_SNDBUFFORCE, MAX(need, s->cur_sndbuf));
	}
	if (setint(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
	    (ret = send_queue(fd, c->rcvq.data, c->rcvq.len, k->e->fd, ep, "receive")) ||
	    setint(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 ||
	    (ret = send_queue(fd, c->sndq.data, sent, k->e->fd, ep, "send"))) {
		ret = ret ? ret : -errno;
		return ret;
	}
	setint(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (c->has_snd_wnd) {
		struct tcp_repair_window w = { .snd_wl1 = c->snd_wl1, .snd_wnd = c->snd_wnd,
					       .max_window = c->max_window, .rcv_wnd = c->rcv_wnd,
					       .rcv_wup = c->rcv_wup };
		if (setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0) {
			ret = -errno;
			pr_perror("fd %d: %s: TCP_REPAIR_WINDOW", k->e->fd, ep);
			return ret;
		}
	}
	/* The peer drops segments whose timestamps go back (PAWS). */
	if (c->has_ts_val && setint(fd, SOL_TCP, TCP_TIMESTAMP, (int)c->ts_val) < 0) {
		ret = -errno;
		pr_perror("fd %d: %s: TCP_TIMESTAMP", k->e->fd, ep);
		return ret;
	}
	return 0;   /* repair mode is left in install() */
}

static int build_all(struct files_restore_ctx *ctx)
{
	size_t cap = 0;
	int ret = 0;

	for (size_t p = 0; p < ctx->nfiles; p++)
		for (size_t i = 0; i < ctx->files[p]->n_fds; i++) {
			const Rtcr__Fd *e = ctx->files[p]->fds[i];
			if (e->kind != RTCR__FD_KIND__FD_INET || irt_find(e->file_id))
				continue;
			if (irt.n == cap)
				irt.v = xrealloc(irt.v, (cap = cap ? cap * 2 : 16) * sizeof(*irt.v));
			irt.v[irt.n].e = e;
			irt.v[irt.n++].fd = -1;
		}
	/* Listeners and bound sockets first: a connection's repair mode lets
	 * it share their port, not the other way round. */
	for (size_t i = 0; i < irt.n && !ret; i++)
		if (!irt.v[i].e->inet->sk->tcp)
			ret = build_plain(&irt.v[i]);
	for (size_t i = 0; i < irt.n && !ret; i++)
		if (irt.v[i].e->inet->sk->tcp)
			ret = build_conn(&irt.v[i]);
	return ret;
}

/* A sender for a datagram from addr:port: a socket of the image bound
 * there, or a new one bound there, or (the address taken) any. */
static int dgram_sender(const Rtcr__InetDgram *d, bool *temp, bool *exact)
{
	unsigned fam = d->addr.len == 4 ? AF_INET : AF_INET6;
	union isa a;
	socklen_t al;
	int fd;

	*temp = true;
	*exact = false;
	for (size_t i = 0; i < irt.n; i++) {
		const Rtcr__InetSk *s = irt.v[i].e->inet->sk;
		if (s->proto == IPPROTO_UDP && s->family == fam && s->lport == d->port && irt.v[i].fd >= 0 &&
		    s->laddr.len == d->addr.len && !memcmp(s->laddr.data, d->addr.data, d->addr.len)) {
			*temp = false;
			*exact = true;
			return irt.v[i].fd;
		}
	}
	fd = new_sock((int)fam, SOCK_DGRAM, IPPROTO_UDP);
	if (fd < 0)
		return fd;
	setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	setint(fd, fam == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP, fam == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND, 1);
	setint(fd, fam == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP, fam == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, 1);
	if (fam == AF_INET6)
		setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	al = to_sa(&a, fam, &d->addr, d->port, 0);
	if (bind(fd, &a.sa, al) == 0)
		*exact = true;
	return fd;
}

static int fill_dgrams(struct isk *k)
{
	const Rtcr__InetSk *s = k->e->inet->sk;
	union isa to;
	socklen_t tl;
	char ep[160];
	int approx = 0, ret = 0;

	if (!s->n_dgrams)
		return 0;
	ep_str(s, ep, sizeof(ep));
	set_buf(k->fd, SO_RCVBUFFORCE, (uint32_t)MIN(s->queued_bytes * 4 + s->n_dgrams * 1024 + 262144,
						     (uint64_t)1 << 30));
	for (size_t i = 0; i < s->n_dgrams && !ret; i++) {
		const Rtcr__InetDgram *d = s->dgrams[i];
		Rtcr__InetDgram any = RTCR__INET_DGRAM__INIT;
		uint8_t lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 }, any6[16] = { 0 };
		ProtobufCBinaryData dst;
		bool temp, exact;
		unsigned fam;
		int fd;

		if (!d->addr.len) {
			any.addr.data = s->family == AF_INET ? lo4 : any6;
			any.addr.len = s->family == AF_INET ? 4 : 16;
			d = &any;
		}
		fam = d->addr.len == 4 ? AF_INET : AF_INET6;
		/* To its socket: its own address, or loopback for a wildcard. */
		if (fam == s->family && !addr_any(&s->laddr)) {
			dst = s->laddr;
		} else if (fam == AF_INET) {
			dst.data = lo4;
			dst.len = 4;
		} else if (s->family == AF_INET && !addr_any(&s->laddr)) {
			dst = s->laddr;   /* never: a v4 socket gets v4 datagrams */
		} else {
			dst.data = lo6;
			dst.len = 16;
		}
		if (fam == AF_INET6 && dst.len == 4) {
			pr_err("fd %d: %s: a datagram from an IPv6 address on an IPv4 socket", k->e->fd, ep);
			return -EINVAL;
		}
		fd = dgram_sender(d, &temp, &exact);
		if (fd < 0) {
			pr_err("fd %d: %s: a socket to send its datagrams back: %s", k->e->fd, ep, strerror(-fd));
			return fd;
		}
		tl = to_sa(&to, fam, &dst, s->lport, fam == AF_INET6 ? s->scope_id : 0);
		if (sendto(fd, d->data.data, d->data.len, MSG_DONTWAIT, &to.sa, tl) != (ssize_t)d->data.len) {
			ret = -errno;
			pr_perror("fd %d: %s: sending a datagram in flight back", k->e->fd, ep);
		}
		approx += !exact;
		if (temp)
			close(fd);
	}
	if (approx)
		pr_warn("fd %d: %s: %d of its datagrams in flight come from another address than their "
			"original sender's now (its address is taken)", k->e->fd, ep, approx);
	if (s->has_rcvbuf)
		set_buf(k->fd, SO_RCVBUFFORCE, s->rcvbuf);
	else
		setint(k->fd, SOL_SOCKET, SO_RCVBUF, sysctl_int("/proc/sys/net/core/rmem_default", 0) / 2);
	return ret;
}

static int inet_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	const Rtcr__InetSk *s;
	size_t al;

	(void)ctx;
	if (!e->inet || !e->inet->sk) {
		pr_err("fd %d: image entry lacks its inet socket part", e->fd);
		return -EINVAL;
	}
	s = e->inet->sk;
	al = s->family == AF_INET ? 4 : 16;
	if ((s->family != AF_INET && s->family != AF_INET6) ||
	    (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP) || s->laddr.len != al ||
	    (s->raddr.len && s->raddr.len != al) || s->lport > 65535 || s->rport > 65535 ||
	    (s->tcp && (s->proto != IPPROTO_TCP || !s->raddr.len))) {
		pr_err("fd %d: inet socket: impossible entry", e->fd);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->n_dgrams; i++)
		if (s->dgrams[i]->addr.len && s->dgrams[i]->addr.len != 4 && s->dgrams[i]->addr.len != 16) {
			pr_err("fd %d: inet socket: impossible entry", e->fd);
			return -EINVAL;
		}
	return 0;
}

static int build_everything(struct files_restore_ctx *ctx)
{
	int ret = build_all(ctx);
	/* Datagrams, then the connections of UDP sockets (which would filter them). */
	for (size_t i = 0; i < irt.n && !ret; i++)
		if (irt.v[i].e->inet->sk->proto == IPPROTO_UDP)
			ret = fill_dgrams(&irt.v[i]);
	for (size_t i = 0; i < irt.n && !ret; i++) {
		const Rtcr__InetSk *s = irt.v[i].e->inet->sk;
		char ep[160];
		if (s->proto == IPPROTO_UDP && s->raddr.len) {
			union isa a;
			socklen_t al = to_sa(&a, s->family, &s->raddr, s->rport, s->scope_id);
			if (connect(irt.v[i].fd, &a.sa, al) < 0) {
				ret = -errno;
				pr_perror("fd %d: %s: connect", irt.v[i].e->fd, ep_str(s, ep, sizeof(ep)));
			}
		}
	}
	for (size_t i = 0; i < irt.n && !ret; i++) {
		uint32_t fl = irt.v[i].e->inet->flags;
		if (fcntl(irt.v[i].fd, F_SETFL, fl & ~O_ACCMODE) < 0) {
			ret = -errno;
			pr_perror("fd %d: inet socket: flags %#x", irt.v[i].e->fd, fl);
		}
	}
	return ret;
}

static int inet_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	struct isk *k;
	int fd;

	if (!irt.tried) {
		irt.tried = true;
		irt.top = ctx->carrier_top;
		irt.err = build_everything(ctx);
	}
	if (irt.err)
		return irt.err;
	k = irt_find(e->file_id);
	if (!k || k->fd < 0) {
		pr_err("fd %d: inet socket was not built", e->fd);
		return -EINVAL;
	}
	fd = k->fd;
	k->fd = -1;   /* files_prepare() owns it now */
	return fd;
}

void inet_prepared(struct files_restore_ctx *ctx)
{
	(void)ctx;
	for (size_t i = 0; i < irt.n; i++)
		if (irt.v[i].fd >= 0)
			close(irt.v[i].fd);   /* a connection still in repair mode: silently */
	free(irt.v);
	memset(&irt, 0, sizeof(irt));
}

/* In the owner process, once every fd is at its number: the connection
 * goes live (a window probe tells the peer where we are), then the bytes
 * that had never been sent go out the normal way. */
static int inet_install(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	const Rtcr__InetSk *s = e->inet->sk;
	const Rtcr__TcpConn *c = s->tcp;
	size_t unsent, off;
	char ep[160];

	(void)ctx;
	if (!c)
		return 0;
	ep_str(s, ep, sizeof(ep));
	if (setint(e->fd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF) < 0) {
		pr_perror("fd %d: %s: leaving repair mode", e->fd, ep);
		return -errno;
	}
	if (s->reuseaddr)
		setint(e->fd, SOL_SOCKET, SO_REUSEADDR, 1);
	unsent = MIN(c->sndq_unsent, c->sndq.len);
	off = c->sndq.len - unsent;
	while (off < c->sndq.len) {
		ssize_t n = send(e->fd, c->sndq.data + off, c->sndq.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("fd %d: %s: sending its %zu bytes never sent (%zu done): %s", e->fd, ep, unsent,
			       off - (c->sndq.len - unsent), n < 0 ? strerror(errno) : "no progress");
			return n < 0 ? -errno : -EIO;
		}
		off += (size_t)n;
	}
	return 0;
}

static void inet_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__InetSk *s = e->inet ? e->inet->sk : NULL;
	size_t o;

	if (!s) {
		snprintf(buf, len, "inet socket (entry incomplete)");
		return;
	}
	ep_str(s, buf, len);
	o = strlen(buf);
#define ADD(...) do { if (o < len) o += (size_t)snprintf(buf + o, len - o, __VA_ARGS__); } while (0)
	if (s->proto == IPPROTO_TCP) {
		if (s->state == ST_LISTEN)
			ADD(" listening, backlog %u", s->backlog);
		else if (s->tcp)
			ADD(" established, %zu bytes queued in, %zu out", s->tcp->rcvq.len, s->tcp->sndq.len);
		else if (s->lport || !addr_any(&s->laddr))
			ADD(" bound");
		else
			ADD(" unbound");
	} else {
		if (!s->lport && addr_any(&s->laddr))
			ADD(" unbound");
		if (s->n_dgrams)
			ADD(", %zu datagram%s queued (%llu bytes)", s->n_dgrams, s->n_dgrams > 1 ? "s" : "",
			    (unsigned long long)s->queued_bytes);
	}
	if (s->reuseaddr)
		ADD(", reuseaddr");
	if (s->reuseport)
		ADD(", reuseport");
	if (s->v6only)
		ADD(", v6only");
	if (s->nodelay)
		ADD(", nodelay");
	if (e->inet->flags & O_NONBLOCK)
		ADD(", nonblock");
#undef ADD
}

const struct fd_ops inet_fd_ops = {
	.name = "inet",
	.kind = RTCR__FD_KIND__FD_INET,
	.match = inet_match,
	.dump = inet_dump,
	.check = inet_check,
	.open = inet_open,
	.install = inet_install,
	.describe = inet_describe,
};
