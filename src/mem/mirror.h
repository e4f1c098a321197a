/*
 * rtcr's own copy of a process's pages, taken while it runs (live dumps,
 * mem/live.h): one sparse buffer per area, at the area's offsets, and a
 * state per page. The image is written from here after the process was
 * released, so what is here must be the pages as they were at the freeze.
 */
#ifndef RTCR_MEM_MIRROR_H
#define RTCR_MEM_MIRROR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/util.h"
#include "mem/vma.h"

enum mirror_page {
	MIR_UNTOUCHED = 0,   /* not written since the tracking base: no data of ours */
	MIR_COPIED,          /* written (or data at the first round): copy here */
	MIR_ZERO,            /* written since, and now no data (zapped, zero page) */
	MIR_INHERIT,         /* not written since the parent image, data there */
	MIR_DIRTY,           /* written since, to be copied */
};

struct mirror_area {
	uint64_t start, end;
	char *buf;                 /* MAP_NORESERVE: only copied pages take memory */
	uint8_t *state;            /* enum mirror_page, one per page */
	bool seen;                 /* in the latest list of areas */
};

#define MIRROR_BATCH 1024          /* = IOV_MAX */

struct mirror {
	pid_t pid;
	struct mirror_area **a;    /* each allocated alone: pointers to them stay valid */
	int n;
	int memfd;                 /* /proc/PID/mem, for areas the process cannot read */
	int shmfd;                 /* map_files of the shared area at shm_start */
	uint64_t shm_start;
	/* pending process_vm_readv */
	struct iovec l[MIRROR_BATCH], r[MIRROR_BATCH];
	struct mirror_area *ioa[MIRROR_BATCH];
	int nio;
	uint64_t copied;           /* pages copied, for statistics */
};

int mirror_init(struct mirror *m, pid_t pid) __must_check;
/* Also for a mirror left all zero (never initialised): nothing to free. */
void mirror_free(struct mirror *m);
/* The area for exactly [start, end); made empty (all untouched) if new,
 * *fresh then true. NULL if its buffer cannot be had. */
struct mirror_area *mirror_area(struct mirror *m, uint64_t start, uint64_t end, bool *fresh);
struct mirror_area *mirror_find(struct mirror *m, uint64_t start, uint64_t end);
/* Forget every page of the area (its pages are no longer what we saw). */
void mirror_reset(struct mirror_area *a);
/* After a dump was written from it: the pages it holds (copied, or left
 * in the parent) are now the image's, to be inherited by the next dump;
 * pages with no data stay untouched. The buffers are kept. */
void mirror_rebase(struct mirror *m);
/* Drop areas not marked seen since the last sweep; clear the marks. */
void mirror_sweep(struct mirror *m);
/* Copy npages at addr of area v (whose mirror area is a) into the
 * mirror, batched; mirror_flush() completes the batch. Pages copied are
 * MIR_COPIED; pages that could not be read keep their state (a running
 * process may unmap an area under the copy: they are copied again). */
int mirror_copy(struct mirror *m, struct mirror_area *a, const struct vma *v, uint64_t addr,
		uint64_t npages) __must_check;
int mirror_flush(struct mirror *m) __must_check;
/* Forget reads queued and not flushed (after an error: their areas may go). */
void mirror_drop_pending(struct mirror *m);
/* Page state helpers. */
static inline uint8_t *mirror_state(struct mirror_area *a, uint64_t addr)
{
	return &a->state[(addr - a->start) / PAGE_SIZE];
}

#endif
