/*
 * Lazy restore (rtcr restore --lazy): the restored processes run as soon
 * as their registers and handles are back; their private anonymous pages
 * arrive on first touch (userfaultfd MISSING faults) and in the
 * background, from a lazy page server: a process rtcr forks before it
 * builds the tree (lazy.c), which serves every address space of the tree
 * (lazy_server.c) from the mapped image, following the kernel's events
 * (fork, MADV_DONTNEED, munmap, mremap) on the set of pages still to
 * place (lazy_pending.c). See docs/design.md, "Lazy restore".
 */
#ifndef RTCR_MEM_LAZY_H
#define RTCR_MEM_LAZY_H

#include <sched.h>
#include <stdbool.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/image.h"
#include "image/pb.h"

struct loaded_image;

/* What the server needs from the kernel: every non-cooperative event. */
#define LAZY_UFFD_FEATURES (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
			    UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

/* ---- the set of pages an address space still lacks (lazy_pending.c) ---- */

/* npages pages at addr (its current address), whose data is at data:
 * PAGES record rec of image from, verified before first use. */
struct lazy_ext {
	uint64_t addr, npages;
	const char *data;
	struct loaded_image *from;
	uint32_t rec;
};

/* Sorted by address, never overlapping. */
struct lazy_pending {
	struct lazy_ext *v;
	size_t n, cap;
	uint64_t pages;
};

void lazy_pending_add(struct lazy_pending *p, const struct img_page_src *s);
/* Index of the extent holding addr, or -1. */
long lazy_pending_find(const struct lazy_pending *p, uint64_t addr);
/* Index of the first extent ending above addr (p->n if none). */
size_t lazy_pending_lower(const struct lazy_pending *p, uint64_t addr);
/* [start, end) needs nothing any more (placed, dropped, unmapped). */
void lazy_pending_drop(struct lazy_pending *p, uint64_t start, uint64_t end);
/* What was pending in [from, from+len) is now at to (mremap). */
void lazy_pending_move(struct lazy_pending *p, uint64_t from, uint64_t to, uint64_t len);
void lazy_pending_copy(struct lazy_pending *dst, const struct lazy_pending *src);
void lazy_pending_free(struct lazy_pending *p);

/* ---- rtcr restore's side (lazy.c) ---- */

struct lazy_client {
	pid_t server;            /* the lazy page server, rtcr's child */
	int sock;                /* to it; -1 once told the tree runs */
};

/* Is area v restored lazily? Private anonymous memory with data, unless
 * mlock()ed (populated at once) or MADV_WIPEONFORK (a fork must see it
 * empty). */
bool lazy_area(const Rtcr__Vma *v);
/*
 * Check this kernel offers what lazy restore needs (clear error if not),
 * then fork the server for image im (loaded, chain included). Its socket
 * is put at an fd >= above. report_stats: it also prints a STATS line.
 */
int lazy_start(struct lazy_client *lz, struct loaded_image *im, int above,
	       bool report_stats,
	       const cpu_set_t *server_cpus) __must_check;
/* Hand over the userfaultfd of a restored process (image pid, pid as rtcr
 * sees it), its lazy areas registered in MISSING mode. rtcr's copy of
 * uffd is closed. */
int lazy_add_space(struct lazy_client *lz, int32_t pid, pid_t hpid, int uffd) __must_check;
/* The tree runs (since t_run, now_ns()): the server fills the rest in the
 * background and reports when the last page arrived. */
int lazy_resumed(struct lazy_client *lz, uint64_t t_run) __must_check;
/* The restore failed: the server exits without a word. */
void lazy_abort(struct lazy_client *lz);
/* Wait for the server to finish (all pages in, or the processes gone). */
int lazy_wait(struct lazy_client *lz);

/* ---- the server (lazy_server.c), in the forked process ---- */

/* Its sentinel (lazy_sentinel.c): forked by the server (closing keep_fd
 * there); returns the socket to it, or -errno. */
int lazy_sentinel_start(int keep_fd);
/* A uffd and a pidfd of the process it serves, for the sentinel to hold. */
void lazy_sentinel_give(int sock, int uffd, int pidfd);
/* All pages are in (or the processes were killed): it exits quietly. */
void lazy_sentinel_done(int sock);

__attribute__((noreturn)) void lazy_serve(struct loaded_image *im, int sock, bool report_stats);

#endif
