/*
 * The address space, restore side. Runs in the parent, driving the
 * stopped child through injected calls (task/inject.h):
 *
 *   mem_unmap_all_but()  rtcr's own mappings go (binary, libc, heap,
 *                        stack): only the scratch area and the vDSO stay
 *   mem_move_vdso()      [vvar] [vvar_vclock] [vdso] move, together, to
 *                        the saved addresses (glibc caches them)
 *   mem_map_areas()      every saved area at its address, with its file
 *   mem_fill_pages()     saved pages copied in (two threads; UFFDIO_COPY
 *                        for anonymous memory); mem_fill_pages_lazy():
 *                        the same but for lazy areas, left to the lazy
 *                        page server (mem/lazy.h)
 *   mem_finish_areas()   protections, madvise state, PR_SET_MM_MAP
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "arch/x86/regs.h"
#include "common/util.h"
#include "image/load.h"
#include "image/merge.h"
#include "mem/lazy.h"
#include "mem/mem.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif
#ifndef __NR_mseal
#define __NR_mseal 462
#endif

struct range {
	uint64_t start, end;
	char name[32];
};

/* Mappings of pid: start, end and the [special] name if any. */
static int read_ranges(pid_t pid, struct range **out)
{
	char path[64], *buf, *line;
	int n = 0, cap = 64;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	len = read_file(path, &buf);
	if (len < 0) {
		pr_err("%s: %s", path, strerror((int)-len));
		return (int)len;
	}
	*out = xzalloc(cap * sizeof(**out));
	for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		unsigned long long s, e;
		const char *br;
		if (sscanf(line, "%llx-%llx", &s, &e) != 2)
			continue;
		if (n == cap)
			*out = xrealloc(*out, (cap *= 2) * sizeof(**out));
		(*out)[n].start = s;
		(*out)[n].end = e;
		(*out)[n].name[0] = 0;
		br = strchr(line, '[');
		if (br && br < strchr(line, '\n'))
			sscanf(br, "%31[^]\n]", (*out)[n].name);
		n++;
	}
	free(buf);
	return n;
}

static const char *vdso_names[] = { "[vvar", "[vvar_vclock", "[vdso" };
static const Rtcr__VmaKind vdso_kinds[] = {
	RTCR__VMA_KIND__VVAR, RTCR__VMA_KIND__VVAR_VCLOCK, RTCR__VMA_KIND__VDSO
};

