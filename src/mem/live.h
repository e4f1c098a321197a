/*
 * Live dumps (rtcr dump --live): the process's private memory is copied
 * while it runs, and it is frozen only for what it wrote during the last
 * copy round, its registers and its handles.
 *
 * Pre-copy over the dirty-page tracker (mem/track.h): each round takes
 * the pages written since the previous one and protects them again in
 * one PAGEMAP_SCAN (PM_SCAN_WP_MATCHING), then copies them into rtcr's
 * memory (mem/mirror.h) while the process goes on. A page written during
 * a copy is reported by the next round and copied again. The final round
 * runs frozen: the pages written since the last running round are copied
 * then, so every page's copy is its content at the freeze. The image is
 * written from rtcr's memory after the release. docs/design.md, "Live
 * dumps", says why this is consistent and why not copy-before-write.
 */
#ifndef RTCR_MEM_LIVE_H
#define RTCR_MEM_LIVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"
#include "mem/mapwatch.h"
#include "mem/mem.h"
#include "mem/mirror.h"
#include "mem/track.h"
#include "mem/vma.h"

struct answers;

struct live_round;

struct live_proc {
	pid_t pid;
	uint64_t start_time;     /* (proc stat field 22): the same process at the freeze? */
	bool gone;               /* left the rounds (exited): not used at the freeze */
	struct track tr;
	int uffd;                /* rtcr's copy of the tracker */
	bool inc;                /* written bits relative to the parent image */
	struct mirror m;
	struct vma_list vl;      /* as read in the latest round */
	bool vl_counted;         /* read with the calls counted from mw_base on */
	bool areas_reused;       /* the freeze took vl (live_areas()) */
	int rounds;
	uint64_t last_written;   /* pages written during the latest round */
	uint64_t precopied;      /* pages copied while the process ran */
	uint64_t precopy_ns;
	struct mapwatch mw;      /* its memory-map calls, counted */
	bool watching;
	uint64_t mw_base;        /* the count before the latest round read the areas */
	const char *areas_how;   /* how the freeze got the areas (for --stats) */
	pthread_t unwatcher;     /* closing mw after the release (live_unwatch()) */
	bool unwatching;
	unsigned run_us;         /* throttled: its run window between held slices */
	uint64_t throttle_stops, throttle_ns, throttle_max_ns;   /* held slices */
	bool resumed;            /* went on from the last dump's copy (live_resume()) */
	/* The calls that change what injected calls read, counted
	 * (mw_attrs), the count when the answers (task.h) were taken: by
	 * a stop before the freeze (live_ask() in dump.c), or, periodic, at
	 * the end of the last freeze (kept by keep_lives()). */
	struct mapwatch aw;
	bool aw_based;
	uint64_t aw_base;
	struct answers *answers;
	bool asked;              /* the answers are live_ask()'s, not a last freeze's */
	uint64_t ask_ns;         /* live_ask()'s stop: first seize to release */
	uint8_t base_id[16];     /* kept (live_keep()): the image the copy is of */
	bool has_base;
	struct live_round *final;   /* the final round, begun (live_final_begin()) */
	uint64_t final_ns;          /* its beginning */
};

/*
 * Before the freeze: take (or make: its main thread is stopped for one
 * injected call) pid's tracker; from now on its written bits are reset
 * for image id. prev_id: the parent image (NULL: a full dump).
 */
int live_begin(struct live_proc *lp, pid_t pid, const uint8_t *prev_id,
	       const uint8_t id[16]) __must_check;
/*
 * Periodic live dumps: the next dump of the same process goes on from
 * this one instead of starting again (live_begin()). After a dump with
 * image id completed, live_keep() records that lp's copy is that image's
 * pages; live_resume() then takes it as the parent's for the dump of
 * image id (with prev_id, which must be the kept one): the tracker, the
 * copy's memory (already faulted in: a fresh copy costs ~15 us a page on
 * first touch on a VM) and the memory-map counters are used again. Only
 * pages written since are copied; no page is scanned for the parent's
 * data. -ESTALE if the tracker changed (the process closed it, exec'd)
 * or the copy is not the parent's: the caller begins afresh.
 */
