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
	uint64_t inherited;        /* incremental: left in the parent image */
	uint64_t uffd_pages;       /* restore: placed with UFFDIO_COPY */
	uint64_t lazy_pages;       /* restore --lazy: left to the lazy page server */
	uint64_t scan_ns;          /* finding the pages */
	uint64_t copy_ns;          /* reading + writing them */
};

/*
 * Find, for every area of every process of a tree, the pages whose content
 * must be stored. A shared memory object's pages are stored once: each by
 * the first area, in tree order, that maps it. inc[p] (inc may be NULL):
 * process p is tracked since the parent image, so its private pages not
 * written since go to the areas' 'inherited' lists instead. Areas with a
 * mirror (a live dump's, mem/live.h) are left as they are.
 */
int mem_find_pages_tree(const pid_t *pids, struct vma_list **vls, const bool *inc, int n,
			struct mem_stats *st) __must_check;
/* Build the Mm record (layout from /proc, brk from an injected brk(0)). */
/* brk: the break, queried already (attrs_dump()), or NULL to query it here. */
int mem_dump_mm(struct inject *in, pid_t pid, const struct vma_list *vl, const long *brk,
		Rtcr__Mm **out) __must_check;
/* (Again) the stored and inherited pages of every area of mm, from vl's
 * lists (a live dump knows them only after the release). */
void mem_mm_pages(Rtcr__Mm *mm, const struct vma_list *vl);
/* Copy the found pages into PAGES records. */
int mem_dump_pages(struct imgw *w, pid_t pid, const struct vma_list *vl,
		   struct mem_stats *st) __must_check;
void mm_free(Rtcr__Mm *mm);

/* A syscall instruction in pid's [vdso] or code to inject with; 0 (logged) if none. */
uint64_t mem_find_gadget(pid_t pid, const struct vma_list *vl);
/* XXH3 of the [vdso] text of pid (0 if none). */
uint64_t vdso_hash_of(pid_t pid, const struct vma_list *vl);
uint64_t vdso_hash_self(void);


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
/* A shared memory object made by one process of a restored tree: its
 * source mapping, the whole object, from which every area maps it. */
struct shm_place {
	uint64_t id;
	pid_t pid;                 /* the process's own id (its /proc is its pid namespace's) */
	uint64_t start, len;
};
/*
 * Map mm's shared anonymous areas. An object no process made yet is made
 * here (its source is recorded in *mine); the areas map it through
 * /proc/PID/map_files of its source, so all share one object, as the
 * processes did. The sources are unmapped at the end of the restore.
 * pid is the process's own id, as its /proc shows it.
 */
int mem_map_shared(struct inject *in, pid_t pid, const Rtcr__Mm *mm, bool *extra_write,
		   const struct shm_place *(*lookup)(void *arg, uint64_t id), void *arg,
		   struct shm_place **mine, int *nmine) __must_check;
int mem_unmap_shared_sources(struct inject *in, const struct shm_place *mine, int n) __must_check;
/*
 * Copy every PAGES record into the child (checksums verified first).
 * Anonymous areas are filled with UFFDIO_COPY through a userfaultfd the
 * child creates (injected), which places pages without faulting and
 * zeroing them first; other areas, or all if userfaultfd is unavailable,
 * with process_vm_writev and /proc/PID/mem. pid selects the image's
 * records; in->tid is the process as rtcr sees it.
 */
struct lazy_client;
int mem_fill_pages(struct inject *in, struct loaded_image *im, pid_t pid,
		   struct mem_stats *st) __must_check;
/*
 * Lazy restore: only the pages outside lazy areas (lazy_area()) are
 * copied; the lazy areas stay registered (MISSING) on the process's
 * userfaultfd, which goes to the lazy page server lz. Metadata problems
 * (pages outside areas, inherited pages missing from the chain) fail
 * here, before the process runs.
 */
int mem_fill_pages_lazy(struct inject *in, struct loaded_image *im, pid_t pid,
			struct lazy_client *lz, struct mem_stats *st) __must_check;
/* Protections, madvise state, locks, names, seals; then PR_SET_MM_MAP. */
int mem_finish_areas(struct inject *in, const Rtcr__Mm *mm, const bool *extra_write,
		     int exe_fd) __must_check;

#endif