static int vdso_index(const char *name)
{
	for (int k = 0; k < 3; k++)
		if (!strcmp(name, vdso_names[k]))
			return k;
	return -1;
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

/* What an area needs free when it is made: a SysV attachment is made
 * whole (shmat) and trimmed afterwards. */
static void vma_extent(const Rtcr__Vma *v, uint64_t *s, uint64_t *e)
{
	*s = v->start;
	*e = v->end;
	if (v->kind == RTCR__VMA_KIND__SYSV_SHM && v->has_shmem_size) {
		*s = MIN(*s, v->start - v->pgoff * PAGE_SIZE);
		*e = MAX(*e, *s + v->shmem_size * PAGE_SIZE);
	}
}

uint64_t mem_find_gap(const Rtcr__Mm *mm, uint64_t size, int nth)
{
	struct range *mine;
	int nm = read_ranges(getpid(), &mine);
	/* Lowest usable address is 64 KiB (mmap_min_addr), highest 47 bits. */
	uint64_t lo = 1ULL << 32, hi = 0x7ff000000000ULL;
	int found = 0;

	if (nm < 0)
		return 0;
	/* Candidates: 4 GiB, above each saved area, below each saved area,
	 * above each of rtcr's own areas. */
	for (size_t i = 0; i <= 2 * mm->n_vmas + (size_t)nm; i++) {
		uint64_t cand;
		bool ok;
		if (i == 0)
			cand = lo;
		else if (i <= mm->n_vmas)
			cand = ALIGN_UP(mm->vmas[i - 1]->end + (1 << 20), 1 << 20);
		else if (i <= 2 * mm->n_vmas) {
			uint64_t s0 = mm->vmas[i - 1 - mm->n_vmas]->start;
			if (s0 < size + (4 << 20))
				continue;
			cand = (s0 - size - (2 << 20)) & ~((1ULL << 20) - 1);
		} else {
			cand = ALIGN_UP(mine[i - 1 - 2 * mm->n_vmas].end + (1 << 20), 1 << 20);
		}
		ok = cand >= (1ULL << 20) && cand + size < hi;
		for (size_t j = 0; j < mm->n_vmas && ok; j++) {
			uint64_t s, e;
			vma_extent(mm->vmas[j], &s, &e);
			if (overlaps(cand, cand + size + (1 << 20), s, e))
				ok = false;
		}
		for (int j = 0; j < nm && ok; j++)
			if (overlaps(cand, cand + size + (1 << 20), mine[j].start, mine[j].end))
				ok = false;
		if (ok && found++ == nth) {
			free(mine);
			return cand;
		}
	}
	free(mine);
	return 0;
}

int mem_check_vdso(const Rtcr__Inventory *inv, const Rtcr__Mm *mm)
{
	struct range *mine;
	int nm = read_ranges(getpid(), &mine);
	uint64_t mysize[3] = { 0 }, imgsize[3] = { 0 };
	bool any = false;

	if (nm < 0)
		return nm;
	for (int j = 0; j < nm; j++) {
		int k = vdso_index(mine[j].name);
		if (k >= 0)
			mysize[k] = mine[j].end - mine[j].start;
	}
	free(mine);
	for (size_t i = 0; i < mm->n_vmas; i++)
		for (int k = 0; k < 3; k++)
			if (mm->vmas[i]->kind == vdso_kinds[k]) {
				imgsize[k] = mm->vmas[i]->end - mm->vmas[i]->start;
				any = true;
			}
	if (!any)
		return 0;
	for (int k = 0; k < 3; k++)
		if (mysize[k] != imgsize[k]) {
			pr_err("the vDSO layout differs from the dumping kernel's (%s] is %llu bytes "
			       "here, was %llu): restoring across kernel versions is not supported yet",
			       vdso_names[k], (unsigned long long)mysize[k], (unsigned long long)imgsize[k]);
			return -ENOTSUP;
		}
	if (inv->has_vdso_hash && inv->vdso_hash && inv->vdso_hash != vdso_hash_self()) {
		pr_err("the vDSO code differs from the dumping kernel's (kernel %s there): restoring "
		       "across kernel versions is not supported yet", inv->kernel_release);
		return -ENOTSUP;
	}
	return 0;
}

int mem_unmap_all_but(struct inject *in, pid_t pid)
{
	struct range *r;
	int n = read_ranges(pid, &r), ret = 0;
	uint64_t run_s = 0, run_e = 0;

	if (n < 0)
		return n;
	for (int i = 0; i <= n && !ret; i++) {
		bool keep = i == n || vdso_index(r[i].name) >= 0 || !strcmp(r[i].name, "[vsyscall") ||
			    (r[i].start >= in->sc->base && r[i].end <= in->sc->base + in->sc->len);
		if (!keep) {
			if (!run_e)
				run_s = r[i].start;
			run_e = r[i].end;
			continue;
		}
		if (run_e) {
			char what[96];
			snprintf(what, sizeof(what), "unmapping rtcr's %llx-%llx in the new process",
				 (unsigned long long)run_s, (unsigned long long)run_e);
			ret = inject_call(in, what, __NR_munmap, run_s, run_e - run_s, 0, 0, 0, 0, NULL);
			run_e = 0;
		}
	}
	free(r);
	return ret;
}

int mem_move_vdso(struct inject *in, pid_t pid, const Rtcr__Mm *mm, uint64_t temp)
{
	struct range *r;
	uint64_t cur[3] = { 0 }, len[3] = { 0 }, dst[3] = { 0 };
	int n = read_ranges(pid, &r), ret = 0;
	bool clash = false, any = false;

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		int k = vdso_index(r[i].name);
		if (k >= 0) {
			cur[k] = r[i].start;
			len[k] = r[i].end - r[i].start;
		}
	}
	free(r);
	for (size_t i = 0; i < mm->n_vmas; i++)
		for (int k = 0; k < 3; k++)
			if (mm->vmas[i]->kind == vdso_kinds[k]) {
				dst[k] = mm->vmas[i]->start;
				any = true;
			}
	if (!any) {
		/* The process had unmapped its vDSO: so does the restored one. */
		for (int k = 0; k < 3 && !ret; k++)
			if (len[k])
				ret = inject_call(in, "unmapping the vDSO", __NR_munmap, cur[k], len[k], 0, 0, 0,
					    0, NULL);
		return ret;
	}
	for (int k = 0; k < 3; k++)
		for (int j = 0; j < 3; j++)
			if (len[k] && len[j] && overlaps(dst[k], dst[k] + len[k], cur[j], cur[j] + len[j]) &&
			    dst[k] != cur[k])
				clash = true;
	if (clash) {
		/* Step aside first, keeping the three together. */
		for (int k = 0; k < 3 && !ret; k++) {
			uint64_t t = temp + (cur[k] - cur[0]);
			ret = inject_call(in, "moving the vDSO aside", __NR_mremap, cur[k], len[k], len[k],
				    MREMAP_MAYMOVE | MREMAP_FIXED, t, 0, NULL);
			cur[k] = t;
		}
	}
	for (int k = 0; k < 3 && !ret; k++) {
		if (cur[k] == dst[k])
			continue;
		ret = inject_call(in, "moving the vDSO to its saved address", __NR_mremap, cur[k], len[k],
			    len[k], MREMAP_MAYMOVE | MREMAP_FIXED, dst[k], 0, NULL);
	}
	return ret;
}

