/*
 * Live dumps: pre-copy over the dirty-page tracker. See live.h.
 */
#include "mem/live.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "mem/pagemap.h"
#include "task/inject.h"
#include "task/task.h"
#include "task/ptrace.h"

#define LIVE_MAX_ROUNDS   8
#define LIVE_ENOUGH_PAGES 256   /* written per round: freeze now (~0.5 ms of copying) */
/*
 * Throttling a process that writes faster than rtcr copies: its rounds
 * are then copied in slices, each with the process stopped, and between
 * slices it runs a window that halves while it does not slow down.
 */
#define LIVE_FREEZE_PAGES 2048   /* the freeze may copy this many (~2-3 ms) */
#define LIVE_SLICE_PAGES  512    /* copied per stop (~1 ms with the stop) */
#define LIVE_FIRST_RUN_US 4000
#define LIVE_MIN_RUN_US   250
#define LIVE_MAX_THROTTLED 12

/* Take rtcr's copy of the tracker and record the image its bits are now
 * being reset for. */
static int take_tracker(struct live_proc *lp, bool fresh, const uint8_t id[16])
{
	lp->uffd = track_take(&lp->tr, fresh);
	if (lp->uffd < 0)
		return lp->uffd;
	return track_set_image(&lp->tr, id);
}

/*
 * Make the tracker and take it: the main thread alone is stopped for the
 * injected calls. If it cannot be taken, it is closed again in the target
 * before the thread runs on (a tracker no state names would make every
 * later dump refuse an unknown userfaultfd).
 */
static int create_tracker(struct live_proc *lp, const uint8_t id[16])
{
	struct inject in;
	struct stop st;
	uint64_t gadget;
	int ret, fin;

	/* The areas, to find a syscall instruction (they are read again, in
	 * each round). */
	ret = vma_list_read(lp->pid, &lp->vl, true);
	if (ret)
		return ret;
	gadget = mem_find_gadget(lp->pid, &lp->vl);
	if (!gadget)
		return -ENOEXEC;
	ret = task_seize(lp->pid, false);
	if (!ret)
		ret = task_stop(lp->pid, &st);
	if (ret == -ESRCH)
		pr_err("pid %d exited", lp->pid);
	if (!ret && st.kind != STOP_INTERRUPT) {
		pr_err("pid %d is stopped (%s): a live dump copies a running process; dump it "
		       "without --live", lp->pid, st.kind == STOP_GROUP ? "SIGSTOP" : "other stop");
		ret = -EAGAIN;
	}
	if (!ret) {
		ret = inject_begin(&in, lp->pid, gadget);
		if (!ret) {
			ret = track_create(&lp->tr, &in);
			if (ret > 0) {
				pr_err("pid %d: a live dump needs userfaultfd write-protection", lp->pid);
				ret = -ENOTSUP;
			} else if (!ret) {
				ret = take_tracker(lp, true, id);
				if (ret && track_drop(&lp->tr, &in))
					pr_err("pid %d: could not close rtcr's tracker in it", lp->pid);
			}
			fin = inject_finish(&in);
			inject_abandon(&in);
			if (!ret)
				ret = fin;
		}
	}
	task_detach(lp->pid, 0);
	return ret;
}

int live_begin(struct live_proc *lp, pid_t pid, const uint8_t *prev_id, const uint8_t id[16])
{
	int ret;

	uint64_t f[PROC_STAT_FIELDS];

	memset(lp, 0, sizeof(*lp));
	lp->pid = pid;
	lp->uffd = -1;
	ret = proc_stat_read(pid, f, NULL);
	if (ret)
		return ret;
	lp->start_time = f[22];
	track_probe(&lp->tr, pid, prev_id);
	lp->inc = prev_id && lp->tr.valid;
	if (prev_id && !lp->inc)
		pr_warn("pid %d: all its memory is stored: %s", pid, lp->tr.why);
	/* From the first reset on, the bits are this image's. */
	if (lp->tr.target_fd < 0)
		ret = create_tracker(lp, id);
	else
		ret = take_tracker(lp, false, id);
	if (!ret)
		ret = mirror_init(&lp->m, pid);
	if (!ret)
		lp->watching = !mapwatch_open(&lp->mw, pid, &mw_memory);
	/* (Not counting: the freeze asks.) */
	if (!ret && mapwatch_open(&lp->aw, pid, &mw_attrs))
		memset(&lp->aw, 0, sizeof(lp->aw));
	return ret;
}

bool live_tracker_held(const struct live_proc *lp, int target_fd)
{
	struct stat ours, theirs;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", lp->pid, target_fd);
	return target_fd >= 0 && lp->uffd >= 0 && fstat(lp->uffd, &ours) == 0 &&
	       stat(path, &theirs) == 0 && ours.st_ino == theirs.st_ino &&
	       ours.st_dev == theirs.st_dev;
}

