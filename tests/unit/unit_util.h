/*
 * Test helper (header only): capture rtcr's log messages, temporary
 * directories, file existence.
 */
#ifndef RTCR_TEST_UNIT_UTIL_H
#define RTCR_TEST_UNIT_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* ---- log capture: messages go to a memfd until log_capture_end() ---- */

static int log_capture_fd = -1;
static char log_captured[65536];

static void log_capture_begin(void)
{
	if (log_capture_fd >= 0)
		close(log_capture_fd);
	log_capture_fd = memfd_create("rtcr-test-log", MFD_CLOEXEC);
	if (log_capture_fd < 0)
		abort();
	log_set_level(LOG_WARN);
	log_set_fd(log_capture_fd);
}

/* Stops capturing and returns everything logged meanwhile (also echoed
 * to stderr, indented, so a failing test shows what rtcr said). */
static const char *log_capture_end(void)
{
	ssize_t n;

	log_set_fd(STDERR_FILENO);
	log_captured[0] = 0;
	if (log_capture_fd < 0)
		return log_captured;
	n = pread(log_capture_fd, log_captured, sizeof(log_captured) - 1, 0);
	log_captured[n > 0 ? n : 0] = 0;
	close(log_capture_fd);
	log_capture_fd = -1;
	if (getenv("RTCR_TEST_SHOW_LOG"))
		fprintf(stderr, "    [log] %s", log_captured);
	return log_captured;
}

/* Silence rtcr's messages (for loops over thousands of bad inputs). */
static void log_quiet(bool quiet)
{
	log_set_level(quiet ? -1 : LOG_WARN);
}

/* ---- temporary directories ---- */

static char *tmpdir_make(void)
{
	char *d = strdup("/tmp/rtcr-unit-XXXXXX");
	if (!d || !mkdtemp(d))
		abort();
	return d;
}

/* Remove dir and everything in it (one level of subdirectories). */
static void tmpdir_remove(char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
				char sub[4096];
				snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
				tmpdir_remove(strdup(sub));
			}
		}
		closedir(d);
	}
	rmdir(dir);
	free(dir);
}

static bool path_exists(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

/* Number of entries in dir besides . and .. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

#endif
