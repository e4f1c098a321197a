/*
 * Counting a process's memory-map system calls. See mapwatch.h.
 */
#include "mem/mapwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"

/* 64-bit numbers (also counted with the x32 bit): what can add, remove or
 * move an area, or change its protection, flags or policy. */
static const int mem_native[] = {
	9,   /* mmap */          10,  /* mprotect */       11,  /* munmap */
	12,  /* brk */           25,  /* mremap */         28,  /* madvise */
	30,  /* shmat */         59,  /* execve */         67,  /* shmdt */
	149, /* mlock */         150, /* munlock */        151, /* mlockall */
	152, /* munlockall */    157, /* prctl */          158, /* arch_prctl */
	216, /* remap_file_pages */ 237, /* mbind */      322, /* execveat */
	325, /* mlock2 */        329, /* pkey_mprotect */  440, /* process_madvise */
	450, /* set_mempolicy_home_node */ 453, /* map_shadow_stack */ 462, /* mseal */
};
/* i386 numbers (int 0x80) that change flags with no change /proc/PID/maps
 * shows, or map over an area in place; the others change the bounds. */
static const int mem_i386[] = {
	90,  /* mmap */          91,  /* munmap */         125, /* mprotect */
	150, /* mlock */         151, /* munlock */        152, /* mlockall */
	153, /* munlockall */    163, /* mremap */         172, /* prctl */
	192, /* mmap2 */         219, /* madvise */        376, /* mlock2 */
	380, /* pkey_mprotect */ 440, /* process_madvise */ 453, /* map_shadow_stack */
	462, /* mseal */
};
const struct mw_calls mw_memory = {
	"memory-map", mem_native, ARRAY_SIZE(mem_native), mem_i386, ARRAY_SIZE(mem_i386), false,
};

/*
 * What can change a process's state that only an injected call can read
 * (task/answers.c): its signal actions (and the kernel's reset of a
 * SA_RESETHAND action, at a delivery: deliveries are counted), a thread's
 * alternate stack (a sigreturn restores the one of its frame) and
 * clear-tid address, prctl settings, securebits, dumpable and the
 * parent-death signal (reset by a credential change, which entering a
 * user namespace is: unshare, setns), interval and POSIX
 * timers, the break, the AMX permission; new threads; exec. x32's own
 * numbers for some of them are listed too (512...).
 */
static const int attr_native[] = {
	12,  /* brk */           13,  /* rt_sigaction */   15,  /* rt_sigreturn */
	37,  /* alarm */         38,  /* setitimer */      56,  /* clone */
	57,  /* fork */          58,  /* vfork */          59,  /* execve */
	105, /* setuid */        106, /* setgid */         113, /* setreuid */
	114, /* setregid */      116, /* setgroups */      117, /* setresuid */
	119, /* setresgid */     122, /* setfsuid */       123, /* setfsgid */
	126, /* capset */        131, /* sigaltstack */    135, /* personality */
	157, /* prctl */         158, /* arch_prctl */     218, /* set_tid_address */
	222, /* timer_create */  223, /* timer_settime */  226, /* timer_delete */
	272, /* unshare */       308, /* setns */          322, /* execveat */
	435, /* clone3 */
	512, /* x32 rt_sigaction */ 513, /* x32 rt_sigreturn */ 520, /* x32 execve */
	525, /* x32 sigaltstack */ 526, /* x32 timer_create */ 545, /* x32 execveat */
};
/* (Most share their number with a 64-bit call, gettid, sendmsg, recvfrom
 * among them: a process that makes those is queried again each time.) */
static const int attr_i386[] = {
	2,   /* fork */          11,  /* execve */         23,  /* setuid */
	27,  /* alarm */         45,  /* brk */            46,  /* setgid */
	48,  /* signal */        67,  /* sigaction */      70,  /* setreuid */
	71,  /* setregid */      81,  /* setgroups */      104, /* setitimer */
	119, /* sigreturn */     120, /* clone */          136, /* personality */
	138, /* setfsuid */      139, /* setfsgid */       164, /* setresuid */
	170, /* setresgid */     172, /* prctl */          173, /* rt_sigreturn */
	174, /* rt_sigaction */  185, /* capset */         186, /* sigaltstack */
	190, /* vfork */         203, /* setreuid32 */     204, /* setregid32 */
	206, /* setgroups32 */   208, /* setresuid32 */    210, /* setresgid32 */
	213, /* setuid32 */      214, /* setgid32 */       215, /* setfsuid32 */
	216, /* setfsgid32 */    258, /* set_tid_address */ 259, /* timer_create */
	260, /* timer_settime */ 263, /* timer_delete */   310, /* unshare */
	346, /* setns */         358, /* execveat */       384, /* arch_prctl */
	435, /* clone3 */
};

