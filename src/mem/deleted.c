/*
 * Deleted files that are still mapped (memobj.h): "PATH (deleted)" in
 * /proc/PID/maps. Once the process is gone nothing holds the file, so its
 * contents go into the image (read through /proc/PID/map_files), with
 * its size, owner and mode.
 *
 * Restore: an unnamed file (O_TMPFILE) in the original directory, which
 * must exist (preflight says so, naming the path), filled and given its
 * owner and mode; areas map it like any file. /proc/PID/maps then shows
 * it as "DIR/#INODE (deleted)": the kernel names O_TMPFILE files so.
 */
#include "mem/memobj.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

int deleted_dump(struct memobj *o, const char *path, int fd)
{
	size_t n = strlen(path) - strlen(" (deleted)");
	char d[PATH_MAX + 32];
	struct stat st;

	o->pb->name = xzalloc(n + 1);
	memcpy(o->pb->name, path, n);
	snprintf(d, sizeof(d), "deleted file %s", o->pb->name);
	if (fstat(fd, &st) < 0) {
		pr_perror("%s: fstat", d);
		return -errno;
	}
	o->pb->size = st.st_size;
	o->pb->has_mode = o->pb->has_uid = o->pb->has_gid = 1;
	o->pb->mode = st.st_mode & 07777;
	o->pb->uid = st.st_uid;
	o->pb->gid = st.st_gid;
	return memobj_file_contents(o, fd, d);
}

static char *dir_of(const char *path)
{
	char *tmp = xstrdup(path), *d = xstrdup(dirname(tmp));
	free(tmp);
	return d;
}

int deleted_check(const Rtcr__MemObject *o)
{
	char *dir = dir_of(o->name);
	struct stat st;
	int ret = 0;

	if (o->name[0] != '/' || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		pr_err("deleted file %s (mapped by the process): its directory %s does not exist here, "
		       "so it cannot be re-created", o->name, dir);
		ret = -ENOENT;
	}
	free(dir);
	return ret;
}

int deleted_recreate(struct memobj_rt *rt, struct loaded_image *im, int min_fd)
{
	const Rtcr__MemObject *o = rt->o;
	char *dir = dir_of(o->name);
	char d[PATH_MAX + 32];
	int fd, ret;

	memobj_describe(o, d, sizeof(d));
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		pr_perror("%s: creating an unnamed file (O_TMPFILE) in %s to re-create it", d, dir);
		free(dir);
		return ret;
	}
	free(dir);
	ret = memobj_fill(im, o, NULL, fd);
	if (!ret && o->has_uid && fchown(fd, o->uid, o->gid) < 0) {
		ret = -errno;
		pr_perror("%s: setting owner %u:%u", d, o->uid, o->gid);
	}
	if (!ret && o->has_mode && fchmod(fd, o->mode & 07777) < 0) {
		ret = -errno;
		pr_perror("%s: setting mode %o", d, o->mode & 07777);
	}
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