static bool is_vdso_kind(Rtcr__VmaKind k)
{
	return k == RTCR__VMA_KIND__VVAR || k == RTCR__VMA_KIND__VVAR_VCLOCK || k == RTCR__VMA_KIND__VDSO;
}

static void area_name(const Rtcr__Vma *v, char *buf, size_t len)
{
	snprintf(buf, len, "area %llx-%llx%s%s", (unsigned long long)v->start,
		 (unsigned long long)v->end, v->file ? " " : "", v->file ? v->file->path : "");
}

/* Run calls[] as a batch; on failure name the area the failing call was for. */
static int run_batch(struct inject *in, struct inj_call *calls, const size_t *area, size_t n,
		     const Rtcr__Mm *mm, const char *const *what)
{
	size_t failed;
	int ret = inject_batch(in, calls, n, &failed);
	if (ret && failed < n) {
		char d[300];
		area_name(mm->vmas[area[failed]], d, sizeof(d));
		pr_err("%s: %s: %s", d, what[failed], strerror(-ret));
	}
	return ret;
}

int mem_map_areas(struct inject *in, const Rtcr__Mm *mm, const int *map_fd, bool *extra_write)
{
	struct inj_call *calls = xzalloc((mm->n_vmas + 1) * sizeof(*calls));
	size_t *area = xzalloc((mm->n_vmas + 1) * sizeof(*area));
	const char **what = xzalloc((mm->n_vmas + 1) * sizeof(*what));
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		bool shared = v->kind == RTCR__VMA_KIND__ANON_SHARED || v->kind == RTCR__VMA_KIND__FILE_SHARED;
		bool anon = v->kind == RTCR__VMA_KIND__ANON_PRIVATE || v->kind == RTCR__VMA_KIND__ANON_SHARED;
		uint64_t prot = v->prot;

		if (is_vdso_kind(v->kind))
			continue;
		extra_write[i] = false;
		if (v->kind == RTCR__VMA_KIND__ANON_SHARED && v->has_shmem_id)
			continue;   /* mem_map_shared() */
		if (v->kind == RTCR__VMA_KIND__SYSV_SHM)
			continue;   /* memobj_attach_sysv(), done before */
		/* Shared memory must be writable to be filled the plain way;
		 * private areas are filled through /proc/PID/mem, which may write
		 * read-only ones. */
		if (v->kind == RTCR__VMA_KIND__ANON_SHARED && v->pages_stored && !(prot & PROT_WRITE)) {
			prot |= PROT_WRITE;
			extra_write[i] = true;
		}
		calls[n] = (struct inj_call){ .nr = __NR_mmap, .a = { v->start, v->end - v->start, prot,
			MAP_FIXED_NOREPLACE | (shared ? MAP_SHARED : MAP_PRIVATE) |
			(anon ? MAP_ANONYMOUS : 0) | (v->growsdown ? MAP_GROWSDOWN : 0) |
			((v->madv & RTCR_MAP_NORESERVE) ? MAP_NORESERVE : 0),
			anon ? (uint64_t)-1 : (uint64_t)map_fd[i], anon ? 0 : v->pgoff * PAGE_SIZE } };
		area[n] = i;
		what[n] = "mmap";
		n++;
	}
	ret = run_batch(in, calls, area, n, mm, what);
	for (size_t k = 0; !ret && k < n; k++)
		if ((uint64_t)calls[k].ret != mm->vmas[area[k]]->start) {
			char d[300];
			area_name(mm->vmas[area[k]], d, sizeof(d));
			pr_err("%s: mapped at %#llx instead", d, (unsigned long long)calls[k].ret);
			ret = -EINVAL;
		}
	free(calls);
	free(area);
	free(what);
	return ret;
}

int mem_map_shared(struct inject *in, pid_t pid, const Rtcr__Mm *mm, bool *extra_write,
		   const struct shm_place *(*lookup)(void *arg, uint64_t id), void *arg,
		   struct shm_place **mine, int *nmine)
{
	uint64_t data = inject_data(in);
	int ret = 0;

