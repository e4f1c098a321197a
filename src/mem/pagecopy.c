/*
 * Copying the pages of a frozen process into PAGES records.
 *
 * Two threads overlap the two copies a dump makes: a reader pulls chunks
 * of pages out of the target (process_vm_readv: one call for up to 1024
 * runs; /proc/PID/mem for areas the process cannot read itself; the
 * shmem object for shared anonymous memory) and checksums each while it
 * is still in cache; the caller's thread writes the previous chunk to the
 * image stream. Writing is the slow side (the image's page cache must be
 * allocated), so the reader takes the checksum. With two cores the dump
 * runs at the speed of the writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "mem/mem.h"

#define CHUNK_PAGES 1024      /* 4 MiB */
#define CHUNK_RUNS  1024      /* = IOV_MAX: one process_vm_readv per chunk */
#define NR_CHUNKS   3

struct chunk {
	struct img_page_run runs[CHUNK_RUNS];
	uint32_t nr_runs;
	uint64_t npages;
	struct imgw_pages_rec rec;    /* prepared (checksummed) by the reader */
	char *buf;
};

struct copier {
	pid_t pid;
	const struct vma_list *vl;
	int memfd;                    /* /proc/PID/mem */
	int shmfd;                    /* map_files of the current shared area */
	int shm_vma;
	uint64_t chunk_pages;         /* <= CHUNK_PAGES */
	/* iteration state of the reader */
	int vi;
	uint32_t ri;
	uint64_t roff;                /* pages consumed of runs[ri] */
	uint64_t at;                  /* stream offset of the next record */
	/* ring */
	struct chunk chunks[NR_CHUNKS];
	int head, tail, count;        /* filled chunks: [tail, tail+count) */
	bool done, failed;
	int err;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* Readable by the process itself, so process_vm_readv works. */
static bool vm_readable(const struct vma *v)
{
	return (v->prot & PROT_READ) && v->kind != RTCR__VMA_KIND__ANON_SHARED;
}

static int read_vm(struct copier *c, struct iovec *l, struct iovec *r, int n)
{
	size_t want = 0;
	ssize_t got;

	for (int i = 0; i < n; i++)
		want += l[i].iov_len;
	got = process_vm_readv(c->pid, l, n, r, n, 0);
	if (got == (ssize_t)want)
		return 0;
	/* A short read means an area changed under a frozen process: never
	 * store half a chunk. */
	pr_err("pid %d: reading memory: %s (%zd of %zu bytes)", c->pid,
	       got < 0 ? strerror(errno) : "short read", got, want);
	return got < 0 ? -errno : -EIO;
}

static int read_fd(int fd, void *buf, size_t len, off_t off, const char *what)
{
	int ret = pread_full(fd, buf, len, off);
	if (ret)
		pr_err("%s: reading %zu bytes at %#llx: %s", what, len, (unsigned long long)off,
		       strerror(-ret));
	return ret;
}

/* Fill one chunk from the iteration state; returns pages read (0 = end). */
static int fill_chunk(struct copier *c, struct chunk *ch)
{
	struct iovec l[CHUNK_RUNS], r[CHUNK_RUNS];
	int nio = 0, ret;
	char *dst = ch->buf;

	ch->nr_runs = 0;
	ch->npages = 0;
	while (c->vi < c->vl->nr && ch->npages < c->chunk_pages && ch->nr_runs < CHUNK_RUNS) {
		const struct vma *v = &c->vl->v[c->vi];
		uint64_t start, n;
		size_t len;

		if (c->ri >= v->pages.nr) {
			c->vi++;
			c->ri = 0;
			c->roff = 0;
			continue;
		}
		start = v->pages.v[c->ri].start + c->roff * PAGE_SIZE;
		n = MIN(v->pages.v[c->ri].npages - c->roff, c->chunk_pages - ch->npages);
		len = n * PAGE_SIZE;
		ch->runs[ch->nr_runs].vaddr = start;
		ch->runs[ch->nr_runs].npages = n;
		ch->nr_runs++;
		ch->npages += n;

		if (v->mirror) {
			/* A live dump's copy, taken while the process was frozen or
			 * unchanged since (mem/live.h). */
			memcpy(dst, v->mirror + (start - v->start), len);
		} else if (vm_readable(v)) {
			l[nio].iov_base = dst;
			l[nio].iov_len = len;
			r[nio].iov_base = (void *)start;
			r[nio].iov_len = len;
			nio++;
		} else if (v->kind == RTCR__VMA_KIND__ANON_SHARED) {
			if (c->shm_vma != c->vi) {
				char link[96];
				if (c->shmfd >= 0)
					close(c->shmfd);
				snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", c->pid,
					 (unsigned long long)v->start, (unsigned long long)v->end);
				c->shmfd = open(link, O_RDONLY | O_CLOEXEC);
				if (c->shmfd < 0) {
					pr_perror("%s", link);
					return -errno;
				}
				c->shm_vma = c->vi;
			}
			ret = read_fd(c->shmfd, dst, len, v->pgoff * PAGE_SIZE + (start - v->start),
				      "shared memory");
			if (ret)
				return ret;
		} else {
			/* PROT_NONE & co: /proc/PID/mem reads with FOLL_FORCE. */
			ret = read_fd(c->memfd, dst, len, start, "/proc/PID/mem");
			if (ret)
				return ret;
		}
		dst += len;
		c->roff += n;
		if (c->roff == v->pages.v[c->ri].npages) {
			c->ri++;
			c->roff = 0;
		}
	}
	if (nio) {
		ret = read_vm(c, l, r, nio);
		if (ret)
			return ret;
	}
	return (int)ch->npages;
}

