/*
 * The table of memory objects (memobj.h) and what the kinds share: the
 * object's data read through a read-only mapping in rtcr and written as
 * OBJ_PAGES records, and copied back into a mapping or a file at restore.
 */
#include "mem/memobj.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "common/util.h"
#include "image/load.h"
#include "mem/mem.h"

#define OBJ_CHUNK_PAGES 1024   /* 4 MiB per OBJ_PAGES record */

static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (const char *)buf + n;
		len -= n;
		off += n;
	}
	return 0;
}

const char *memobj_describe(const Rtcr__MemObject *o, char *buf, size_t len)
{
	switch (o->kind) {
	case RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM:
		snprintf(buf, len, "System V shared memory segment %d (key %#x)",
			 o->sysv ? o->sysv->shmid : -1, o->sysv ? (unsigned)o->sysv->key : 0);
		break;
	case RTCR__MEM_OBJECT_KIND__OBJ_MEMFD:
		snprintf(buf, len, "memfd:%s", o->name ? o->name : "?");
		break;
	default:
		snprintf(buf, len, "deleted file %s", o->name ? o->name : "?");
		break;
	}
	return buf;
}

/* ---- dump ---- */

static struct memobj *find(struct memobj_table *t, const struct vma *v)
{
	for (int i = 0; i < t->n; i++)
		if (t->v[i].pb->kind == v->obj_kind && t->v[i].dev == v->obj_dev &&
		    t->v[i].ino == v->obj_ino)
			return &t->v[i];
	return NULL;
}

static struct memobj *new_obj(struct memobj_table *t, Rtcr__MemObjectKind kind, uint64_t dev,
			      uint64_t ino, pid_t pid)
{
	struct memobj *o;

	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	o = &t->v[t->n++];
	memset(o, 0, sizeof(*o));
	o->pb = xzalloc(sizeof(*o->pb));
	rtcr__mem_object__init(o->pb);
	o->pb->id = t->n;
	o->pb->kind = kind;
	o->pb->dev = o->dev = dev;
	o->pb->ino = o->ino = ino;
	o->pid = pid;
	return o;
}

/* A memfd or deleted file: its metadata and data, read through fd (closed). */
static int dump_file_obj(struct memobj *o, const char *path, int fd)
{
	int ret;

	if (fd < 0)
		return fd;
	if (o->pb->kind == RTCR__MEM_OBJECT_KIND__OBJ_MEMFD)
		ret = memfd_dump(o, path, fd);
	else
		ret = deleted_dump(o, path, fd);
	close(fd);
	o->pb->pages_stored = o->runs.npages;
	return ret;
}

static int add(struct memobj_table *t, pid_t pid, struct vma *v, struct memobj **out)
{
	struct memobj *o = new_obj(t, v->obj_kind, v->obj_dev, v->obj_ino, pid);
	char d[512];
	int ret;

	o->start = v->start;
	o->end = v->end;
	vma_describe(v, d, sizeof(d));
	*out = o;
	if (v->obj_kind == RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM) {
		ret = sysv_dump(o, d);
		o->pb->pages_stored = o->runs.npages;
		return ret;
	}
	return dump_file_obj(o, v->path, memobj_open_mapping(pid, v, d));
}

