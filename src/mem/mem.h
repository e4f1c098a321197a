/*
 * Memory: what the dump stores (mm layout, every area, the pages that
 * hold data) and how restore rebuilds it.
 */
#ifndef RTCR_MEM_H
#define RTCR_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"
#include "image/image.h"
#include "image/pb.h"
#include "mem/vma.h"
#include "task/inject.h"

struct mem_stats {
	uint64_t pages;            /* stored */
	uint64_t uffd_pages;       /* restore: placed with UFFDIO_COPY */
	uint64_t scan_ns;          /* finding the pages */
	uint64_t copy_ns;          /* reading + writing them */
};

/* Find, for every area, the pages whose content must be stored. */
int mem_find_pages(pid_t pid, struct vma_list *vl, struct mem_stats *st) __must_check;
/* Build the Mm record (layout from /proc, brk from an injected brk(0)). */
int mem_dump_mm(struct inject *in, pid_t pid, const struct vma_list *vl, Rtcr__Mm **out) __must_check;
/* Copy the found pages into PAGES records. */
int mem_dump_pages(struct imgw *w, pid_t pid, const struct vma_list *vl,
		   struct mem_stats *st) __must_check;
void mm_free(Rtcr__Mm *mm);

/* XXH3 of the [vdso] text of pid (0 if none). */
uint64_t vdso_hash_of(pid_t pid, const struct vma_list *vl);
uint64_t vdso_hash_self(void);

#endif

/* ---- restore side (mm_restore.c) ---- */

struct loaded_image;

/* A free range of 'size' bytes in the image's address space layout that
 * is also free in tid's current one, the n-th such candidate; 0 if none. */
uint64_t mem_find_gap(const Rtcr__Mm *mm, uint64_t size, int n);
/* Do the image's [vvar]/[vvar_vclock]/[vdso] match this kernel's? */
int mem_check_vdso(const Rtcr__Inventory *inv, const Rtcr__Mm *mm) __must_check;
/* Unmap everything of the child but the scratch area and the vDSO group. */
int mem_unmap_all_but(struct inject *in, pid_t pid) __must_check;
/* Move the vDSO group to where the image had it. 'temp' is free space. */
int mem_move_vdso(struct inject *in, pid_t pid, const Rtcr__Mm *mm, uint64_t temp) __must_check;
/*
 * Map every area of the image. map_fd[i] is the child's fd for area i's
 * file (or -1). extra_write[i] is set where PROT_WRITE was added to fill
 * it; mem_finish_areas() takes it away.
 */
int mem_map_areas(struct inject *in, const Rtcr__Mm *mm, const int *map_fd,
		  bool *extra_write) __must_check;
/*
 * Copy every PAGES record into the child (checksums verified first).
 * Anonymous areas are filled with UFFDIO_COPY through a userfaultfd the
 * child creates (injected), which places pages without faulting and
 * zeroing them first; other areas, or all if userfaultfd is unavailable,
 * with process_vm_writev and /proc/PID/mem.
 */
int mem_fill_pages(struct inject *in, struct loaded_image *im, pid_t pid,
		   struct mem_stats *st) __must_check;
/* Protections, madvise state, locks, names, seals; then PR_SET_MM_MAP. */
int mem_finish_areas(struct inject *in, const Rtcr__Mm *mm, const bool *extra_write,
		     int exe_fd) __must_check;
