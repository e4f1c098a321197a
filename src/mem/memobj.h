/*
 * Memory objects: what a mapping maps that only exists while something
 * holds it, so that restore must re-create it from the image.
 *
 *   System V shared memory   (sysv_shm.c)  the segment, with its id, key,
 *                                           owner, mode and contents;
 *                                           re-attached with shmat
 *   memfd                    (memfd.c)     name, seals, mode, contents
 *   deleted file still mapped (deleted.c)  path, owner, mode, contents;
 *                                           re-created with O_TMPFILE
 *
 * Each object is stored once for the whole tree, however many areas of
 * however many processes map it (identity: st_dev/st_ino of the mapped
 * file; SysV: the shmid), in the OBJECTS record; its contents follow in
 * OBJ_PAGES records. Areas refer to it by Vma.object. memobj.c holds the
 * table and what the kinds share (reading and writing contents); each
 * kind file the kind's own steps.
 */
#ifndef RTCR_MEM_MEMOBJ_H
#define RTCR_MEM_MEMOBJ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"
#include "image/image.h"
#include "image/pb.h"
#include "mem/pagemap.h"
#include "mem/vma.h"
#include "task/inject.h"

struct loaded_image;
struct mem_stats;

/* ---- dump ---- */

struct memobj {
	Rtcr__MemObject *pb;        /* what the image stores */
	uint64_t dev, ino;          /* identity (vma.obj_dev/obj_ino) */
	pid_t pid;                  /* a process that maps it, and where */
	uint64_t start, end;
	int nvmas;                  /* areas of the tree that map it */
	/* contents: a read-only mapping of the whole object in rtcr, and the
	 * runs of it that hold data (start = byte offset) */
	const char *map;
	uint64_t map_len;
	bool map_is_shmat;          /* SysV: shmdt, else munmap */
	struct page_run_list runs;
};

struct memobj_table {
	struct memobj *v;
	int n;
};

/*
 * Find every object the areas of the tree map, give each an id (stored in
 * vma.object), read its metadata and find its data. Refuses (by name)
 * what cannot be restored, e.g. a SysV segment also attached outside the
 * tree.
 */
int memobj_collect(struct memobj_table *t, const pid_t *pids, struct vma_list **vls, int n)
	__must_check;
/* Then the objects the fds of the tree hold (memfd and deleted-file fds,
 * kinds FD_MEMFD/FD_DELETED): each finds the object its mappings use, or
 * adds it; its ObjFd.object is set. */
int memobj_collect_fds(struct memobj_table *t, Rtcr__Files *const *files, int n) __must_check;
/* The OBJECTS record (nothing if the table is empty). */
int memobj_write_table(struct imgw *w, const struct memobj_table *t) __must_check;
/* Every object's data, in OBJ_PAGES records. */
int memobj_write_contents(struct imgw *w, const struct memobj_table *t, struct mem_stats *st)
	__must_check;
/*
 * The tree was killed after the dump: a SysV segment is part of the
 * checkpoint like the processes, so it is removed if nothing holds it
 * any more (otherwise its id would block the restore).
 */
void memobj_dumped_and_killed(struct memobj_table *t);
/* Replace the mappings of the objects' contents by private copies (a live
 * dump writes them after the processes run again). */
int memobj_snapshot(struct memobj_table *t) __must_check;
void memobj_table_free(struct memobj_table *t);

/* ---- restore ---- */

struct memobj_rt {
	const Rtcr__MemObject *o;
	int fd;                     /* memfd, deleted file: rtcr's fd, or -1 */
	void *shm_addr;             /* SysV: rtcr's attachment until all attached */
	bool created;               /* SysV: this restore made the segment... */
	bool removed;               /* ...and removed it again (IPC_RMID) */
};

struct memobj_restore {
	struct memobj_rt *v;
	size_t n;
};

/* Preflight: SysV ids and keys free here, directories of deleted files
 * present. */
int memobj_check(const struct loaded_image *im) __must_check;
/* Create every object and fill it; fds go at min_fd or above. */
int memobj_prepare(struct memobj_restore *r, struct loaded_image *im, int min_fd) __must_check;
/* rtcr's fd of object id (memfd, deleted file), or -1. */
int memobj_fd(const struct memobj_restore *r, uint32_t id);
/* Attach mm's SysV areas in the process (injected shmat), each at its
 * address with its flags, trimmed and protected as saved. */
int memobj_attach_sysv(struct inject *in, const Rtcr__Mm *mm, const struct memobj_restore *r)
	__must_check;
/* Every process has its mappings: seals go on, segments that were marked
 * for deletion are marked again, rtcr lets go of its attachments. */
int memobj_all_mapped(struct memobj_restore *r) __must_check;
/* Success: close rtcr's fds. Failure (the processes are dead): remove the
 * segments this restore created, too. */
void memobj_restore_done(struct memobj_restore *r, bool failed);

/* ---- shared by the kind files ---- */

/* The object, opened through a mapping of it: /proc/PID/map_files/S-E. */
int memobj_open_mapping(pid_t pid, const struct vma *v, const char *what);
/* A re-created file's fd moved to min_fd or above (fd is closed). */
int memobj_fd_above(int fd, int min_fd, const char *what);
/* Runs of data of a file (SEEK_DATA/SEEK_HOLE) and a read-only mapping of it. */
int memobj_file_contents(struct memobj *o, int fd, const char *what) __must_check;
/* Copy object id's OBJ_PAGES into a mapping (addr) or a file (fd). */
int memobj_fill(struct loaded_image *im, const Rtcr__MemObject *o, void *addr, int fd)
	__must_check;
/* "SysV shared memory segment 32769 (key 0x1234)", "memfd:name", path. */
const char *memobj_describe(const Rtcr__MemObject *o, char *buf, size_t len);

/* sysv_shm.c */
int sysv_dump(struct memobj *o, const char *desc) __must_check;
int sysv_check(const Rtcr__MemObject *o) __must_check;
int sysv_create(struct memobj_rt *rt, struct loaded_image *im) __must_check;
int sysv_attach(struct inject *in, const Rtcr__Mm *mm, size_t first, const Rtcr__MemObject *o)
	__must_check;
int sysv_all_attached(struct memobj_rt *rt) __must_check;
void sysv_release(struct memobj_rt *rt, bool failed);
void sysv_dumped_and_killed(const Rtcr__MemObject *o);

/* memfd.c */
/* path: "/memfd:NAME (deleted)", "PATH (deleted)"; fd: the object opened. */
int memfd_dump(struct memobj *o, const char *path, int fd) __must_check;
int memfd_recreate(struct memobj_rt *rt, struct loaded_image *im, int min_fd) __must_check;
int memfd_seal(struct memobj_rt *rt) __must_check;

/* deleted.c */
int deleted_dump(struct memobj *o, const char *path, int fd) __must_check;
int deleted_check(const Rtcr__MemObject *o) __must_check;
int deleted_recreate(struct memobj_rt *rt, struct loaded_image *im, int min_fd) __must_check;

#endif
