/*
 * src/files/fileref.c: a file the image refers to, checked at restore:
 * missing, kind changed, device changed, size changed, mtime changed,
 * replaced by another inode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/files.h"
#include "unit_util.h"

struct ctx {
	char *dir;
	char path[4096];
	Rtcr__FileRef ref;
};

static void write_text(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(s, f);
	assert_int_equal(fclose(f), 0);
}

static void set_mtime(const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void ref_of(struct ctx *c, const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	fileref_fill(&c->ref, path, &st);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	c->dir = tmpdir_make();
	snprintf(c->path, sizeof(c->path), "%s/lib.so", c->dir);
	write_text(c->path, "0123456789");
	set_mtime(c->path, 1600000000, 123456789);
	ref_of(c, c->path);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	free(c->ref.path);
	tmpdir_remove(c->dir);
	free(c);
	return 0;
}

/* fileref_check, expecting ret and (if ret) msg in the log. */
static void check_ref(struct ctx *c, bool strict, bool mtime, int ret, const char *msg)
{
	const char *log;
	int got;

	log_capture_begin();
	got = fileref_check(&c->ref, "mapped file", strict, mtime);
	log = log_capture_end();
	if (got != ret)
		fail_msg("fileref_check(strict=%d, mtime=%d) = %d, want %d; log: %s", strict, mtime,
			 got, ret, log);
	if (msg && !strstr(log, msg))
		fail_msg("log lacks \"%s\": %s", msg, log);
	if (ret) {
		assert_non_null(strstr(log, "mapped file"));
		assert_non_null(strstr(log, c->ref.path));
	}
}

static void test_fill(void **state)
{
	struct ctx *c = *state;
	Rtcr__FileRef r;
	struct stat st;

	assert_string_equal(c->ref.path, c->path);
	assert_int_equal(c->ref.size, 10);
	assert_int_equal(c->ref.mtime_ns, 1600000000123456789LL);
	assert_true(S_ISREG(c->ref.mode));
	assert_false(c->ref.has_rdev);

	assert_int_equal(stat("/dev/null", &st), 0);
	fileref_fill(&r, "/dev/null", &st);
	assert_true(r.has_rdev);
	assert_int_equal(r.rdev, st.st_rdev);
	free(r.path);
}

static void test_unchanged(void **state)
{
	struct ctx *c = *state;
	check_ref(c, true, true, 0, NULL);
	check_ref(c, false, false, 0, NULL);
	/* Reading it or changing its permissions changes nothing that matters. */
	assert_int_equal(chmod(c->path, 0600), 0);
	check_ref(c, true, true, 0, NULL);
}

static void test_missing(void **state)
{
	struct ctx *c = *state;
	char p[4096];

	assert_int_equal(unlink(c->path), 0);
	check_ref(c, false, false, -ENOENT, "is missing");
	/* A path through a regular file: not "missing", the real error. */
	free(c->ref.path);
	snprintf(p, sizeof(p), "%s/lib.so/x", c->dir);
	write_text(c->path, "0123456789");
	c->ref.path = strdup(p);
	check_ref(c, false, false, -ENOTDIR, "Not a directory");
}

static void test_size_changed(void **state)
{
	struct ctx *c = *state;

	write_text(c->path, "01234567890");
	set_mtime(c->path, 1600000000, 123456789);   /* same mtime: size alone */
	check_ref(c, false, false, -ESTALE, "changed size");
	check_ref(c, true, true, -ESTALE, "changed size");
	assert_int_equal(truncate(c->path, 0), 0);
	check_ref(c, false, false, -ESTALE, "changed size");
}

static void test_mtime_changed(void **state)
{
	struct ctx *c = *state;

	/* Same size, same inode, content rewritten. */
	write_text(c->path, "abcdefghij");
	check_ref(c, false, true, -ESTALE, "modified since the dump");
	check_ref(c, true, true, -ESTALE, "modified since the dump");
	/* Without the mtime check it passes (what fd restore asks for). */
	check_ref(c, true, false, 0, NULL);
	/* One nanosecond is a change. */
	set_mtime(c->path, 1600000000, 123456790);
	check_ref(c, false, true, -ESTALE, "modified");
	set_mtime(c->path, 1600000000, 123456789);
	check_ref(c, true, true, 0, NULL);
}

static void test_replaced_inode(void **state)
{
	struct ctx *c = *state;
	char tmp[4096];

	/* Same name, size and mtime, but another file renamed over it. */
	snprintf(tmp, sizeof(tmp), "%s/new", c->dir);
	write_text(tmp, "0123456789");
	set_mtime(tmp, 1600000000, 123456789);
	assert_int_equal(rename(tmp, c->path), 0);
	check_ref(c, true, true, -ESTALE, "different file");
	check_ref(c, true, false, -ESTALE, "different file");
	/* Not strict (another machine or boot): inode numbers mean nothing. */
	check_ref(c, false, true, 0, NULL);
}

static void test_kind_changed(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(unlink(c->path), 0);
	assert_int_equal(mkdir(c->path, 0700), 0);
	check_ref(c, false, false, -ESTALE, "same kind of file");
	assert_int_equal(rmdir(c->path), 0);
	assert_int_equal(symlink("/dev/null", c->path), 0);
	/* stat follows the link: a character device now. */
	check_ref(c, false, false, -ESTALE, "same kind of file");
}

static void test_device_changed(void **state)
{
	struct ctx *c = *state;
	struct stat zero;

	free(c->ref.path);
	ref_of(c, "/dev/null");
	check_ref(c, true, true, 0, NULL);
	assert_int_equal(stat("/dev/zero", &zero), 0);
	c->ref.rdev = zero.st_rdev;
	check_ref(c, false, false, -ESTALE, "is now device 1:3, was 1:5");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_fill),
		T(test_unchanged),
		T(test_missing),
		T(test_size_changed),
		T(test_mtime_changed),
		T(test_replaced_inode),
		T(test_kind_changed),
		T(test_device_changed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
