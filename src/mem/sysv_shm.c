/*
 * System V shared memory (memobj.h).
 *
 * Dump: the segment's id, key, size, owner, mode, SHM_DEST and SHM_LOCK
 * state come from shmctl(IPC_STAT) (rtcr lives in the same IPC
 * namespace); its contents from rtcr's own read-only attachment: the
 * pages resident in the segment (mincore), or all of it if some of it is
 * swapped out (mincore cannot see swapped shmem pages).
 *
 * Restore: the segment is made again with the same id (shm_next_id, then
 * shmget with IPC_CREAT|IPC_EXCL; the id obtained is checked), owner and
 * mode set with IPC_SET, filled through rtcr's attachment, and attached
 * in every process with an injected shmat at the saved address and with
 * the saved flags: a real attachment, which shmdt() detaches and
 * shm_nattch counts. Parts of an attachment the process had unmapped are
 * unmapped again, protections changed since are set again. A segment that
 * was marked for deletion is marked again once every process attached it.
 */
#include "mem/memobj.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "image/load.h"

#define SHM_NEXT_ID "/proc/sys/kernel/shm_next_id"

struct sysv_line {
	int key, shmid;
	unsigned perms, nattch, uid;
	unsigned long long size, rss, swap;
};

/* /proc/sysvipc/shm, one line per segment of this IPC namespace. */
static int sysv_lines(struct sysv_line **out)
{
	char *buf, *line, *next;
	ssize_t n = read_file("/proc/sysvipc/shm", &buf);
	int cnt = 0;

	*out = NULL;
	if (n < 0) {
		pr_err("/proc/sysvipc/shm: %s", strerror((int)-n));
		return (int)n;
	}
	line = strchr(buf, '\n');   /* past the header */
	for (line = line ? line + 1 : NULL; line && *line; line = next) {
		struct sysv_line l;
		unsigned cpid, lpid, gid, cuid, cgid;
		unsigned long long at, dt, ct;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		memset(&l, 0, sizeof(l));
		if (sscanf(line, "%d %d %o %llu %u %u %u %u %u %u %u %llu %llu %llu %llu %llu", &l.key,
			   &l.shmid, &l.perms, &l.size, &cpid, &lpid, &l.nattch, &l.uid, &gid, &cuid,
			   &cgid, &at, &dt, &ct, &l.rss, &l.swap) < 7)
			continue;
		*out = xrealloc(*out, (cnt + 1) * sizeof(**out));
		(*out)[cnt++] = l;
	}
	free(buf);
	return cnt;
}

int sysv_dump(struct memobj *o, const char *desc)
{
	Rtcr__SysvShm *s = xzalloc(sizeof(*s));
	int shmid = (int)o->ino;
	struct shmid_ds ds;
	struct sysv_line *lines;
	unsigned long long swap = 0;
	unsigned char *vec;
	uint64_t npages;
	char d[128];
	int nl;

	rtcr__sysv_shm__init(s);
	o->pb->sysv = s;
	s->shmid = shmid;
	if (shmctl(shmid, IPC_STAT, &ds) < 0) {
		pr_perror("%s: System V shared memory segment %d: IPC_STAT", desc, shmid);
		return -errno;
	}
	s->key = ds.shm_perm.__key;
	s->mode = ds.shm_perm.mode & 0777;
	s->uid = ds.shm_perm.uid;
	s->gid = ds.shm_perm.gid;
	s->cuid = ds.shm_perm.cuid;
	s->cgid = ds.shm_perm.cgid;
	s->destroyed = !!(ds.shm_perm.mode & SHM_DEST);
	s->locked = !!(ds.shm_perm.mode & SHM_LOCKED);
	o->pb->size = ds.shm_segsz;
	memobj_describe(o->pb, d, sizeof(d));

	o->map_len = ALIGN_UP(ds.shm_segsz, PAGE_SIZE);
	o->map = shmat(shmid, NULL, SHM_RDONLY);
	if (o->map == (void *)-1) {
		o->map = NULL;
		pr_perror("%s: attaching it to read it", d);
		return -errno;
	}
	o->map_is_shmat = true;

	nl = sysv_lines(&lines);
	for (int i = 0; i < nl; i++)
		if (lines[i].shmid == shmid)
			swap = lines[i].swap;
	free(lines);
	npages = o->map_len / PAGE_SIZE;
	if (swap) {
		/* Swapped pages are invisible to mincore: take it all. */
		prl_add(&o->runs, 0, npages);
		return 0;
	}
	vec = xmalloc(npages + 1);
	if (mincore((void *)o->map, o->map_len, vec) < 0) {
		pr_perror("%s: mincore", d);
		free(vec);
		return -errno;
	}
	for (uint64_t pg = 0; pg < npages; ) {
		uint64_t e = pg;
		if (!(vec[pg] & 1)) {
			pg++;
			continue;
		}
		while (e < npages && (vec[e] & 1))
			e++;
		prl_add(&o->runs, pg * PAGE_SIZE, e - pg);
		pg = e;
	}
	free(vec);
	return 0;
}

