#include "mem/vma.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>

#include "common/util.h"

const char *vma_kind_name(Rtcr__VmaKind k)
{
	switch (k) {
	case RTCR__VMA_KIND__ANON_PRIVATE: return "anon";
	case RTCR__VMA_KIND__ANON_SHARED: return "anon-shared";
	case RTCR__VMA_KIND__FILE_PRIVATE: return "file";
	case RTCR__VMA_KIND__FILE_SHARED: return "file-shared";
	case RTCR__VMA_KIND__VVAR: return "vvar";
	case RTCR__VMA_KIND__VVAR_VCLOCK: return "vvar_vclock";
	case RTCR__VMA_KIND__VDSO: return "vdso";
	case RTCR__VMA_KIND__SYSV_SHM: return "sysv-shm";
	default: return "?";
	}
}

const char *vma_describe(const struct vma *v, char *buf, size_t len)
{
	int n = v->pid ? snprintf(buf, len, "pid %d: ", v->pid) : 0;
	if (n < 0 || (size_t)n >= len)
		n = 0;
	snprintf(buf + n, len - n, "mapping %llx-%llx%s%s", (unsigned long long)v->start,
		 (unsigned long long)v->end, v->path ? " " : "", v->path ? v->path : "");
	return buf;
}

static bool has_flag(const char *flags, const char *f)
{
	for (const char *p = flags; p && *p; ) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, f, 2) && (p[2] == ' ' || p[2] == 0 || p[2] == '\n'))
			return true;
		p = strchr(p, ' ');
	}
	return false;
}

static int refuse(const struct vma *v, const char *why)
{
	char d[512];
	pr_err("%s: %s", vma_describe(v, d, sizeof(d)), why);
	return -ENOTSUP;
}

/* The shmem object behind shared anonymous memory (one per mmap() call,
 * shared by every process that inherited the mapping). */
static int shmem_identify(pid_t pid, struct vma *v)
{
	char link[96];
	struct stat st;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	if (stat(link, &st) < 0) {
		char d[256];
		pr_perror("%s: %s", vma_describe(v, d, sizeof(d)), link);
		return -errno;
	}
	v->shmem_id = st.st_ino;
	v->shmem_pages = (st.st_size + PAGE_SIZE - 1) / PAGE_SIZE;
	return 0;
}

