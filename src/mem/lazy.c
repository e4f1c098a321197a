/*
 * Lazy restore, rtcr restore's side: check the kernel, fork the lazy page
 * server, hand it each restored process's userfaultfd over a socket
 * (SCM_RIGHTS), tell it when the tree runs, wait for it.
 *
 * Messages (SOCK_SEQPACKET, one struct lazy_msg each):
 *   'S' pid, hpid + the uffd   a process's address space to serve
 *   'R' t_run                  the tree runs: fill the rest, report
 *   'A'                        the restore failed: exit quietly
 * End of file without 'R' or 'A' (rtcr died after the tree ran, or
 * between): the server goes on as if told 'R' now.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "image/load.h"
#include "mem/lazy.h"
#include "mem/lazy_msg.h"
#include "mem/vma.h"

bool lazy_area(const Rtcr__Vma *v)
{
	return v->kind == RTCR__VMA_KIND__ANON_PRIVATE && (v->pages_stored || v->n_inherited) &&
	       !(v->locked && !v->lock_onfault) && !(v->madv & RTCR_MADV_WIPEONFORK);
}

/* Does this kernel offer missing-page faults with every event? */
static int check_kernel(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };

	if (fd < 0) {
		pr_err("lazy restore needs userfaultfd: %s%s", strerror(errno),
		       errno == EPERM ? " (vm.unprivileged_userfaultfd, or CAP_SYS_PTRACE)" : "");
		return -ENOTSUP;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		pr_perror("lazy restore: UFFDIO_API");
		close(fd);
		return -ENOTSUP;
	}
	close(fd);
	if ((api.features & LAZY_UFFD_FEATURES) != LAZY_UFFD_FEATURES ||
	    !(api.ioctls & (1ULL << _UFFDIO_REGISTER))) {
		pr_err("lazy restore needs userfaultfd fork, remap, remove and unmap events "
		       "(features %#llx); this kernel offers %#llx",
		       (unsigned long long)LAZY_UFFD_FEATURES, (unsigned long long)api.features);
		return -ENOTSUP;
	}
	return 0;
}

int lazy_start(struct lazy_client *lz, struct loaded_image *im, int above, bool report_stats,
	       const cpu_set_t *server_cpus)
{
	int sv[2], ret = check_kernel();
	pid_t pid;

	lz->server = -1;
	lz->sock = -1;
	if (ret)
		return ret;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		pr_perror("lazy restore: socketpair");
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		pr_perror("lazy restore: forking the page server");
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	if (pid == 0) {
		close(sv[0]);
		/* Off rtcr's CPU before its first work (finding every page). */
		if (server_cpus)
			sched_setaffinity(0, sizeof(*server_cpus), server_cpus);
		lazy_serve(im, sv[1], report_stats);
	}
	close(sv[1]);
	lz->server = pid;
	/* Above every fd the restore plans: restoring children inherit it
	 * until they close rtcr's fds. */
	lz->sock = fcntl(sv[0], F_DUPFD_CLOEXEC, above);
	close(sv[0]);
	if (lz->sock < 0) {
		pr_perror("lazy restore: moving the server's socket above %d", above);
		lazy_abort(lz);
		return -EMFILE;
	}
	return 0;
}

static int send_msg(struct lazy_client *lz, const struct lazy_msg *m, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(lz->sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(*m)) {
		pr_perror("lazy restore: talking to the page server (pid %d)", lz->server);
		return -EIO;
	}
	return 0;
}

int lazy_add_space(struct lazy_client *lz, int32_t pid, pid_t hpid, int uffd)
{
	struct lazy_msg m = { .type = LAZY_MSG_SPACE, .pid = pid, .hpid = hpid };
	int ret = send_msg(lz, &m, uffd);
	close(uffd);
	return ret;
}

int lazy_resumed(struct lazy_client *lz, uint64_t t_run)
{
	struct lazy_msg m = { .type = LAZY_MSG_RUNNING, .t = t_run };
	int ret = send_msg(lz, &m, -1);
	close(lz->sock);
	lz->sock = -1;
	return ret;
}

void lazy_abort(struct lazy_client *lz)
{
	struct lazy_msg m = { .type = LAZY_MSG_ABORT };

	if (lz->sock >= 0) {
		if (send_msg(lz, &m, -1))
			kill(lz->server, SIGKILL);
		close(lz->sock);
		lz->sock = -1;
	}
	if (lz->server > 0)
		while (waitpid(lz->server, NULL, 0) < 0 && errno == EINTR)
			;
	lz->server = -1;
}

int lazy_wait(struct lazy_client *lz)
{
	int st;

	if (lz->server <= 0)
		return 0;
	while (waitpid(lz->server, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	lz->server = -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}
