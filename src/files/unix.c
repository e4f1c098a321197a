/*
 * Unix domain sockets: stream, datagram and seqpacket; unnamed, bound to
 * a path or to an abstract name; listening (with the connections waiting
 * in the backlog), connected, or neither.
 *
 * Dump reads every unix socket of the machine once through sock_diag
 * (NETLINK_SOCK_DIAG, unix_diag: name, peer inode, state, shutdown,
 * queue lengths, the clients waiting in a listener's backlog), then for
 * each socket of the tree a copy taken with pidfd_getfd() gives its
 * options and its receive queue, read without consuming it: MSG_PEEK
 * with SO_PEEK_OFF walking forward (the target's own peek offset is put
 * back), one message per datagram/record, the sender's address kept.
 * A socket is stored in every fd of it, its queue only in the first.
 *
 * Both ends of a connection must be in the tree; an end outside it is
 * refused by name, unless dump --unix-reconnect was given and the socket
 * is a stream/seqpacket one connected to a named listener: restore then
 * connects a new socket to that address (the data in flight is lost).
 * Waiting connections from clients outside the tree, data sent on a
 * connection not accepted yet, and file descriptors or credentials in
 * flight (SCM_RIGHTS, SCM_CREDENTIALS) are refused too.
 *
 * Restore builds every unix socket of the image at the first one's
 * open(), in an order that gives each its name and peer back:
 *   1. connected stream/seqpacket pairs: socketpair() if neither end has
 *      a name, else a temporary listener bound to the one end's name (an
 *      existing file at that path moved aside meanwhile), the other end
 *      (bound to its own name) connects, accept() gives the first end;
 *   2. mutually connected datagram pairs (socketpair() or bind+connect);
 *   3. the rest: bound (a stale socket file at the path is removed,
 *      anything else there refuses), listening with the saved backlog;
 *      a socket whose peer has closed gets a socketpair whose other end
 *      is closed once the data is in;
 *   4. datagram sockets connected one way, and the clients waiting in a
 *      listener's backlog, connected in queue order;
 *   5. the queued data written back from the peer end (datagrams from a
 *      socket with the original sender's name when there is one), then
 *      buffer sizes, SO_PASSCRED (last: it autobinds on connect/send),
 *      shutdown, file status flags.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

#define TCP_ESTABLISHED 1
#define TCP_CLOSE 7
#define TCP_LISTEN 10

/* ---- sock_diag ---- */

struct udiag {
	uint64_t ino;
	uint8_t type, state, shutdown;
	uint64_t peer;
	unsigned char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int namelen;
	bool has_vfs;
	uint64_t vfs_ino;
	uint32_t vfs_dev;
	uint32_t rq, wq;
	uint64_t *icons;
	int nicons;
};

static struct udiag *dtab;
static int ndtab;
static bool dloaded;

/* The table is the sockets of one moment: each dump reads its own. */
void unix_dump_forget(void)
{
	for (int i = 0; i < ndtab; i++)
		free(dtab[i].icons);
	free(dtab);
	dtab = NULL;
	ndtab = 0;
	dloaded = false;
}

static int diag_load(void)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = -1,
		       .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
				     UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN },
	};
	static char buf[65536] __attribute__((aligned(8)));
	int s, cap = 0, ret = 0;
	bool done = false;

	if (dloaded)
		return 0;
	unix_dump_forget();     /* what a failed load left */
	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s < 0 || send(s, &req, sizeof(req), 0) != sizeof(req)) {
		ret = -errno;
		pr_perror("unix sockets: sock_diag (the kernel needs CONFIG_UNIX_DIAG)");
		if (s >= 0)
			close(s);
		return ret;
	}
	while (!done) {
		ssize_t n = recv(s, buf, sizeof(buf), 0);
		struct nlmsghdr *h;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			pr_perror("unix sockets: sock_diag");
			break;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct unix_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *a;
			int alen;
			struct udiag *d;

			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				ret = e->error ? e->error : -EIO;
				pr_err("unix sockets: sock_diag: %s (the kernel needs CONFIG_UNIX_DIAG)",
				       strerror(-ret));
				done = true;
				break;
			}
			if (ndtab == cap)
				dtab = xrealloc(dtab, (cap = cap ? cap * 2 : 64) * sizeof(*dtab));
			d = &dtab[ndtab++];
			memset(d, 0, sizeof(*d));
			d->ino = m->udiag_ino;
			d->type = m->udiag_type;
			d->state = m->udiag_state;
			alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				void *p = RTA_DATA(a);
				int pl = (int)RTA_PAYLOAD(a);
				switch (a->rta_type) {
				case UNIX_DIAG_NAME:
					d->namelen = MIN(pl, (int)sizeof(d->name));
					memcpy(d->name, p, d->namelen);
					break;
				case UNIX_DIAG_VFS: {
					struct unix_diag_vfs *v = p;
					d->has_vfs = true;
					d->vfs_ino = v->udiag_vfs_ino;
					d->vfs_dev = v->udiag_vfs_dev;
					break;
				}
				case UNIX_DIAG_PEER:
					d->peer = *(uint32_t *)p;
					break;
				case UNIX_DIAG_ICONS:
					d->nicons = pl / 4;
					d->icons = xzalloc((d->nicons + 1) * sizeof(uint64_t));
					for (int k = 0; k < d->nicons; k++)
						d->icons[k] = ((uint32_t *)p)[k];
					break;
				case UNIX_DIAG_RQLEN: {
					struct unix_diag_rqlen *q = p;
					d->rq = q->udiag_rqueue;
					d->wq = q->udiag_wqueue;
					break;
				}
				case UNIX_DIAG_SHUTDOWN:
					d->shutdown = *(uint8_t *)p;
					break;
				}
			}
		}
	}
	close(s);
	if (!ret)
		dloaded = true;
	return ret;
}

