/*
 * Merging an incremental image and its parent chain into one
 * self-contained image (rtcr merge; periodic checkpointing uses it to drop
 * old links while the newest ones stay restorable).
 */
#ifndef RTCR_IMAGE_MERGE_H
#define RTCR_IMAGE_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/load.h"

/*
 * Every page process im->procs[pi] has in im's chain (image_load_chain()
 * done): the pages im stores, and for each page an area inherits the data
 * of the newest ancestor holding it (the rule restore follows). Sorted by
 * address; a run never spans two areas; data points into the mapped
 * images (valid while they are loaded). Pages stored twice, inherited
 * pages outside their area, and inherited pages no ancestor holds are
 * errors (logged). *out is malloc'ed (NULL if no pages).
 */
int image_resolve_pages(struct loaded_image *im, size_t pi, unsigned flags,
			struct img_page_src **out, size_t *nout) __must_check;
/* The same but for the areas skip[i] of its Mm: none of their pages, and
 * records that hold only theirs are not even read (lazy restore: the
 * page server's areas). */
int image_resolve_pages_skip(struct loaded_image *im, size_t pi, unsigned flags, const bool *skip,
			     struct img_page_src **out, size_t *nout) __must_check;
/* Only the inherited pages (restore has placed im's own already; they are
 * then not read, nor checked against the inherited ones). */
#define IMG_RESOLVE_INHERITED_ONLY 0x1u
/* Records are parsed but their data not read nor checksummed (lazy
 * restore verifies each record with image_pages_check() before it places
 * a page from it; from/rec of each run say which). */
#define IMG_RESOLVE_NO_VERIFY 0x2u

/* Keep the image id: images made from DIR (with --prev DIR), and the
 * tracker of the still running process, go on treating the merged image
 * as their parent. Only correct because the merged image holds the very
 * same state. */
#define IMG_FLATTEN_KEEP_ID 0x1u

struct flatten_result {
	bool self_contained;      /* DIR had no parent: nothing merged */
	unsigned images;          /* images in the chain merged (DIR included) */
	uint64_t pages;           /* pages stored in the result */
	uint64_t bytes;           /* size of the result */
};

/*
 * Write DIR's image with its whole chain folded in, as a self-contained
 * image (no parent), to OUTDIR, or over DIR's own image if outdir is NULL
 * (or the same directory). Crash-safe: OUTDIR/.image.rtcr.partial, fsync,
 * rename. A full image merged in place is left as it is (result
 * self_contained). Returns 0 or -errno (logged); on error nothing changed.
 */
int image_flatten(const char *dir, const char *outdir, unsigned flags,
		  struct flatten_result *res) __must_check;

#endif
