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

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"
#include "mem/mem.h"
#include "mem/mirror.h"
#include "mem/track.h"
#include "mem/vma.h"

struct live_proc {
	pid_t pid;
	struct track tr;
	int uffd;                /* rtcr's copy of the tracker */
	bool inc;                /* written bits relative to the parent image */
	struct mirror m;
	struct vma_list vl;      /* as read in the latest round */
	int rounds;
	uint64_t last_written;   /* pages written during the latest round */
	uint64_t precopied;      /* pages copied while the process ran */
	uint64_t precopy_ns;
};

/*
 * Before the freeze: take (or make: its main thread is stopped for one
 * injected call) pid's tracker; from now on its written bits are reset
 * for image id. prev_id: the parent image (NULL: a full dump).
 */
int live_begin(struct live_proc *lp, pid_t pid, const uint8_t *prev_id,
	       const uint8_t id[16]) __must_check;
/* Copy rounds while the process runs, until few pages are written per
 * round (or no progress, or a round limit). */
int live_precopy(struct live_proc *lp) __must_check;
/*
 * Frozen, with vl the areas read now: the final round. Sets, for every
 * area the tracker covers, its pages to store (copied now into rtcr's
 * memory, v->mirror) and, incremental, the pages left in the parent.
 * Areas it does not cover are left with no pages and no mirror: the
 * caller finds theirs (mem_find_pages_tree) and captures them.
 */
int live_final(struct live_proc *lp, struct vma_list *vl, struct mem_stats *st) __must_check;
/*
 * Frozen: copy the found pages of every area without a mirror into m,
 * so nothing is read from the process after its release.
 */
int live_capture(struct mirror *m, struct vma_list *vl, struct mem_stats *st) __must_check;
void live_end(struct live_proc *lp);

#endif