static const struct udiag *diag_find(uint64_t ino)
{
	for (int i = 0; i < ndtab; i++)
		if (dtab[i].ino == ino)
			return &dtab[i];
	return NULL;
}

/* The listener whose backlog holds the client 'ino', if any. */
static const struct udiag *diag_listener_of(uint64_t ino)
{
	for (int i = 0; i < ndtab; i++)
		for (int k = 0; k < dtab[i].nicons; k++)
			if (dtab[i].icons[k] == ino)
				return &dtab[i];
	return NULL;
}

/* ---- names ---- */

static const char *type_name(unsigned t)
{
	return t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : t == SOCK_SEQPACKET ? "seqpacket" : "?";
}

/* A printable form of a sun_path: a path, or @name for an abstract one. */
static const char *name_str(const unsigned char *n, size_t len, char *buf, size_t blen)
{
	size_t o = 0;

	if (!len) {
		snprintf(buf, blen, "(unnamed)");
		return buf;
	}
	if (n[0] == 0) {
		buf[o++] = '@';
		n++;
		len--;
	}
	for (size_t i = 0; i < len && o + 5 < blen; i++) {
		if (n[i] == 0 && buf[0] != '@')
			break;
		if (n[i] >= 0x20 && n[i] < 0x7f)
			buf[o++] = (char)n[i];
		else
			o += snprintf(buf + o, blen - o, "\\x%02x", n[i]);
	}
	buf[o] = 0;
	return buf;
}

static bool is_path(const unsigned char *n, size_t len)
{
	return len > 0 && n[0] != 0;
}

/* ---- dump ---- */

static bool unix_match(const struct fd_info *fi)
{
	int sfd, d = -1;
	socklen_t dl = sizeof(d);

	if (!S_ISSOCK(fi->st.st_mode))
		return false;
	sfd = fd_copy(fi);
	if (sfd < 0)
		return false;
	if (getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &d, &dl) < 0)
		d = -1;
	close(sfd);
	return d == AF_UNIX;
}

static const struct fd_info *find_sock(const struct files_collect *fc, uint64_t ino)
{
	for (int i = 0; i < fc->nprocs; i++)
		for (int j = 0; j < fc->procs[i].nfds; j++) {
			const struct fd_info *o = &fc->procs[i].fds[j];
			if (S_ISSOCK(o->st.st_mode) && o->st.st_ino == ino)
				return o;
		}
	return NULL;
}

static void add_msg(Rtcr__UnixSk *sk, const void *data, size_t len, const void *from, size_t flen)
{
	Rtcr__UnixMsg *m = xzalloc(sizeof(*m));
	rtcr__unix_msg__init(m);
	m->data.data = xmalloc(len ? len : 1);
	memcpy(m->data.data, data, len);
	m->data.len = len;
	if (flen) {
		m->has_from = 1;
		m->from.data = xmalloc(flen);
		memcpy(m->from.data, from, flen);
		m->from.len = flen;
	}
	sk->queue = xrealloc(sk->queue, (sk->n_queue + 1) * sizeof(*sk->queue));
	sk->queue[sk->n_queue++] = m;
}

/* Read the receive queue without consuming it. */
static int peek_queue(int sfd, const struct udiag *d, Rtcr__UnixSk *sk, const char *who, int fd)
{
	int off0 = -1, pos = 0, ret = 0;
	socklen_t ol = sizeof(off0);
	size_t bsz = 65536;
	char *buf = xmalloc(bsz);
	bool stream = d->type == SOCK_STREAM;
	size_t total = 0;

	if (getsockopt(sfd, SOL_SOCKET, SO_PEEK_OFF, &off0, &ol) < 0 ||
	    setsockopt(sfd, SOL_SOCKET, SO_PEEK_OFF, &pos, sizeof(pos)) < 0) {
		ret = -errno;
		pr_perror("%sfd %d: unix socket: SO_PEEK_OFF", who, fd);
		free(buf);
		return ret;
	}
	for (;;) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred)) + 256];
		} cb;
		struct sockaddr_un from;
		struct iovec iov = { buf, bsz };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				     .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof(cb.b) };
		const char *anc = NULL;
		ssize_t n = recvmsg(sfd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			ret = -errno;
			pr_perror("%sfd %d: unix socket: reading its queue", who, fd);
			break;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_RIGHTS) {
				int nf = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				for (int k = 0; k < nf; k++)
					close(((int *)CMSG_DATA(c))[k]);
				anc = "file descriptors (SCM_RIGHTS)";
			} else if (c->cmsg_type == SCM_CREDENTIALS) {
				if (!anc)
					anc = "credentials (SCM_CREDENTIALS, SO_PASSCRED is on)";
#ifdef SCM_PIDFD
			} else if (c->cmsg_type == SCM_PIDFD) {
				close(*(int *)CMSG_DATA(c));
				if (!anc)
					anc = "a pidfd (SCM_PIDFD)";
#endif
			} else if (!anc) {
				anc = "ancillary data";
			}
		}
		if (anc) {
			pr_err("%sfd %d: unix %s socket: a message in flight carries %s: not supported", who,
			       fd, type_name(d->type), anc);
			ret = -ENOTSUP;
			break;
		}
		if (!stream && (mh.msg_flags & MSG_TRUNC)) {
			/* Peek again, the whole message, from where it starts. */
			bsz *= 4;
			buf = xrealloc(buf, bsz);
			if (bsz > (64u << 20) || setsockopt(sfd, SOL_SOCKET, SO_PEEK_OFF, &pos, sizeof(pos)) < 0) {
				ret = -EMSGSIZE;
				pr_err("%sfd %d: unix socket: a message in flight too large to read", who, fd);
				break;
			}
			continue;
		}
		if (n == 0 && (stream || (d->shutdown & 1)))
			break;    /* end of the data (a shut reader reads 0 once empty) */
		if (stream) {
			if (sk->n_queue) {
				ProtobufCBinaryData *b = &sk->queue[0]->data;
				b->data = xrealloc(b->data, b->len + n);
				memcpy(b->data + b->len, buf, n);
				b->len += n;
			} else {
				add_msg(sk, buf, n, NULL, 0);
			}
		} else {
			size_t fl = mh.msg_namelen > offsetof(struct sockaddr_un, sun_path) ?
				mh.msg_namelen - offsetof(struct sockaddr_un, sun_path) : 0;
			add_msg(sk, buf, n, from.sun_path, fl);
		}
		total += n;
		pos += (int)n;
		if (sk->n_queue > 1000000) {
			ret = -E2BIG;
			pr_err("%sfd %d: unix socket: too many messages queued", who, fd);
			break;
		}
	}
	if (setsockopt(sfd, SOL_SOCKET, SO_PEEK_OFF, &off0, sizeof(off0)) < 0 && !ret) {
		ret = -errno;
		pr_perror("%sfd %d: unix socket: putting SO_PEEK_OFF back", who, fd);
	}
	if (!ret && stream && total != d->rq) {
		pr_err("%sfd %d: unix stream socket: read %zu of its %u bytes in flight", who, fd, total, d->rq);
		ret = -EIO;
	}
	sk->queued_msgs = (uint32_t)sk->n_queue;
	sk->queued_bytes = total;
	free(buf);
	return ret;
}

