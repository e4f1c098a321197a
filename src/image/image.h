/*
 * Image writer and reader (see format.h for the byte layout).
 *
 * Writer: imgw_begin() writes the file header; imgw_put*() append
 * records; imgw_finish() appends END and commits the stream. Any error
 * leaves the stream uncommitted; img_close() then discards it.
 *
 * Reader: imgr_begin() checks the file header; imgr_next() returns the
 * next record header (checked), imgr_payload() its payload (checksum
 * verified). imgr_next() returns 0 once a valid END record was read: only
 * then is the stream known to be complete.
 */
#ifndef RTCR_IMAGE_H
#define RTCR_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "image/format.h"
#include "image/stream.h"

struct imgw {
	struct img_stream *s;
	uint64_t nr_records;
	uint64_t payload_bytes;
	uint64_t pages;
	XXH3_state_t *chain;
	struct img_index_ent *idx;   /* every record written, for INDEX */
	size_t nidx, capidx;
};

/* A record header for these fields, with its own checksum. */
void img_rec_hdr_fill(struct img_rec_hdr *h, uint32_t type, uint32_t flags, uint64_t len,
		      uint64_t csum);

int imgw_begin(struct imgw *w, struct img_stream *s, const uint8_t image_id[16]) __must_check;
int imgw_put(struct imgw *w, uint32_t type, uint32_t flags, const void *payload, size_t len) __must_check;
int imgw_put_pb(struct imgw *w, uint32_t type, const ProtobufCMessage *msg) __must_check;
/*
 * One PAGES record: runs[] describe, in order, the pages in data
 * (npages * 4096 bytes). csum, if nonzero-initialised by the caller via
 * imgw_pages_csum(), saves hashing twice.
 */
int imgw_put_pages(struct imgw *w, int32_t pid, const struct img_page_run *runs,
		   uint32_t nr_runs, const void *data, uint64_t npages) __must_check;
/* One OBJ_PAGES record: the same layout; runs[].vaddr are byte offsets in
 * object 'obj'. */
int imgw_put_obj_pages(struct imgw *w, uint32_t obj, const struct img_page_run *runs,
		       uint32_t nr_runs, const void *data, uint64_t npages) __must_check;
/*
 * The same in two steps, so the checksum can be computed on another
 * thread than the one writing: imgw_pages_prepare() builds the record
 * that will sit at stream offset 'at' (headers, padding, XXH3 over it all)
 * and returns its size, i.e. where the next record starts;
 * imgw_put_prepared() writes it, which must happen at exactly 'at'.
 */
struct imgw_pages_rec {
	struct img_rec_hdr rh;
	struct img_pages_hdr ph;
	uint64_t at, pad;
};
uint64_t imgw_pages_prepare(struct imgw_pages_rec *pr, uint64_t at, int32_t pid,
			    const struct img_page_run *runs, uint32_t nr_runs, const void *data,
			    uint64_t npages);
int imgw_put_prepared(struct imgw *w, const struct imgw_pages_rec *pr,
		      const struct img_page_run *runs, const void *data) __must_check;
/*
 * One PAGES (type REC_PAGES, id = pid) or OBJ_PAGES (REC_OBJ_PAGES, id =
 * object id) record from runs whose data lie anywhere: src[i].data holds
 * src[i].npages pages (e.g. mapped from other images, for merging them).
 */
struct loaded_image;
struct img_page_src {
	uint64_t vaddr;
	uint64_t npages;
	const void *data;
	/* image_resolve_pages(): the image and PAGES record data lies in */
	struct loaded_image *from;
	uint32_t rec;
};
int imgw_put_pages_src(struct imgw *w, uint32_t type, int32_t id, const struct img_page_src *src,
		       uint32_t n) __must_check;
int imgw_finish(struct imgw *w) __must_check;
/* The END record only: the image is whole, but still the .partial file
 * until img_commit() (which imgw_finish() also does). */
int imgw_end(struct imgw *w) __must_check;
void imgw_release(struct imgw *w);

struct img_rec {
	uint32_t type;
	uint32_t flags;
	uint64_t len;
	uint64_t csum;
	uint64_t off;         /* stream offset of the payload */
};

struct imgr {
	struct img_stream *s;
	uint32_t version;
	uint8_t image_id[16];
	uint64_t nr_records;
	uint64_t payload_bytes;
	uint64_t pages;
	XXH3_state_t *chain;
	void *buf;            /* payload buffer for streams that cannot map */
	size_t buf_cap;
	bool pending;         /* a record header was read, payload not yet consumed */
	bool ended;
};

int imgr_begin(struct imgr *r, struct img_stream *s) __must_check;
/*
 * The INDEX of a mapped image, checked against its END (the records lie
 * back to back, their headers hash to END's chain hash, counts match):
 * 0 and a malloc'ed copy of the entries, or -ENOENT (quietly) if there is
 * none or it does not hold; the caller then walks the records, which
 * names what is wrong.
 */
int imgr_index(struct img_stream *s, struct img_index_ent **ents, size_t *n) __must_check;
/* 1: *rec filled; 0: END reached and valid; <0: error (logged). */
int imgr_next(struct imgr *r, struct img_rec *rec) __must_check;
/* Verified payload of the record last returned by imgr_next(). The
 * pointer stays valid until the next imgr_* call. */
int imgr_payload(struct imgr *r, const struct img_rec *rec, const void **data) __must_check;
int imgr_skip(struct imgr *r, const struct img_rec *rec) __must_check;
/*
 * Skip a PAGES (or OBJ_PAGES) payload without hashing it, counting its pages for the END
 * check; the caller verifies the checksum when it uses the pages. Needs a
 * stream that can map (a file).
 */
int imgr_skip_pages(struct imgr *r, const struct img_rec *rec, uint64_t *npages) __must_check;
/* Decode a protobuf payload; NULL (logged) if malformed. */
void *imgr_unpack(const struct img_rec *rec, const ProtobufCMessageDescriptor *desc,
		  const void *data);
void imgr_release(struct imgr *r);

/* Parse and check a PAGES payload; fills pointers into it. */
int img_pages_parse(const void *payload, uint64_t len, const struct img_pages_hdr **hdr,
		    const struct img_page_run **runs, const void **data) __must_check;

#endif