const struct mw_calls mw_attrs = {
	"attribute", attr_native, ARRAY_SIZE(attr_native), attr_i386, ARRAY_SIZE(attr_i386), true,
};

#define X32_BIT 0x40000000
#define NR_RESTART_SYSCALL 219   /* 64-bit; i386 madvise */

static bool listed(const struct mw_calls *c, int nr)
{
	for (size_t i = 0; i < c->nnative; i++)
		if (c->native[i] == nr)
			return true;
	for (size_t i = 0; i < c->ni386; i++)
		if (c->i386[i] == nr)
			return true;
	return false;
}

static char *filter_string(const struct mw_calls *c)
{
	size_t cap = 8192, len = 0;
	char *f = xmalloc(cap);

	f[0] = 0;
#define ADD(nr) len += snprintf(f + len, cap - len, "%sid == %d", len ? " || " : "", (nr))
	for (size_t i = 0; i < c->nnative; i++) {
		ADD(c->native[i]);
		ADD(c->native[i] | X32_BIT);
	}
	for (size_t i = 0; i < c->ni386; i++) {
		bool dup = false;
		for (size_t j = 0; j < c->nnative; j++)
			dup |= c->native[j] == c->i386[i];
		if (!dup)
			ADD(c->i386[i]);
	}
#undef ADD
	return f;
}

/* raw_syscalls: sys_enter, sys_exit; syscalls: sys_{enter,exit}_restart_syscall
 * and signal: signal_deliver (0 if the kernel lacks them). */
#define NIDS 5
enum { ID_ENTER, ID_EXIT, ID_RESTART_ENTER, ID_RESTART_EXIT, ID_DELIVER };
static int read_ids(const char *root, int ids[NIDS])
{
	static const char *ev[NIDS] = { "raw_syscalls/sys_enter", "raw_syscalls/sys_exit",
		"syscalls/sys_enter_restart_syscall", "syscalls/sys_exit_restart_syscall",
		"signal/signal_deliver" };

	for (int i = 0; i < NIDS; i++) {
		char path[128], *buf;
		snprintf(path, sizeof(path), "%s/events/%s/id", root, ev[i]);
		ids[i] = 0;
		if (read_file(path, &buf) < 0) {
			if (i < 2)
				return -ENOENT;
			continue;
		}
		ids[i] = atoi(buf);
		free(buf);
		if (ids[i] <= 0 && i < 2)
			return -ENOENT;
	}
	if (ids[2] <= 0 || ids[3] <= 0)
		ids[2] = ids[3] = 0;
	return 0;
}

/*
 * The tracepoints' ids, from tracefs. Where it is not mounted, a child
 * mounts it in a mount namespace of its own, so nothing changes for the
 * rest of the system.
 */
static int tracepoint_ids(int ids[NIDS])
{
	static int cached[NIDS], state;   /* 0 unknown, 1 known, -1 none */
	int p[2], st;
	pid_t c;

	if (state) {
		memcpy(ids, cached, sizeof(cached));
		return state > 0 ? 0 : -ENOENT;
	}
	state = -1;
	if (!read_ids("/sys/kernel/tracing", cached) ||
	    !read_ids("/sys/kernel/debug/tracing", cached)) {
		state = 1;
	} else if (!pipe2(p, O_CLOEXEC)) {
		c = fork();
		if (c == 0) {
			int got[NIDS] = { 0 };
			if (!unshare(CLONE_NEWNS) &&
			    !mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) &&
			    !mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) &&
			    !read_ids("/sys/kernel/tracing", got) && write(p[1], got, sizeof(got)))
				_exit(0);
			_exit(1);
		}
		close(p[1]);
		if (c > 0) {
			if (read_full(p[0], cached, sizeof(cached)) == 0)
				state = 1;
			while (waitpid(c, &st, 0) < 0 && errno == EINTR)
				;
		}
		close(p[0]);
	}
	memcpy(ids, cached, sizeof(cached));
	return state > 0 ? 0 : -ENOENT;
}

