/* Identity of a file the image refers to, and its check at restore. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/util.h"
#include "files/files.h"

void fileref_fill(Rtcr__FileRef *r, const char *path, const struct stat *st)
{
	rtcr__file_ref__init(r);
	r->path = xstrdup(path);
	r->size = st->st_size;
	r->mtime_ns = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	r->dev = st->st_dev;
	r->ino = st->st_ino;
	r->mode = st->st_mode;
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		r->has_rdev = 1;
		r->rdev = st->st_rdev;
	}
}

int fileref_check(const Rtcr__FileRef *r, const char *what, bool strict, bool mtime)
{
	struct stat st;

	if (stat(r->path, &st) < 0) {
		int e = errno;
		if (e == ENOENT)
			pr_err("%s: %s is missing", what, r->path);
		else
			pr_err("%s: %s: %s", what, r->path, strerror(e));
		return -e;
	}
	if ((st.st_mode & S_IFMT) != (r->mode & S_IFMT)) {
		pr_err("%s: %s is no longer the same kind of file (mode %o, was %o)", what, r->path,
		       st.st_mode & S_IFMT, r->mode & S_IFMT);
		return -ESTALE;
	}
	if (r->has_rdev && st.st_rdev != r->rdev) {
		pr_err("%s: %s is now device %u:%u, was %u:%u", what, r->path, major(st.st_rdev),
		       minor(st.st_rdev), major(r->rdev), minor(r->rdev));
		return -ESTALE;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != r->size) {
		pr_err("%s: %s changed size since the dump (%llu bytes, was %llu)", what, r->path,
		       (unsigned long long)st.st_size, (unsigned long long)r->size);
		return -ESTALE;
	}
	if (strict && (st.st_dev != r->dev || st.st_ino != r->ino)) {
		pr_err("%s: %s is a different file than at dump time (replaced or renamed over)",
		       what, r->path);
		return -ESTALE;
	}
	if (mtime && S_ISREG(st.st_mode) &&
	    st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != r->mtime_ns) {
		pr_err("%s: %s was modified since the dump (mtime differs)", what, r->path);
		return -ESTALE;
	}
	return 0;
}