int live_resume(struct live_proc *lp, const uint8_t *prev_id, const uint8_t id[16])
{
	struct track t;

	/* The copy is the pages at the freeze of image base_id: only a dump
	 * with that image as its parent can take them as its parent's. */
	if (!lp->has_base || !prev_id || memcmp(prev_id, lp->base_id, 16)) {
		pr_debug("pid %d: its copy is not of the parent image", lp->pid);
		return -ESTALE;
	}
	/* The tracker still the process's, still relative to the parent, and
	 * still the one rtcr holds (exec closes it: it is close-on-exec). */
	track_probe(&t, lp->pid, prev_id);
	if (!t.valid || t.target_fd != lp->tr.target_fd || !live_tracker_held(lp, t.target_fd)) {
		pr_debug("pid %d: its tracker changed: %s", lp->pid,
			 t.valid ? "another userfaultfd" : t.why);
		return -ESTALE;
	}
	lp->tr = t;
	lp->inc = true;
	lp->resumed = true;
	lp->ask_ns = 0;
	lp->has_base = false;
	lp->gone = false;
	lp->rounds = 0;
	lp->last_written = lp->precopied = lp->precopy_ns = 0;
	lp->run_us = 0;
	lp->throttle_stops = lp->throttle_ns = lp->throttle_max_ns = 0;
	lp->areas_how = NULL;
	/* What the parent holds: the pages copied for it and those it left
	 * in its own parents. Pages that had no data stay untouched. */
	mirror_rebase(&lp->m);
	if (!lp->watching && !lp->mw.nfd)
		lp->watching = !mapwatch_open(&lp->mw, lp->pid, &mw_memory);
	if (!lp->aw.nfd && mapwatch_open(&lp->aw, lp->pid, &mw_attrs))
		memset(&lp->aw, 0, sizeof(lp->aw));
	/* From now on the bits are reset for this image. */
	return track_set_image(&lp->tr, id);
}

void live_frozen_end(struct live_proc *lp)
{
	uint64_t n;

	/* After the freeze's own injected calls, which are counted too. */
	lp->aw_based = lp->aw.nfd && !mapwatch_count(&lp->aw, &lp->aw_base);

	/* Areas read frozen: lp->vl is older; the next round reads them. */
	if (!lp->areas_reused || !lp->watching)
		return;
	if (mapwatch_count(&lp->mw, &n))
		lp->vl_counted = false;
	else
		lp->mw_base = n;
}

void live_asked(struct live_proc *lp, struct answers *a, bool areas_held)
{
	uint64_t n;

	answers_free(lp->answers);
	lp->answers = a;
	lp->asked = true;
	lp->aw_based = a && lp->aw.nfd && !mapwatch_count(&lp->aw, &lp->aw_base);
	/* The stop's scratch area came and went: if the areas of the last
	 * round were current when every thread had stopped, they are after
	 * it (else the next count differs from mw_base, as it should). */
	if (areas_held && lp->watching && lp->vl_counted && !mapwatch_count(&lp->mw, &n))
		lp->mw_base = n;
}

bool live_answers_current(struct live_proc *lp)
{
	uint64_t n;

	return lp->answers && lp->aw_based && !mapwatch_count(&lp->aw, &n) && n == lp->aw_base;
}

void live_keep(struct live_proc *lp, const uint8_t id[16])
{
	memcpy(lp->base_id, id, 16);
	lp->has_base = true;
}

/* Regions of a scan, distributed to the areas (they come in address order). */
struct round_scan {
	struct vma_list *vl;
	struct mirror_area **ma;   /* per area: its mirror, NULL if not tracked */
	int vi;
	bool written;              /* a written-pages scan (else: data of whole areas) */
	bool *whole;               /* per area: take all its data (data scan) */
	bool *inherit;             /* per area: mark unwritten data as in the parent */
	struct page_run_list unsure;   /* data scan: not present, not written */
	struct page_run_list filew;    /* written pages of private file mappings */
};

static bool is_data(const struct vma *v, uint64_t cat)
{
	if (!(cat & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) || (cat & PAGE_IS_PFNZERO))
		return false;
	/* A private file mapping's page-cache pages are the file's. */
	return !(v->kind == RTCR__VMA_KIND__FILE_PRIVATE && (cat & PAGE_IS_FILE));
}

static void set_run(struct mirror_area *a, uint64_t start, uint64_t end, uint8_t st)
{
	memset(mirror_state(a, start), st, (end - start) / PAGE_SIZE);
}

static void on_region(void *arg, uint64_t start, uint64_t end, uint64_t cat)
{
	struct round_scan *s = arg;

	uint64_t e;

	for (int i; (i = vma_list_clip(s->vl, &s->vi, &start, end, &e)) >= 0; start = e) {
		struct vma *v = &s->vl->v[i];
		struct mirror_area *a = s->ma[i];

		if (!a)
			continue;
		if (s->written) {
			/* Written since the last round: to copy, or no data now. */
			set_run(a, start, e, is_data(v, cat) ? MIR_DIRTY : MIR_ZERO);
		} else if (!(cat & PAGE_IS_WRITTEN) && !(cat & PAGE_IS_PRESENT) &&
			   (cat & PAGE_IS_SWAPPED)) {
			/* A real swap entry or a marker of the protection: sorted below. */
			prl_add(&s->unsure, start, (e - start) / PAGE_SIZE);
		} else if (is_data(v, cat) && (s->whole[i] || (cat & PAGE_IS_WRITTEN))) {
			set_run(a, start, e, MIR_DIRTY);
		} else if (is_data(v, cat) && s->inherit[i]) {
			for (uint64_t p = start; p < e; p += PAGE_SIZE)
				if (*mirror_state(a, p) == MIR_UNTOUCHED)
					*mirror_state(a, p) = MIR_INHERIT;
		}
	}
}

