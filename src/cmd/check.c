/*
 * rtcr check: which kernel features rtcr uses are available here, and
 * what follows when one is missing. Every line is a real probe, not a
 * version guess.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "cmd/cmd.h"
#include "common/proc.h"
#include "common/util.h"
#include "files/netlock.h"
#include "mem/pagemap.h"
#include "task/ptrace.h"

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

static int missing_essential;

static void report(bool ok, bool essential, const char *what, const char *detail,
		   const char *consequence)
{
	printf("%-8s %-34s %s\n", ok ? "ok" : essential ? "MISSING" : "absent", what, detail);
	if (!ok && consequence)
		printf("%-8s %-34s -> %s\n", "", "", consequence);
	if (!ok && essential)
		missing_essential++;
}

static pid_t spawn_pause(void)
{
	pid_t p = fork();
	if (p == 0) {
		for (;;)
			pause();
	}
	return p;
}

static void reap(pid_t p)
{
	kill(p, SIGKILL);
	waitpid(p, NULL, __WALL);
}

static void check_ptrace(void)
{
	pid_t p = spawn_pause();
	struct stop st;
	struct rseq_conf rc;
	bool ok = false, rseq = false;
	char d[96] = "";

	if (p > 0 && ptrace(PTRACE_SEIZE, p, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, p, 0, 0) == 0) {
		int saved = log_get_level();
		log_set_level(-1);
		ok = task_wait_stop(p, &st) == 0;
		log_set_level(saved);
		rseq = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, p, (void *)sizeof(rc), &rc) >= 0;
		ptrace(PTRACE_DETACH, p, 0, 0);
	} else {
		snprintf(d, sizeof(d), "(%s)", strerror(errno));
	}
	if (p > 0)
		reap(p);
	report(ok, true, "ptrace seize/interrupt", ok ? "freezes without signals" : d,
	       "rtcr cannot stop a process: no dump");
	report(rseq, false, "PTRACE_GET_RSEQ_CONFIGURATION", rseq ? "rseq registration readable" : "",
	       "rseq registrations are not restored");
}

static void check_clone3(void)
{
	pid_t want = 0, got, pid_max = 32768;
	struct clone_args ca;
	char d[96];
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");

	if (f) {
		if (fscanf(f, "%d", &pid_max) != 1 || pid_max < 1024)
			pid_max = 32768;
		fclose(f);
	}
	f = fopen("/proc/sys/kernel/ns_last_pid", "r");
	if (f) {
		if (fscanf(f, "%d", &want) != 1)
			want = 0;
		fclose(f);
	}
	/* A free pid away from where the kernel allocates next, wrapping below
	 * pid_max like the kernel does (pids near pid_max are common on a
	 * long-running host, and set_tid above pid_max is EINVAL). */
	want = 300 + (want + 1000 - 300) % (pid_max - 300);
	for (char path[32]; snprintf(path, sizeof(path), "/proc/%d", want), access(path, F_OK) == 0;)
		want = want + 1 < pid_max ? want + 1 : 300;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uintptr_t)&want;
	ca.set_tid_size = 1;
	got = syscall(SYS_clone3, &ca, sizeof(ca));
	if (got == 0)
		_exit(0);
	if (got == want)
		snprintf(d, sizeof(d), "a chosen pid (%d) was created", want);
	else
		snprintf(d, sizeof(d), "(%s)", strerror(errno));
	if (got > 0)
		waitpid(got, NULL, 0);
	report(got == want, true, "clone3 set_tid", d, "processes cannot get their pids back: no restore");
}

static void check_mm(void)
{
	unsigned int size = 0;
	bool ok = prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 &&
		  size == sizeof(struct prctl_mm_map);
	report(ok, true, "prctl PR_SET_MM_MAP", ok ? "mm layout, auxv and exe settable" : strerror(errno),
	       "the restored process would have rtcr's layout: no restore");
}

static void check_pagemap(void)
{
	struct pagemap pm;
	int saved = log_get_level();
	bool ok;

	log_set_level(-1);
	ok = pagemap_open(&pm, getpid()) == 0 && pm.scan;
	log_set_level(saved);
	if (pm.fd >= 0)
		pagemap_close(&pm);
	report(ok, false, "PAGEMAP_SCAN", ok ? "page runs in one ioctl" : "",
	       "pages are found by reading /proc/PID/pagemap (slower scans)");
}

static void check_softdirty(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	bool ok = false;
	if (fd >= 0) {
		ok = write(fd, "4", 1) == 1;
		close(fd);
	}
	if (ok) {
		char *s = NULL;
		ok = read_file("/proc/self/smaps", &s) > 0 && strstr(s, " sd");
		free(s);
	}
	report(ok, false, "soft-dirty bits", ok ? "present" : "",
	       "not needed: incremental checkpoints (coming) track written pages with userfaultfd "
	       "write-protect, checked below");
}