static int unix_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
		     Rtcr__Files *files)
{
	Rtcr__UnixFd *u = xzalloc(sizeof(*u));
	Rtcr__UnixSk *sk = xzalloc(sizeof(*sk));
	const struct udiag *d, *pd = NULL;
	const struct fd_info *pfi = NULL;
	char who[48] = "", nb[256], pb[256];
	int sfd = -1, ret = 0, v;
	socklen_t vl = sizeof(v);
	const char *tn;

	rtcr__unix_fd__init(u);
	rtcr__unix_sk__init(sk);
	u->sk = sk;
	u->flags = fi->flags;
	out->unix_sock = u;
	if (fc->nprocs > 1)
		snprintf(who, sizeof(who), "pid %d: ", fi->pid);
	ret = diag_load();
	if (ret)
		return ret;
	d = diag_find(fi->st.st_ino);
	if (!d) {
		pr_err("%sfd %d: unix socket %s: not found through sock_diag", who, fi->fd, fi->link);
		return -ENOENT;
	}
	tn = type_name(d->type);
	sk->ino = d->ino;
	sk->type = d->type;
	sk->state = d->state;
	if (d->type != SOCK_STREAM && d->type != SOCK_DGRAM && d->type != SOCK_SEQPACKET) {
		pr_err("%sfd %d: unix socket of type %u: not supported", who, fi->fd, d->type);
		return -ENOTSUP;
	}
	if (d->namelen) {
		sk->has_name = 1;
		sk->name.data = xmalloc(d->namelen);
		memcpy(sk->name.data, d->name, d->namelen);
		sk->name.len = d->namelen;
		name_str(d->name, d->namelen, nb, sizeof(nb));
		if (is_path(d->name, d->namelen) && d->name[0] != '/') {
			pr_err("%sfd %d: unix %s socket bound to the relative path %s: not supported", who,
			       fi->fd, tn, nb);
			return -ENOTSUP;
		}
	}
	if (d->shutdown) {
		sk->has_shutdown = 1;
		sk->shutdown = d->shutdown;
	}

	/* Whom it is connected to. */
	if (d->state == TCP_LISTEN) {
		sk->has_backlog = 1;
		sk->backlog = d->wq;    /* for a listener: sk_max_ack_backlog */
		sk->n_icons = d->nicons;
		sk->icons = xzalloc((d->nicons + 1) * sizeof(uint64_t));
		for (int k = 0; k < d->nicons; k++) {
			const struct udiag *c = diag_find(d->icons[k]);
			if (!find_sock(fc, d->icons[k])) {
				pr_err("%sfd %d: unix %s socket %s listening: a connection waiting in its backlog "
				       "from a process outside the tree (client ino %llu): not supported",
				       who, fi->fd, tn, nb, (unsigned long long)d->icons[k]);
				return -ENOTSUP;
			}
			if (c && c->wq) {
				pr_err("%sfd %d: unix %s socket %s listening: %u bytes sent on a connection "
				       "waiting in its backlog (not accepted yet): not supported",
				       who, fi->fd, tn, nb, c->wq);
				return -ENOTSUP;
			}
			sk->icons[k] = d->icons[k];
		}
	} else if ((pd = diag_listener_of(d->ino))) {
		/* A client whose connection waits in a listener's backlog. */
		char lb[256];
		pfi = find_sock(fc, pd->ino);
		name_str(pd->name, pd->namelen, lb, sizeof(lb));
		if (!pfi) {
			pr_err("%sfd %d: unix %s socket connected to a process outside the tree "
			       "(a listener not accepting it yet, ino %llu, path %s): not supported",
			       who, fi->fd, tn, (unsigned long long)pd->ino, lb);
			return -ENOTSUP;
		}
		sk->has_waiting = 1;
		sk->waiting = true;
		sk->has_peer = 1;
		sk->peer = pd->ino;
	} else if (d->peer && (pfi = find_sock(fc, d->peer))) {
		sk->has_peer = 1;
		sk->peer = d->peer;
	} else if (d->peer && (pd = diag_find(d->peer))) {
		/* Its peer lives outside the tree. */
		bool can = d->type != SOCK_DGRAM && pd->namelen > 0;
		name_str(pd->name, pd->namelen, pb, sizeof(pb));
		if (!fc->unix_reconnect || !can) {
			pr_err("%sfd %d: unix %s socket connected to a process outside the tree "
			       "(peer ino %llu, path %s): not supported%s%s%s", who, fi->fd, tn,
			       (unsigned long long)d->peer, pb,
			       can ? " (rtcr dump --unix-reconnect: connect it to " : "",
			       can ? pb : "", can ? " again at restore, losing the data in flight)" : "");
			return -ENOTSUP;
		}
		sk->has_reconnect = 1;
		sk->reconnect.data = xmalloc(pd->namelen);
		memcpy(sk->reconnect.data, pd->name, pd->namelen);
		sk->reconnect.len = pd->namelen;
		if (d->rq || d->wq || pd->rq)
			pr_warn("%sfd %d: unix %s socket connected to %s outside the tree: reconnected at "
				"restore; its data in flight (%u bytes in, %u bytes out) is lost", who,
				fi->fd, tn, pb, d->rq, pd->rq);
	} else if (d->state == TCP_ESTABLISHED && d->type != SOCK_DGRAM) {
		/* Connected, and its peer is gone (closed): EOF after the data. */
		sk->has_peer_gone = 1;
		sk->peer_gone = true;
	}
	if (pfi && !sk->waiting && !d->namelen) {
		const struct udiag *o = diag_find(d->peer);
		if (o && o->peer == d->ino && !o->namelen) {
			sk->has_socketpair = 1;
			sk->socketpair = true;
		}
	}
	if (pfi) {
		sk->has_peer_pid = sk->has_peer_fd = 1;
		sk->peer_pid = pfi->pid;
		sk->peer_fd = pfi->fd;
	}

	/* The socket file of a path name: still there, and its mode. */
	/* (An accepted socket has its listener's name and file: not its own.) */
	if (is_path(d->name, d->namelen) && d->has_vfs &&
	    (d->type == SOCK_DGRAM || d->state != TCP_ESTABLISHED)) {
		struct stat st;
		char path[sizeof(d->name) + 1];
		memcpy(path, d->name, d->namelen);
		path[d->namelen] = 0;
		if (stat(path, &st) == 0 && st.st_ino == d->vfs_ino && S_ISSOCK(st.st_mode)) {
			sk->has_mode = 1;
			sk->mode = st.st_mode & 07777;
		} else {
			sk->has_unlinked = 1;
			sk->unlinked = true;
		}
	}

	/* Options and the queue, through a copy of the fd. */
	sfd = fd_copy(fi);
	if (sfd < 0) {
		ret = sfd;
		pr_err("%sfd %d: unix socket: pidfd_getfd: %s", who, fi->fd, strerror(-ret));
		goto out;
	}
	if (getsockopt(sfd, SOL_SOCKET, SO_PASSCRED, &v, &vl) == 0 && v) {
		sk->has_passcred = 1;
		sk->passcred = true;
	}
	vl = sizeof(v);
	if (getsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &v, &vl) == 0) {
		sk->has_sndbuf = 1;
		sk->sndbuf = v;
	}
	vl = sizeof(v);
	if (getsockopt(sfd, SOL_SOCKET, SO_RCVBUF, &v, &vl) == 0) {
		sk->has_rcvbuf = 1;
		sk->rcvbuf = v;
	}
	/* An unconnected stream/seqpacket socket has no queue to read. */
	if ((d->type == SOCK_DGRAM || d->state == TCP_ESTABLISHED) && !sk->reconnect.len) {
		Rtcr__UnixSk tmp;
		rtcr__unix_sk__init(&tmp);
		ret = peek_queue(sfd, d, &tmp, who, fi->fd);
		sk->has_queued_msgs = sk->has_queued_bytes = 1;
		sk->queued_msgs = tmp.queued_msgs;
		sk->queued_bytes = tmp.queued_bytes;
		if (!ret && tmp.n_queue && files_first_of_description(fc, fi)) {
			sk->has_carries_queue = 1;
			sk->carries_queue = true;
			sk->queue = tmp.queue;
			sk->n_queue = tmp.n_queue;
		} else {
			for (size_t k = 0; k < tmp.n_queue; k++)
				rtcr__unix_msg__free_unpacked(tmp.queue[k], NULL);
			free(tmp.queue);
		}
		if (!ret && tmp.n_queue && !sk->peer && !sk->peer_gone && d->type != SOCK_DGRAM) {
			pr_err("%sfd %d: unix %s socket with data queued and no peer: not supported", who,
			       fi->fd, tn);
			ret = -ENOTSUP;
		}
	}
