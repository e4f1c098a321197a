/*
 * Regular files deleted while open ("PATH (deleted)"). Once the process
 * is gone nothing holds the file, so it is a memory object like a
 * deleted file that is mapped (mem/deleted.c): contents, size, owner and
 * mode stored once in the OBJECTS record, shared with the areas that map
 * it and with every fd on it. The fd entry keeps the object's identity,
 * open flags and offset; memobj_collect_fds() links it to the object.
 *
 * Restore: the object is an unnamed file (O_TMPFILE) in the original
 * directory, made before the descriptions are opened; the fd is a fresh
 * open of it through /proc/self/fd with the saved flags and offset.
 *
 * Refused by name: a file above 64 MiB (its contents go into the image),
 * a file still linked under another name (re-creating it would cut that
 * link).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "files/files.h"

#define DELETED_MAX_SIZE (64ULL << 20)

static bool deleted_match(const struct fd_info *fi)
{
	size_t n = strlen(fi->link);
	return fi->link[0] == '/' && n > 10 && !strcmp(fi->link + n - 10, " (deleted)") &&
	       S_ISREG(fi->st.st_mode) && strncmp(fi->link, "/memfd:", 7);
}

static int deleted_fd_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
			   Rtcr__Files *files)
{
	char name[PATH_MAX];
	size_t n = strlen(fi->link) - 10;

	snprintf(name, sizeof(name), "%.*s", (int)MIN(n, sizeof(name) - 1), fi->link);
	if (fi->st.st_nlink > 0) {
		pr_err("fd %d: %s: file deleted while open but still linked under another name "
		       "(%lu links): not supported", fi->fd, fi->link, (unsigned long)fi->st.st_nlink);
		return -ENOTSUP;
	}
	if ((uint64_t)fi->st.st_size > DELETED_MAX_SIZE) {
		pr_err("fd %d: %s: file deleted while open, %llu MiB: above the %llu MiB rtcr stores "
		       "in the image: not supported", fi->fd, fi->link,
		       (unsigned long long)fi->st.st_size >> 20, DELETED_MAX_SIZE >> 20);
		return -ENOTSUP;
	}
	out->deleted = objfd_fill(fi, name);
	return 0;
}

static int deleted_fd_check(const Rtcr__Fd *e, const struct files_restore_ctx *ctx)
{
	if (!e->deleted) {
		pr_err("fd %d: image entry lacks its deleted file", e->fd);
		return -EINVAL;
	}
	return 0;
}

static int deleted_fd_open(const Rtcr__Fd *e, struct files_restore_ctx *ctx)
{
	return objfd_open(e, e->deleted, ctx, "deleted file");
}

static void deleted_fd_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	objfd_describe(e->deleted, "deleted", buf, len);
}

const struct fd_ops deleted_fd_ops = {
	.name = "deleted file",
	.kind = RTCR__FD_KIND__FD_DELETED,
	.match = deleted_match,
	.dump = deleted_fd_dump,
	.check = deleted_fd_check,
	.open = deleted_fd_open,
	.describe = deleted_fd_describe,
};
