/*
 * The address space, dump side: mm layout (code/data/brk/stack/args/env
 * bounds, auxv, exe) and the list of areas with what each needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/proc.h"
#include "common/util.h"
#include "files/files.h"
#include "mem/mem.h"

/* Object page ranges of shared memory already stored by an earlier area. */
struct shmem_claim {
	uint64_t id;
	struct { uint64_t first, n; } *done;   /* in object pages */
	int ndone;
};

static bool claimed(const struct shmem_claim *c, uint64_t pg)
{
	for (int i = 0; i < c->ndone; i++)
		if (pg >= c->done[i].first && pg < c->done[i].first + c->done[i].n)
			return true;
	return false;
}

/* Data pages of a shared anonymous area live in its shmem object, not
 * necessarily in this process's page tables: ask the object. Pages an
 * earlier area of the tree stores already are left out. */
static int shmem_runs(pid_t pid, struct vma *v, struct shmem_claim *cl)
{
	char link[96];
	off_t base = v->pgoff * PAGE_SIZE, end = base + (v->end - v->start), off = base;
	int fd;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		char d[256];
		pr_perror("%s: open %s", vma_describe(v, d, sizeof(d)), link);
		return -errno;
	}
	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;
		if (data < 0 || data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		data &= ~(off_t)(PAGE_SIZE - 1);
		hole = ALIGN_UP(hole, PAGE_SIZE);
		for (off_t pg = data / (off_t)PAGE_SIZE; pg < hole / (off_t)PAGE_SIZE; pg++)
			if (!claimed(cl, pg))
				prl_add(&v->pages, v->start + pg * PAGE_SIZE - base, 1);
		off = hole;
	}
	close(fd);
	/* What this area covers is stored now. */
	cl->done = xrealloc(cl->done, (cl->ndone + 1) * sizeof(*cl->done));
	cl->done[cl->ndone].first = v->pgoff;
	cl->done[cl->ndone++].n = (v->end - v->start) / PAGE_SIZE;
	return 0;
}

/* Distributes the regions of one whole-address-space scan to the areas. */
struct scan_split {
	struct vma_list *vl;
	int vi;                 /* regions come in address order */
	bool inc;               /* tracked since the parent image */
	struct page_run_list unsure;   /* tracked, not written, not present */
};

static void split_region(void *arg, uint64_t start, uint64_t end, uint64_t cat)
{
	struct scan_split *s = arg;
	uint64_t e;

	for (int i; (i = vma_list_clip(s->vl, &s->vi, &start, end, &e)) >= 0; start = e) {
		struct vma *v = &s->vl->v[i];
		if (v->mirror)
			continue;       /* a live dump's copy has them (mem/live.h) */
		/*
		 * Tracked and not written since the parent image, and present:
		 * its data is there (a page that was not data at that dump can
		 * only have become data by a write, or reads as the zero page or
		 * the file). Not present and not written is either a real swap
		 * entry or one of the markers the tracker puts on unpopulated
		 * pages: sorted out below.
		 */
		if ((v->kind == RTCR__VMA_KIND__ANON_PRIVATE ||
				  (v->kind == RTCR__VMA_KIND__FILE_PRIVATE && !(cat & PAGE_IS_FILE)))) {
			bool tracked = s->inc && v->uffd_wp && (cat & PAGE_IS_WPALLOWED) &&
				       !(cat & PAGE_IS_WRITTEN);
			struct page_run_list *to = &v->pages;
			if (tracked)
				to = (cat & PAGE_IS_PRESENT) ? &v->inherited : &s->unsure;
			prl_add(to, start, (e - start) / PAGE_SIZE);
		}
	}
}

/*
 * Tracked pages neither present nor written: a real swap entry is stored
 * (reading it swaps it in); a pte marker the write-protection left on a
 * page never populated (or zapped) is no data.
 */
struct sort_arg {
	struct vma_list *vl;
	int vi;
};

static void add_swapped(void *arg, uint64_t addr)
{
	struct sort_arg *s = arg;
	int i = vma_list_seek(s->vl, &s->vi, addr);
	if (i >= 0)
		prl_add(&s->vl->v[i].pages, addr, 1);
}

static int sort_unsure(struct pagemap *pm, struct vma_list *vl, const struct page_run_list *u)
{
	struct sort_arg s = { vl, 0 };
	return pagemap_real_swap(pm, u, add_swapped, &s);
}