out:
	if (sfd >= 0)
		close(sfd);
	return ret;
}

/* ---- restore ---- */

struct usk {
	const Rtcr__UnixSk *sk;    /* the entry carrying the queue, if any */
	uint32_t flags;
	int img_fd;                /* for messages: its fd number in the image */
	int fd;                    /* built socket, -1 before and once handed out */
	int other;                 /* peer gone: the other end, closed once filled */
	bool built;
};

struct unix_rt {
	struct usk *v;
	size_t n;
	bool tried;
	int err;
	int top;
};

static struct usk *rt_find(struct unix_rt *rt, uint64_t ino)
{
	for (size_t i = 0; i < rt->n; i++)
		if (rt->v[i].sk->ino == ino)
			return &rt->v[i];
	return NULL;
}

static struct usk *rt_find_name(struct unix_rt *rt, const void *name, size_t len)
{
	for (size_t i = 0; i < rt->n; i++) {
		const Rtcr__UnixSk *s = rt->v[i].sk;
		if (s->name.len == len && len && !memcmp(s->name.data, name, len) && s->state != TCP_LISTEN &&
		    !(s->peer && s->type != SOCK_DGRAM))
			return &rt->v[i];
	}
	return NULL;
}

static socklen_t mkaddr(struct sockaddr_un *a, const void *name, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, name, MIN(len, sizeof(a->sun_path)));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + MIN(len, sizeof(a->sun_path)));
}