/*
 * Written-pages scan. Only PAGE_IS_WRITTEN is asked and returned, which
 * takes the kernel's fast path: it tests each pte's protection bit, not
 * the page's categories (~35 ns a page: 18 ms for 2 GiB, against 1 ms).
 * Anonymous memory: every written page is copied, including one zapped
 * since (MADV_DONTNEED empties its pte, which counts as written): the
 * copy reads zeros. Private file mappings: the page may be the file's
 * page cache, which is no data; those runs are sorted by a category scan.
 */
static void on_written(void *arg, uint64_t start, uint64_t end, uint64_t cat)
{
	struct round_scan *s = arg;
	uint64_t e;

	for (int i; (i = vma_list_clip(s->vl, &s->vi, &start, end, &e)) >= 0; start = e) {
		if (!s->ma[i])
			continue;
		if (s->vl->v[i].kind == RTCR__VMA_KIND__FILE_PRIVATE)
			prl_add(&s->filew, start, (e - start) / PAGE_SIZE);
		else
			set_run(s->ma[i], start, e, MIR_DIRTY);
	}
}

/*
 * The frozen written-pages scan, in pieces of about equal tracked size,
 * shared with the spare CPU (common/spare.h): the walk of every pte is
 * the part of the freeze that grows with the memory. Each piece has its
 * own cursor and list of private file pages; the mirror states they set
 * are of distinct pages.
 */
#define SPLIT_PIECES    8
#define SPLIT_MIN_BYTES (64ull << 20)   /* below, one walk (~50 us) */
#define SPLIT_ALIGN     (2ull << 20)    /* a bound inside a huge page would split it */

struct written_split {
	struct pagemap_split *ps;
	struct round_scan *s;
	struct round_scan pieces[SPLIT_PIECES];
	int n;
};

/* Begun (the spare CPU takes pieces at once); NULL if one walk is
 * enough, which it has done. */
static struct written_split *scan_written_start(struct pagemap *pm, const struct pm_scan_spec *sp,
						struct round_scan *s, int *err)
{
	const struct vma_list *vl = s->vl;
	uint64_t total = 0, cum = 0, bounds[SPLIT_PIECES + 1];
	struct written_split *w;
	void *args[SPLIT_PIECES];
	int n = 1, k = 1;

	for (int i = 0; i < vl->nr; i++)
		if (s->ma[i])
			total += vl->v[i].end - vl->v[i].start;
	if (total < SPLIT_MIN_BYTES) {
		*err = pagemap_scan_ex(pm, sp, vl->v[0].start, vl->v[vl->nr - 1].end, on_written, s);
		return NULL;
	}
	w = xzalloc(sizeof(*w));
	w->s = s;
	bounds[0] = vl->v[0].start;
	w->pieces[0] = *s;
	w->pieces[0].vi = 0;
	for (int i = 0; i < vl->nr && k < SPLIT_PIECES; i++) {
		uint64_t len;

		if (!s->ma[i])
			continue;
		len = vl->v[i].end - vl->v[i].start;
		for (; k < SPLIT_PIECES && cum + len > total / SPLIT_PIECES * k; k++) {
			uint64_t b = vl->v[i].start + (total / SPLIT_PIECES * k - cum);
			/* (The scan splits a huge page that a bound cuts, to
			 * protect part of it: on a 2 MiB boundary, or the
			 * area's start.) */
			b = MAX(b & ~(SPLIT_ALIGN - 1), vl->v[i].start);
			if (b <= bounds[n - 1])
				continue;
			bounds[n] = b;
			w->pieces[n] = *s;
			w->pieces[n].vi = i;
			n++;
		}
		cum += len;
	}
	bounds[n] = vl->v[vl->nr - 1].end;
	for (int i = 0; i < n; i++) {
		memset(&w->pieces[i].unsure, 0, sizeof(w->pieces[i].unsure));
		memset(&w->pieces[i].filew, 0, sizeof(w->pieces[i].filew));
		args[i] = &w->pieces[i];
	}
	w->n = n;
	w->ps = pagemap_split_start(pm, sp, bounds, n, on_written, args);
	*err = 0;
	return w;
}

/* Abandoned: the pieces not begun are not walked; nothing is merged. */
static void scan_written_cancel(struct written_split *w)
{
	pagemap_split_cancel(w->ps);
	for (int i = 0; i < w->n; i++)
		prl_free(&w->pieces[i].filew);
	free(w);
}

static int scan_written_finish(struct written_split *w)
{
	struct round_scan *s = w->s;
	int ret = pagemap_split_finish(w->ps);

	/* In address order, as one scan would have listed them. */
	for (int i = 0; i < w->n; i++) {
		for (uint32_t r = 0; r < w->pieces[i].filew.nr; r++)
			prl_add(&s->filew, w->pieces[i].filew.v[r].start, w->pieces[i].filew.v[r].npages);
		prl_free(&w->pieces[i].filew);
	}
	free(w);
	return ret;
}

struct swap_arg {
	struct round_scan *s;
	int vi;
};