int memobj_collect_fds(struct memobj_table *t, Rtcr__Files *const *files, int n)
{
	int ret = 0;

	for (int p = 0; p < n && !ret; p++)
		for (size_t i = 0; files[p] && i < files[p]->n_fds && !ret; i++) {
			Rtcr__Fd *e = files[p]->fds[i];
			Rtcr__ObjFd *of = e->kind == RTCR__FD_KIND__FD_MEMFD ? e->memfd :
					  e->kind == RTCR__FD_KIND__FD_DELETED ? e->deleted : NULL;
			Rtcr__MemObjectKind kind = e->kind == RTCR__FD_KIND__FD_MEMFD ?
				RTCR__MEM_OBJECT_KIND__OBJ_MEMFD : RTCR__MEM_OBJECT_KIND__OBJ_DELETED_FILE;
			struct memobj *o = NULL;
			char link[64], *path;
			int fd;

			if (!of)
				continue;
			for (int k = 0; k < t->n && !o; k++)
				if (t->v[k].pb->kind == kind && t->v[k].dev == of->dev &&
				    t->v[k].ino == of->ino)
					o = &t->v[k];
			if (o) {
				of->object = o->pb->id;
				continue;
			}
			o = new_obj(t, kind, of->dev, of->ino, files[p]->pid);
			of->object = o->pb->id;
			snprintf(link, sizeof(link), "/proc/%d/fd/%d", files[p]->pid, e->fd);
			path = xreadlink(link);
			fd = open(link, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				pr_perror("pid %d: fd %d: opening %s", files[p]->pid, e->fd, link);
			if (!path) {
				pr_perror("pid %d: fd %d: readlink", files[p]->pid, e->fd);
				if (fd >= 0)
					close(fd);
				return -errno;
			}
			ret = dump_file_obj(o, path, fd < 0 ? -errno : fd);
			free(path);
		}
	return ret;
}

int memobj_collect(struct memobj_table *t, const pid_t *pids, struct vma_list **vls, int n)
{
	int ret = 0;

	for (int p = 0; p < n && !ret; p++)
		for (int i = 0; i < vls[p]->nr && !ret; i++) {
			struct vma *v = &vls[p]->v[i];
			struct memobj *o;
			if (!v->has_obj)
				continue;
			o = find(t, v);
			if (!o)
				ret = add(t, pids[p], v, &o);
			if (ret)
				break;
			o->nvmas++;
			v->object = o->pb->id;
			v->shmem_pages = (o->pb->size + PAGE_SIZE - 1) / PAGE_SIZE;
		}
	/* SysV: every attachment must be one of the tree's (the segment's
	 * attach count is one per area). */
	for (int i = 0; i < t->n && !ret; i++) {
		struct memobj *o = &t->v[i];
		struct shmid_ds ds;
		char d[128];
		if (o->pb->kind != RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM)
			continue;
		if (shmctl(o->pb->sysv->shmid, IPC_STAT, &ds) < 0) {
			pr_perror("%s: IPC_STAT", memobj_describe(o->pb, d, sizeof(d)));
			ret = -errno;
		} else if (ds.shm_nattch > (shmatt_t)o->nvmas + 1 /* rtcr's own */) {
			pr_err("%s: attached %lu times, %d of them by the checkpointed processes: a "
			       "segment shared with processes outside the tree: not supported",
			       memobj_describe(o->pb, d, sizeof(d)), (unsigned long)ds.shm_nattch - 1,
			       o->nvmas);
			ret = -ENOTSUP;
		}
	}
	return ret;
}

int memobj_write_table(struct imgw *w, const struct memobj_table *t)
{
	Rtcr__MemObjects objs = RTCR__MEM_OBJECTS__INIT;
	int ret;

	if (!t->n)
		return 0;
	objs.n_objects = t->n;
	objs.objects = xmalloc(t->n * sizeof(*objs.objects));
	for (int i = 0; i < t->n; i++)
		objs.objects[i] = t->v[i].pb;
	ret = imgw_put_pb(w, REC_OBJECTS, &objs.base);
	free(objs.objects);
	return ret;
}

int memobj_write_contents(struct imgw *w, const struct memobj_table *t, struct mem_stats *st)
{
	int ret = 0;

	for (int i = 0; i < t->n && !ret; i++) {
		const struct memobj *o = &t->v[i];
		for (uint32_t k = 0; k < o->runs.nr && !ret; k++) {
			uint64_t off = o->runs.v[k].start, left = o->runs.v[k].npages;
			while (left && !ret) {
				struct img_page_run run = { off, MIN(left, (uint64_t)OBJ_CHUNK_PAGES) };
				ret = imgw_put_obj_pages(w, o->pb->id, &run, 1, o->map + off, run.npages);
				off += run.npages * PAGE_SIZE;
				left -= run.npages;
				st->pages += run.npages;
			}
		}
	}
	return ret;
}

static void unmap_contents(struct memobj *o)
{
	if (o->map && o->map_is_shmat)
		shmdt(o->map);
	else if (o->map)
		munmap((void *)o->map, o->map_len);
	o->map = NULL;
}

int memobj_snapshot(struct memobj_table *t)
{
	for (int i = 0; i < t->n; i++) {
		struct memobj *o = &t->v[i];
		char *copy;
		if (!o->map)
			continue;
		copy = mmap(NULL, o->map_len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (copy == MAP_FAILED) {
			pr_perror("a copy of memory object %u", o->pb->id);
			return -ENOMEM;
		}
		for (uint32_t k = 0; k < o->runs.nr; k++)
			memcpy(copy + o->runs.v[k].start, o->map + o->runs.v[k].start,
			       o->runs.v[k].npages * PAGE_SIZE);
		unmap_contents(o);
		o->map = copy;        /* unmap_contents() munmaps it */
		o->map_is_shmat = false;
	}
	return 0;
}

void memobj_dumped_and_killed(struct memobj_table *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->v[i].pb->kind == RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM) {
			unmap_contents(&t->v[i]);   /* rtcr's attachment counts too */
			sysv_dumped_and_killed(t->v[i].pb);
		}
}

void memobj_table_free(struct memobj_table *t)
{
	for (int i = 0; i < t->n; i++) {
		struct memobj *o = &t->v[i];
		unmap_contents(o);
		prl_free(&o->runs);
		rtcr__mem_object__free_unpacked(o->pb, NULL);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

int memobj_file_contents(struct memobj *o, int fd, const char *what)
{
	off_t end = o->pb->size, off = 0;

	if (end) {
		o->map_len = ALIGN_UP(end, PAGE_SIZE);
		o->map = mmap(NULL, o->map_len, PROT_READ, MAP_SHARED, fd, 0);
		if (o->map == MAP_FAILED) {
			o->map = NULL;
			pr_perror("%s: mapping it to read it", what);
			return -errno;
		}
	}
	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			/* No SEEK_DATA here: all of it is data. */
			data = off;
			hole = end;
		} else {
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0 || hole > end)
				hole = end;
		}
		if (data >= end)
			break;
		data &= ~(off_t)(PAGE_SIZE - 1);
		hole = ALIGN_UP(hole, PAGE_SIZE);
		prl_add(&o->runs, data, (hole - data) / PAGE_SIZE);
		off = hole;
	}
	return 0;
}

