/*
 * Dirty-page tracking between dumps: see track.h.
 */
#include "mem/track.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "common/proc.h"
#include "common/util.h"
#include "mem/pagemap.h"

/* Debian 12's headers predate these (Linux 6.7). */
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#define TRACK_DIR "/run/rtcr/track"

static int state_path(pid_t pid, char *buf, size_t len)
{
	uint64_t f[PROC_STAT_FIELDS];
	int ret = proc_stat_read(pid, f, NULL);
	if (ret)
		return ret;
	/* The start time tells this process from a later one with its pid. */
	snprintf(buf, len, TRACK_DIR "/%d-%llu", pid, (unsigned long long)f[22]);
	return 0;
}

static void hex(const uint8_t id[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* The inode of pid's fd if it is a userfaultfd (each has its own), else 0. */
static unsigned long long uffd_ino(pid_t pid, int fd)
{
	char path[64], *link;
	struct stat st;
	bool yes;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	link = xreadlink(path);
	yes = link && !strcmp(link, "anon_inode:[userfaultfd]");
	free(link);
	return yes && stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

void track_probe(struct track *t, pid_t pid, const uint8_t prev_id[16])
{
	char path[96], *buf = NULL, img[40] = "", want[33];
	unsigned long long ino = 0;
	int fd = -1;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->target_fd = -1;
	if (state_path(pid, path, sizeof(path)) || read_file(path, &buf) < 0) {
		snprintf(t->why, sizeof(t->why), "its memory is not tracked (no earlier dump with "
			 "--track-mem or --prev)");
		return;
	}
	/* The same userfaultfd (its inode), not another one at that number. */
	if (sscanf(buf, "fd %d ino %llu image %39s", &fd, &ino, img) != 3 || fd < 0 || !ino ||
	    uffd_ino(pid, fd) != ino) {
		snprintf(t->why, sizeof(t->why), "its tracker (fd %d) is gone: the process closed it",
			 fd);
		free(buf);
		return;
	}
	free(buf);
	t->target_fd = fd;
	if (!prev_id) {
		snprintf(t->why, sizeof(t->why), "no parent image");
		return;
	}
	hex(prev_id, want);
	if (strcmp(img, want)) {
		snprintf(t->why, sizeof(t->why), "its tracked writes are relative to another image "
			 "(a later dump, or one that did not finish)");
		return;
	}
	t->valid = true;
}

void track_forget(pid_t pid)
{
	char path[96];
	if (!state_path(pid, path, sizeof(path)))
		unlink(path);
}

void track_prune(void)
{
	DIR *d = opendir(TRACK_DIR);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char want[96], *path;
		int pid;
		unsigned long long start;
		if (sscanf(de->d_name, "%d-%llu", &pid, &start) != 2 || strchr(de->d_name, '.'))
			continue;
		if (!state_path(pid, want, sizeof(want)) && !strcmp(want + strlen(TRACK_DIR) + 1,
								    de->d_name))
			continue;   /* still that process */
		path = xasprintf("%s/%s", TRACK_DIR, de->d_name);
		unlink(path);
		free(path);
	}
	if (d)
		closedir(d);
}

int track_set_image(const struct track *t, const uint8_t id[16])
{
	char path[96], tmp[112], h[33];
	FILE *f;

	if (state_path(t->pid, path, sizeof(path)))
		return -ESRCH;
	if ((mkdir("/run/rtcr", 0700) < 0 && errno != EEXIST) ||
	    (mkdir(TRACK_DIR, 0700) < 0 && errno != EEXIST)) {
		pr_perror("%s", TRACK_DIR);
		return -errno;
	}
	hex(id, h);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f) {
		pr_perror("%s", tmp);
		return -errno;
	}
	fprintf(f, "fd %d ino %llu image %s\n", t->target_fd, uffd_ino(t->pid, t->target_fd), h);
	/* No fsync: the state means nothing after a reboot (the processes are
	 * gone); the rename alone makes it atomic for a later rtcr. */
	if (fclose(f) || rename(tmp, path)) {
		pr_perror("%s", path);
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

bool track_trackable(const struct vma *v)
{
	return v->kind == RTCR__VMA_KIND__ANON_PRIVATE || v->kind == RTCR__VMA_KIND__FILE_PRIVATE;
}

int track_create(struct track *t, struct inject *in)
{
	struct rlimit rl = { 1024, 1024 };
	long rfd, hi, r;
	uint64_t base;
	int ret;

	ret = inject_syscall(in, __NR_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0, &rfd);
	if (ret)
		return ret;
	if (rfd < 0) {
		pr_warn("pid %d: userfaultfd: %s: its memory cannot be tracked; the next dump will "
			"be a full one", t->pid, strerror((int)-rfd));
		return 1;
	}
	/* Out of the way of the program's own low fds, but not higher than
	 * 960: the fd table grows to the highest fd (a soft limit of 2^20
	 * would make it 8 MiB), and fork copies it and /proc/PID/fd lists
	 * every slot of it (~70 us at fd 20000, read at every freeze). */
	prlimit(t->pid, RLIMIT_NOFILE, NULL, &rl);
	base = rl.rlim_cur > 128 ? MIN(rl.rlim_cur, 1024) - 64 : rl.rlim_cur / 2;
	ret = inject_syscall(in, __NR_fcntl, rfd, F_DUPFD_CLOEXEC, base, 0, 0, 0, &hi);
	if (ret)
		return ret;
	if (hi >= 0) {
		ret = inject_syscall(in, __NR_close, rfd, 0, 0, 0, 0, 0, &r);
		if (ret)
			return ret;
	} else {
		hi = rfd;
	}
	t->target_fd = (int)hi;
	return 0;
}

int track_drop(struct track *t, struct inject *in)
{
	long r;
	int ret = inject_syscall(in, __NR_close, t->target_fd, 0, 0, 0, 0, 0, &r);
	t->target_fd = -1;
	track_forget(t->pid);
	return ret;
}

static void ignore_region(void *arg, uint64_t start, uint64_t end, uint64_t cat)
{
}

/* Protect the written pages of every registered area again. */
static int reset_written(pid_t pid, uint64_t start, uint64_t end)
{
	static const struct pm_scan_spec written = {
		.flags = PM_SCAN_WP_MATCHING,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	struct pagemap pm;
	int ret = pagemap_open(&pm, pid);

	if (!ret)
		ret = pagemap_scan_ex(&pm, &written, start, end, ignore_region, NULL);
	if (ret)
		pr_err("pid %d: write-protecting %#llx-%#llx again failed", pid,
		       (unsigned long long)start, (unsigned long long)end);
	pagemap_close(&pm);
	return ret;
}

int track_take(struct track *t, bool fresh)
{
	int pidfd = syscall(SYS_pidfd_open, t->pid, 0), uffd = -1;

	if (pidfd >= 0) {
		uffd = syscall(SYS_pidfd_getfd, pidfd, t->target_fd, 0);
		close(pidfd);
	}
	if (uffd < 0) {
		pr_warn("pid %d: taking its userfaultfd: %s; its memory is not tracked", t->pid,
			strerror(errno));
		return -errno;
	}
	if (fresh) {
		struct uffdio_api api = {
			.api = UFFD_API,
			.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
		};
		if (ioctl(uffd, UFFDIO_API, &api) < 0) {
			int e = errno;
			pr_warn("pid %d: userfaultfd asynchronous write-protect: %s; its memory is "
				"not tracked", t->pid, strerror(e));
			close(uffd);
			return -e;
		}
	}
	return uffd;
}

int track_protect(int uffd, const struct vma *v)
{
	struct uffdio_register reg = {
		.range = { v->start, v->end - v->start }, .mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { v->start, v->end - v->start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	/* An area that cannot be registered is stored whole every time. */
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		pr_debug("pid %d: %#llx-%#llx: not tracked: %s", v->pid,
			 (unsigned long long)v->start, (unsigned long long)v->end, strerror(errno));
		return 1;
	}
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		int e = errno;
		pr_perror("pid %d: write-protecting %#llx-%#llx", v->pid,
			  (unsigned long long)v->start, (unsigned long long)v->end);
		return -e;
	}
	return 0;
}

int track_arm(struct track *t, struct inject *in, const struct vma_list *vl,
	      const uint8_t new_id[16])
{
	bool fresh = t->target_fd < 0;
	int uffd, ret = 0;

	if (!vl->nr)
		return 0;
	if (fresh) {
		ret = track_create(t, in);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	uffd = track_take(t, fresh);
	if (uffd < 0)
		return track_drop(t, in);
	/* The state first: from now on the bits are being reset for new_id. */
	ret = track_set_image(t, new_id);
	if (ret) {
		close(uffd);
		pr_warn("pid %d: its memory is not tracked", t->pid);
		return track_drop(t, in);
	}
	for (int i = 0; i < vl->nr && ret >= 0; i++) {
		const struct vma *v = &vl->v[i];
		if (track_trackable(v) && !v->uffd_wp)
			ret = track_protect(uffd, v);
	}
	close(uffd);
	if (ret >= 0)
		ret = reset_written(t->pid, vl->v[0].start, vl->v[vl->nr - 1].end);
	if (ret < 0) {
		/* Half-protected is useless: the next dump is a full one. */
		pr_warn("pid %d: its memory is not tracked; the next dump will be a full one", t->pid);
		track_forget(t->pid);
	}
	return 0;
}