static void on_swapped(void *arg, uint64_t addr)
{
	struct swap_arg *w = arg;
	struct round_scan *s = w->s;
	int i = vma_list_seek(s->vl, &w->vi, addr);

	if (i < 0 || !s->ma[i])
		return;
	if (s->whole[i])
		*mirror_state(s->ma[i], addr) = MIR_DIRTY;
	else if (s->inherit[i] && *mirror_state(s->ma[i], addr) == MIR_UNTOUCHED)
		*mirror_state(s->ma[i], addr) = MIR_INHERIT;
}

struct verify_arg {
	const struct vma *v;
	uint64_t start;               /* of the run checked */
	uint8_t *keep;                /* per page of the run: still data */
	struct page_run_list unsure;  /* swapped, or the protection's marker */
};

static void keep_run(struct verify_arg *w, uint64_t start, uint64_t end)
{
	memset(w->keep + (start - w->start) / PAGE_SIZE, 1, (end - start) / PAGE_SIZE);
}

static void on_data(void *arg, uint64_t start, uint64_t end, uint64_t cat)
{
	struct verify_arg *w = arg;

	if (!(cat & PAGE_IS_PRESENT) && (cat & PAGE_IS_SWAPPED))
		prl_add(&w->unsure, start, (end - start) / PAGE_SIZE);
	else if (is_data(w->v, cat))
		keep_run(w, start, end);
}

static void on_real_swap(void *arg, uint64_t addr)
{
	keep_run(arg, addr, addr + PAGE_SIZE);
}

static bool held(uint8_t st)
{
	return st == MIR_COPIED || st == MIR_INHERIT;
}

/*
 * A private file mapping's pages rtcr holds as data (copied, or the
 * parent's) that no longer are: MADV_DONTNEED on a private copy leaves
 * the protection's marker, not a written page, so the written scan does
 * not see it, and the process reads the file's page again. A category
 * scan over the held runs only (these areas' copies are few: a library's
 * data, a file mapped private and written here and there); a page that
 * reads as swapped is data only if it is a real swap entry, not a marker.
 */
static int verify_file_private(struct pagemap *pm, const struct vma *v, struct mirror_area *a)
{
	uint64_t np = (a->end - a->start) / PAGE_SIZE;
	int ret = 0;

	for (uint64_t p = 0, q; p < np && !ret; p = q) {
		struct verify_arg w = { .v = v };

		while (p < np && !held(a->state[p]))
			p++;
		for (q = p; q < np && held(a->state[q]); q++)
			;
		if (p == q)
			break;
		w.start = a->start + p * PAGE_SIZE;
		w.keep = xzalloc(q - p);
		ret = pagemap_scan_all(pm, w.start, a->start + q * PAGE_SIZE, on_data, &w);
		if (!ret && w.unsure.nr)
			ret = pagemap_real_swap(pm, &w.unsure, on_real_swap, &w);
		for (uint64_t k = p; k < q && !ret; k++)
			if (!w.keep[k - p])
				a->state[k] = MIR_ZERO;
		free(w.keep);
		prl_free(&w.unsure);
	}
	return ret;
}

/*
 * Copy the MIR_DIRTY pages of the tracked areas, at most limit of them;
 * *n: the number copied. Running, an area may go away under the copy
 * (-EFAULT): its pages stay dirty, the other areas are copied on, and the
 * next round (or the frozen one) sees it gone. Frozen, that is an error.
 */
static int copy_dirty(struct live_proc *lp, struct vma_list *vl, struct mirror_area **ma,
		      bool frozen, uint64_t limit, uint64_t *n)
{
	uint64_t before = lp->m.copied;
	int ret = 0;

	for (int i = 0; i < vl->nr && !ret && limit; i++) {
		struct mirror_area *a = ma[i];
		uint64_t np;
		if (!a)
			continue;
		np = (a->end - a->start) / PAGE_SIZE;
		for (uint64_t p = 0; p < np && !ret && limit; ) {
			const uint8_t *hit = memchr(a->state + p, MIR_DIRTY, np - p);
			uint64_t q;
			if (!hit)
				break;
			p = hit - a->state;
			for (q = p; q < np && q - p < limit && a->state[q] == MIR_DIRTY; q++)
				;
			limit -= q - p;
			ret = mirror_copy(&lp->m, a, &vl->v[i], a->start + p * PAGE_SIZE, q - p);
			if (ret == -EFAULT && !frozen)
				ret = 0;
			p = q;
		}
	}
	if (!ret)
		ret = mirror_flush(&lp->m);
	if (ret == -EFAULT && !frozen)
		ret = 0;
	mirror_drop_pending(&lp->m);
	*n = lp->m.copied - before;
	return ret;
}

/*
 * Stop every thread of the process (seized for it; the process cannot
 * tell) and give them back: a throttled round copies while it is held.
 */
static int hold(struct live_proc *lp, pid_t **held, int *nheld)
{
	pid_t *tids;
	int n = proc_tasks(lp->pid, &tids), ret = 0;

	*nheld = 0;
	if (n < 0)
		return n;
	*held = xmalloc((n ? n : 1) * sizeof(pid_t));
	for (int k = 0; k < n && !ret; k++) {
		struct stop st;
		ret = task_seize(tids[k], false);
		if (ret == -ESRCH) {
			ret = 0;      /* a thread that just exited */
			continue;
		}
		if (ret)
			break;
		(*held)[(*nheld)++] = tids[k];
		ret = task_stop(tids[k], &st);
		if (ret == -ESRCH) {
			(*nheld)--;
			ret = 0;
		}
	}
	free(tids);
	return ret;
}

