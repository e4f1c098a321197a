/*
 * Memory areas of a process as /proc/PID/smaps describes them, classified
 * by what restore must do with each.
 */
#ifndef RTCR_MEM_VMA_H
#define RTCR_MEM_VMA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/log.h"
#include "image/pb.h"
#include "mem/pagemap.h"

/* madvise() state kept per area (Vma.madv in the image). */
#define RTCR_MADV_HUGEPAGE    (1u << 0)
#define RTCR_MADV_NOHUGEPAGE  (1u << 1)
#define RTCR_MADV_DONTFORK    (1u << 2)
#define RTCR_MADV_DONTDUMP    (1u << 3)
#define RTCR_MADV_WIPEONFORK  (1u << 4)
#define RTCR_MADV_MERGEABLE   (1u << 5)
#define RTCR_MADV_SEQUENTIAL  (1u << 6)
#define RTCR_MADV_RANDOM      (1u << 7)
#define RTCR_MAP_NORESERVE    (1u << 16)

struct vma {
	pid_t pid;               /* whose area (for messages) */
	uint64_t start, end, pgoff;
	int prot;
	bool shared;
	Rtcr__VmaKind kind;
	char *path;              /* mapped file or [name], NULL for plain anon */
	char *anon_name;         /* [anon:NAME] set with PR_SET_VMA */
	struct stat st;          /* of the mapped file */
	uint64_t madv;
	bool growsdown, may_write, locked, lock_onfault, sealed;
	uint64_t shmem_id;           /* shared anonymous memory: the object... */
	uint64_t shmem_pages;        /* ...and its size */
	struct page_run_list pages;  /* data to store (dump side) */
	struct page_run_list inherited; /* data unchanged since the parent image */
	bool uffd_wp;                /* registered with rtcr's tracker (mem/track.h) */
	char *mirror;                /* live dumps: rtcr's copy of the area (page at addr:
				      * mirror + addr - start), read instead of the process */
	/* A memory object rtcr re-creates at restore (mem/memobj.h): SysV
	 * segment (kind SYSV_SHM), memfd or deleted file (kind FILE_*). */
	bool has_obj;
	Rtcr__MemObjectKind obj_kind;
	uint64_t obj_dev, obj_ino;   /* identity in the tree; SysV: ino = shmid */
	uint32_t object;             /* its id, set by memobj_collect() */
	uint64_t map_dev, map_ino;   /* as /proc/PID/maps shows them */
};

struct vma_list {
	struct vma *v;
	int nr;
};

/* Read and classify; refuses (by address and name) what rtcr cannot restore. */
/* own_wp: pid has rtcr's tracker, so userfaultfd write-protect
 * registrations are rtcr's own (not refused). */
int vma_list_read(pid_t pid, struct vma_list *vl, bool own_wp) __must_check;
void vma_list_free(struct vma_list *vl);
/* A copy of src without its page lists and mirrors. */
void vma_list_copy(struct vma_list *dst, const struct vma_list *src);
/*
 * 1 if /proc/PID/maps (no page walk, unlike smaps) shows exactly the areas
 * of vl, with the same bounds, protection, offset, file and name; 0 if
 * not; -errno if it cannot be read. The flags smaps alone shows
 * (VmFlags, ProtectionKey) are not compared: see mem/mapwatch.h.
 */
int vma_list_same_layout(pid_t pid, const struct vma_list *vl) __must_check;
/* The index of the area holding addr, for addresses visited in increasing
 * order: *cursor moves forward only. -1 if no area holds it. */
int vma_list_seek(const struct vma_list *vl, int *cursor, uint64_t addr);
/*
 * For regions visited in increasing order (a PAGEMAP_SCAN's): the next
 * piece of [*start, end) that lies in one area. Returns that area's
 * index, moves *start to the piece's start and sets *piece_end (the
 * caller continues from there); -1 once no area holds any more of it.
 */
int vma_list_clip(const struct vma_list *vl, int *cursor, uint64_t *start, uint64_t end,
		  uint64_t *piece_end);
/* "7f12...-7f13... /usr/lib/x.so" for messages. */
const char *vma_describe(const struct vma *v, char *buf, size_t len);
const char *vma_kind_name(Rtcr__VmaKind k);

#endif