/* Decide what the area is; 0, 1 to leave it out, or -ENOTSUP with a message. */
static int classify(pid_t pid, struct vma *v, const char *vmflags, bool own_wp)
{
	static const struct { const char *flag, *why; } unsupported[] = {
		{ "ht", "hugetlbfs memory: not supported yet" },
		{ "pf", "device memory (VM_PFNMAP): not supported" },
		{ "io", "device memory (VM_IO): not supported" },
		{ "mm", "device memory (VM_MIXEDMAP): not supported" },
		{ "um", "registered with userfaultfd: not supported yet" },
		{ "uw", "registered with userfaultfd: not supported yet" },
		{ "ui", "registered with userfaultfd: not supported yet" },
		{ "ss", "shadow stack: not supported yet" },
		{ "dp", "droppable memory (MAP_DROPPABLE): not supported yet" },
	};
	const char *p = v->path;

	/* The kernel's own mappings carry device-like flags: name them first. */
	if (p && !strcmp(p, "[vvar]")) { v->kind = RTCR__VMA_KIND__VVAR; return 0; }
	if (p && !strcmp(p, "[vvar_vclock]")) { v->kind = RTCR__VMA_KIND__VVAR_VCLOCK; return 0; }
	if (p && !strcmp(p, "[vdso]")) { v->kind = RTCR__VMA_KIND__VDSO; return 0; }
	if (p && !strcmp(p, "[vsyscall]"))
		return 1;   /* fixed by the kernel in every process: nothing to do */

	v->uffd_wp = own_wp && has_flag(vmflags, "uw");
	for (size_t i = 0; i < ARRAY_SIZE(unsupported); i++)
		if (has_flag(vmflags, unsupported[i].flag) &&
		    !(v->uffd_wp && !strcmp(unsupported[i].flag, "uw")))
			return refuse(v, unsupported[i].why);

	v->growsdown = has_flag(vmflags, "gd");
	v->may_write = has_flag(vmflags, "mw");
	v->locked = has_flag(vmflags, "lo");
	v->lock_onfault = has_flag(vmflags, "lf");
	v->sealed = has_flag(vmflags, "sl");
	if (has_flag(vmflags, "hg")) v->madv |= RTCR_MADV_HUGEPAGE;
	if (has_flag(vmflags, "nh")) v->madv |= RTCR_MADV_NOHUGEPAGE;
	if (has_flag(vmflags, "dc")) v->madv |= RTCR_MADV_DONTFORK;
	if (has_flag(vmflags, "dd")) v->madv |= RTCR_MADV_DONTDUMP;
	if (has_flag(vmflags, "wf")) v->madv |= RTCR_MADV_WIPEONFORK;
	if (has_flag(vmflags, "mg")) v->madv |= RTCR_MADV_MERGEABLE;
	if (has_flag(vmflags, "sr")) v->madv |= RTCR_MADV_SEQUENTIAL;
	if (has_flag(vmflags, "rr")) v->madv |= RTCR_MADV_RANDOM;
	if (has_flag(vmflags, "nr")) v->madv |= RTCR_MAP_NORESERVE;

	if (!p || !strcmp(p, "[heap]") || !strcmp(p, "[stack]")) {
		v->kind = v->shared ? RTCR__VMA_KIND__ANON_SHARED : RTCR__VMA_KIND__ANON_PRIVATE;
		return v->shared ? shmem_identify(pid, v) : 0;
	}
	if (!strncmp(p, "[anon:", 6)) {
		size_t n = strlen(p);
		v->anon_name = xstrdup(p + 6);
		if (n > 7)
			v->anon_name[n - 7] = 0;
		v->kind = RTCR__VMA_KIND__ANON_PRIVATE;
		return 0;
	}
	if (!strncmp(p, "[anon_shmem:", 12)) {
		size_t n = strlen(p);
		v->anon_name = xstrdup(p + 12);
		if (n > 13)
			v->anon_name[n - 13] = 0;
		v->kind = RTCR__VMA_KIND__ANON_SHARED;
		return 0;
	}
	if (p[0] == '[')
		return refuse(v, "special kernel mapping rtcr does not know: not supported");
	if (!strcmp(p, "/dev/zero (deleted)") && v->shared) {
		v->kind = RTCR__VMA_KIND__ANON_SHARED;
		return shmem_identify(pid, v);
	}
	if (!strcmp(p, "/dev/zero") && !v->shared) {
		v->kind = RTCR__VMA_KIND__ANON_PRIVATE;
		return 0;
	}
	if (!strncmp(p, "/SYSV", 5)) {
		/* A System V shared memory attachment: the inode is the shmid. */
		v->kind = RTCR__VMA_KIND__SYSV_SHM;
		v->has_obj = true;
		v->obj_kind = RTCR__MEM_OBJECT_KIND__OBJ_SYSV_SHM;
		v->obj_dev = v->map_dev;
		v->obj_ino = v->map_ino;
		return 0;
	}
	{
		char link[96];
		snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", pid,
			 (unsigned long long)v->start, (unsigned long long)v->end);
		if (stat(link, &v->st) < 0 && stat(p, &v->st) < 0) {
			char d[512];
			pr_perror("%s: stat", vma_describe(v, d, sizeof(d)));
			return -errno;
		}
	}
	{
		size_t n = strlen(p);
		bool deleted = n > 10 && !strcmp(p + n - 10, " (deleted)");
		/* The file exists only as long as something holds it: rtcr keeps
		 * its contents and re-creates it (memobj.h). */
		if (!strncmp(p, "/memfd:", 7) && deleted) {
			v->has_obj = true;
			v->obj_kind = RTCR__MEM_OBJECT_KIND__OBJ_MEMFD;
		} else if (deleted) {
			v->has_obj = true;
			v->obj_kind = RTCR__MEM_OBJECT_KIND__OBJ_DELETED_FILE;
		}
		v->obj_dev = v->st.st_dev;
		v->obj_ino = v->st.st_ino;
	}
	if (!S_ISREG(v->st.st_mode))
		return refuse(v, "mapping of something other than a regular file: not supported yet");
	v->kind = v->shared ? RTCR__VMA_KIND__FILE_SHARED : RTCR__VMA_KIND__FILE_PRIVATE;
	return 0;
}