static void path_of(const ProtobufCBinaryData *n, char *buf, size_t blen)
{
	size_t l = MIN(n->len, blen - 1);
	memcpy(buf, n->data, l);
	buf[l] = 0;
}

/* A socket fd above every carrier (the carriers are placed with dup3). */
static int new_sock(struct unix_rt *rt, int type)
{
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0), h;
	if (s < 0)
		return -errno;
	h = fcntl(s, F_DUPFD_CLOEXEC, rt->top);
	close(s);
	return h < 0 ? -errno : h;
}

static int raise_fd(struct unix_rt *rt, int fd)
{
	int h;
	if (fd < 0)
		return fd;
	h = fcntl(fd, F_DUPFD_CLOEXEC, rt->top);
	close(fd);
	return h < 0 ? -errno : h;
}

/* Bind fd to the saved name; a stale socket file at the path goes. */
static int bind_name(int fd, const struct usk *u, const ProtobufCBinaryData *n, bool clear)
{
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, n->data, n->len);
	char nb[256];

	name_str(n->data, n->len, nb, sizeof(nb));
	if (clear && is_path(n->data, n->len)) {
		struct stat st;
		char path[sizeof(a.sun_path) + 1];
		path_of(n, path, sizeof(path));
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				pr_err("fd %d: unix socket: %s exists and is not a socket", u->img_fd, path);
				return -EEXIST;
			}
			if (unlink(path) < 0) {
				pr_perror("fd %d: unix socket: removing the stale %s", u->img_fd, path);
				return -errno;
			}
		}
	}
	if (bind(fd, (struct sockaddr *)&a, al) < 0) {
		pr_perror("fd %d: unix socket: bind to %s", u->img_fd, nb);
		return -errno;
	}
	return 0;
}

/* A connected stream/seqpacket pair with at least one name: x gets the
 * name of a temporary listener by accepting y's connection. */
static int make_named_pair(struct unix_rt *rt, struct usk *x, struct usk *y)
{
	const Rtcr__UnixSk *xs = x->sk;
	struct sockaddr_un a;
	socklen_t al;
	char path[sizeof(a.sun_path) + 1], aside[sizeof(a.sun_path) + 32];
	bool moved = false, bound = false;
	int t, ret = 0, c;

	if (!xs->name.len) {
		struct usk *s = x;
		x = y;
		y = s;
		xs = x->sk;
	}
	al = mkaddr(&a, xs->name.data, xs->name.len);
	t = new_sock(rt, xs->type);
	y->fd = new_sock(rt, xs->type);
	if (t < 0 || y->fd < 0) {
		ret = t < 0 ? t : y->fd;
		pr_err("fd %d: unix socket: %s", x->img_fd, strerror(-ret));
		goto out;
	}
	if (is_path(xs->name.data, xs->name.len)) {
		path_of(&xs->name, path, sizeof(path));
		if (access(path, F_OK) == 0 || errno != ENOENT) {
			snprintf(aside, sizeof(aside), "%s.rtcr-%d", path, getpid());
			if (rename(path, aside) < 0) {
				ret = -errno;
				pr_perror("fd %d: unix socket: moving %s aside", x->img_fd, path);
				goto out;
			}
			moved = true;
		}
	}
	ret = bind_name(t, x, &xs->name, false);
	if (ret)
		goto out;
	bound = true;
	if (listen(t, 1) < 0) {
		ret = -errno;
		pr_perror("fd %d: unix socket: listen", x->img_fd);
		goto out;
	}
	if (y->sk->name.len && (ret = bind_name(y->fd, y, &y->sk->name, true)))
		goto out;
	if (connect(y->fd, (struct sockaddr *)&a, al) < 0) {
		ret = -errno;
		pr_perror("fd %d: unix socket: connecting its peer", x->img_fd);
		goto out;
	}
	c = accept4(t, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		ret = -errno;
		pr_perror("fd %d: unix socket: accept", x->img_fd);
		goto out;
	}
	x->fd = raise_fd(rt, c);
	if (x->fd < 0)
		ret = x->fd;
out:
	if (t >= 0)
		close(t);
	if (bound && is_path(xs->name.data, xs->name.len))
		unlink(path);
	if (moved && rename(aside, path) < 0) {
		pr_perror("fd %d: unix socket: moving %s back", x->img_fd, path);
		ret = ret ? ret : -errno;
	}
	x->built = y->built = true;
	return ret;
}

static int connect_to(struct usk *u, const ProtobufCBinaryData *n, bool nonblock)
{
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, n->data, n->len);
	char nb[256];
	int fl = fcntl(u->fd, F_GETFL);

	if (nonblock)
		fcntl(u->fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(u->fd, (struct sockaddr *)&a, al) < 0) {
		int e = errno;
		pr_err("fd %d: unix socket: connecting to %s: %s", u->img_fd,
		       name_str(n->data, n->len, nb, sizeof(nb)), strerror(e));
		return -e;
	}
	if (nonblock)
		fcntl(u->fd, F_SETFL, fl);
	return 0;
}

static int set_sndbuf(int fd, int v)
{
	return setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v));
}