static int find_private_pages(pid_t pid, struct vma_list *vl, bool inc)
{
	struct scan_split split = { .vl = vl, .vi = 0, .inc = inc };
	struct pagemap pm;
	int ret = pagemap_open(&pm, pid);

	if (ret)
		return ret;
	/* One scan for all private areas (thousands of areas cost thousands
	 * of ioctls otherwise), from the first to the last whose pages are to
	 * be found: a live dump found its tracked areas' already. */
	int first = -1, last = -1;
	for (int i = 0; i < vl->nr; i++)
		if (!vl->v[i].mirror && (vl->v[i].kind == RTCR__VMA_KIND__ANON_PRIVATE ||
					 vl->v[i].kind == RTCR__VMA_KIND__FILE_PRIVATE)) {
			if (first < 0)
				first = i;
			last = i;
		}
	if (pm.scan && first >= 0) {
		split.vi = first;
		ret = pagemap_scan_all(&pm, vl->v[first].start, vl->v[last].end, split_region, &split);
	}
	if (!ret && split.unsure.nr)
		ret = sort_unsure(&pm, vl, &split.unsure);
	prl_free(&split.unsure);
	for (int i = 0; i < vl->nr && !ret && !pm.scan; i++) {
		struct vma *v = &vl->v[i];
		if (v->mirror)
			continue;
		if (v->kind == RTCR__VMA_KIND__ANON_PRIVATE)
			ret = pagemap_data_runs(&pm, v->start, v->end, false, &v->pages);
		else if (v->kind == RTCR__VMA_KIND__FILE_PRIVATE)
			ret = pagemap_data_runs(&pm, v->start, v->end, true, &v->pages);
	}
	pagemap_close(&pm);
	return ret;
}

int mem_find_pages_tree(const pid_t *pids, struct vma_list **vls, const bool *inc, int n,
			struct mem_stats *st)
{
	struct shmem_claim *cl = NULL;
	int ncl = 0, ret = 0;
	uint64_t t0 = now_ns();

	for (int p = 0; p < n && !ret; p++) {
		ret = find_private_pages(pids[p], vls[p], inc && inc[p]);
		for (int i = 0; i < vls[p]->nr && !ret; i++) {
			struct vma *v = &vls[p]->v[i];
			struct shmem_claim *c = NULL;
			if (v->kind != RTCR__VMA_KIND__ANON_SHARED)
				continue;
			for (int k = 0; k < ncl && !c; k++)
				if (cl[k].id == v->shmem_id)
					c = &cl[k];
			if (!c) {
				cl = xrealloc(cl, (ncl + 1) * sizeof(*cl));
				c = &cl[ncl++];
				memset(c, 0, sizeof(*c));
				c->id = v->shmem_id;
			}
			ret = shmem_runs(pids[p], v, c);
		}
		for (int i = 0; i < vls[p]->nr; i++) {
			const struct vma *v = &vls[p]->v[i];
			if (v->mirror)
				continue;       /* counted by live_final() */
			st->pages += v->pages.npages;
			st->inherited += v->inherited.npages;
		}
	}
	for (int k = 0; k < ncl; k++)
		free(cl[k].done);
	free(cl);
	st->scan_ns += now_ns() - t0;
	return ret;
}

int mem_dump_mm(struct inject *in, pid_t pid, const struct vma_list *vl, const long *known_brk,
		Rtcr__Mm **out)
{
	Rtcr__Mm *mm = xzalloc(sizeof(*mm));
	uint64_t f[PROC_STAT_FIELDS];
	char path[64], *exe, *auxv;
	struct stat st;
	ssize_t n;
	long brk;
	int ret;

	rtcr__mm__init(mm);
	ret = proc_stat_read(pid, f, NULL);
	if (ret)
		goto err;
	mm->start_code = f[26];
	mm->end_code = f[27];
	mm->start_stack = f[28];
	mm->start_data = f[45];
	mm->end_data = f[46];
	mm->start_brk = f[47];
	mm->arg_start = f[48];
	mm->arg_end = f[49];
	mm->env_start = f[50];
	mm->env_end = f[51];
	if (known_brk)
		brk = *known_brk;
	else if ((ret = inject_syscall(in, __NR_brk, 0, 0, 0, 0, 0, 0, &brk)))
		goto err;
	mm->brk = brk;

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	n = read_file(path, &auxv);
	if (n < 0) {
		ret = (int)n;
		pr_err("%s: %s", path, strerror(-ret));
		goto err;
	}
	mm->auxv.data = (uint8_t *)auxv;
	mm->auxv.len = n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	exe = xreadlink(path);
	if (exe && stat(path, &st) == 0) {
		mm->exe = xzalloc(sizeof(*mm->exe));
		fileref_fill(mm->exe, exe, &st);
	}
	free(exe);

	mm->vmas = xzalloc((vl->nr ? vl->nr : 1) * sizeof(*mm->vmas));
	for (int i = 0; i < vl->nr; i++) {
		const struct vma *v = &vl->v[i];
		Rtcr__Vma *e = xzalloc(sizeof(*e));
		rtcr__vma__init(e);
		e->start = v->start;
		e->end = v->end;
		e->prot = v->prot;
		e->kind = v->kind;
		e->pgoff = v->pgoff;
		e->madv = v->madv;
		e->growsdown = v->growsdown;
		e->may_write = v->may_write;
		e->locked = v->locked;
		e->lock_onfault = v->lock_onfault;
		e->sealed = v->sealed;
		if (v->anon_name)
			e->anon_name = xstrdup(v->anon_name);
		if (v->kind == RTCR__VMA_KIND__ANON_SHARED) {
			e->has_shmem_id = e->has_shmem_size = 1;
			e->shmem_id = v->shmem_id;
			e->shmem_size = v->shmem_pages;
		}
		if (v->has_obj) {
			/* Re-created from the object table, not opened by path. */
			e->has_object = 1;
			e->object = v->object;
			if (v->kind == RTCR__VMA_KIND__SYSV_SHM) {
				e->has_shmem_size = 1;
				e->shmem_size = v->shmem_pages;
			}
		} else if (v->kind == RTCR__VMA_KIND__FILE_PRIVATE || v->kind == RTCR__VMA_KIND__FILE_SHARED) {
			e->file = xzalloc(sizeof(*e->file));
			fileref_fill(e->file, v->path, &v->st);
		}
		mm->vmas[mm->n_vmas++] = e;
	}
	mem_mm_pages(mm, vl);
	*out = mm;
	return 0;
err:
	mm_free(mm);
	return ret;
}