void sysv_dumped_and_killed(const Rtcr__MemObject *o)
{
	struct shmid_ds ds;
	char d[128];

	if (shmctl(o->sysv->shmid, IPC_STAT, &ds) < 0 || ds.shm_nattch ||
	    (ds.shm_perm.mode & SHM_DEST) || ds.shm_perm.__key != o->sysv->key)
		return;
	if (shmctl(o->sysv->shmid, IPC_RMID, NULL) < 0)
		pr_warn("%s: could not remove it after the dump: %s", memobj_describe(o, d, sizeof(d)),
			strerror(errno));
	else
		pr_debug("%s: removed; it lives on in the image", memobj_describe(o, d, sizeof(d)));
}

int sysv_check(const Rtcr__MemObject *o)
{
	const Rtcr__SysvShm *s = o->sysv;
	struct sysv_line *lines;
	int nl = sysv_lines(&lines), ret = 0;
	char d[128];

	if (nl < 0)
		return nl;
	memobj_describe(o, d, sizeof(d));
	for (int i = 0; i < nl && !ret; i++) {
		if (lines[i].shmid == s->shmid) {
			pr_err("%s: id %d is in use on this host (a segment of %llu bytes, key %#x, owner "
			       "uid %u, attached %u times): restore needs it free", d, s->shmid,
			       lines[i].size, (unsigned)lines[i].key, lines[i].uid, lines[i].nattch);
			ret = -EEXIST;
		} else if (!s->destroyed && s->key != IPC_PRIVATE && lines[i].key == s->key) {
			pr_err("%s: key %#x is in use on this host by segment %d: restore needs it free",
			       d, (unsigned)s->key, lines[i].shmid);
			ret = -EEXIST;
		}
	}
	free(lines);
	return ret;
}