int live_resume(struct live_proc *lp, const uint8_t *prev_id, const uint8_t id[16]) __must_check;
/* Is the process's fd target_fd still the tracker rtcr holds a copy of
 * (it is close-on-exec: not after an exec)? */
bool live_tracker_held(const struct live_proc *lp, int target_fd);
void live_keep(struct live_proc *lp, const uint8_t id[16]);
/*
 * Periodic: frozen, the injected calls done. If the freeze took the
 * areas from the last round, they are still the areas (rtcr's own calls,
 * which the counters also see, changed none): count from here, so the
 * next checkpoint's first round reads no smaps if the process makes no
 * memory-map call meanwhile.
 */
void live_frozen_end(struct live_proc *lp);
/* No call that changes lp->answers counted since they were taken? */
bool live_answers_current(struct live_proc *lp);
/* Answers asked in a stop before the freeze (dump.c: live_ask()), with
 * the count from now on; areas_held: every thread stopped since the
 * memory-map count was found equal to lp->mw_base (the stop's own
 * scratch mapping then leaves the areas current). */
void live_asked(struct live_proc *lp, struct answers *a, bool areas_held);
/* Copy rounds while the processes run (lps[0] is the root: an error in
 * its rounds is the dump's; another process that fails, e.g. exits, just
 * leaves the rounds), each round over all of them, until the tree writes
 * few pages per round (or no progress, or a round limit). A process that writes more
 * than the freeze should copy, round after round, is throttled: its
 * rounds are copied in slices of ~1 ms with it held (stopped), and
 * between slices it runs in windows that shrink until it writes little
 * enough (or 12 throttled rounds). Each hold is a short pause of its own,
 * counted in throttle_*. */
int live_precopy(struct live_proc **lps, int n) __must_check;
/* Did the rounds end because the tree wrote few pages (not throttled,
 * not stopped for lack of progress)? Else every ms before the freeze
 * adds pages to copy frozen. */
bool live_converged(struct live_proc **lps, int n);
/*
 * Frozen: the areas now. Those the latest round read from smaps if no
 * memory-map call was made since and /proc/PID/maps shows the same
 * bounds (mem/mapwatch.h); else smaps is read now.
 */
int live_areas(struct live_proc *lp, struct vma_list *vl) __must_check;
/*
 * Frozen, with vl the areas read now: the final round. Every area the
 * tracker covers gets its copy in rtcr's memory (v->mirror), complete
 * now. Areas it does not cover are left with no mirror: the caller finds
 * their pages (mem_find_pages_tree) and captures them.
 */
int live_final(struct live_proc *lp, struct vma_list *vl, struct mem_stats *st) __must_check;
/*
 * The same begun early: frozen, with vl the areas read now and not
 * changed until live_final() (which goes on with it), its walk of the
 * written pages is handed to the spare CPU (common/spare.h) while the
 * caller reads the rest. A live_proc with a round begun holds the spare
 * CPU's job and the process's pagemap: live_final_abandon() (also done
 * by live_end()) stops the walk (the pieces under way end) and lets it
 * go. The pages it found written are then protected again and marked to
 * copy in lp's copy only, and the rest not walked: lp must not be kept
 * for a next dump. An error of the beginning (-errno) is returned, the
 * round abandoned.
 */
int live_final_begin(struct live_proc *lp, struct vma_list *vl) __must_check;
void live_final_abandon(struct live_proc *lp);
/*
 * After the final round (nothing is read from the process: after the
 * release, or frozen before a killing dump's write): the pages to store
 * of every area with a mirror and, incremental, the pages left in the
 * parent, from the copies' page states.
 */
int live_pages(struct live_proc *lp, struct vma_list *vl, struct mem_stats *st) __must_check;
/*
 * Frozen: copy the found pages of every area without a mirror into m,
 * so nothing is read from the process after its release.
 */
int live_capture(struct mirror *m, struct vma_list *vl, struct mem_stats *st) __must_check;
/* After the release: stop counting its calls (they make every system
 * call of the machine take the slow path), in a thread live_end() joins. */
void live_unwatch(struct live_proc *lp);
void live_end(struct live_proc *lp);

#endif