/* Send all of buf on fd (to 'to' if given), never blocking. */
static int send_all(const struct usk *r, int fd, const ProtobufCBinaryData *b, const struct usk *to,
		    bool stream)
{
	size_t off = 0;
	struct sockaddr_un a;
	socklen_t al = to ? mkaddr(&a, to->sk->name.data, to->sk->name.len) : 0;

	do {
		ssize_t n = sendto(fd, b->data + off, b->len - off, MSG_DONTWAIT | MSG_NOSIGNAL,
				   to ? (struct sockaddr *)&a : NULL, al);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("fd %d: unix socket: writing its %zu bytes in flight back", r->img_fd,
				  b->len);
			return -errno;
		}
		off += n;
	} while (stream && off < b->len);
	return 0;
}

/* A temporary sender for datagrams from 'from' (empty: unnamed). */
static int temp_sender(struct unix_rt *rt, const struct usk *r, const ProtobufCBinaryData *from,
		       bool *unlink_after)
{
	int s = new_sock(rt, SOCK_DGRAM);
	*unlink_after = false;
	if (s < 0)
		return s;
	set_sndbuf(s, 1 << 24);
	if (from && from->len) {
		char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
		if (is_path(from->data, from->len)) {
			path_of(from, path, sizeof(path));
			if (access(path, F_OK) == 0) {
				char nb[256];
				pr_err("fd %d: unix dgram socket: a message in flight from %s, which is taken "
				       "now: cannot send it again from there", r->img_fd,
				       name_str(from->data, from->len, nb, sizeof(nb)));
				close(s);
				return -EADDRINUSE;
			}
			*unlink_after = true;
		}
		if (bind_name(s, r, from, false)) {
			close(s);
			return -EADDRINUSE;
		}
	}
	return s;
}

static int fill_queue(struct unix_rt *rt, struct usk *r)
{
	const Rtcr__UnixSk *s = r->sk;
	struct usk *p = s->peer ? rt_find(rt, s->peer) : NULL;
	int pfd = p ? p->fd : r->other, ret = 0;
	size_t total = 0;

	for (size_t k = 0; k < s->n_queue; k++)
		total += s->queue[k]->data.len;
	if (s->type != SOCK_DGRAM) {
		if (pfd < 0) {
			pr_err("fd %d: unix socket: data in flight and no peer to send it", r->img_fd);
			return -EINVAL;
		}
		set_sndbuf(pfd, (int)MIN(total * 2 + (1 << 20), (size_t)1 << 30));
		for (size_t k = 0; k < s->n_queue && !ret; k++)
			ret = send_all(r, pfd, &s->queue[k]->data, NULL, s->type == SOCK_STREAM);
		return ret;
	}
	for (size_t k = 0; k < s->n_queue && !ret; k++) {
		const Rtcr__UnixMsg *m = s->queue[k];
		struct usk *snd = NULL;
		bool unl = false;
		int fd;

		if (p && p->sk->peer == s->ino) {
			/* A connected pair: only the peer may send. */
			fd = p->fd;
			set_sndbuf(fd, 1 << 24);
			ret = send_all(r, fd, &m->data, NULL, false);
			continue;
		}
		if (!s->name.len) {
			pr_err("fd %d: unix dgram socket: messages in flight and no name to send them to",
			       r->img_fd);
			return -EINVAL;
		}
		if (m->from.len)
			snd = rt_find_name(rt, m->from.data, m->from.len);
		if (snd && snd->fd >= 0) {
			fd = snd->fd;
			set_sndbuf(fd, 1 << 24);
			ret = send_all(r, fd, &m->data, r, false);
			continue;
		}
		fd = temp_sender(rt, r, &m->from, &unl);
		if (fd < 0)
			return fd;
		ret = send_all(r, fd, &m->data, r, false);
		close(fd);
		if (unl) {
			char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
			path_of(&m->from, path, sizeof(path));
			unlink(path);
		}
	}
	return ret;
}