/* Open the object through a mapping of it: /proc/PID/map_files/S-E. */
int memobj_open_mapping(pid_t pid, const struct vma *v, const char *what)
{
	char link[96];
	int fd;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("%s: opening %s", what, link);
	return fd < 0 ? -errno : fd;
}

/* rtcr's fd of a re-created file, moved to min_fd or above. */
int memobj_fd_above(int fd, int min_fd, const char *what)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, min_fd);
	if (hi < 0)
		pr_perror("%s: moving its fd above %d", what, min_fd);
	close(fd);
	return hi < 0 ? -errno : hi;
}

/* ---- restore ---- */

int memobj_check(const struct loaded_image *im)
{
	int ret = 0;

	for (size_t i = 0; im->objects && i < im->objects->n_objects && !ret; i++) {
		const Rtcr__MemObject *o = im->objects->objects[i];
		if (o->kind == RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM)
			ret = sysv_check(o);
		else if (o->kind == RTCR__MEM_OBJECT_KIND__OBJ_DELETED_FILE)
			ret = deleted_check(o);
	}
	return ret;
}

int memobj_prepare(struct memobj_restore *r, struct loaded_image *im, int min_fd)
{
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (!im->objects)
		return 0;
	r->v = xzalloc((im->objects->n_objects + 1) * sizeof(*r->v));
	for (size_t i = 0; i < im->objects->n_objects && !ret; i++) {
		struct memobj_rt *rt = &r->v[r->n++];
		rt->o = im->objects->objects[i];
		rt->fd = -1;
		switch (rt->o->kind) {
		case RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM:
			ret = sysv_create(rt, im);
			break;
		case RTCR__MEM_OBJECT_KIND__OBJ_MEMFD:
			ret = memfd_recreate(rt, im, min_fd);
			break;
		default:
			ret = deleted_recreate(rt, im, min_fd);
			break;
		}
	}
	return ret;
}