	for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		const struct shm_place *src;
		uint64_t len = v->end - v->start, prot = v->prot;
		char what[300], path[96];
		long fd, addr;

		if (v->kind != RTCR__VMA_KIND__ANON_SHARED || !v->has_shmem_id)
			continue;
		area_name(v, what, sizeof(what));
		src = lookup(arg, v->shmem_id);
		if (!src) {
			/* First process of the tree with this object: make it, whole,
			 * at a free place; its areas (and other processes') map it. */
			uint64_t size = MAX(v->shmem_size, v->pgoff + len / PAGE_SIZE) * PAGE_SIZE;
			for (int n = 0;; n++) {
				uint64_t at = mem_find_gap(mm, size, n);
				if (!at) {
					pr_err("%s: no free range for its %llu-byte shared memory object",
					       what, (unsigned long long)size);
					return -ENOMEM;
				}
				ret = inject_syscall(in, __NR_mmap, at, size, PROT_READ | PROT_WRITE,
						     MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
						     (uint64_t)-1, 0, &addr);
				if (ret)
					return ret;
				if (addr == -EEXIST)
					continue;
				if (addr < 0 && addr > -4096) {
					pr_err("%s: making its shared memory object: %s", what,
					       strerror((int)-addr));
					return (int)addr;
				}
				break;
			}
			*mine = xrealloc(*mine, (*nmine + 1) * sizeof(**mine));
			(*mine)[*nmine] = (struct shm_place){ v->shmem_id, pid, (uint64_t)addr, size };
			src = &(*mine)[(*nmine)++];
		}
		if (v->pages_stored && !(prot & PROT_WRITE)) {
			prot |= PROT_WRITE;   /* to be filled; mem_finish_areas() drops it */
			extra_write[i] = true;
		}
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", src->pid,
			 (unsigned long long)src->start, (unsigned long long)(src->start + src->len));
		ret = inject_write(in, data, path, strlen(path) + 1);
		if (!ret)
			ret = inject_call(in, what, __NR_openat, AT_FDCWD, data, O_RDWR | O_CLOEXEC, 0, 0,
					  0, &fd);
		if (ret)
			return ret;
		ret = inject_call(in, what, __NR_mmap, v->start, len, prot,
				  MAP_SHARED | MAP_FIXED_NOREPLACE, fd, v->pgoff * PAGE_SIZE, &addr);
		if (!ret && (uint64_t)addr != v->start) {
			pr_err("%s: mapped at %#lx instead", what, addr);
			ret = -EINVAL;
		}
		if (inject_call(in, what, __NR_close, fd, 0, 0, 0, 0, 0, NULL) && !ret)
			ret = -EIO;
	}
	return ret;
}

int mem_unmap_shared_sources(struct inject *in, const struct shm_place *mine, int n)
{
	int ret = 0;
	for (int i = 0; i < n && !ret; i++)
		ret = inject_call(in, "unmapping a shared memory source", __NR_munmap, mine[i].start,
				  mine[i].len, 0, 0, 0, 0, NULL);
	return ret;
}

/* ---- page filling, two threads ---- */

struct fill_ctx {
	struct loaded_image *im;
	pid_t pid;                    /* in the image */
	pid_t hpid;                   /* in rtcr's pid namespace */
	int memfd;
	int uffd;                 /* -1: no userfaultfd */
	const bool *registered;   /* per area: registered with uffd */
	uint64_t uffd_pages;
	const Rtcr__Mm *mm;
	uint32_t next;          /* next record to take */
	int err;
	pthread_mutex_t lock;
};

static int flush_vm(struct fill_ctx *f, struct iovec *l, struct iovec *r, int n)
{
	size_t want = 0;
	ssize_t got;
	if (!n)
		return 0;
	for (int i = 0; i < n; i++)
		want += l[i].iov_len;
	got = process_vm_writev(f->hpid, l, n, r, n, 0);
	if (got == (ssize_t)want)
		return 0;
	pr_err("writing memory of the new process at %p: %s", r[0].iov_base,
	       got < 0 ? strerror(errno) : "short write");
	return got < 0 ? -errno : -EIO;
}

static int uffd_copy(struct fill_ctx *f, uint64_t dst, const void *src, uint64_t len)
{
	while (len) {
		struct uffdio_copy c = {
			.dst = dst, .src = (uintptr_t)src, .len = len, .mode = UFFDIO_COPY_MODE_DONTWAKE,
		};
		if (ioctl(f->uffd, UFFDIO_COPY, &c) < 0 && errno != EAGAIN) {
			pr_perror("UFFDIO_COPY %llu bytes at %#llx of the new process",
				  (unsigned long long)len, (unsigned long long)dst);
			return -errno;
		}
		if (c.copy <= 0) {
			if (c.copy == -EAGAIN)
				continue;
			pr_err("UFFDIO_COPY at %#llx: %s", (unsigned long long)dst,
			       strerror((int)-c.copy));
			return (int)c.copy;
		}
		dst += c.copy;
		src = (const char *)src + c.copy;
		len -= c.copy;
	}
	return 0;
}