static int build_all(struct files_restore_ctx *ctx, struct unix_rt *rt)
{
	size_t cap = 0;
	int ret = 0;

	/* Every socket of the image, once. */
	for (size_t p = 0; p < ctx->nfiles; p++)
		for (size_t i = 0; i < ctx->files[p]->n_fds; i++) {
			const Rtcr__Fd *e = ctx->files[p]->fds[i];
			struct usk *u;
			if (e->kind != RTCR__FD_KIND__FD_UNIX || !e->unix_sock)
				continue;
			u = rt_find(rt, e->unix_sock->sk->ino);
			if (u) {
				if (e->unix_sock->sk->carries_queue)
					u->sk = e->unix_sock->sk;
				continue;
			}
			if (rt->n == cap)
				rt->v = xrealloc(rt->v, (cap = cap ? cap * 2 : 16) * sizeof(*rt->v));
			u = &rt->v[rt->n++];
			u->sk = e->unix_sock->sk;
			u->flags = e->unix_sock->flags;
			u->img_fd = e->fd;
			u->fd = u->other = -1;
			u->built = false;
		}

	/* 1, 2: connected pairs. */
	for (size_t i = 0; i < rt->n && !ret; i++) {
		struct usk *x = &rt->v[i], *y;
		const Rtcr__UnixSk *s = x->sk;
		if (x->built || !s->peer || s->waiting || s->state == TCP_LISTEN)
			continue;
		y = rt_find(rt, s->peer);
		if (!y || y->built || y->sk->peer != s->ino || y->sk->waiting) {
			if (!y) {
				pr_err("fd %d: unix socket: its peer (ino %llu) is not in the image", x->img_fd,
				       (unsigned long long)s->peer);
				ret = -EINVAL;
			}
			continue;    /* a one-way datagram connection: step 4 */
		}
		if (y->sk->type != s->type) {
			pr_err("fd %d: unix socket: its peer is of another type", x->img_fd);
			ret = -EINVAL;
		} else if (!s->name.len && !y->sk->name.len) {
			int sv[2];
			if (socketpair(AF_UNIX, (int)s->type | SOCK_CLOEXEC, 0, sv) < 0) {
				ret = -errno;
				pr_perror("fd %d: unix socket: socketpair", x->img_fd);
			} else {
				x->fd = raise_fd(rt, sv[0]);
				y->fd = raise_fd(rt, sv[1]);
				ret = x->fd < 0 ? x->fd : y->fd < 0 ? y->fd : 0;
				if (ret)
					pr_err("fd %d: unix socket: placing its socketpair above fd %d: %s",
					       x->img_fd, rt->top, strerror(-ret));
			}
			x->built = y->built = true;
		} else if (s->type != SOCK_DGRAM) {
			ret = make_named_pair(rt, x, y);
		} else {
			x->fd = new_sock(rt, SOCK_DGRAM);
			y->fd = new_sock(rt, SOCK_DGRAM);
			x->built = y->built = true;
			if (x->fd < 0 || y->fd < 0)
				ret = x->fd < 0 ? x->fd : y->fd;
			if (!ret && s->name.len)
				ret = bind_name(x->fd, x, &s->name, true);
			if (!ret && y->sk->name.len)
				ret = bind_name(y->fd, y, &y->sk->name, true);
			if (!ret && (!s->name.len || !y->sk->name.len)) {
				pr_err("fd %d: unix dgram socket connected both ways to an unnamed socket",
				       x->img_fd);
				ret = -EINVAL;
			}
			if (!ret)
				ret = connect_to(x, &y->sk->name, false);
			if (!ret)
				ret = connect_to(y, &s->name, false);
		}
	}

	/* 3: everything else. */
	for (size_t i = 0; i < rt->n && !ret; i++) {
		struct usk *u = &rt->v[i];
		const Rtcr__UnixSk *s = u->sk;
		if (u->built)
			continue;
		u->built = true;
		if (s->peer_gone) {
			int sv[2];
			if (socketpair(AF_UNIX, (int)s->type | SOCK_CLOEXEC, 0, sv) < 0) {
				ret = -errno;
				pr_perror("fd %d: unix socket: socketpair", u->img_fd);
				break;
			}
			u->fd = raise_fd(rt, sv[0]);
			u->other = raise_fd(rt, sv[1]);
			ret = u->fd < 0 ? u->fd : u->other < 0 ? u->other : 0;
			if (ret)
				pr_err("fd %d: unix socket: placing its socketpair above fd %d: %s",
				       u->img_fd, rt->top, strerror(-ret));
			continue;
		}
		u->fd = new_sock(rt, (int)s->type);
		if (u->fd < 0) {
			ret = u->fd;
			pr_err("fd %d: unix socket: %s", u->img_fd, strerror(-ret));
			break;
		}
		if (s->name.len)
			ret = bind_name(u->fd, u, &s->name, true);
		if (!ret && s->state == TCP_LISTEN && listen(u->fd, (int)s->backlog) < 0) {
			ret = -errno;
			pr_perror("fd %d: unix socket: listen", u->img_fd);
		}
		if (!ret && s->reconnect.len)
			ret = connect_to(u, &s->reconnect, false);
	}

	/* 4: one-way datagram connections, waiting clients in queue order. */
	for (size_t i = 0; i < rt->n && !ret; i++) {
		struct usk *u = &rt->v[i], *p;
		const Rtcr__UnixSk *s = u->sk;
		if (s->state == TCP_LISTEN) {
			for (size_t k = 0; k < s->n_icons && !ret; k++) {
				struct usk *c = rt_find(rt, s->icons[k]);
				if (!c || !c->sk->waiting) {
					pr_err("fd %d: unix socket: waiting client ino %llu is not in the image",
					       u->img_fd, (unsigned long long)s->icons[k]);
					ret = -EINVAL;
				} else {
					ret = connect_to(c, &s->name, true);
				}
			}
			continue;
		}
		if (s->type != SOCK_DGRAM || !s->peer)
			continue;
		p = rt_find(rt, s->peer);
		if (p && p->sk->peer == s->ino)
			continue;    /* a pair, step 2 */
		if (!p || !p->sk->name.len) {
			pr_err("fd %d: unix dgram socket connected to a socket without a name", u->img_fd);
			ret = -EINVAL;
		} else {
			ret = connect_to(u, &p->sk->name, false);
		}
	}

	/* 5: data, options, shutdown, flags. */
	for (size_t i = 0; i < rt->n && !ret; i++)
		if (rt->v[i].sk->n_queue)
			ret = fill_queue(rt, &rt->v[i]);
	for (size_t i = 0; i < rt->n && !ret; i++) {
		struct usk *u = &rt->v[i];
		const Rtcr__UnixSk *s = u->sk;
		int one = 1;
		if (s->has_sndbuf && set_sndbuf(u->fd, (int)s->sndbuf / 2) < 0)
			pr_perror("fd %d: unix socket: SO_SNDBUFFORCE", u->img_fd);
		if (s->has_rcvbuf) {
			int v = (int)s->rcvbuf / 2;
			if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
				pr_perror("fd %d: unix socket: SO_RCVBUFFORCE", u->img_fd);
		}
		if (s->passcred && setsockopt(u->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
			ret = -errno;
			pr_perror("fd %d: unix socket: SO_PASSCRED", u->img_fd);
		}
		if (u->other >= 0) {
			close(u->other);
			u->other = -1;
		}
	}
	for (size_t i = 0; i < rt->n && !ret; i++) {
		struct usk *u = &rt->v[i];
		const Rtcr__UnixSk *s = u->sk;
		int how = (s->shutdown & 3) == 3 ? SHUT_RDWR : (s->shutdown & 2) ? SHUT_WR : SHUT_RD;
		if ((s->shutdown & 3) && !s->peer_gone && shutdown(u->fd, how) < 0) {
			ret = -errno;
			pr_perror("fd %d: unix socket: shutdown", u->img_fd);
		}
		if (!ret && is_path(s->name.data, s->name.len) && (s->unlinked || s->has_mode)) {
			char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
			path_of(&s->name, path, sizeof(path));
			if (s->unlinked)
				unlink(path);
			else if (chmod(path, s->mode) < 0)
				pr_perror("fd %d: unix socket: chmod %s", u->img_fd, path);
		}
		if (!ret && fcntl(u->fd, F_SETFL, u->flags & ~O_ACCMODE) < 0) {
			ret = -errno;
			pr_perror("fd %d: unix socket: flags %#x", u->img_fd, u->flags);
		}
	}
	return ret;
}

static int unix_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	const Rtcr__UnixSk *s;

	if (!e->unix_sock || !e->unix_sock->sk) {
		pr_err("fd %d: image entry lacks its unix socket part", e->fd);
		return -EINVAL;
	}
	s = e->unix_sock->sk;
	if ((s->type != SOCK_STREAM && s->type != SOCK_DGRAM && s->type != SOCK_SEQPACKET) ||
	    s->name.len > sizeof(((struct sockaddr_un *)0)->sun_path) ||
	    s->reconnect.len > sizeof(((struct sockaddr_un *)0)->sun_path)) {
		pr_err("fd %d: unix socket: impossible entry", e->fd);
		return -EINVAL;
	}
	if (is_path(s->name.data, s->name.len) && (s->type == SOCK_DGRAM || s->state != TCP_ESTABLISHED)) {
		struct stat st;
		char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
		path_of(&s->name, path, sizeof(path));
		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			pr_err("fd %d: unix socket: %s exists and is not a socket", e->fd, path);
			return -EEXIST;
		}
	}
	return 0;
}

