/*
 * The network lock and the network namespace of a tree (netlock.h).
 *
 * The lock is written with nft(8) (Debian package nftables): one
 * transaction creates the table, its two chains (input and output hooks,
 * priority -350: before conntrack, so locked segments leave no trace) and
 * one drop rule per direction and connection; one transaction deletes it
 * ("add table" first, so deleting a table that is not there is no error).
 * nft is run with its stdin a pipe holding the script; its stderr is
 * passed on in the error message.
 */
#include "files/netlock.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"

void netlock_name(const uint8_t id[16], char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, "rtcr_lock_");
	for (int i = 0; i < 8 && o + 2 < len; i++, o += 2)
		snprintf(buf + o, len - o, "%02x", id[i]);
}

#define NFT_TIMEOUT_MS 10000

/* Run nft -f - on script. 0, or -errno with nft's words in err. */
static int nft_run(const char *script, char *err, size_t errlen, bool die_with_rtcr)
{
	static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };
	int in[2], out[2], st, ret = 0;
	size_t n = 0;
	pid_t pid;

	err[0] = 0;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		ret = -errno;
		close(in[0]);
		close(in[1]);
		return ret;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		return ret;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		sigset_t none;
		/* A lock half taken by an nft that outlives rtcr would be nobody's. */
		if (die_with_rtcr)
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		/* dup2() onto itself would keep O_CLOEXEC (rtcr's guardian has
		 * no stdio: its pipes can be fds 0-2). */
		in[0] = fcntl(in[0], F_DUPFD, 3);
		out[1] = fcntl(out[1], F_DUPFD, 3);
		if (nul >= 0)
			nul = fcntl(nul, F_DUPFD, 3);
		if (in[0] < 0 || out[1] < 0 || dup2(in[0], 0) < 0 || dup2(nul >= 0 ? nul : out[1], 1) < 0 ||
		    dup2(out[1], 2) < 0)
			_exit(126);
		for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
			execl(paths[i], "nft", "-f", "-", (char *)NULL);
		execlp("nft", "nft", "-f", "-", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (write_full(in[1], script, strlen(script)))
		ret = -EIO;   /* nft is gone: its status says why */
	close(in[1]);
	for (uint64_t deadline = now_ns() + NFT_TIMEOUT_MS * 1000000ULL;;) {
		struct pollfd pfd = { out[0], POLLIN, 0 };
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		ssize_t r;
		int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		/* The tree may be frozen meanwhile: nft gets a bounded time. */
		if (pr == 0) {
			kill(pid, SIGKILL);
			ret = -ETIMEDOUT;
			snprintf(err, errlen, "nft did not finish in %d s", NFT_TIMEOUT_MS / 1000);
			n = strlen(err);
			break;
		}
		r = read(out[0], err + n, errlen - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n + 1 >= errlen) {
			char sink[256];
			while (read(out[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	err[n] = 0;
	while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = 0;
	close(out[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (ret == -ETIMEDOUT)
		return ret;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
		snprintf(err, errlen, "nft not found (install the Debian package nftables)");
		return -ENOENT;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	return ret;
}

/* An address for nft: IPv4-mapped IPv6 addresses are IPv4 on the wire. */
static bool v4mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { [10] = 0xff, [11] = 0xff };
	return !memcmp(a, pfx, 12);
}

static void add_rules(char **s, size_t *len, size_t *cap, const char *table, const struct net_tuple *t)
{
	char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];
	const char *ip = "ip";

	if (t->family == AF_INET) {
		inet_ntop(AF_INET, t->laddr, l, sizeof(l));
		inet_ntop(AF_INET, t->raddr, r, sizeof(r));
	} else if (v4mapped(t->laddr) && v4mapped(t->raddr)) {
		inet_ntop(AF_INET, t->laddr + 12, l, sizeof(l));
		inet_ntop(AF_INET, t->raddr + 12, r, sizeof(r));
	} else {
		ip = "ip6";
		inet_ntop(AF_INET6, t->laddr, l, sizeof(l));
		inet_ntop(AF_INET6, t->raddr, r, sizeof(r));
	}
	for (int dir = 0; dir < 2; dir++) {
		char line[512];
		int n = snprintf(line, sizeof(line),
				 "add rule inet %s %s %s saddr %s %s daddr %s tcp sport %u tcp dport %u drop\n",
				 table, dir ? "out" : "in", ip, dir ? l : r, ip, dir ? r : l,
				 dir ? t->lport : t->rport, dir ? t->rport : t->lport);
		if (*len + (size_t)n + 1 > *cap) {
			*cap = (*cap + (size_t)n + 1) * 2;
			*s = xrealloc(*s, *cap);
		}
		memcpy(*s + *len, line, (size_t)n + 1);
		*len += (size_t)n;
	}
}

int netlock_take(const char *table, const struct net_tuple *t, int n)
{
	size_t cap = 1024 + (size_t)n * 400, len;
	char *s = xmalloc(cap), err[512];
	int ret;

	len = (size_t)snprintf(s, cap,
			       "table inet %s {\n"
			       "  chain in { type filter hook input priority -350; policy accept; }\n"
			       "  chain out { type filter hook output priority -350; policy accept; }\n"
			       "}\n", table);
	for (int i = 0; i < n; i++)
		add_rules(&s, &len, &cap, table, &t[i]);
	ret = nft_run(s, err, sizeof(err), true);
	free(s);
	if (ret)
		pr_err("network lock (nft table inet %s) for %d connection%s: %s", table, n,
		       n > 1 ? "s" : "", err[0] ? err : strerror(-ret));
	return ret;
}

int netlock_release(const char *table, bool quiet)
{
	char s[256], err[512];
	int ret;

	snprintf(s, sizeof(s), "add table inet %s\ndelete table inet %s\n", table, table);
	ret = nft_run(s, err, sizeof(err), false);
	if (ret && !quiet)
		pr_err("removing the network lock (nft table inet %s): %s", table,
		       err[0] ? err : strerror(-ret));
	return ret;
}

bool netlock_present(const char *table)
{
	char s[256], err[512];
	snprintf(s, sizeof(s), "list table inet %s\n", table);
	return nft_run(s, err, sizeof(err), false) == 0;
}

/* ---- network namespaces ---- */

static int ns_ino_of(const char *path, uint64_t *ino)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return -errno;
	*ino = sb.st_ino;
	return 0;
}

int netns_ino(pid_t pid, uint64_t *ino)
{
	char p[64];
	int ret;
	if (pid)
		snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	else
		snprintf(p, sizeof(p), "/proc/self/ns/net");
	ret = ns_ino_of(p, ino);
	if (ret)
		pr_err("%s: %s", p, strerror(-ret));
	return ret;
}

char *netns_name(uint64_t ino)
{
	DIR *d = opendir("/run/netns");
	struct dirent *de;
	char *name = NULL;

	if (!d)
		return NULL;
	while (!name && (de = readdir(d))) {
		char *p;
		uint64_t i = 0;
		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("/run/netns/%s", de->d_name);
		if (!ns_ino_of(p, &i) && i == ino)
			name = xstrdup(de->d_name);
		free(p);
	}
	closedir(d);
	return name;
}

/* An fd on the network namespace with that inode, if it still exists:
 * named under /run/netns, or held by a process. -1 if not found. */
static int netns_find(uint64_t ino)
{
	char *name = netns_name(ino), p[300];
	DIR *d;
	struct dirent *de;
	int fd = -1;

	if (name) {
		snprintf(p, sizeof(p), "/run/netns/%s", name);
		free(name);
		return open(p, O_RDONLY | O_CLOEXEC);
	}
	d = opendir("/proc");
	while (d && fd < 0 && (de = readdir(d))) {
		uint64_t i = 0;
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/ns/net", de->d_name);
		if (!ns_ino_of(p, &i) && i == ino)
			fd = open(p, O_RDONLY | O_CLOEXEC);
	}
	if (d)
		closedir(d);
	return fd;
}

static int enter_fd(int fd, const char *what)
{
	proc_ns_forget();
	if (setns(fd, CLONE_NEWNET) < 0) {
		int e = errno;
		pr_err("entering the network namespace %s: %s", what, strerror(e));
		return -e;
	}
	return 0;
}

int netns_enter_pid(pid_t pid)
{
	char p[64];
	uint64_t a = 0, b = 0;
	int fd, ret;

	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	/* No such process: the preflight that follows says so. */
	if (ns_ino_of(p, &a) || netns_ino(0, &b) || a == b)
		return 0;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_perror("%s", p);
		return ret;
	}
	ret = enter_fd(fd, p);
	close(fd);
	if (!ret)
		pr_info("pid %d lives in network namespace %llu: rtcr works there", pid,
			(unsigned long long)a);
	return ret;
}

int netns_enter(const char *name_or_path)
{
	char *p = strchr(name_or_path, '/') ? xstrdup(name_or_path) :
					     xasprintf("/run/netns/%s", name_or_path);
	int fd = open(p, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		ret = -errno;
		pr_err("network namespace %s: %s: %s", name_or_path, p, strerror(-ret));
		free(p);
		return ret;
	}
	ret = enter_fd(fd, p);
	close(fd);
	free(p);
	return ret;
}

int netlock_release_image(const Rtcr__Inventory *inv, bool same_boot)
{
	const char *table;
	uint64_t here;
	int ret;

	if (!inv->net_lock)
		return 0;
	table = inv->net_lock->table;
	if (strncmp(table, "rtcr_lock_", 10) || strspn(table + 10, "0123456789abcdef") != strlen(table + 10)) {
		pr_err("the image's network lock has an impossible name");
		return -EINVAL;
	}
	ret = netlock_release(table, false);
	if (ret)
		return ret;
	/* Restored elsewhere, the original namespace may hold it still. */
	if (same_boot && inv->netns && !netns_ino(0, &here) && inv->netns->ino != here) {
		int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		int fd = netns_find(inv->netns->ino);
		if (fd >= 0 && self >= 0 && !enter_fd(fd, "of the dump")) {
			ret = netlock_release(table, false);
			proc_ns_forget();
			if (setns(self, CLONE_NEWNET) < 0) {
				pr_perror("back to rtcr's network namespace");
				ret = -errno;
			}
		}
		if (fd >= 0)
			close(fd);
		if (self >= 0)
			close(self);
	}
	return ret;
}