/* Can the image hold pages for area v? */
static bool area_holds_pages(const Rtcr__Vma *v)
{
	return !is_vdso_kind(v->kind) && v->kind != RTCR__VMA_KIND__FILE_SHARED &&
	       v->kind != RTCR__VMA_KIND__SYSV_SHM;
}

static int outside_areas(uint64_t npages, uint64_t vaddr)
{
	pr_err("image: %llu pages at %#llx lie outside any memory area that holds data",
	       (unsigned long long)npages, (unsigned long long)vaddr);
	return -EINVAL;
}

static int fill_record(struct fill_ctx *f, uint32_t i)
{
	const struct img_pages_hdr *ph;
	const struct img_page_run *runs;
	const char *data;
	struct iovec l[1024], r[1024];
	int n = 0, ret;

	ret = image_pages(f->im, i, &ph, &runs, (const void **)&data);
	if (ret)
		return ret;
	for (uint32_t k = 0; k < ph->nr_runs; k++) {
		uint64_t len = runs[k].npages * PAGE_SIZE;
		long vi = image_area_index(f->mm, runs[k].vaddr);
		const Rtcr__Vma *v = vi >= 0 ? f->mm->vmas[vi] : NULL;
		if (!v || runs[k].vaddr + len > v->end || !area_holds_pages(v))
			return outside_areas(runs[k].npages, runs[k].vaddr);
		if (f->uffd >= 0 && f->registered[vi]) {
			ret = uffd_copy(f, runs[k].vaddr, data, len);
			if (!ret)
				__atomic_add_fetch(&f->uffd_pages, runs[k].npages, __ATOMIC_RELAXED);
		} else if ((v->prot & PROT_WRITE) || v->kind == RTCR__VMA_KIND__ANON_SHARED) {
			l[n].iov_base = (void *)data;
			l[n].iov_len = len;
			r[n].iov_base = (void *)runs[k].vaddr;
			r[n].iov_len = len;
			if (++n == (int)ARRAY_SIZE(l)) {
				ret = flush_vm(f, l, r, n);
				n = 0;
			}
		} else {
			/* Read-only private memory: /proc/PID/mem writes through
			 * (FOLL_FORCE), making the private copy the process had. */
			ssize_t w = pwrite(f->memfd, data, len, runs[k].vaddr);
			if (w != (ssize_t)len) {
				pr_err("writing %llu bytes at %#llx of the new process: %s",
				       (unsigned long long)len, (unsigned long long)runs[k].vaddr,
				       w < 0 ? strerror(errno) : "short write");
				return w < 0 ? -errno : -EIO;
			}
		}
		if (ret)
			return ret;
		data += len;
	}
	return flush_vm(f, l, r, n);
}

static void *filler(void *arg)
{
	struct fill_ctx *f = arg;
	for (;;) {
		uint32_t i;
		int ret;
		pthread_mutex_lock(&f->lock);
		/* The next record of this process. */
		while (f->next < f->im->nr_pages_recs && f->im->pages_pid[f->next] != f->pid)
			f->next++;
		if (f->err || f->next >= f->im->nr_pages_recs) {
			pthread_mutex_unlock(&f->lock);
			return NULL;
		}
		i = f->next++;
		pthread_mutex_unlock(&f->lock);
		ret = fill_record(f, i);
		if (ret) {
			pthread_mutex_lock(&f->lock);
			if (!f->err)
				f->err = ret;
			pthread_mutex_unlock(&f->lock);
			return NULL;
		}
	}
}

/*
 * A userfaultfd on the child's mm: the child creates it (one injected
 * call), rtcr takes it with pidfd_getfd, the child closes its copy.
 * Returns the fd, or -1 if this kernel or configuration does not allow it
 * (then pages are written the plain way).
 */
