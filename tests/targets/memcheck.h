/*
 * Helpers for the memory targets (tests/integration/memory.sh): a snapshot
 * of /proc/self/maps compared after restore, VmFlags of one area from
 * /proc/self/smaps, and cheap pattern fill/check.
 *
 * Everything here uses static buffers and raw open/read: the checks after
 * the trigger must not allocate (a malloc could move the break and so
 * change the very layout being compared).
 *
 * Maps are compared by coverage: adjacent lines with the same
 * permissions, inode and name (and, for files, contiguous offsets) are
 * merged first, because the kernel may merge or split identical areas
 * differently once they are recreated. Shared anonymous memory gets a new
 * shmem object on restore, so its inode and offset are not compared.
 */
#ifndef MEMCHECK_H
#define MEMCHECK_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#include "target.h"

#define PG 4096UL

static char proc_buf[1 << 20];

/* Read a /proc file into proc_buf, NUL-terminated; returns its length. */
static inline size_t read_proc(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	while ((r = read(fd, proc_buf + n, sizeof(proc_buf) - 1 - n)) > 0)
		n += r;
	if (r < 0)
		fail("read %s: %s", path, strerror(errno));
	if (n >= sizeof(proc_buf) - 1)
		fail("%s larger than the buffer", path);
	close(fd);
	proc_buf[n] = 0;
	return n;
}

struct mapent {
	unsigned long s, e, off, ino;
	char perms[8];
	char path[256];
};

struct mapsnap {
	int n;
	struct mapent v[1024];
};

static inline int map_is_shmem(const struct mapent *m)
{
	return !strncmp(m->path, "/dev/zero", 9) || !strncmp(m->path, "[anon_shmem:", 12);
}

/*
 * Objects rtcr re-creates at restore: a memfd and a deleted file get a new
 * inode, and a deleted file is re-created with O_TMPFILE, which the
 * kernel names "DIR/#INODE": compare the directory only. (SysV segments
 * keep their id, which is the inode shown.)
 */
static inline void map_normalize_object(struct mapent *m)
{
	size_t n = strlen(m->path);
	if (!strncmp(m->path, "/memfd:", 7)) {
		m->ino = 0;
	} else if (n > 10 && !strcmp(m->path + n - 10, " (deleted)") &&
		   strncmp(m->path, "/SYSV", 5) && strncmp(m->path, "/dev/zero", 9)) {
		char *slash = strrchr(m->path, '/');
		m->ino = 0;
		if (slash)
			snprintf(slash, sizeof(m->path) - (slash - m->path), "/* (deleted)");
	}
}

static inline void map_fmt(const struct mapent *m, char *buf, size_t len)
{
	snprintf(buf, len, "%lx-%lx %s %lx ino %lu %s", m->s, m->e, m->perms, m->off, m->ino,
		 m->path);
}

/* Parse /proc/self/maps and merge by coverage. */
static inline void maps_take(struct mapsnap *ms)
{
	char *line, *next;

	read_proc("/proc/self/maps");
	ms->n = 0;
	for (line = proc_buf; line && *line; line = next) {
		struct mapent m;
		unsigned maj, min;
		int pos = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		memset(&m, 0, sizeof(m));
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &m.s, &m.e, m.perms, &m.off, &maj,
			   &min, &m.ino, &pos) < 7)
			fail("cannot parse maps line '%s'", line);
		if (pos)
			snprintf(m.path, sizeof(m.path), "%s", line + pos);
		if (m.ino == 0 || map_is_shmem(&m)) {
			/* anonymous: offset and shmem inode are not identity */
			m.off = 0;
			m.ino = 0;
		}
		map_normalize_object(&m);
		if (ms->n) {
			struct mapent *p = &ms->v[ms->n - 1];
			if (p->e == m.s && !strcmp(p->perms, m.perms) && p->ino == m.ino &&
			    !strcmp(p->path, m.path) &&
			    (m.ino == 0 || p->off + (p->e - p->s) == m.off)) {
				p->e = m.e;
				continue;
			}
		}
		if (ms->n == (int)(sizeof(ms->v) / sizeof(ms->v[0])))
			fail("too many mappings");
		ms->v[ms->n++] = m;
	}
}