int memobj_fd(const struct memobj_restore *r, uint32_t id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].o->id == id)
			return r->v[i].fd;
	return -1;
}

int memobj_attach_sysv(struct inject *in, const Rtcr__Mm *mm, const struct memobj_restore *r)
{
	int ret = 0;

	/* One shmat per attachment: its first area (in address order). */
	for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		uint64_t base = v->start - v->pgoff * PAGE_SIZE;
		bool first = true;
		if (v->kind != RTCR__VMA_KIND__SYSV_SHM)
			continue;
		for (size_t k = 0; k < i && first; k++)
			if (mm->vmas[k]->kind == RTCR__VMA_KIND__SYSV_SHM && mm->vmas[k]->object == v->object &&
			    mm->vmas[k]->start - mm->vmas[k]->pgoff * PAGE_SIZE == base)
				first = false;
		for (size_t k = 0; k < r->n && first; k++)
			if (r->v[k].o->id == v->object) {
				ret = sysv_attach(in, mm, i, r->v[k].o);
				break;
			}
	}
	return ret;
}

int memobj_all_mapped(struct memobj_restore *r)
{
	int ret = 0;

	for (size_t i = 0; i < r->n && !ret; i++) {
		if (r->v[i].o->kind == RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM)
			ret = sysv_all_attached(&r->v[i]);
		else if (r->v[i].o->kind == RTCR__MEM_OBJECT_KIND__OBJ_MEMFD)
			ret = memfd_seal(&r->v[i]);
	}
	return ret;
}

void memobj_restore_done(struct memobj_restore *r, bool failed)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].fd >= 0)
			close(r->v[i].fd);
		if (r->v[i].o->kind == RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM)
			sysv_release(&r->v[i], failed);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

int memobj_fill(struct loaded_image *im, const Rtcr__MemObject *o, void *addr, int fd)
{
	uint64_t limit = ALIGN_UP(o->size, PAGE_SIZE);
	char d[300];

	for (uint32_t i = 0; i < im->nr_obj_pages_recs; i++) {
		const struct img_pages_hdr *ph;
		const struct img_page_run *runs;
		const char *data;
		int ret;

		if (im->obj_pages_id[i] != o->id)
			continue;
		ret = image_obj_pages(im, i, &ph, &runs, (const void **)&data);
		if (ret)
			return ret;
		for (uint32_t k = 0; k < ph->nr_runs; k++) {
			uint64_t len = runs[k].npages * PAGE_SIZE;
			if (runs[k].vaddr > limit || len > limit - runs[k].vaddr) {
				pr_err("image: %s: %llu pages at offset %#llx lie beyond its %llu bytes",
				       memobj_describe(o, d, sizeof(d)), (unsigned long long)runs[k].npages,
				       (unsigned long long)runs[k].vaddr, (unsigned long long)o->size);
				return -EINVAL;
			}
			if (addr) {
				memcpy((char *)addr + runs[k].vaddr, data, len);
			} else {
				ret = pwrite_full(fd, data, len, runs[k].vaddr);
				if (ret) {
					pr_err("%s: writing %llu bytes at %#llx: %s",
					       memobj_describe(o, d, sizeof(d)), (unsigned long long)len,
					       (unsigned long long)runs[k].vaddr, strerror(-ret));
					return ret;
				}
			}
			data += len;
		}
	}
	if (fd >= 0 && ftruncate(fd, o->size) < 0) {
		pr_perror("%s: setting its size to %llu", memobj_describe(o, d, sizeof(d)),
			  (unsigned long long)o->size);
		return -errno;
	}
	return 0;
}