static int open_child_uffd(struct inject *in, pid_t pid, uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int pidfd, uffd = -1;
	long rfd, r;

	if (inject_syscall(in, __NR_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0, &rfd) ||
	    rfd < 0) {
		pr_debug("userfaultfd in the new process: %s; copying pages the plain way",
			 rfd < 0 ? strerror((int)-rfd) : "injection failed");
		return -1;
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0) {
		uffd = syscall(SYS_pidfd_getfd, pidfd, (int)rfd, 0);
		close(pidfd);
	}
	if (inject_syscall(in, __NR_close, rfd, 0, 0, 0, 0, 0, &r) || r) {
		pr_err("closing the new process's userfaultfd");
		if (uffd >= 0)
			close(uffd);
		return -2;
	}
	if (uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) < 0) {
		close(uffd);
		uffd = -1;
	}
	return uffd;
}

static bool uffd_fillable(const Rtcr__Vma *v)
{
	/* MISSING mode covers anonymous and shmem memory, not private files. */
	return (v->pages_stored || v->n_inherited) && (v->kind == RTCR__VMA_KIND__ANON_PRIVATE ||
						       v->kind == RTCR__VMA_KIND__ANON_SHARED);
}

/* One range of area vi from src, the way that area is filled. */
static int copy_range(struct fill_ctx *f, long vi, uint64_t addr, const void *src, uint64_t len)
{
	const Rtcr__Vma *v = f->mm->vmas[vi];
	ssize_t w;

	if (f->uffd >= 0 && f->registered[vi]) {
		int ret = uffd_copy(f, addr, src, len);
		if (!ret)
			__atomic_add_fetch(&f->uffd_pages, len / PAGE_SIZE, __ATOMIC_RELAXED);
		return ret;
	}
	if ((v->prot & PROT_WRITE) || v->kind == RTCR__VMA_KIND__ANON_SHARED) {
		struct iovec l = { (void *)src, len }, r = { (void *)addr, len };
		return flush_vm(f, &l, &r, 1);
	}
	w = pwrite(f->memfd, src, len, addr);
	if (w == (ssize_t)len)
		return 0;
	pr_err("writing %llu bytes at %#llx of the new process: %s", (unsigned long long)len,
	       (unsigned long long)addr, w < 0 ? strerror(errno) : "short write");
	return w < 0 ? -errno : -EIO;
}

/*
 * An incremental image: the pages its areas inherit come from the parent
 * images, each from the newest one holding it (image_resolve_pages(), the
 * rule merge follows too); one not found fails the restore.
 */
static int fill_inherited(struct fill_ctx *f)
{
	struct img_page_src *src;
	size_t n;
	int ret = image_resolve_pages(f->im, image_proc_index(f->im, f->pid),
				      IMG_RESOLVE_INHERITED_ONLY, &src, &n);

	for (size_t k = 0; k < n && !ret; k++)
		ret = copy_range(f, image_area_index(f->mm, src[k].vaddr), src[k].vaddr, src[k].data,
				 src[k].npages * PAGE_SIZE);
	free(src);
	return ret;
}

