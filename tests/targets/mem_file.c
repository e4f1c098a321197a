/*
 * File mappings of temporary files the process made (in argv[1]):
 *   priv  MAP_PRIVATE of a 1 MiB file, some pages written (copy-on-write
 *         copies) and the rest not: after restore the written pages hold
 *         the process's data, the others the file's, and the file itself
 *         is unchanged
 *   shr   MAP_SHARED of a 1 MiB file, written through the mapping: the
 *         file holds the data after restore, and the mapping still is
 *         the file's: a write through it after restore shows in pread()
 *   ro    MAP_PRIVATE PROT_READ of the first file, never written
 *   pnone MAP_PRIVATE of the first file, pages 0-3 written, then
 *         mprotect(PROT_NONE): the copies survive
 *   shro  MAP_SHARED PROT_READ of the second file, opened read-only:
 *         a pwrite to the file after restore shows in it
 *   shrw  MAP_SHARED PROT_READ of the second file, opened read-write:
 *         after restore mprotect() can make it writable (the kernel
 *         allows that only if the file was opened for writing), and a
 *         write through it reaches the file
 * No fd of the files stays open: the mappings alone hold them.
 */
#include <sys/stat.h>

#include "memcheck.h"

#define FLEN (1UL << 20)

static struct mapsnap before;
static char path_priv[512], path_shr[512];
static char fbuf[FLEN];

static int cow(size_t pg)
{
	return pg % 3 == 0;
}

static void make_file(const char *path, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	fill(fbuf, FLEN, seed);
	CHECK(write(fd, fbuf, FLEN) == (ssize_t)FLEN, "write %s", path);
	close(fd);
}

static void *map_file(const char *path, int oflags, int prot, int flags)
{
	int fd = open(path, oflags | O_CLOEXEC);
	void *p;
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	p = mmap(NULL, FLEN, prot, flags, fd, 0);
	CHECK(p != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	close(fd);
	return p;
}

static void read_file(const char *path, void *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK(pread(fd, buf, FLEN, 0) == (ssize_t)FLEN, "pread %s", path);
	close(fd);
}

int main(int argc, char **argv)
{
	char *priv, *shr, *ro, *shro, *shrw, *pnone;
	int fd;

	CHECK(argc > 1, "usage: mem_file DIR");
	snprintf(path_priv, sizeof(path_priv), "%s/mem_file.priv", argv[1]);
	snprintf(path_shr, sizeof(path_shr), "%s/mem_file.shared", argv[1]);
	stdout_warm();
	make_file(path_priv, 50);
	make_file(path_shr, 60);

	priv = map_file(path_priv, O_RDONLY, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	for (size_t pg = 0; pg < FLEN / PG; pg++)
		if (cow(pg))
			fill(priv + pg * PG, PG, 5000 + pg);
	ro = map_file(path_priv, O_RDONLY, PROT_READ, MAP_PRIVATE);
	pnone = map_file(path_priv, O_RDONLY, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(pnone, 4 * PG, 55);
	CHECK(mprotect(pnone, FLEN, PROT_NONE) == 0, "mprotect: %s", strerror(errno));
	shr = map_file(path_shr, O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);
	fill(shr, FLEN / 2, 61);    /* first half rewritten through the mapping */
	shro = map_file(path_shr, O_RDONLY, PROT_READ, MAP_SHARED);
	shrw = map_file(path_shr, O_RDWR, PROT_READ, MAP_SHARED);

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	/* The private mapping: CoW pages are the process's, the rest the file's. */
	read_file(path_priv, fbuf);
	check_fill("private file: the file itself", fbuf, FLEN, 50);
	for (size_t pg = 0; pg < FLEN / PG; pg++) {
		char what[80];
		if (cow(pg)) {
			snprintf(what, sizeof(what), "private file mapping, written page %zu", pg);
			check_fill(what, priv + pg * PG, PG, 5000 + pg);
		} else {
			snprintf(what, sizeof(what), "private file mapping, unwritten page %zu", pg);
			CHECK(!memcmp(priv + pg * PG, fbuf + pg * PG, PG), "%s: differs from the file",
			      what);
		}
	}
	CHECK(!memcmp(ro, fbuf, FLEN), "read-only private mapping differs from the file");
	CHECK(mprotect(pnone, FLEN, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	check_fill("PROT_NONE private file mapping, written pages", pnone, 4 * PG, 55);
	CHECK(!memcmp(pnone + 4 * PG, fbuf + 4 * PG, FLEN - 4 * PG),
	      "PROT_NONE private file mapping, unwritten pages differ from the file");

	/* The shared mapping and its file. */
	check_fill("shared file mapping, written half", shr, FLEN / 2, 61);
	read_file(path_shr, fbuf);
	check_fill("shared file: written half in the file", fbuf, FLEN / 2, 61);
	CHECK(!memcmp(shr, fbuf, FLEN), "shared mapping differs from its file");
	{
		/* Unwritten half: still the file's original data. */
		static char orig[FLEN];
		fill(orig, FLEN, 60);
		CHECK(!memcmp(shr + FLEN / 2, orig + FLEN / 2, FLEN / 2),
		      "shared mapping, unwritten half differs from the original file data");
	}
	/* Still the file's pages: a write through the mapping is in the file. */
	fill(shr + 10 * PG, PG, 62);
	fd = open(path_shr, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK(pread(fd, fbuf, PG, 10 * PG) == (ssize_t)PG, "pread");
	close(fd);
	check_fill("write through the shared mapping after restore, read from the file", fbuf, PG,
		   62);
	/* And a write to the file shows in the mapping. */
	fd = open(path_shr, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	fill(fbuf, PG, 63);
	CHECK(pwrite(fd, fbuf, PG, 20 * PG) == (ssize_t)PG, "pwrite");
	close(fd);
	check_fill("pwrite to the file after restore, read through the shared mapping",
		   shr + 20 * PG, PG, 63);
	/* The other shared mappings of that file see all of it. */
	CHECK(!memcmp(shro, shr, FLEN), "read-only shared mapping differs from the writable one");
	CHECK(!memcmp(shrw, shr, FLEN), "second shared mapping differs from the first");
	CHECK(mprotect(shrw, FLEN, PROT_READ | PROT_WRITE) == 0,
	      "mprotect(PROT_WRITE) of a shared mapping of a file opened O_RDWR: %s "
	      "(restored from a read-only open?)", strerror(errno));
	fill(shrw + 30 * PG, PG, 64);
	read_file(path_shr, fbuf);
	check_fill("write through the re-protected shared mapping, read from the file",
		   fbuf + 30 * PG, PG, 64);
	check_fill("write through one shared mapping, read through another", shro + 30 * PG, PG,
		   64);
	errno = 0;
	CHECK(mprotect(shro, FLEN, PROT_READ | PROT_WRITE) < 0 && errno == EACCES,
	      "mprotect(PROT_WRITE) of a shared mapping of a file opened O_RDONLY: %s, "
	      "expected EACCES", errno ? strerror(errno) : "succeeded");

	/* The private mapping stays private: writing a page that was not
	 * copied yet does not reach the file. */
	priv[PG + 1] = 0x77;
	read_file(path_priv, fbuf);
	check_fill("private file after writing its mapping", fbuf, FLEN, 50);
	pass();
}
