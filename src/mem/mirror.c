/*
 * rtcr's copy of a running process's pages: see mirror.h.
 */
#include "mem/mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"

int mirror_init(struct mirror *m, pid_t pid)
{
	char path[64];

	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->shmfd = -1;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	m->memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (m->memfd < 0) {
		pr_perror("%s", path);
		return -errno;
	}
	return 0;
}

static void area_free(struct mirror_area *a)
{
	uint64_t len = a->end - a->start;
	if (a->buf)
		munmap(a->buf, len);
	if (a->state)
		munmap(a->state, ALIGN_UP(len / PAGE_SIZE, PAGE_SIZE));
	a->buf = NULL;
	a->state = NULL;
}

void mirror_free(struct mirror *m)
{
	if (!m->pid)
		return;         /* never initialised (all zero) */
	for (int i = 0; i < m->n; i++) {
		area_free(m->a[i]);
		free(m->a[i]);
	}
	free(m->a);
	if (m->memfd >= 0)
		close(m->memfd);
	if (m->shmfd >= 0)
		close(m->shmfd);
	memset(m, 0, sizeof(*m));
	m->memfd = m->shmfd = -1;
}

/* Areas are kept sorted by start (they do not overlap within one list of
 * a round; an old area overlapping a new one is swept at the round's end):
 * the index of the first with start >= start. */
static int lower_bound(const struct mirror *m, uint64_t start)
{
	int lo = 0, hi = m->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (m->a[mid]->start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct mirror_area *mirror_find(struct mirror *m, uint64_t start, uint64_t end)
{
	for (int i = lower_bound(m, start); i < m->n && m->a[i]->start == start; i++)
		if (m->a[i]->end == end)
			return m->a[i];
	return NULL;
}

struct mirror_area *mirror_area(struct mirror *m, uint64_t start, uint64_t end, bool *fresh)
{
	struct mirror_area *a = mirror_find(m, start, end);
	uint64_t len = end - start;

	*fresh = !a;
	if (a) {
		a->seen = true;
		return a;
	}
	a = xzalloc(sizeof(*a));
	a->start = start;
	a->end = end;
	a->buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		      -1, 0);
	a->state = mmap(NULL, ALIGN_UP(len / PAGE_SIZE, PAGE_SIZE), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a->buf == MAP_FAILED || a->state == MAP_FAILED) {
		pr_perror("pid %d: a copy of %#llx-%#llx", m->pid, (unsigned long long)start,
			  (unsigned long long)end);
		if (a->buf == MAP_FAILED)
			a->buf = NULL;
		if (a->state == MAP_FAILED)
			a->state = NULL;
		area_free(a);
		free(a);
		return NULL;
	}
	a->seen = true;
	m->a = xrealloc(m->a, (m->n + 1) * sizeof(*m->a));
	{
		int at = lower_bound(m, start);
		memmove(&m->a[at + 1], &m->a[at], (m->n - at) * sizeof(*m->a));
		m->a[at] = a;
	}
	m->n++;
	return a;
}

void mirror_reset(struct mirror_area *a)
{
	uint64_t len = a->end - a->start;
	madvise(a->buf, len, MADV_DONTNEED);
	madvise(a->state, ALIGN_UP(len / PAGE_SIZE, PAGE_SIZE), MADV_DONTNEED);
}

void mirror_rebase(struct mirror *m)
{
	/* The shared area read last may be another object at the next dump. */
	if (m->shmfd >= 0)
		close(m->shmfd);
	m->shmfd = -1;
	m->shm_start = 0;

	for (int i = 0; i < m->n; i++) {
		struct mirror_area *a = m->a[i];
		uint64_t np = (a->end - a->start) / PAGE_SIZE;
		for (uint64_t p = 0; p < np; p++) {
			uint8_t st = a->state[p];
			uint8_t to = st == MIR_COPIED || st == MIR_INHERIT ? MIR_INHERIT : MIR_UNTOUCHED;
			if (st != to)      /* (state pages never written stay unallocated) */
				a->state[p] = to;
		}
	}
}

void mirror_sweep(struct mirror *m)
{
	int k = 0;
	for (int i = 0; i < m->n; i++) {
		if (!m->a[i]->seen) {
			area_free(m->a[i]);
			free(m->a[i]);
			continue;
		}
		m->a[i]->seen = false;
		m->a[k++] = m->a[i];
	}
	m->n = k;
}

int mirror_flush(struct mirror *m)
{
	size_t want = 0;
	ssize_t got;

	if (!m->nio)
		return 0;
	for (int i = 0; i < m->nio; i++)
		want += m->l[i].iov_len;
	got = process_vm_readv(m->pid, m->l, m->nio, m->r, m->nio, 0);
	/* What was read is copied (a read stops at the first failing iovec). */
	for (ssize_t left = got, i = 0; i < m->nio && left > 0; i++) {
		size_t n = MIN((size_t)left, m->l[i].iov_len) / PAGE_SIZE;
		struct mirror_area *a = m->ioa[i];
		memset(mirror_state(a, a->start + ((char *)m->l[i].iov_base - a->buf)), MIR_COPIED, n);
		m->copied += n;
		left -= m->l[i].iov_len;
	}
	m->nio = 0;
	if (got == (ssize_t)want)
		return 0;
	/* A short read: an area went away while the process ran (rounds), or
	 * changed under a frozen one. The caller decides. */
	return got < 0 ? -errno : -EFAULT;
}

int mirror_copy(struct mirror *m, struct mirror_area *a, const struct vma *v, uint64_t addr,
		uint64_t npages)
{
	char *dst = a->buf + (addr - a->start);
	size_t len = npages * PAGE_SIZE;
	int ret = 0;

	if (v->kind == RTCR__VMA_KIND__ANON_SHARED || v->kind == RTCR__VMA_KIND__SYSV_SHM) {
		/* The object, not this process's page tables. */
		if (m->shmfd < 0 || m->shm_start != v->start) {
			char link[96];
			if (m->shmfd >= 0)
				close(m->shmfd);
			snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", m->pid,
				 (unsigned long long)v->start, (unsigned long long)v->end);
			m->shmfd = open(link, O_RDONLY | O_CLOEXEC);
			if (m->shmfd < 0)
				return -errno;
			m->shm_start = v->start;
		}
		ret = pread_full(m->shmfd, dst, len, v->pgoff * PAGE_SIZE + (addr - v->start));
	} else if (!(v->prot & PROT_READ)) {
		/* PROT_NONE & co: /proc/PID/mem reads with FOLL_FORCE. */
		ret = pread_full(m->memfd, dst, len, addr);
	} else {
		if (m->nio == MIRROR_BATCH && (ret = mirror_flush(m)))
			return ret;     /* this run is not queued: it stays as it was */
		m->l[m->nio] = (struct iovec){ dst, len };
		m->r[m->nio] = (struct iovec){ (void *)addr, len };
		m->ioa[m->nio] = a;
		m->nio++;
		return 0;
	}
	if (ret)
		return ret;
	memset(mirror_state(a, addr), MIR_COPIED, npages);
	m->copied += npages;
	return 0;
}

void mirror_drop_pending(struct mirror *m)
{
	m->nio = 0;
}