/* The areas userfaultfd can fill, registered in MISSING mode (reg[i]). */
static void register_areas(struct fill_ctx *f, bool *reg)
{
	for (size_t i = 0; f->uffd >= 0 && i < f->mm->n_vmas; i++) {
		const Rtcr__Vma *v = f->mm->vmas[i];
		struct uffdio_register r = {
			.range = { v->start, v->end - v->start }, .mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (uffd_fillable(v))
			reg[i] = ioctl(f->uffd, UFFDIO_REGISTER, &r) == 0;
	}
	f->registered = reg;
}

/* Unregister them again (keep_lazy: but the lazy areas). */
static void unregister_areas(struct fill_ctx *f, const bool *reg, bool keep_lazy)
{
	for (size_t i = 0; f->uffd >= 0 && i < f->mm->n_vmas; i++) {
		struct uffdio_range r = { f->mm->vmas[i]->start,
					  f->mm->vmas[i]->end - f->mm->vmas[i]->start };
		if (!reg[i] || (keep_lazy && lazy_area(f->mm->vmas[i])))
			continue;
		if (ioctl(f->uffd, UFFDIO_UNREGISTER, &r) < 0 && !f->err) {
			pr_perror("UFFDIO_UNREGISTER %llx-%llx", (unsigned long long)r.start,
				  (unsigned long long)(r.start + r.len));
			f->err = -errno;
		}
	}
}

int mem_fill_pages_lazy(struct inject *in, struct loaded_image *im, pid_t pid,
			struct lazy_client *lz, struct mem_stats *st)
{
	int pi = image_proc_index(im, pid);
	const Rtcr__Mm *mm = im->mm[pi];
	struct fill_ctx f = { .im = im, .pid = pid, .hpid = in->tid, .memfd = in->memfd, .mm = mm };
	bool *reg = xzalloc((mm->n_vmas + 1) * sizeof(bool));
	bool *skip = xzalloc((mm->n_vmas + 1) * sizeof(bool));
	struct img_page_src *src = NULL;
	uint64_t t0 = now_ns(), npages = 0, lazy = 0;
	size_t n = 0;

	f.uffd = open_child_uffd(in, in->tid, LAZY_UFFD_FEATURES);
	if (f.uffd < 0) {
		if (f.uffd == -1)
			pr_err("pid %d: lazy restore: no userfaultfd with fork, remap, remove and unmap "
			       "events in the new process", pid);
		free(reg);
		free(skip);
		return f.uffd == -1 ? -ENOTSUP : -EIO;
	}
	register_areas(&f, reg);
	for (size_t i = 0; i < mm->n_vmas && !f.err; i++)
		if (lazy_area(mm->vmas[i]) && !reg[i]) {
			char d[300];
			area_name(mm->vmas[i], d, sizeof(d));
			pr_err("pid %d: %s: cannot be registered with userfaultfd for lazy restore",
			       pid, d);
			f.err = -ENOTSUP;
		}
	/* The pages of the other areas, copied now (each record verified
	 * before its first use); those of the lazy areas are the server's,
	 * which finds them itself: their records are not even read here. */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		skip[i] = reg[i] && lazy_area(mm->vmas[i]);
		if (skip[i])
			lazy += mm->vmas[i]->pages_stored + mm->vmas[i]->pages_inherited;
	}
	npages = lazy;
	if (!f.err)
		f.err = image_resolve_pages_skip(im, pi, IMG_RESOLVE_NO_VERIFY, skip, &src, &n);
	for (size_t k = 0; k < n && !f.err; k++) {
		long vi = image_area_index(mm, src[k].vaddr);
		if (vi < 0 || !area_holds_pages(mm->vmas[vi])) {
			f.err = outside_areas(src[k].npages, src[k].vaddr);
			break;
		}
		npages += src[k].npages;
		f.err = image_pages_check(src[k].from, src[k].rec);
		if (!f.err)
			f.err = copy_range(&f, vi, src[k].vaddr, src[k].data, src[k].npages * PAGE_SIZE);
	}
	free(src);
	unregister_areas(&f, reg, true);
	if (!f.err)
		f.err = lazy_add_space(lz, pid, in->tid, f.uffd);
	else
		close(f.uffd);
	free(reg);
	free(skip);
	st->pages += npages;
	st->lazy_pages += lazy;
	st->uffd_pages += f.uffd_pages;
	st->copy_ns += now_ns() - t0;
	return f.err;
}

/* The second filler: on any of rtcr's CPUs (rtcr itself is held on the
 * one it drives the new process on, task/inject.h). */
static void *filler_thread(void *arg)
{
	cpu_set_t all;

	if (!inject_own_cpus(&all))
		sched_setaffinity(0, sizeof(all), &all);
	return filler(arg);
}

int mem_fill_pages(struct inject *in, struct loaded_image *im, pid_t pid, struct mem_stats *st)
{
	int pi = image_proc_index(im, pid);
	const Rtcr__Mm *mm = im->mm[pi];
	struct fill_ctx f = { .im = im, .pid = pid, .hpid = in->tid, .memfd = in->memfd, .mm = mm, .uffd = -1 };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool *reg = xzalloc((mm->n_vmas + 1) * sizeof(bool));
	uint32_t nrec = 0;
	pthread_t th;
	bool two;
	uint64_t t0 = now_ns(), npages = 0;

	for (uint32_t k = 0; k < im->nr_pages_recs; k++)
		nrec += im->pages_pid[k] == pid;
	two = ncpu > 1 && nrec > 1;
	for (size_t k = 0; k < mm->n_vmas; k++)
		npages += mm->vmas[k]->pages_stored;

	f.uffd = open_child_uffd(in, in->tid, 0);
	if (f.uffd == -2) {
		free(reg);
		return -EIO;
	}
	register_areas(&f, reg);
	pthread_mutex_init(&f.lock, NULL);
	if (two && pthread_create(&th, NULL, filler_thread, &f))
		two = false;
	filler(&f);
	if (two)
		pthread_join(th, NULL);
	pthread_mutex_destroy(&f.lock);
	if (!f.err)
		f.err = fill_inherited(&f);
	unregister_areas(&f, reg, false);
	if (f.uffd >= 0)
		close(f.uffd);
	free(reg);
	st->pages += npages;
	st->uffd_pages += f.uffd_pages;
	st->copy_ns += now_ns() - t0;
	return f.err;
}