int vma_list_read(pid_t pid, struct vma_list *vl, bool own_wp)
{
	char path[64], *buf, *line, *next;
	struct vma *cur = NULL;
	int cap = 64, ret = 0;
	ssize_t n;

	memset(vl, 0, sizeof(*vl));
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	n = read_file(path, &buf);
	if (n < 0) {
		pr_err("%s: %s", path, strerror((int)-n));
		return (int)n;
	}
	vl->v = xzalloc(cap * sizeof(*vl->v));
	for (line = buf; line && *line; line = next) {
		unsigned long long s, e, off;
		unsigned maj, min;
		unsigned long ino;
		char perms[8];
		int pos = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %lu %n", &s, &e, perms, &off, &maj, &min,
			   &ino, &pos) >= 7) {
			if (vl->nr == cap) {
				vl->v = xrealloc(vl->v, (cap *= 2) * sizeof(*vl->v));
				memset(vl->v + vl->nr, 0, (cap - vl->nr) * sizeof(*vl->v));
			}
			cur = &vl->v[vl->nr++];
			cur->pid = pid;
			cur->start = s;
			cur->end = e;
			cur->pgoff = off / PAGE_SIZE;
			cur->prot = (perms[0] == 'r' ? PROT_READ : 0) |
				    (perms[1] == 'w' ? PROT_WRITE : 0) |
				    (perms[2] == 'x' ? PROT_EXEC : 0);
			cur->shared = perms[3] == 's';
			cur->map_dev = makedev(maj, min);
			cur->map_ino = ino;
			if (pos && line[pos])
				cur->path = xstrdup(line + pos);
			continue;
		}
		if (!cur)
			continue;
		if (!strncmp(line, "VmFlags:", 8)) {
			ret = classify(pid, cur, line + 8, own_wp);
			if (ret == 1) {
				free(cur->path);
				memset(cur, 0, sizeof(*cur));
				vl->nr--;
				cur = NULL;
				ret = 0;
			}
			if (ret)
				break;
		} else if (!strncmp(line, "ProtectionKey:", 14) && atoi(line + 14) != 0) {
			ret = refuse(cur, "memory protection key in use: not supported yet");
			break;
		}
	}
	free(buf);
	if (ret)
		vma_list_free(vl);
	return ret;
}

int vma_list_seek(const struct vma_list *vl, int *cursor, uint64_t addr)
{
	while (*cursor < vl->nr && addr >= vl->v[*cursor].end)
		(*cursor)++;
	return *cursor < vl->nr && addr >= vl->v[*cursor].start ? *cursor : -1;
}

int vma_list_clip(const struct vma_list *vl, int *cursor, uint64_t *start, uint64_t end,
		  uint64_t *piece_end)
{
	while (*start < end && *cursor < vl->nr) {
		const struct vma *v = &vl->v[*cursor];
		if (*start >= v->end) {
			(*cursor)++;
			continue;
		}
		if (*start < v->start)
			*start = v->start;
		if (*start >= end)
			return -1;
		*piece_end = MIN(end, v->end);
		return *cursor;
	}
	return -1;
}

void vma_list_free(struct vma_list *vl)
{
	for (int i = 0; i < vl->nr; i++) {
		free(vl->v[i].path);
		free(vl->v[i].anon_name);
		prl_free(&vl->v[i].pages);
		prl_free(&vl->v[i].inherited);
	}
	free(vl->v);
	vl->v = NULL;
	vl->nr = 0;
}

void vma_list_copy(struct vma_list *dst, const struct vma_list *src)
{
	dst->nr = src->nr;
	dst->v = xzalloc((src->nr ? src->nr : 1) * sizeof(*dst->v));
	for (int i = 0; i < src->nr; i++) {
		struct vma *v = &dst->v[i];
		*v = src->v[i];
		v->path = v->path ? xstrdup(v->path) : NULL;
		v->anon_name = v->anon_name ? xstrdup(v->anon_name) : NULL;
		memset(&v->pages, 0, sizeof(v->pages));
		memset(&v->inherited, 0, sizeof(v->inherited));
		v->mirror = NULL;
	}
}

int vma_list_same_layout(pid_t pid, const struct vma_list *vl)
{
	char path[64], *buf, *line, *next;
	int i = 0, same = 1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	n = read_file(path, &buf);
	if (n < 0) {
		pr_err("%s: %s", path, strerror((int)-n));
		return (int)n;
	}
	for (line = buf; line && *line && same; line = next) {
		unsigned long long s, e, off;
		unsigned maj, min;
		unsigned long ino;
		char perms[8];
		const char *p;
		const struct vma *v;
		int pos = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %lu %n", &s, &e, perms, &off, &maj, &min,
			   &ino, &pos) < 7) {
			same = 0;
			break;
		}
		p = pos && line[pos] ? line + pos : NULL;
		if (p && !strcmp(p, "[vsyscall]"))
			continue;   /* left out of the list (classify()) */
		if (i == vl->nr) {
			same = 0;
			break;
		}
		v = &vl->v[i++];
		same = v->start == s && v->end == e && v->pgoff == off / PAGE_SIZE &&
		       v->prot == ((perms[0] == 'r' ? PROT_READ : 0) |
				   (perms[1] == 'w' ? PROT_WRITE : 0) |
				   (perms[2] == 'x' ? PROT_EXEC : 0)) &&
		       v->shared == (perms[3] == 's') && v->map_dev == makedev(maj, min) &&
		       v->map_ino == ino && !p == !v->path && (!p || !strcmp(p, v->path));
	}
	if (same && i != vl->nr)
		same = 0;
	free(buf);
	return same;
}