static void unhold(pid_t *held, int nheld)
{
	for (int k = 0; k < nheld; k++)
		task_detach(held[k], 0);
	free(held);
}

/* Throttled: copy the dirty pages in slices, the process held in each. */
static int copy_throttled(struct live_proc *lp, struct vma_list *vl, struct mirror_area **ma,
			  uint64_t *n)
{
	int ret = 0;

	*n = 0;
	for (;;) {
		uint64_t t0 = now_ns(), k = 0, dt;
		pid_t *held = NULL;
		int nheld;

		ret = hold(lp, &held, &nheld);
		if (!ret)
			ret = copy_dirty(lp, vl, ma, false, LIVE_SLICE_PAGES, &k);
		unhold(held, nheld);
		dt = now_ns() - t0;
		lp->throttle_stops++;
		lp->throttle_ns += dt;
		lp->throttle_max_ns = MAX(lp->throttle_max_ns, dt);
		*n += k;
		if (ret || k < LIVE_SLICE_PAGES)
			return ret;
		usleep(lp->run_us);   /* it runs */
	}
}

/*
 * One round over the areas vl. Running (frozen false): areas not yet
 * registered are registered and protected first, then taken whole.
 * Frozen: such areas are taken whole, then registered for the next dump.
 */
/* A round: its areas set up and its written pages' walk under way
 * (round_begin()), then the rest (round_end()). */
struct live_round {
	struct round_scan s;
	struct pagemap pm;
	bool pm_open;
	bool frozen;
	bool any_whole, any_inherit;
	struct written_split *ws;   /* frozen: the walk shared with the spare CPU */
	uint64_t t0;
	int ret;
};

static const struct pm_scan_spec written_spec = {
	.flags = PM_SCAN_WP_MATCHING,
	.category_mask = PAGE_IS_WRITTEN,
	.return_mask = PAGE_IS_WRITTEN,
};

static void round_begin(struct live_proc *lp, struct vma_list *vl, bool frozen, struct live_round *r)
{
	struct round_scan *s = &r->s;
	int ret;

	memset(r, 0, sizeof(*r));
	s->vl = vl;
	r->frozen = frozen;
	r->t0 = now_ns();
	if (!vl->nr)
		return;
	s->ma = xzalloc(vl->nr * sizeof(*s->ma));
	s->whole = xzalloc(vl->nr * sizeof(bool));
	s->inherit = xzalloc(vl->nr * sizeof(bool));
	ret = pagemap_open(&r->pm, lp->pid);
	r->pm_open = !ret;
	if (!ret && !r->pm.scan) {
		pr_err("pid %d: a live dump needs PAGEMAP_SCAN (Linux 6.7)", lp->pid);
		ret = -ENOTSUP;
	}
	for (int i = 0; i < vl->nr && !ret; i++) {
		struct vma *v = &vl->v[i];
		bool fresh;
		struct mirror_area *a;

		if (!track_trackable(v))
			continue;
		a = mirror_area(&lp->m, v->start, v->end, &fresh);
		if (!a) {
			ret = -ENOMEM;
			break;
		}
		if (!v->uffd_wp) {
			/* New (or mapped again, or moved): not tracked yet. */
			if (!fresh)
				mirror_reset(a);
			if (!frozen) {
				int t = track_protect(lp->uffd, v);
				if (t < 0) {
					ret = t;
					break;
				}
				if (t > 0)
					continue;     /* cannot be tracked: taken frozen */
				v->uffd_wp = true;
			}
			s->whole[i] = true;
		} else if (fresh) {
			/* Tracked, but its bounds changed since the last round
			 * (mprotect split it, or it merged): what was known of
			 * its pages was by the old bounds. At the first round of
			 * an incremental dump, its unwritten data is the parent's. */
			if (lp->inc && lp->rounds == 0 && !frozen)
				s->inherit[i] = r->any_inherit = true;
			else
				s->whole[i] = true;
		}
		r->any_whole |= s->whole[i];
		s->ma[i] = a;
	}
	/* Written since the last round, and protected again. */
	if (!ret) {
		s->vi = 0;
		if (frozen)
			r->ws = scan_written_start(&r->pm, &written_spec, s, &ret);
		else
			ret = pagemap_scan_ex(&r->pm, &written_spec, vl->v[0].start,
					      vl->v[vl->nr - 1].end, on_written, s);
	}
	r->ret = ret;
}

/* The walk done, and its state let go of. */
static int round_join(struct live_round *r)
{
	int ret = 0;

	if (r->ws)
		ret = scan_written_finish(r->ws);
	r->ws = NULL;
	return ret;
}

/* (A round abandoned before round_end(): its walk is cancelled.) */
static void round_free(struct live_round *r)
{
	if (r->ws)
		scan_written_cancel(r->ws);
	r->ws = NULL;
	prl_free(&r->s.unsure);
	prl_free(&r->s.filew);
	if (r->pm_open)
		pagemap_close(&r->pm);
	r->pm_open = false;
	free(r->s.ma);
	free(r->s.whole);
	free(r->s.inherit);
	r->s.ma = NULL;
	r->s.whole = r->s.inherit = NULL;
}