/* The layout now must be the one saved before READY. */
static inline void maps_check(const struct mapsnap *before)
{
	static struct mapsnap now;
	char a[400], b[400];
	int i;

	maps_take(&now);
	for (i = 0; i < before->n && i < now.n; i++) {
		const struct mapent *x = &before->v[i], *y = &now.v[i];
		if (x->s != y->s || x->e != y->e || strcmp(x->perms, y->perms) || x->ino != y->ino ||
		    x->off != y->off || strcmp(x->path, y->path)) {
			map_fmt(x, a, sizeof(a));
			map_fmt(y, b, sizeof(b));
			fail("maps differ: was '%s', now '%s'", a, b);
		}
	}
	if (i < before->n) {
		map_fmt(&before->v[i], a, sizeof(a));
		fail("maps: '%s' is missing after restore", a);
	}
	if (i < now.n) {
		map_fmt(&now.v[i], b, sizeof(b));
		fail("maps: '%s' appeared after restore", b);
	}
}

/* VmFlags of the area holding addr, from /proc/self/smaps (in proc_buf). */
static inline const char *vmflags_of(const void *addr)
{
	unsigned long a = (unsigned long)addr;
	char *line, *next;
	int in = 0;

	read_proc("/proc/self/smaps");
	for (line = proc_buf; line && *line; line = next) {
		unsigned long s, e;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = a >= s && a < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8))
			return line + 8;
	}
	fail("no area holds %p in smaps", addr);
}

static inline int has_vmflag(const char *flags, const char *f)
{
	for (const char *p = flags; *p; p++)
		if (p[0] == f[0] && p[1] == f[1] && (p == flags || p[-1] == ' ') &&
		    (p[2] == ' ' || p[2] == 0))
			return 1;
	return 0;
}

/* A value per 8-byte word, different for every word and every seed. */
static inline uint64_t pat(uint64_t seed, uint64_t i)
{
	uint64_t x = (seed << 40) ^ (i * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e995ULL;
	x ^= x >> 29;
	return x | 1;   /* never zero: a zero page cannot pass for data */
}

static inline void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = pat(seed, i);
}

/* Fails naming the first wrong word. */
static inline void check_fill(const char *what, const void *p, size_t len, uint64_t seed)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != pat(seed, i))
			fail("%s: word %zu (offset %#zx) is %#llx, expected %#llx", what, i, i * 8,
			     (unsigned long long)w[i], (unsigned long long)pat(seed, i));
}

static inline void check_zero(const char *what, const void *p, size_t len)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			fail("%s: word at offset %#zx is %#llx, expected zero", what, i * 8,
			     (unsigned long long)w[i]);
}

/* Number of resident pages in [p, p+len) (mincore). */
static inline size_t resident(void *p, size_t len)
{
	static unsigned char vec[1 << 16];
	size_t n = len / PG, r = 0;
	if (n > sizeof(vec))
		fail("resident(): range too large");
	if (mincore(p, len, vec))
		fail("mincore: %s", strerror(errno));
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

static inline void *map_anon(size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap %zu bytes: %s", len, strerror(errno));
	return p;
}

/*
 * Touch 64 KiB of stack below the caller, so that the checks after the
 * trigger (which run a little deeper) do not grow the [stack] area and
 * change the layout they compare. Call it just before maps_take().
 */
static __attribute__((noinline, unused)) void stack_reserve(void)
{
	volatile char b[64 << 10];
	for (size_t i = sizeof(b); i > 0; i -= 256)
		b[i - 1] = 0;
	__asm__ volatile("" ::: "memory");
}

/* Print something first so stdout's buffer exists before the snapshot. */
static inline void stdout_warm(void)
{
	printf("setting up\n");
	fflush(stdout);
}

#endif
