/*
 * Periodic checkpoints: rtcr dump --interval MS [--keep N] [--count K].
 *
 * A chain of incremental images in BASE/ckpt-NNNNNN: the first one full
 * (and arming dirty tracking), each next one storing only the pages
 * written since the previous one, so the process is frozen for a time
 * that follows what it wrote, not its size. Dumps start on a fixed
 * schedule (start + k * interval); a dump that overruns its period makes
 * the next one start at the following tick, and the miss is reported.
 *
 * Keeping the newest N restorable: when a checkpoint is to go, the one
 * after it is merged with its parents first (image_flatten() keeping its
 * id, so the newer links and the process's tracker still take it as their
 * parent), then the old directories are removed. A merge rewrites the
 * merged image whole (1 GiB: 0.5-4 s here), so it runs in a process of
 * its own (rtcr merge --keep-id, spawned), one at a time, while the
 * checkpoints go on on their schedule: meanwhile more than N exist. The
 * images it reads (the merged one and its parents) are older than any
 * checkpoint being written, which only reads the newest; its result
 * replaces the merged image's file at once (rename), with the same id.
 * At the end, the merge under way is waited for and the last one made,
 * so that N remain.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "dump/dump.h"
#include "image/image.h"
#include "image/merge.h"

static char *ckpt_dir(const char *base, unsigned k)
{
	return xasprintf("%s/ckpt-%06u", base, k);
}

/* Remove an image directory rtcr made: its files, then itself. */
static int remove_image_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char *p;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		if (unlink(p) < 0 && errno != ENOENT)
			ret = -errno;
		free(p);
	}
	closedir(d);
	if (rmdir(dir) < 0 && !ret)
		ret = -errno;
	if (ret)
		pr_err("%s: removing it: %s", dir, strerror(-ret));
	return ret;
}

/* BASE/latest -> ckpt-NNNNNN, replaced atomically. */
static void point_latest(const char *base, unsigned k)
{
	char *tmp = xasprintf("%s/.latest.tmp", base), *link = xasprintf("%s/latest", base);
	char target[32];

	snprintf(target, sizeof(target), "ckpt-%06u", k);
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
		pr_perror("%s", link);
		unlink(tmp);
	}
	free(tmp);
	free(link);
}

static void sleep_until(uint64_t t)
{
	for (;;) {
		uint64_t now = now_ns();
		struct timespec ts;
		if (now >= t || dump_interrupted())
			return;
		ts.tv_sec = (t - now) / 1000000000ULL;
		ts.tv_nsec = (t - now) % 1000000000ULL;
		nanosleep(&ts, NULL);   /* EINTR: a stop signal, checked above */
	}
}

/* The merge under way, if any: a process flattening checkpoint ck. */
struct merging {
	pid_t pid;
	unsigned ck;
};

/* rtcr merge -D DIR --keep-id --quiet, as a process of its own (the
 * stop signals blocked: it ends its write; the loop waits for it). */
static pid_t merge_spawn(const char *dir)
{
	char *argv[] = { "rtcr", "merge", "-D", (char *)dir, "--keep-id", "--quiet", NULL };
	posix_spawnattr_t at;
	sigset_t stop;
	pid_t pid;
	int err;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGQUIT);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &stop);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	err = posix_spawn(&pid, "/proc/self/exe", NULL, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	if (err) {
		pr_warn("starting the merge of %s: %s (merged here)", dir, strerror(err));
		return -1;
	}
	return pid;
}

/* Drop the kept checkpoints older than ck (now self-contained). */
static void drop_before(const char *base, unsigned *kept, unsigned *nkept, unsigned ck)
{
	unsigned drop = 0;

	while (drop < *nkept && kept[drop] != ck)
		drop++;
	if (drop == *nkept)
		return;
	for (unsigned i = 0; i < drop; i++) {
		char *old = ckpt_dir(base, kept[i]);
		remove_image_dir(old);
		free(old);
	}
	memmove(kept, kept + drop, (*nkept - drop) * sizeof(unsigned));
	*nkept -= drop;
}

/*
 * Keep the newest o->keep: the merge under way ended? (wait: wait for
 * it.) Then, more than o->keep kept, start the next (wait: and wait for
 * it too: at the end, exactly o->keep remain).
 */