static void *reader(void *arg)
{
	struct copier *c = arg;

	for (;;) {
		struct chunk *ch;
		int n;

		pthread_mutex_lock(&c->lock);
		while (c->count == NR_CHUNKS && !c->failed)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->failed) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		ch = &c->chunks[c->head];
		pthread_mutex_unlock(&c->lock);

		n = fill_chunk(c, ch);
		if (n > 0)
			c->at = imgw_pages_prepare(&ch->rec, c->at, c->pid, ch->runs, ch->nr_runs,
						   ch->buf, ch->npages);

		pthread_mutex_lock(&c->lock);
		if (n < 0) {
			c->failed = true;
			c->err = n;
		} else if (n == 0) {
			c->done = true;
		} else {
			c->head = (c->head + 1) % NR_CHUNKS;
			c->count++;
		}
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		if (n <= 0)
			return NULL;
	}
}

int mem_dump_pages(struct imgw *w, pid_t pid, const struct vma_list *vl, struct mem_stats *st)
{
	struct copier *c = xzalloc(sizeof(*c));
	uint64_t t0 = now_ns();
	uint64_t total = 0;
	pthread_t th;
	bool started = false;
	char path[64];
	int ret = 0;

	c->pid = pid;
	c->vl = vl;
	c->at = w->s->pos;
	c->shmfd = -1;
	c->shm_vma = -1;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	c->memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->memfd < 0) {
		ret = -errno;
		pr_perror("%s", path);
		free(c);
		return ret;
	}
	for (int i = 0; i < vl->nr; i++)
		total += vl->v[i].pages.npages;
	c->chunk_pages = MIN(CHUNK_PAGES, MAX(total, 1));
	for (int i = 0; i < NR_CHUNKS; i++) {
		c->chunks[i].buf = mmap(NULL, c->chunk_pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c->chunks[i].buf == MAP_FAILED) {
			ret = -errno;
			pr_perror("chunk buffer");
			c->chunks[i].buf = NULL;
		}
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	if (!ret) {
		ret = -pthread_create(&th, NULL, reader, c);
		if (ret)
			pr_err("starting the page reader: %s", strerror(-ret));
		started = !ret;
	}

	while (!ret) {
		struct chunk *ch;

		pthread_mutex_lock(&c->lock);
		while (!c->count && !c->done && !c->failed)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->failed) {
			ret = c->err;
			pthread_mutex_unlock(&c->lock);
			break;
		}
		if (!c->count && c->done) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		ch = &c->chunks[c->tail];
		pthread_mutex_unlock(&c->lock);

		ret = imgw_put_prepared(w, &ch->rec, ch->runs, ch->buf);

		pthread_mutex_lock(&c->lock);
		if (ret) {
			c->failed = true;
		} else {
			c->tail = (c->tail + 1) % NR_CHUNKS;
			c->count--;
		}
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
	if (started) {
		pthread_mutex_lock(&c->lock);
		if (ret)
			c->failed = true;     /* let a waiting reader go */
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(th, NULL);
	}
	for (int i = 0; i < NR_CHUNKS; i++)
		if (c->chunks[i].buf)
			munmap(c->chunks[i].buf, c->chunk_pages * PAGE_SIZE);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	if (c->shmfd >= 0)
		close(c->shmfd);
	close(c->memfd);
	free(c);
	st->copy_ns += now_ns() - t0;
	return ret;
}