void mem_mm_pages(Rtcr__Mm *mm, const struct vma_list *vl)
{
	for (size_t i = 0; i < mm->n_vmas && i < (size_t)vl->nr; i++) {
		const struct vma *v = &vl->v[i];
		Rtcr__Vma *e = mm->vmas[i];

		e->pages_stored = v->pages.npages;
		free(e->inherited);
		e->inherited = NULL;
		e->n_inherited = 0;
		e->has_pages_inherited = 0;
		e->pages_inherited = 0;
		if (v->inherited.nr) {
			e->has_pages_inherited = 1;
			e->pages_inherited = v->inherited.npages;
			e->n_inherited = 2 * v->inherited.nr;
			e->inherited = xmalloc(e->n_inherited * sizeof(uint64_t));
			for (uint32_t k = 0; k < v->inherited.nr; k++) {
				e->inherited[2 * k] = v->inherited.v[k].start;
				e->inherited[2 * k + 1] = v->inherited.v[k].npages;
			}
		}
	}
}

void mm_free(Rtcr__Mm *mm)
{
	if (mm)
		rtcr__mm__free_unpacked(mm, NULL);
}

uint64_t mem_find_gadget(pid_t pid, const struct vma_list *vl)
{
	uint64_t gadget = 0;

	for (int i = 0; i < vl->nr && !gadget; i++)
		if (vl->v[i].kind == RTCR__VMA_KIND__VDSO)
			gadget = find_syscall_insn(pid, vl->v[i].start, vl->v[i].end);
	for (int i = 0; i < vl->nr && !gadget; i++)
		if ((vl->v[i].prot & PROT_EXEC) && (vl->v[i].prot & PROT_READ))
			gadget = find_syscall_insn(pid, vl->v[i].start, vl->v[i].end);
	if (!gadget)
		pr_err("pid %d: no syscall instruction in its executable memory to inject with", pid);
	return gadget;
}

static uint64_t hash_range(pid_t pid, uint64_t start, uint64_t len)
{
	void *buf = xmalloc(len);
	struct iovec l = { buf, len }, r = { (void *)start, len };
	uint64_t h = 0;
	if (process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len)
		h = XXH3_64bits(buf, len);
	free(buf);
	return h;
}

uint64_t vdso_hash_of(pid_t pid, const struct vma_list *vl)
{
	for (int i = 0; i < vl->nr; i++)
		if (vl->v[i].kind == RTCR__VMA_KIND__VDSO)
			return hash_range(pid, vl->v[i].start, vl->v[i].end - vl->v[i].start);
	return 0;
}

uint64_t vdso_hash_self(void)
{
	char *buf, *line, *next;
	uint64_t h = 0;

	/* /proc/self/maps, not smaps: smaps walks every page of rtcr's own
	 * mappings (a mapped image: ~1-2 ms a GiB). */
	if (read_file("/proc/self/maps", &buf) < 0)
		return 0;
	for (line = buf; line && *line && !h; line = next) {
		unsigned long long start, end;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (strstr(line, "[vdso]") && sscanf(line, "%llx-%llx", &start, &end) == 2 && end > start)
			h = XXH3_64bits((const void *)(uintptr_t)start, end - start);
	}
	free(buf);
	return h;
}
