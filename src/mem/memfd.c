/*
 * memfd mappings (memobj.h): "/memfd:NAME (deleted)" in /proc/PID/maps.
 *
 * Dump: through /proc/PID/map_files rtcr opens the memfd itself: its
 * size and mode (fstat), its seals (F_GET_SEALS) and its data
 * (SEEK_DATA/SEEK_HOLE). A memfd made without MFD_ALLOW_SEALING shows the
 * single seal F_SEAL_SEAL; that is how the flag is told.
 *
 * Restore: memfd_create() with the same name and MFD_ALLOW_SEALING as
 * made, the mode, the data, the size; the seals go on last, once every
 * process has mapped it (a write seal forbids writable shared mappings
 * made after it, which the process may have made before it). Areas map
 * it, shared or private, from a reopen of rtcr's fd (/proc/self/fd/N in
 * the restoring child), like any mapped file.
 */
#include "mem/memobj.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#endif

int memfd_dump(struct memobj *o, const char *path, int fd)
{
	const char *p = path + strlen("/memfd:");
	size_t n = strlen(p) - strlen(" (deleted)");
	char d[512];
	struct stat st;
	int seals;

	o->pb->name = xzalloc(n + 1);
	memcpy(o->pb->name, p, n);
	snprintf(d, sizeof(d), "memfd:%s", o->pb->name);
	if (fstat(fd, &st) < 0) {
		pr_perror("%s: fstat", d);
		return -errno;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) {
		pr_perror("%s: F_GET_SEALS", d);
		return -errno;
	}
	o->pb->size = st.st_size;
	o->pb->has_mode = o->pb->has_seals = o->pb->has_memfd_flags = 1;
	o->pb->mode = st.st_mode & 07777;
	o->pb->seals = seals;
	o->pb->memfd_flags = seals == F_SEAL_SEAL ? 0 : MFD_ALLOW_SEALING;
	return memobj_file_contents(o, fd, d);
}

int memfd_recreate(struct memobj_rt *rt, struct loaded_image *im, int min_fd)
{
	const Rtcr__MemObject *o = rt->o;
	char d[300];
	int fd, ret;

	memobj_describe(o, d, sizeof(d));
	fd = memfd_create(o->name, MFD_CLOEXEC | (o->memfd_flags & MFD_ALLOW_SEALING));
	if (fd < 0) {
		pr_perror("%s: memfd_create", d);
		return -errno;
	}
	if (o->has_mode && fchmod(fd, o->mode & 07777) < 0) {
		ret = -errno;
		pr_perror("%s: setting mode %o", d, o->mode & 07777);
		close(fd);
		return ret;
	}
	ret = memobj_fill(im, o, NULL, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	fd = memobj_fd_above(fd, min_fd, d);
	if (fd < 0)
		return fd;
	rt->fd = fd;
	return 0;
}

int memfd_seal(struct memobj_rt *rt)
{
	int cur = fcntl(rt->fd, F_GET_SEALS);
	char d[300];

	if (cur < 0 || (unsigned)cur == rt->o->seals || !(rt->o->seals & ~(unsigned)cur))
		return 0;
	if (fcntl(rt->fd, F_ADD_SEALS, rt->o->seals & ~(unsigned)cur) < 0) {
		pr_perror("%s: adding seals %#x", memobj_describe(rt->o, d, sizeof(d)), rt->o->seals);
		return -errno;
	}
	return 0;
}
