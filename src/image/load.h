/*
 * A whole image, loaded for restore or inspect: the metadata records
 * decoded, the PAGES records located (their payloads are verified when
 * used), the END record checked.
 */
#ifndef RTCR_IMAGE_LOAD_H
#define RTCR_IMAGE_LOAD_H

#include <stdint.h>

#include "image/image.h"
#include "image/pb.h"

struct loaded_image {
	struct img_stream *src;
	uint8_t image_id[16];
	Rtcr__Inventory *inv;
	/* The processes, in tree order (the root first, every parent before
	 * its children); mm[i] and files[i] are NULL for zombies. */
	Rtcr__Process **procs;
	Rtcr__Mm **mm;
	Rtcr__Files **files;
	size_t nprocs;
	bool indexed;             /* loaded through the INDEX (no record walk) */
	uint64_t *pages_off;      /* stream offsets of PAGES payloads */
	uint64_t *pages_len;
	uint64_t *pages_csum;
	int32_t *pages_pid;       /* whose pages */
	uint64_t *pages_vstart, *pages_vend;   /* the span of its runs (if indexed) */
	uint32_t *pages_nruns;    /* its number of runs (if indexed; 0: unknown) */
	void *syn;                /* image_resolve_pages(): headers made from the index */
	uint8_t *pages_ok;        /* per record: checksum verified (image_pages_check()) */
	uint32_t nr_pages_recs;
	/* Memory objects (SysV segments, memfds, deleted files) and their
	 * OBJ_PAGES records; objects is NULL if the image has none. */
	Rtcr__MemObjects *objects;
	uint64_t *obj_pages_off;
	uint64_t *obj_pages_len;
	uint64_t *obj_pages_csum;
	uint32_t *obj_pages_id;
	uint32_t nr_obj_pages_recs;
	uint64_t total_pages;
	uint64_t size;
	/* Incremental images: the parent image (image_load_chain()), which
	 * holds the pages this one inherits; NULL for a full image. */
	struct loaded_image *parent;
	char *dir;
};

/* Index of the area of mm holding addr (areas are sorted), or -1. */
long image_area_index(const Rtcr__Mm *mm, uint64_t addr);
/* Index of pid's process, or -1. */
int image_proc_index(const struct loaded_image *im, int32_t pid);

/* Load DIR/image.rtcr: every problem is reported with its place. */
int image_load(const char *dir, struct loaded_image *im) __must_check;
/* The verified payload of PAGES record i (checksum checked now). */
int image_pages(struct loaded_image *im, uint32_t i, const struct img_pages_hdr **hdr,
		const struct img_page_run **runs, const void **data) __must_check;
/* Its runs and data without reading the data (no checksum): for callers
 * that verify each record with image_pages_check() before using it. */
int image_pages_raw(struct loaded_image *im, uint32_t i, const struct img_pages_hdr **hdr,
		    const struct img_page_run **runs, const void **data) __must_check;
/* Verify PAGES record i's checksum, once (remembered in pages_ok). */
int image_pages_check(struct loaded_image *im, uint32_t i) __must_check;
/* The same for OBJ_PAGES record i (runs[].vaddr are object offsets). */
int image_obj_pages(struct loaded_image *im, uint32_t i, const struct img_pages_hdr **hdr,
		    const struct img_page_run **runs, const void **data) __must_check;
/* The object with this id, or NULL. */
const Rtcr__MemObject *image_object(const struct loaded_image *im, uint32_t id);
/*
 * For an incremental image: load its parents, each checked to be the very
 * image it was made from (image id), following parent_path (relative to
 * the child's directory). A missing or different parent is an error that
 * names it.
 */
int image_load_chain(struct loaded_image *im) __must_check;
/* Unloads the chain too. */
void image_unload(struct loaded_image *im);

#endif