int mem_finish_areas(struct inject *in, const Rtcr__Mm *mm, const bool *extra_write, int exe_fd)
{
	static const struct { uint64_t bit; int advice; const char *name; } madv[] = {
		{ RTCR_MADV_HUGEPAGE, MADV_HUGEPAGE, "MADV_HUGEPAGE" },
		{ RTCR_MADV_NOHUGEPAGE, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE" },
		{ RTCR_MADV_DONTFORK, MADV_DONTFORK, "MADV_DONTFORK" },
		{ RTCR_MADV_DONTDUMP, MADV_DONTDUMP, "MADV_DONTDUMP" },
		{ RTCR_MADV_WIPEONFORK, MADV_WIPEONFORK, "MADV_WIPEONFORK" },
		{ RTCR_MADV_MERGEABLE, MADV_MERGEABLE, "MADV_MERGEABLE" },
		{ RTCR_MADV_SEQUENTIAL, MADV_SEQUENTIAL, "MADV_SEQUENTIAL" },
		{ RTCR_MADV_RANDOM, MADV_RANDOM, "MADV_RANDOM" },
	};
	size_t cap = mm->n_vmas * 4 + 8, n = 0;
	struct inj_call *calls = xzalloc(cap * sizeof(*calls));
	size_t *area = xzalloc(cap * sizeof(*area));
	const char **what = xzalloc(cap * sizeof(*what));
	struct prctl_mm_map map;
	uint64_t data = inject_data(in);
	int ret = 0;

#define ADD(i, w, sysno, ...) do {							\
		if (n == cap) {							\
			cap *= 2;						\
			calls = xrealloc(calls, cap * sizeof(*calls));		\
			area = xrealloc(area, cap * sizeof(*area));		\
			what = xrealloc(what, cap * sizeof(*what));		\
		}								\
		calls[n] = (struct inj_call){ .nr = sysno, .a = { __VA_ARGS__ } };	\
		area[n] = (i);							\
		what[n++] = (w);						\
	} while (0)

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		uint64_t len = v->end - v->start;

		if (is_vdso_kind(v->kind))
			continue;
		if (extra_write[i])
			ADD(i, "mprotect", __NR_mprotect, v->start, len, v->prot);
		for (size_t k = 0; k < ARRAY_SIZE(madv); k++)
			if (v->madv & madv[k].bit)
				ADD(i, madv[k].name, __NR_madvise, v->start, len, madv[k].advice);
		if (v->locked)
			ADD(i, "mlock", __NR_mlock2, v->start, len, v->lock_onfault ? MLOCK_ONFAULT : 0);
	}
#undef ADD
	ret = run_batch(in, calls, area, n, mm, what);
	free(calls);
	free(area);
	free(what);
	/* Rare, and they need strings or must come last: one call each. */
	for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
		const Rtcr__Vma *v = mm->vmas[i];
		uint64_t len = v->end - v->start;
		char d[300];

		if (is_vdso_kind(v->kind))
			continue;
		area_name(v, d, sizeof(d));
		if (v->anon_name) {
			ret = inject_write(in, data, v->anon_name, strlen(v->anon_name) + 1);
			if (!ret)
				ret = inject_call(in, d, __NR_prctl, PR_SET_VMA, PR_SET_VMA_ANON_NAME, v->start,
					    len, data, 0, NULL);
		}
		if (!ret && v->sealed)
			ret = inject_call(in, d, __NR_mseal, v->start, len, 0, 0, 0, 0, NULL);
	}
	if (ret)
		return ret;

	memset(&map, 0, sizeof(map));
	map.start_code = mm->start_code;
	map.end_code = mm->end_code;
	map.start_data = mm->start_data;
	map.end_data = mm->end_data;
	map.start_brk = mm->start_brk;
	map.brk = mm->brk;
	map.start_stack = mm->start_stack;
	map.arg_start = mm->arg_start;
	map.arg_end = mm->arg_end;
	map.env_start = mm->env_start;
	map.env_end = mm->env_end;
	map.auxv_size = mm->auxv.len;
	map.exe_fd = exe_fd;
	if (mm->auxv.len > SCRATCH_DATA_LEN - sizeof(map)) {
		pr_err("auxv of %zu bytes is too large", mm->auxv.len);
		return -E2BIG;
	}
	map.auxv = (__u64 *)(uintptr_t)(data + sizeof(map));
	ret = inject_write(in, data + sizeof(map), mm->auxv.data, mm->auxv.len);
	if (!ret)
		ret = inject_write(in, data, &map, sizeof(map));
	if (!ret)
		ret = inject_call(in, "setting the memory layout (PR_SET_MM_MAP)", __NR_prctl, PR_SET_MM,
			    PR_SET_MM_MAP, data, sizeof(map), 0, 0, NULL);
	return ret;
}
