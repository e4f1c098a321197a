/*
 * The lazy page server's sentinel: a process the server forks first,
 * holding a copy of every userfaultfd the server serves and a pidfd of
 * every process it serves. While it holds them, the kernel keeps the
 * lazy areas registered even if the server dies: a missing page then
 * blocks its process instead of reading as zeros. If the server ends
 * without saying it is done (killed, crashed), the sentinel kills those
 * processes, then exits: they can never be completed, and must never go
 * on with wrong memory.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "mem/lazy.h"

#define MSG_GIVE 'G'
#define MSG_DONE 'D'

static __attribute__((noreturn)) void sentinel(int sock)
{
	int *pidfds = NULL, n = 0;

	for (;;) {
		char cbuf[CMSG_SPACE(2 * sizeof(int))], type = 0;
		struct iovec iov = { &type, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		struct cmsghdr *cm;

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 1 && type == MSG_DONE)
			_exit(0);
		if (r != 1)
			break;
		/* fds[0]: a uffd, kept open (and never looked at); fds[1]: a pidfd. */
		cm = CMSG_FIRSTHDR(&mh);
		if (cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(2 * sizeof(int))) {
			int fds[2];
			memcpy(fds, CMSG_DATA(cm), sizeof(fds));
			pidfds = xrealloc(pidfds, (n + 1) * sizeof(*pidfds));
			pidfds[n++] = fds[1];
		}
	}
	for (int k = 0; k < n; k++)
		syscall(SYS_pidfd_send_signal, pidfds[k], SIGKILL, NULL, 0);
	pr_err("the lazy page server died before all pages arrived: the restored process%s "
	       "killed (%s memory can no longer be completed)", n == 1 ? " was" : "es were",
	       n == 1 ? "its" : "their");
	_exit(1);
}

int lazy_sentinel_start(int keep_fd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (pid == 0) {
		close(sv[0]);
		if (keep_fd >= 0)
			close(keep_fd);      /* rtcr's socket: its end of file is the server's */
		sentinel(sv[1]);
	}
	close(sv[1]);
	return sv[0];
}

void lazy_sentinel_give(int sock, int uffd, int pidfd)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))], type = MSG_GIVE;
	int fds[2] = { uffd, pidfd };
	struct iovec iov = { &type, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;

	if (sock < 0 || uffd < 0 || pidfd < 0)
		return;
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != 1)
		pr_warn("lazy restore: the sentinel is gone: if this server dies, the processes' "
			"missing pages will read as zeros");
}

void lazy_sentinel_done(int sock)
{
	char type = MSG_DONE;
	if (sock >= 0 && send(sock, &type, 1, MSG_NOSIGNAL) != 1)
		pr_debug("lazy restore: the sentinel is gone");
}