static int round_end(struct live_proc *lp, struct live_round *r)
{
	struct round_scan *s = &r->s;
	struct vma_list *vl = s->vl;
	struct pagemap *pm = &r->pm;
	bool frozen = r->frozen;
	uint64_t n = 0;
	int ret = r->ret, j;

	j = round_join(r);
	if (!ret)
		ret = j;
	if (!vl->nr)
		return 0;
	/* Of those, in private file mappings: data or the file's page. */
	s->written = true;
	for (uint32_t q = 0; q < s->filew.nr && !ret; q++) {
		uint64_t rs = s->filew.v[q].start, re = rs + s->filew.v[q].npages * PAGE_SIZE;
		s->vi = 0;
		if (vma_list_seek(vl, &s->vi, rs) < 0)
			continue;
		ret = pagemap_scan_all(pm, rs, re, on_region, s);
	}
	/* Frozen: held pages of private file mappings still data? */
	for (int i = 0; i < vl->nr && !ret && frozen; i++)
		if (s->ma[i] && !s->whole[i] && vl->v[i].kind == RTCR__VMA_KIND__FILE_PRIVATE)
			ret = verify_file_private(pm, &vl->v[i], s->ma[i]);
	/* Whole areas: every page with data (after the protection, so a
	 * write from now on is seen by the next round). */
	if (!ret && (r->any_whole || r->any_inherit)) {
		s->written = false;
		for (int i = 0; i < vl->nr && !ret; i++) {
			if (!s->whole[i] && !s->inherit[i])
				continue;
			s->vi = i;
			ret = pagemap_scan_all(pm, vl->v[i].start, vl->v[i].end, on_region, s);
		}
		if (!ret && s->unsure.nr) {
			struct swap_arg w = { s, 0 };
			ret = pagemap_real_swap(pm, &s->unsure, on_swapped, &w);
		}
	}
	pr_debug("pid %d: round %d%s: setup+scan %.3f ms", lp->pid, lp->rounds,
		 frozen ? " (frozen)" : "", (now_ns() - r->t0) / 1e6);
	if (!ret) {
		if (lp->run_us && !frozen)
			ret = copy_throttled(lp, vl, s->ma, &n);
		else
			ret = copy_dirty(lp, vl, s->ma, frozen, UINT64_MAX, &n);
		if (ret)
			pr_err("pid %d: copying its memory: %s", lp->pid, strerror(-ret));
	}
	/* Frozen: areas that were not tracked are tracked from now on. */
	for (int i = 0; i < vl->nr && !ret && frozen; i++)
		if (s->whole[i] && !vl->v[i].uffd_wp) {
			int t = track_protect(lp->uffd, &vl->v[i]);
			if (t < 0)
				ret = t;
			vl->v[i].uffd_wp = t == 0;
		}
	pr_debug("pid %d: round %d%s: %llu pages, %.3f ms", lp->pid, lp->rounds,
		 frozen ? " (frozen)" : "", (unsigned long long)n, (now_ns() - r->t0) / 1e6);
	lp->last_written = n;
	round_free(r);
	return ret;
}

static int round_run(struct live_proc *lp, struct vma_list *vl, bool frozen)
{
	struct live_round r;

	round_begin(lp, vl, frozen, &r);
	return round_end(lp, &r);
}

/*
 * One running round of one process. Throttled, its areas are not read
 * again (smaps walks every page: ~12 ms/GiB during which it writes
 * unthrottled); an area made meanwhile is then found at the freeze.
 */
/*
 * Are lp->vl still its areas? 1 if no memory-map call of the process
 * entered or left since they were read (mem/mapwatch.h) and
 * /proc/PID/maps shows the same bounds; 0 if not (*why: what the freeze
 * says of its areas then); -errno.
 */
static int areas_unchanged(struct live_proc *lp, const char **why)
{
	uint64_t n;
	int same;

	if (!lp->watching) {
		*why = "read frozen (memory-map calls not countable)";
		return 0;
	}
	if (!lp->vl_counted) {
		*why = "read frozen (the areas were read before the calls were counted)";
		return 0;
	}
	if (mapwatch_count(&lp->mw, &n)) {
		*why = "read frozen (the call count was unreadable)";
		return 0;
	}
	if (n != lp->mw_base) {
		*why = "read frozen (it made memory-map calls since the last round read them)";
		return 0;
	}
	same = vma_list_same_layout(lp->pid, &lp->vl);
	if (same > 0)
		return 1;
	*why = "read frozen (its areas moved since the last round read them)";
	return same;
}

static int live_round(struct live_proc *lp, bool reread)
{
	const char *why;
	int ret;

	/* Read again only if they may have changed: smaps walks every page
	 * (~12 ms/GiB), long rounds copy more. */
	if (reread && lp->vl.nr) {
		ret = areas_unchanged(lp, &why);
		if (ret < 0)
			return ret;
		reread = !ret;
	}
	if (reread || !lp->vl.nr) {
		vma_list_free(&lp->vl);
		if (lp->watching && mapwatch_count(&lp->mw, &lp->mw_base))
			lp->watching = false;
		ret = vma_list_read(lp->pid, &lp->vl, true);
		if (ret)
			return ret;
		lp->vl_counted = lp->watching;
	}
	ret = round_run(lp, &lp->vl, false);
	mirror_sweep(&lp->m);
	if (ret)
		return ret;
	lp->precopied += lp->last_written;
	pr_debug("pid %d: live round %d: %llu pages", lp->pid, lp->rounds,
		 (unsigned long long)lp->last_written);
	return 0;
}