static void check_uffd(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	bool ok = false;
	char d[96] = "";

	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0) {
		ok = (api.features & UFFD_FEATURE_WP_ASYNC) && (api.features & UFFD_FEATURE_WP_UNPOPULATED);
		snprintf(d, sizeof(d), "features %#llx%s", (unsigned long long)api.features,
			 ok ? ": async write-protect" : ": no async write-protect");
	} else {
		snprintf(d, sizeof(d), "(%s)", strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	report(ok, false, "userfaultfd WP_ASYNC", d, "incremental and low-pause checkpoints (coming) "
	       "will not be possible");
}

static void check_pidfd(void)
{
	int pfd = syscall(SYS_pidfd_open, getpid(), 0), fd = -1;
	if (pfd >= 0)
		fd = syscall(SYS_pidfd_getfd, pfd, 0, 0);
	report(fd >= 0, false, "pidfd_open + pidfd_getfd", fd >= 0 ? "can take a process's fds" : strerror(errno),
	       "no userfaultfd tracking of other processes");
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
}

static void check_vm_rw(void)
{
	pid_t p = spawn_pause();
	static char src[4096] = "x";
	char dst[4096];
	struct iovec l = { dst, sizeof(dst) }, r = { src, sizeof(src) };
	bool ok = p > 0 && process_vm_readv(p, &l, 1, &r, 1, 0) == sizeof(dst);
	if (p > 0)
		reap(p);
	report(ok, true, "process_vm_readv/writev", ok ? "bulk memory copy" : strerror(errno),
	       "rtcr cannot read process memory");
}

static void check_map_files(void)
{
	struct stat st;
	bool ok = stat("/proc/self/map_files", &st) == 0 && access("/proc/self/map_files", R_OK) == 0;
	report(ok, false, "/proc/PID/map_files", ok ? "mapped files and shared memory reachable" : strerror(errno),
	       "shared anonymous memory cannot be dumped");
}

static void check_caps(void)
{
	struct proc_status ps;
	uint64_t eff = 0;
	if (!proc_status_read(getpid(), &ps)) {
		proc_status_u64(&ps, "CapEff", &eff, 16);
		proc_status_free(&ps);
	}
	report(eff & (1ULL << CAP_SYS_PTRACE), true, "CAP_SYS_PTRACE", eff & (1ULL << CAP_SYS_PTRACE) ?
	       "can trace other users' processes" : "", "only own processes can be dumped");
	report(eff & ((1ULL << CAP_CHECKPOINT_RESTORE) | (1ULL << CAP_SYS_ADMIN)), true,
	       "CAP_CHECKPOINT_RESTORE", eff & (1ULL << CAP_CHECKPOINT_RESTORE) ? "pids and exe link settable" :
	       eff & (1ULL << CAP_SYS_ADMIN) ? "via CAP_SYS_ADMIN" : "", "no restore");
	report(eff & (1ULL << CAP_SYS_RESOURCE), false, "CAP_SYS_RESOURCE",
	       eff & (1ULL << CAP_SYS_RESOURCE) ? "limits can be raised" : "",
	       "hard limits above rtcr's own cannot be restored (restore refuses them by name); "
	       "limits of other users' processes are read from /proc/PID/limits");
}

static void check_cpu(void)
{
	struct cpu_info ci;
	char d[128];
	cpu_info_get(&ci);
	snprintf(d, sizeof(d), "%s, XCR0 %#llx, xsave %u bytes", ci.vendor,
		 (unsigned long long)ci.xfeatures, ci.xsave_size);
	report(ci.xfeatures != 0, true, "xsave", d, "vector registers cannot be saved");
}

static void check_kcmp(void)
{
	long r = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0);
	report(r >= 0, false, "kcmp", r >= 0 ? "shared open files detected" : strerror(errno),
	       "dup'ed fds are restored as separate open files");
}

/* The network lock of --tcp-established: a table can be made and removed. */
static void check_netlock(void)
{
	static const uint8_t id[16] = { 0xc4, 0xec };
	char table[64];
	bool ok;

	netlock_name(id, table, sizeof(table));
	ok = !netlock_take(table, NULL, 0) && netlock_present(table);
	(void)netlock_release(table, true);
	report(ok, false, "nftables (nft)", ok ? "network lock can be taken" : "(see the error above)",
	       "dump --tcp-established fails: install the Debian package nftables");
}

int cmd_check(int argc, char **argv)
{
	char *rel = NULL;

	if (read_file("/proc/sys/kernel/osrelease", &rel) >= 0)
		printf("kernel   %s", rel);
	free(rel);
	check_caps();
	check_ptrace();
	check_vm_rw();
	check_clone3();
	check_mm();
	check_cpu();
	check_pagemap();
	check_map_files();
	check_kcmp();
	check_pidfd();
	check_uffd();
	check_softdirty();
	check_netlock();
	printf("%s\n", missing_essential ? "rtcr cannot work fully here: see MISSING above"
					 : "everything rtcr needs for dump and restore is here");
	return missing_essential ? 1 : 0;
}
