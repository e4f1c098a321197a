/*
 * The rtcr image format (version 1).
 *
 * An image is one byte stream: a file header, then records, then an END
 * record. It can be written to a file, a pipe or a socket, and read back
 * in one sequential pass; nothing in it needs seeking.
 *
 *   +-----------------+
 *   | file header     |  64 bytes: magic, version, image id, checksum
 *   +-----------------+
 *   | record header   |  32 bytes: type, flags, payload length,
 *   | payload         |            XXH3 of the payload, XXH3 of the header
 *   +-----------------+
 *   | ...             |
 *   +-----------------+
 *   | END record      |  record count, chain hash over all record headers
 *   +-----------------+
 *
 * Metadata records (INVENTORY, OBJECTS, PROCESS, MM, FILES) carry one protobuf
 * message each (proto/ *.proto). PAGES records carry raw memory: a small
 * index of (address, page count) runs, zero padding so that the data
 * starts on a 4 KiB boundary of the stream, then the pages themselves, so
 * a file image can be mapped and copied from without reformatting.
 *
 * A stream without a valid END record is incomplete; a file image is only
 * renamed to its final name after END is written and synced.
 */
#ifndef RTCR_IMAGE_FORMAT_H
#define RTCR_IMAGE_FORMAT_H

#include <stdint.h>

#define IMG_MAGIC        "RTCR-IMG"
#define IMG_VERSION      1
#define IMG_FILE_NAME    "image.rtcr"
#define IMG_ALIGN        4096

struct img_file_hdr {
	char     magic[8];
	uint32_t version;
	uint32_t hdr_size;        /* sizeof(struct img_file_hdr) */
	uint8_t  image_id[16];
	uint64_t flags;           /* none defined yet; must be 0 */
	uint64_t reserved[2];
	uint64_t hcsum;           /* XXH3 of the bytes above */
} __attribute__((packed));

enum img_rec_type {
	REC_INVENTORY = 1,
	REC_PROCESS   = 2,
	REC_MM        = 3,
	REC_FILES     = 4,
	REC_OBJECTS   = 5,    /* MemObjects: SysV segments, memfds, deleted files */
	REC_INDEX     = 6,    /* optional: every record before it, for readers
			       * that seek (struct img_index_ent[]) */
	REC_PAGES     = 16,
	REC_OBJ_PAGES = 17,   /* PAGES layout: pid = object id, vaddr = offset */
	REC_END       = 255,
};

/* A reader that does not know a record type may skip it only if this is set. */
#define RECF_OPTIONAL 0x1u

struct img_rec_hdr {
	uint32_t type;
	uint32_t flags;
	uint64_t len;             /* payload bytes after this header */
	uint64_t csum;            /* XXH3 of the payload */
	uint64_t hcsum;           /* XXH3 of the 24 bytes above */
} __attribute__((packed));

/* Payload of a PAGES (and OBJ_PAGES) record. */
struct img_pages_hdr {
	uint32_t nr_runs;
	int32_t  pid;             /* owner process (OBJ_PAGES: object id) */
	uint64_t data_off;        /* from payload start to the first page */
	uint64_t npages;          /* sum of runs[].npages */
} __attribute__((packed));

struct img_page_run {
	uint64_t vaddr;
	uint64_t npages;
} __attribute__((packed));

/*
 * One entry of the INDEX record, per record before it, in order: what
 * its header says, where it is, and for PAGES / OBJ_PAGES the owner, the
 * number of runs, the page count and the span of its runs (0 for the
 * others). END's index_off
 * points at the INDEX record; the INDEX and END together are enough to
 * rebuild END's chain hash over every record header, so a reader that
 * seeks checks the same layout as one that walks every record.
 */
struct img_index_ent {
	uint32_t type;
	uint32_t flags;
	uint64_t off;             /* of the record header */
	uint64_t len;
	uint64_t csum;
	int32_t  pid;
	uint32_t nr_runs;
	uint64_t npages;
	uint64_t vstart, vend;    /* PAGES: the addresses its runs lie in */
} __attribute__((packed));

_Static_assert(sizeof(struct img_file_hdr) == 64, "file header size");
_Static_assert(sizeof(struct img_index_ent) == 64, "index entry size");
_Static_assert(sizeof(struct img_rec_hdr) == 32, "record header size");

const char *img_rec_name(uint32_t type);

#endif