static void merge_step(const struct periodic_opts *o, unsigned *kept, unsigned *nkept,
		       struct merging *m, bool wait)
{
	for (;;) {
		if (m->pid > 0) {
			pid_t child = m->pid, w;
			int st;
			while ((w = waitpid(child, &st, wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
				;
			if (w == 0)
				return;        /* still merging */
			m->pid = 0;
			if (w == child && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				drop_before(o->base, kept, nkept, m->ck);
			} else {
				pr_warn("merging checkpoint %u failed: older checkpoints are kept", m->ck);
				if (wait)
					return;    /* (not tried again at the end) */
			}
		}
		if (*nkept <= o->keep)
			return;
		m->ck = kept[*nkept - o->keep];
		{
			char *dir = ckpt_dir(o->base, m->ck);
			m->pid = merge_spawn(dir);
			if (m->pid < 0) {
				m->pid = 0;
				if (image_flatten(dir, NULL, IMG_FLATTEN_KEEP_ID, NULL))
					pr_warn("merging checkpoint %u failed: older checkpoints are kept",
						m->ck);
				else
					drop_before(o->base, kept, nkept, m->ck);
				free(dir);
				return;
			}
			free(dir);
		}
		if (!wait)
			return;
	}
}

int periodic_run(const struct periodic_opts *o)
{
	uint64_t period = (uint64_t)o->interval_ms * 1000000ULL, start = now_ns(), next = start;
	unsigned *kept = xzalloc((o->keep + 2) * sizeof(unsigned));
	unsigned nkept = 0, k = 0, missed = 0, fails = 0, done = 0;
	struct merging merging = { 0 };
	uint64_t worst_frozen = 0;
	struct live_set copies = { 0 };   /* live: each dump goes on from the last one's copies */
	struct stat sb;
	int ret = 0;

	/* The merges' exit statuses are waited for: not if SIGCHLD came
	 * ignored (the kernel would reap them). */
	{
		struct sigaction sa = { .sa_handler = SIG_DFL };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGCHLD, &sa, NULL);
	}
	if (stat(o->base, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		pr_err("%s: not a directory", o->base);
		free(kept);
		return -ENOTDIR;
	}
	for (;;) {
		struct dump_opts d = { .pid = o->pid, .leave_running = true, .track_mem = true,
				       .stats = o->stats, .live = o->live, .shell_job = o->shell_job,
				       .kept = o->live ? &copies : NULL, .idle_wait_ms = o->idle_wait_ms };
		struct dump_result r = { 0 };
		char *dir, *prev = NULL;

		if (dump_interrupted() || (o->count && done == o->count))
			break;
		/* (A merge that ends meanwhile is seen within 50 ms.) */
		while (now_ns() < next && !dump_interrupted()) {
			sleep_until(MIN(next, now_ns() + 50000000ULL));
			if (o->keep && merging.pid)
				merge_step(o, kept, &nkept, &merging, false);
		}
		if (done)
			test_pause_point("periodic-next");
		if (dump_interrupted())
			break;
		dir = ckpt_dir(o->base, ++k);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			ret = -errno;
			pr_perror("%s", dir);
			free(dir);
			break;
		}
		if (nkept)
			prev = ckpt_dir(o->base, kept[nkept - 1]);
		d.dir = dir;
		d.prev = prev;
		ret = dump_run(&d, &r);
		free(prev);
		if (ret) {
			remove_image_dir(dir);
			free(dir);
			if (kill(o->pid, 0) < 0 && errno == ESRCH) {
				pr_info("pid %d has ended", o->pid);
				ret = 0;
				break;
			}
			if (dump_interrupted() || ++fails == 3) {
				if (fails == 3)
					pr_err("three checkpoints in a row failed: stopping");
				break;
			}
			/* The next one is relative to the same parent: it is a full
			 * one if this one had reset the tracker (whose state then
			 * names an image that does not exist), else incremental. */
			next += period;
			continue;
		}
		fails = 0;
		done++;
		worst_frozen = MAX(worst_frozen, r.frozen_ns);
		printf("%s: frozen %.3f ms, %llu pages stored, %llu in parents, image %llu bytes\n",
		       dir, r.frozen_ns / 1e6, (unsigned long long)r.pages,
		       (unsigned long long)r.inherited, (unsigned long long)r.image_bytes);
		fflush(stdout);
		free(dir);
		kept[nkept++] = k;
		point_latest(o->base, k);
		/* Too many: fold the oldest kept ones into the next (in the
		 * background), then drop them. */
		if (o->keep)
			merge_step(o, kept, &nkept, &merging, false);
		kept = xrealloc(kept, (nkept + 2) * sizeof(unsigned));
		/* The next tick still ahead. */
		next += period;
		while (next < now_ns()) {
			next += period;
			missed++;
		}
	}
	if (o->keep)
		merge_step(o, kept, &nkept, &merging, true);
	if (dump_interrupted())
		ret = 0;   /* asked to stop: the checkpoints made are fine */
	if (done)
		printf("%u checkpoints of pid %d in %s (newest: %s/latest), worst frozen time %.3f ms, "
		       "%u periods missed\n", done, o->pid, o->base, o->base, worst_frozen / 1e6, missed);
	live_set_free(&copies);
	free(kept);
	return ret;
}
