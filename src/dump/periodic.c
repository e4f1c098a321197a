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
 * parent), then the old directories are removed. The merge runs while the
 * process runs; it costs a rewrite of the merged image.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int periodic_run(const struct periodic_opts *o)
{
	uint64_t period = (uint64_t)o->interval_ms * 1000000ULL, start = now_ns(), next = start;
	unsigned *kept = xzalloc((o->keep + 2) * sizeof(unsigned));
	unsigned nkept = 0, k = 0, missed = 0, fails = 0, done = 0;
	uint64_t worst_frozen = 0;
	struct live_set copies = { 0 };   /* live: each dump goes on from the last one's copies */
	struct stat sb;
	int ret = 0;

	if (stat(o->base, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		pr_err("%s: not a directory", o->base);
		free(kept);
		return -ENOTDIR;
	}
	for (;;) {
		struct dump_opts d = { .pid = o->pid, .leave_running = true, .track_mem = true,
				       .stats = o->stats, .live = o->live, .shell_job = o->shell_job,
				       .kept = o->live ? &copies : NULL, .align_ms = o->align_ms };
		struct dump_result r = { 0 };
		char *dir, *prev = NULL;

		if (dump_interrupted() || (o->count && done == o->count))
			break;
		sleep_until(next);
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
		/* Too many: fold the oldest kept ones into the next, then drop them. */
		if (o->keep && nkept > o->keep) {
			char *keepdir = ckpt_dir(o->base, kept[nkept - o->keep]);
			int mret = image_flatten(keepdir, NULL, IMG_FLATTEN_KEEP_ID, NULL);
			free(keepdir);
			if (mret) {
				pr_warn("merging checkpoint %u failed: older checkpoints are kept", kept[nkept - o->keep]);
			} else {
				unsigned drop = nkept - o->keep;
				for (unsigned i = 0; i < drop; i++) {
					char *old = ckpt_dir(o->base, kept[i]);
					remove_image_dir(old);
					free(old);
				}
				memmove(kept, kept + drop, o->keep * sizeof(unsigned));
				nkept = o->keep;
			}
		}
		kept = xrealloc(kept, (nkept + 2) * sizeof(unsigned));
		/* The next tick still ahead. */
		next += period;
		while (next < now_ns()) {
			next += period;
			missed++;
		}
	}
	if (dump_interrupted())
		ret = 0;   /* asked to stop: the checkpoints made are fine */
	if (done)
		printf("%u checkpoints of pid %d in %s (newest: %s/latest), worst frozen time %.3f ms, "
		       "%u periods missed\n", done, o->pid, o->base, o->base, worst_frozen / 1e6, missed);
	live_set_free(&copies);
	free(kept);
	return ret;
}