static int unix_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	struct unix_rt *rt = ctx->unix_rt;
	struct usk *u;
	int fd;

	if (!rt) {
		rt = ctx->unix_rt = xzalloc(sizeof(*rt));
		rt->top = ctx->carrier_top;
	}
	if (!rt->tried) {
		rt->tried = true;
		rt->err = build_all(ctx, rt);
	}
	if (rt->err)
		return rt->err;
	u = rt_find(rt, e->unix_sock->sk->ino);
	if (!u || u->fd < 0) {
		pr_err("fd %d: unix socket ino %llu was not built", e->fd,
		       (unsigned long long)e->unix_sock->sk->ino);
		return -EINVAL;
	}
	fd = u->fd;
	u->fd = -1;    /* files_prepare() owns it now */
	return fd;
}

void unix_prepared(struct files_restore_ctx *ctx)
{
	struct unix_rt *rt = ctx->unix_rt;
	if (!rt)
		return;
	for (size_t i = 0; i < rt->n; i++) {
		if (rt->v[i].fd >= 0)
			close(rt->v[i].fd);
		if (rt->v[i].other >= 0)
			close(rt->v[i].other);
	}
	free(rt->v);
	free(rt);
	ctx->unix_rt = NULL;
}

static void unix_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	const Rtcr__UnixSk *s = e->unix_sock ? e->unix_sock->sk : NULL;
	char nb[256], rb[256];
	size_t o;

	if (!s) {
		snprintf(buf, len, "unix socket (entry incomplete)");
		return;
	}
	o = (size_t)snprintf(buf, len, "unix %s", type_name(s->type));
#define ADD(...) do { if (o < len) o += (size_t)snprintf(buf + o, len - o, __VA_ARGS__); } while (0)
	if (s->name.len)
		ADD(" %s", name_str(s->name.data, s->name.len, nb, sizeof(nb)));
	if (s->state == TCP_LISTEN) {
		ADD(" listening, backlog %u, %zu waiting", s->backlog, s->n_icons);
	} else if (s->waiting) {
		ADD(" connecting to pid %d fd %d (not accepted yet)", s->peer_pid, s->peer_fd);
	} else if (s->reconnect.len) {
		ADD(" connected to %s outside the tree: reconnected at restore, data in flight dropped",
		    name_str(s->reconnect.data, s->reconnect.len, rb, sizeof(rb)));
	} else if (s->peer) {
		ADD(" %s pid %d fd %d", s->socketpair ? "socketpair with" : "connected to", s->peer_pid,
		    s->peer_fd);
	} else if (s->peer_gone) {
		ADD(" connected, its peer closed");
	}
	if (s->shutdown & 3)
		ADD(", shut %s", (s->shutdown & 3) == 3 ? "rdwr" : (s->shutdown & 2) ? "wr" : "rd");
	if (s->queued_msgs && s->type == SOCK_STREAM)
		ADD(", %llu bytes queued in", (unsigned long long)s->queued_bytes);
	else if (s->queued_msgs)
		ADD(", %u message%s (%llu bytes) queued in", s->queued_msgs, s->queued_msgs > 1 ? "s" : "",
		    (unsigned long long)s->queued_bytes);
	if (s->passcred)
		ADD(", passcred");
	if (s->unlinked)
		ADD(", its file removed");
	if (e->unix_sock->flags & O_NONBLOCK)
		ADD(", nonblock");
#undef ADD
}

const struct fd_ops unix_fd_ops = {
	.name = "unix",
	.kind = RTCR__FD_KIND__FD_UNIX,
	.match = unix_match,
	.dump = unix_dump,
	.check = unix_check,
	.open = unix_open,
	.describe = unix_describe,
};