int live_precopy(struct live_proc **lps, int n)
{
	uint64_t t0 = now_ns(), prev = UINT64_MAX, budget = LIVE_FREEZE_PAGES,
		 enough = LIVE_ENOUGH_PAGES;
	const char *tb = getenv("RTCR_TEST_LIVE_FREEZE_PAGES");   /* tests: throttle sooner */
	bool force_throttle = getenv("RTCR_TEST_LIVE_THROTTLE");  /* tests: from the 2nd round */
	unsigned run_us = 0;
	int throttled = 0, ret = 0;

	if (tb)
		budget = strtoull(tb, NULL, 0);
	/* (Few enough is never more than the freeze may copy.) */
	enough = MIN(enough, budget);
	for (int r = 0; r < LIVE_MAX_ROUNDS + LIVE_MAX_THROTTLED && !ret; r++) {
		uint64_t written = 0;

		/* A round of every process, the tree's writes summed. */
		for (int i = 0; i < n && !ret; i++) {
			struct live_proc *lp = lps[i];
			if (lp->gone)
				continue;
			lp->rounds = r;
			lp->run_us = run_us;
			ret = live_round(lp, !run_us);
			if (ret && i > 0) {
				/* A child that exited (or cannot be copied
				 * running): it is copied frozen, if it is still
				 * there then. */
				pr_debug("pid %d: no more live rounds (%s)", lp->pid, strerror(-ret));
				lp->gone = true;
				ret = 0;
				continue;
			}
			written += lp->last_written;
		}
		if (ret || written <= enough)
			break;
		if (run_us) {
			/* Throttled: until the freeze would copy little, with
			 * shorter windows while the tree does not slow down. */
			if (written <= budget || ++throttled >= LIVE_MAX_THROTTLED)
				break;
			if (written * 2 > prev && run_us > LIVE_MIN_RUN_US)
				run_us /= 2;
		} else if ((r >= 2 && written * 10 > prev * 9) || r + 1 >= LIVE_MAX_ROUNDS ||
			   force_throttle) {
			/* Not converging: the tree writes as fast as rtcr
			 * copies. Too much for the freeze: throttle it. */
			if (written <= budget && !force_throttle)
				break;
			run_us = LIVE_FIRST_RUN_US;
		}
		prev = written;
	}
	for (int i = 0; i < n; i++)
		lps[i]->precopy_ns = now_ns() - t0;
	return ret;
}

bool live_converged(struct live_proc **lps, int n)
{
	uint64_t written = 0;

	for (int i = 0; i < n; i++) {
		if (lps[i]->gone)
			continue;
		if (lps[i]->run_us)
			return false;
		written += lps[i]->last_written;
	}
	return written <= LIVE_ENOUGH_PAGES;
}

int live_areas(struct live_proc *lp, struct vma_list *vl)
{
	int same = areas_unchanged(lp, &lp->areas_how);

	lp->areas_reused = false;
	if (same < 0) {
		return same;
	} else if (same) {
		lp->areas_how = "from the last round";
		vma_list_copy(vl, &lp->vl);
		lp->areas_reused = true;
		/* A mapped file's size and times change without a call of
		 * this process (another writer, a write through a shared
		 * mapping): stat again, now. */
		for (int i = 0, last = -1; i < vl->nr; i++) {
			struct vma *v = &vl->v[i];
			char link[96];
			if (v->kind != RTCR__VMA_KIND__FILE_PRIVATE &&
			    v->kind != RTCR__VMA_KIND__FILE_SHARED)
				continue;
			/* A file's areas come together: one stat each file. */
			if (last >= 0 && vl->v[last].map_dev == v->map_dev &&
			    vl->v[last].map_ino == v->map_ino) {
				v->st = vl->v[last].st;
				continue;
			}
			last = i;
			snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", lp->pid,
				 (unsigned long long)v->start, (unsigned long long)v->end);
			if (stat(link, &v->st) < 0 && (!v->path || stat(v->path, &v->st) < 0)) {
				vma_list_free(vl);
				lp->areas_reused = false;
				lp->areas_how = "read frozen (a mapped file could not be stat'ed)";
				break;
			}
		}
	}
	pr_debug("pid %d: areas %s", lp->pid, lp->areas_how);
	return lp->areas_reused ? 0 : vma_list_read(lp->pid, vl, true);
}

int live_final_begin(struct live_proc *lp, struct vma_list *vl)
{
	uint64_t t0 = now_ns();
	int ret;

	live_final_abandon(lp);
	lp->final = xmalloc(sizeof(*lp->final));
	round_begin(lp, vl, true, lp->final);
	lp->final_ns = now_ns() - t0;
	ret = lp->final->ret;
	if (ret)
		live_final_abandon(lp);
	return ret;
}

void live_final_abandon(struct live_proc *lp)
{
	if (!lp->final)
		return;
	round_free(lp->final);
	free(lp->final);
	lp->final = NULL;
}