static int open_counter(int id, pid_t tid, const char *filter)
{
	/* (filter NULL: every event of that tracepoint) */
	struct perf_event_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_TRACEPOINT;
	a.config = id;
	a.inherit = 1;
	fd = syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (filter && ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int mapwatch_open(struct mapwatch *w, pid_t pid, const struct mw_calls *calls)
{
	pid_t *tids = NULL, *seen = NULL;
	int ids[NIDS], nseen = 0, ret = 0;
	char *filter;

	memset(w, 0, sizeof(*w));
	if (tracepoint_ids(ids) || (calls->deliveries && !ids[ID_DELIVER])) {
		pr_debug("pid %d: no tracepoints to count its %s calls", pid, calls->what);
		return -ENOTSUP;
	}
	/* Restarts are subtracted only where their number is counted. */
	if (!listed(calls, NR_RESTART_SYSCALL))
		ids[ID_RESTART_ENTER] = ids[ID_RESTART_EXIT] = 0;
	if (!calls->deliveries)
		ids[ID_DELIVER] = 0;
	filter = filter_string(calls);
	/* A thread made before its maker's counter existed is not counted by
	 * inheritance: list the threads again until none is new. */
	for (int pass = 0, added = 1; added && !ret; pass++) {
		int n;
		/* Threads that come and go faster than the list is read: the
		 * freeze reads smaps instead. */
		if (pass == 4) {
			ret = -EAGAIN;
			break;
		}
		n = proc_tasks(pid, &tids);
		added = 0;
		if (n < 0) {
			ret = n;
			break;
		}
		for (int k = 0; k < n && !ret; k++) {
			bool known = false;
			for (int j = 0; j < nseen && !known; j++)
				known = seen[j] == tids[k];
			if (known)
				continue;
			bool gone = false;
			for (int e = 0; e < NIDS && !ret && !gone; e++) {
				int fd;
				if (!ids[e])
					continue;
				fd = open_counter(ids[e], tids[k],
						  e == ID_ENTER || e == ID_EXIT ? filter : NULL);
				if (fd == -ESRCH) {
					gone = true;   /* exited: it calls nothing more */
					break;
				}
				if (fd < 0) {
					ret = fd;
					break;
				}
				w->fds = xrealloc(w->fds, (w->nfd + 1) * sizeof(int));
				w->neg = xrealloc(w->neg, (w->nfd + 1) * sizeof(bool));
				w->neg[w->nfd] = e == ID_RESTART_ENTER || e == ID_RESTART_EXIT;
				w->fds[w->nfd++] = fd;
			}
			seen = xrealloc(seen, (nseen + 1) * sizeof(pid_t));
			seen[nseen++] = tids[k];
			added |= !gone;
		}
		free(tids);
		tids = NULL;
	}
	free(seen);
	free(filter);
	if (ret) {
		pr_debug("pid %d: cannot count its %s calls: %s", pid, calls->what,
			 strerror(-ret));
		mapwatch_close(w);
		return -ENOTSUP;
	}
	return 0;
}

int mapwatch_count(struct mapwatch *w, uint64_t *count)
{
	*count = 0;
	if (!w->nfd)
		return -ENOTSUP;
	uint64_t restarts = 0;

	for (int i = 0; i < w->nfd; i++) {
		uint64_t v;
		if (read_full(w->fds[i], &v, sizeof(v)))
			return -EIO;
		if (w->neg[i])
			restarts += v;
		else
			*count += v;
	}
	/* 64-bit restart_syscall shares its number with i386 madvise: the
	 * restarts (a ptrace stop of rtcr's interrupting a sleep makes one)
	 * are not memory-map calls. The rest of that number is. */
	*count -= MIN(restarts, *count);
	return 0;
}

void mapwatch_close(struct mapwatch *w)
{
	for (int i = 0; i < w->nfd; i++)
		close(w->fds[i]);
	free(w->fds);
	free(w->neg);
	w->fds = NULL;
	w->neg = NULL;
	w->nfd = 0;
}