static int write_next_id(int id)
{
	char b[32];
	int fd = open(SHM_NEXT_ID, O_WRONLY | O_CLOEXEC), n, ret = 0;

	if (fd < 0)
		return -errno;
	n = snprintf(b, sizeof(b), "%d\n", id);
	if (write(fd, b, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

int sysv_create(struct memobj_rt *rt, struct loaded_image *im)
{
	const Rtcr__MemObject *o = rt->o;
	const Rtcr__SysvShm *s = o->sysv;
	key_t key = s->destroyed ? IPC_PRIVATE : s->key;
	struct shmid_ds ds;
	char d[128];
	int id, ret;

	memobj_describe(o, d, sizeof(d));
	ret = write_next_id(s->shmid);
	if (ret) {
		pr_err("%s: setting %s: %s", d, SHM_NEXT_ID, strerror(-ret));
		return ret;
	}
	id = shmget(key, o->size, (s->mode & 0777) | IPC_CREAT | IPC_EXCL);
	if (id < 0) {
		ret = -errno;
		/* Unused, the wish would go to the next segment anyone makes. */
		if (write_next_id(-1))
			pr_warn("%s: could not reset %s", d, SHM_NEXT_ID);
		if (ret == -EEXIST)
			pr_err("%s: key %#x is in use on this host: restore needs it free", d,
			       (unsigned)key);
		else
			pr_err("%s: creating it (%llu bytes): %s", d, (unsigned long long)o->size,
			       strerror(-ret));
		return ret;
	}
	if (id != s->shmid) {
		shmctl(id, IPC_RMID, NULL);
		pr_err("%s: the kernel gave id %d instead (is the id's slot in use?): restore needs "
		       "id %d free", d, id, s->shmid);
		return -EEXIST;
	}
	rt->created = true;
	memset(&ds, 0, sizeof(ds));
	ds.shm_perm.uid = s->uid;
	ds.shm_perm.gid = s->gid;
	ds.shm_perm.mode = s->mode & 0777;
	if (shmctl(id, IPC_SET, &ds) < 0) {
		pr_perror("%s: setting owner %u:%u and mode %o", d, s->uid, s->gid, s->mode & 0777);
		return -errno;
	}
	if (s->locked && shmctl(id, SHM_LOCK, NULL) < 0) {
		pr_perror("%s: SHM_LOCK", d);
		return -errno;
	}
	/* rtcr keeps this attachment until every process has its own, so the
	 * segment never has none (kernel.shm_rmid_forced would remove it). */
	rt->shm_addr = shmat(id, NULL, 0);
	if (rt->shm_addr == (void *)-1) {
		rt->shm_addr = NULL;
		pr_perror("%s: attaching it to fill it", d);
		return -errno;
	}
	return memobj_fill(im, o, rt->shm_addr, -1);
}

int sysv_attach(struct inject *in, const Rtcr__Mm *mm, size_t first, const Rtcr__MemObject *o)
{
	const Rtcr__Vma *v0 = mm->vmas[first];
	uint64_t base = v0->start - v0->pgoff * PAGE_SIZE, len = ALIGN_UP(o->size, PAGE_SIZE);
	uint64_t cursor = base, prot;
	bool exec = false;
	char what[200], d[128];
	long addr;
	int ret, flags;

	memobj_describe(o, d, sizeof(d));
	for (size_t k = first; k < mm->n_vmas; k++) {
		const Rtcr__Vma *v = mm->vmas[k];
		if (v->kind == RTCR__VMA_KIND__SYSV_SHM && v->object == o->id &&
		    v->start - v->pgoff * PAGE_SIZE == base)
			exec |= !!(v->prot & PROT_EXEC);
	}
	flags = (v0->may_write ? 0 : SHM_RDONLY) | (exec ? SHM_EXEC : 0);
	prot = PROT_READ | (v0->may_write ? PROT_WRITE : 0) | (exec ? PROT_EXEC : 0);
	snprintf(what, sizeof(what), "%s: attaching it at %#llx", d, (unsigned long long)base);
	ret = inject_call(in, what, __NR_shmat, o->sysv->shmid, base, flags, 0, 0, 0, &addr);
	if (ret)
		return ret;
	if ((uint64_t)addr != base) {
		pr_err("%s: attached at %#lx instead", what, addr);
		return -EINVAL;
	}
	/* The process's areas of this attachment, as saved. */
	for (size_t k = first; k < mm->n_vmas && !ret; k++) {
		const Rtcr__Vma *v = mm->vmas[k];
		if (v->kind != RTCR__VMA_KIND__SYSV_SHM || v->object != o->id ||
		    v->start - v->pgoff * PAGE_SIZE != base)
			continue;
		if (v->start < cursor || v->end > base + len) {
			pr_err("%s: image: area %llx-%llx does not fit its attachment at %#llx", d,
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       (unsigned long long)base);
			return -EINVAL;
		}
		if (v->start > cursor)
			ret = inject_call(in, "unmapping a part of a SysV attachment the process had "
					  "unmapped", __NR_munmap, cursor, v->start - cursor, 0, 0, 0, 0, NULL);
		if (!ret && v->prot != prot)
			ret = inject_call(in, "protecting a SysV attachment as saved", __NR_mprotect,
					  v->start, v->end - v->start, v->prot, 0, 0, 0, NULL);
		cursor = v->end;
	}
	if (!ret && cursor < base + len)
		ret = inject_call(in, "unmapping the end of a SysV attachment the process had unmapped",
				  __NR_munmap, cursor, base + len - cursor, 0, 0, 0, 0, NULL);
	return ret;
}

int sysv_all_attached(struct memobj_rt *rt)
{
	char d[128];

	if (rt->shm_addr) {
		shmdt(rt->shm_addr);
		rt->shm_addr = NULL;
	}
	if (rt->o->sysv->destroyed && !rt->removed) {
		if (shmctl(rt->o->sysv->shmid, IPC_RMID, NULL) < 0) {
			pr_perror("%s: marking it for deletion again", memobj_describe(rt->o, d, sizeof(d)));
			return -errno;
		}
		rt->removed = true;
	}
	return 0;
}

void sysv_release(struct memobj_rt *rt, bool failed)
{
	char d[128];

	if (rt->shm_addr)
		shmdt(rt->shm_addr);
	rt->shm_addr = NULL;
	if (failed && rt->created && !rt->removed) {
		if (shmctl(rt->o->sysv->shmid, IPC_RMID, NULL) < 0)
			pr_warn("%s: could not remove it after the failed restore: %s",
				memobj_describe(rt->o, d, sizeof(d)), strerror(errno));
		rt->removed = true;
	}
}