int live_final(struct live_proc *lp, struct vma_list *vl, struct mem_stats *st)
{
	uint64_t t0 = now_ns();
	int ret;

	/* Areas are matched by their exact bounds: the ones that went away
	 * are forgotten. */
	if (lp->final && lp->final->s.vl != vl) {
		pr_err("pid %d: its final round was begun with other areas", lp->pid);
		live_final_abandon(lp);
		return -EINVAL;
	}
	if (lp->final) {
		ret = round_end(lp, lp->final);
		free(lp->final);
		lp->final = NULL;
		st->scan_ns += lp->final_ns;
	} else {
		ret = round_run(lp, vl, true);
	}
	mirror_sweep(&lp->m);
	for (int i = 0; i < vl->nr && !ret; i++) {
		struct vma *v = &vl->v[i];
		struct mirror_area *a;

		if (track_trackable(v) && (a = mirror_find(&lp->m, v->start, v->end)))
			v->mirror = a->buf;
	}
	st->scan_ns += now_ns() - t0;
	return ret;
}

/* Runs of pages of a in state st, added to l. */
static void state_runs(const struct mirror_area *a, uint8_t st, struct page_run_list *l)
{
	uint64_t np = (a->end - a->start) / PAGE_SIZE;

	for (uint64_t p = 0; p < np; ) {
		const uint8_t *hit = memchr(a->state + p, st, np - p);
		uint64_t q;
		if (!hit)
			break;
		p = hit - a->state;
		for (q = p + 1; q < np && a->state[q] == st; q++)
			;
		prl_add(l, a->start + p * PAGE_SIZE, q - p);
		p = q;
	}
}

int live_pages(struct live_proc *lp, struct vma_list *vl, struct mem_stats *st)
{
	for (int i = 0; i < vl->nr; i++) {
		struct vma *v = &vl->v[i];
		struct mirror_area *a;
		struct page_run_list dirty = { 0 };

		/* Areas copied whole while frozen (live_capture()) have their
		 * lists already. */
		if (!v->mirror || !track_trackable(v) || !(a = mirror_find(&lp->m, v->start, v->end)) ||
		    a->buf != v->mirror)
			continue;
		state_runs(a, MIR_DIRTY, &dirty);
		if (dirty.nr) {
			pr_err("pid %d: page %#llx was not copied", lp->pid,
			       (unsigned long long)dirty.v[0].start);
			prl_free(&dirty);
			return -EIO;
		}
		prl_free(&v->pages);
		prl_free(&v->inherited);
		state_runs(a, MIR_COPIED, &v->pages);
		if (lp->inc)
			state_runs(a, MIR_INHERIT, &v->inherited);
		st->pages += v->pages.npages;
		st->inherited += v->inherited.npages;
	}
	return 0;
}

int live_capture(struct mirror *m, struct vma_list *vl, struct mem_stats *st)
{
	uint64_t t0 = now_ns();
	int ret = 0;

	for (int i = 0; i < vl->nr && !ret; i++) {
		struct vma *v = &vl->v[i];
		struct mirror_area *a;
		bool fresh;

		if (v->mirror || !v->pages.nr)
			continue;
		a = mirror_area(m, v->start, v->end, &fresh);
		if (!a)
			return -ENOMEM;
		for (uint32_t r = 0; r < v->pages.nr && !ret; r++)
			ret = mirror_copy(m, a, v, v->pages.v[r].start, v->pages.v[r].npages);
		v->mirror = a->buf;
	}
	if (!ret)
		ret = mirror_flush(m);
	if (ret) {
		pr_err("pid %d: copying its memory: %s", m->pid, strerror(-ret));
		return ret;
	}
	st->copy_ns += now_ns() - t0;
	return 0;
}

static void *unwatch_thread(void *arg)
{
	struct mapwatch *mw = arg;

	mapwatch_close(&mw[0]);
	mapwatch_close(&mw[1]);
	free(mw);
	return NULL;
}

void live_unwatch(struct live_proc *lp)
{
	struct mapwatch *mw;

	lp->watching = false;
	lp->aw_based = false;
	if ((!lp->mw.nfd && !lp->aw.nfd) || lp->unwatching)
		return;
	/* Closing the last counter of a tracepoint waits for an RCU grace
	 * period (~50 ms each here): a thread does it while the image is
	 * written; live_end() waits for it. */
	mw = xmalloc(2 * sizeof(*mw));
	mw[0] = lp->mw;
	mw[1] = lp->aw;
	memset(&lp->mw, 0, sizeof(lp->mw));
	memset(&lp->aw, 0, sizeof(lp->aw));
	if (pthread_create(&lp->unwatcher, NULL, unwatch_thread, mw)) {
		unwatch_thread(mw);
		return;
	}
	lp->unwatching = true;
}

void live_end(struct live_proc *lp)
{
	live_final_abandon(lp);
	if (lp->unwatching)
		pthread_join(lp->unwatcher, NULL);
	lp->unwatching = false;
	mapwatch_close(&lp->mw);
	mapwatch_close(&lp->aw);
	answers_free(lp->answers);
	lp->answers = NULL;
	if (lp->uffd >= 0)
		close(lp->uffd);
	lp->uffd = -1;
	mirror_free(&lp->m);
	vma_list_free(&lp->vl);
}
