/*
 * src/common/proc.c: /proc/PID/status and /proc/PID/stat parsing, on
 * /proc/self and on crafted status text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/util.h"
#include "unit_util.h"

#define NGROUPS_MAX_TEST 1024


/* The parsers' API: proc_status_nums() allocates; these keep the checks
 * below short and leak-free. */
static int nums(const struct proc_status *ps, const char *key, uint64_t *out, int max)
{
	uint64_t *v;
	int n = proc_status_nums(ps, key, &v);
	for (int i = 0; i < n && i < max; i++)
		out[i] = v[i];
	free(v);
	return n < max ? n : max;
}

static const char *value(const struct proc_status *ps, const char *key)
{
	static char *last;
	free(last);
	last = proc_status_dup(ps, key);
	return last;
}

static void test_status_self(void **state)
{
	struct proc_status ps;
	char comm[32];
	const char *v;
	uint64_t n;

	assert_int_equal(proc_status_read(getpid(), &ps), 0);
	/* First line of the file. */
	assert_int_equal(prctl(PR_GET_NAME, comm), 0);
	v = value(&ps, "Name");
	assert_non_null(v);
	assert_string_equal(v, comm);
	v = proc_status_get(&ps, "State");
	assert_non_null(v);
	assert_int_equal(v[0], 'R');
	assert_int_equal(proc_status_u64(&ps, "Pid", &n, 10), 0);
	assert_int_equal(n, getpid());
	assert_int_equal(proc_status_u64(&ps, "PPid", &n, 10), 0);
	assert_int_equal(n, getppid());
	assert_int_equal(proc_status_u64(&ps, "Threads", &n, 10), 0);
	assert_int_equal(n, 1);
	/* Hex capability masks. */
	assert_int_equal(proc_status_u64(&ps, "CapBnd", &n, 16), 0);
	assert_true(n != 0);
	/* Missing keys, and keys that are only a prefix of a real key. */
	assert_null(proc_status_get(&ps, "NoSuchKey"));
	assert_null(proc_status_get(&ps, "Sig"));       /* SigQ, SigPnd, ... */
	assert_null(proc_status_get(&ps, "Cap"));
	assert_null(proc_status_get(&ps, "ame"));        /* not at line start */
	assert_int_equal(proc_status_u64(&ps, "NoSuchKey", &n, 10), -EINVAL);
	assert_int_equal(proc_status_u64(&ps, "Name", &n, 10), -EINVAL);   /* not a number */
	proc_status_free(&ps);
	assert_null(ps.buf);

	assert_int_equal(proc_status_read(0x3fffffff, &ps), -ENOENT);
}

static void test_status_nums_self(void **state)
{
	struct proc_status ps;
	uint64_t v[8];
	gid_t groups[64];
	int ng = getgroups(64, groups);

	assert_int_equal(proc_status_read(getpid(), &ps), 0);
	assert_int_equal(nums(&ps, "Uid", v, 8), 4);
	assert_int_equal(v[0], getuid());
	assert_int_equal(v[1], geteuid());
	assert_int_equal(nums(&ps, "Gid", v, 8), 4);
	assert_int_equal(v[0], getgid());
	assert_int_equal(v[1], getegid());
	assert_int_equal(nums(&ps, "Uid", v, 2), 2);   /* n limits */
	assert_true(ng >= 0 && ng <= 8);
	assert_int_equal(nums(&ps, "Groups", v, 8), ng);
	/* "0/12345": only the number before the slash. */
	assert_int_equal(nums(&ps, "SigQ", v, 8), 1);
	assert_int_equal(nums(&ps, "NoSuchKey", v, 8), 0);
	proc_status_free(&ps);
}

static void test_status_crafted(void **state)
{
	char text[] = "Name:\tx\n"
		      "Uid:\t1\t2   3\t4\n"
		      "Empty:\n"
		      "Spaces:    \t  \n"
		      "Last:\t77 88";    /* no final newline */
	struct proc_status ps = { .buf = text };
	uint64_t v[8];

	assert_string_equal(value(&ps, "Name"), "x");
	assert_int_equal(nums(&ps, "Uid", v, 8), 4);
	assert_int_equal(v[2], 3);
	assert_int_equal(v[3], 4);
	assert_string_equal(value(&ps, "Empty"), "");
	assert_int_equal(nums(&ps, "Empty", v, 8), 0);
	assert_int_equal(nums(&ps, "Spaces", v, 8), 0);
	assert_string_equal(value(&ps, "Last"), "77 88");
	assert_int_equal(nums(&ps, "Last", v, 8), 2);
	assert_int_equal(v[1], 88);

	ps.buf = NULL;
	assert_null(value(&ps, "Name"));
	assert_int_equal(nums(&ps, "Uid", v, 8), 0);
}

/*
 * A "Groups:" line can be far longer than proc_status_get()'s 1024-byte
 * value buffer (up to 65536 groups). Numbers past the cut must not be
 * returned, and above all the number cut in the middle must not come back
 * as a different, smaller gid (creds_dump() stores these as the restored
 * process's supplementary groups).
 */
static void test_status_long_line(void **state)
{
	enum { NG = 200 };
	static char text[32 + NG * 12];
	char *p = text;
	struct proc_status ps;
	uint64_t v[256];
	int n;

	p += sprintf(p, "Name:\tx\nGroups:\t");
	for (int i = 0; i < NG; i++)
		p += sprintf(p, "%d ", 100000 + i);
	p += sprintf(p, "\nUid:\t0\t0\t0\t0\n");
	ps.buf = text;

	n = nums(&ps, "Groups", v, ARRAY_SIZE(v));
	for (int i = 0; i < n; i++)
		if (v[i] != (uint64_t)(100000 + i))
			fail_msg("Groups line of %d numbers (%zu bytes): number %d parsed as %llu, "
				 "want %d (value cut at proc_status_get's 1023 bytes)", NG,
				 strlen("100000 ") * NG, i, (unsigned long long)v[i], 100000 + i);
	if (n != NG)
		fail_msg("Groups line of %d numbers: %d returned (silently cut)", NG, n);
}

/* The same with the real file: as root, give ourselves 200 groups. */
static void test_status_many_groups_self(void **state)
{
	enum { NG = 200 };
	gid_t saved[NGROUPS_MAX_TEST], g[NG];
	int nsaved = getgroups(NGROUPS_MAX_TEST, saved), n;
	struct proc_status ps;
	uint64_t v[256];

	if (geteuid() != 0 || nsaved < 0)
		skip();
	for (int i = 0; i < NG; i++)
		g[i] = 100000 + i;
	assert_int_equal(setgroups(NG, g), 0);
	assert_int_equal(proc_status_read(getpid(), &ps), 0);
	n = nums(&ps, "Groups", v, ARRAY_SIZE(v));
	proc_status_free(&ps);
	assert_int_equal(setgroups(nsaved, saved), 0);
	for (int i = 0; i < n; i++)
		if (v[i] != g[i])
			fail_msg("/proc/self/status Groups: number %d parsed as %llu, want %u", i,
				 (unsigned long long)v[i], g[i]);
	if (n != NG)
		fail_msg("/proc/self/status with %d groups: %d parsed", NG, n);
}

static void test_stat_self(void **state)
{
	uint64_t f[PROC_STAT_FIELDS];
	char st = 0;
	struct rlimit rl;

	memset(f, 0xa5, sizeof(f));
	assert_int_equal(proc_stat_read(getpid(), f, &st), 0);
	assert_int_equal(st, 'R');
	assert_int_equal(f[3], 0);               /* state is not a number */
	assert_int_equal(f[4], getppid());
	assert_int_equal(f[5], getpgrp());
	assert_int_equal(f[6], getsid(0));
	assert_int_equal((int64_t)f[19], 0 + (int64_t)getpriority(PRIO_PROCESS, 0));   /* nice */
	assert_int_equal(f[20], 1);              /* num_threads */
	assert_true(f[22] > 0);                  /* starttime */
	assert_int_equal(getrlimit(RLIMIT_RSS, &rl), 0);
	assert_int_equal(f[25], rl.rlim_cur);    /* rsslim */
	assert_int_equal(f[52], 0);              /* exit_code, the last field */
	/* The state pointer is optional. */
	assert_int_equal(proc_stat_read(getpid(), f, NULL), 0);
	assert_int_equal(f[4], getppid());
	assert_int_equal(proc_stat_read(0x3fffffff, f, NULL), -ENOENT);
}

/* comm may hold spaces and parentheses: fields after it must not shift. */
static void test_stat_odd_comm(void **state)
{
	static const char *const names[] = { "a) b (c", ") ) )", "x 1 2 3", "((" };
	char saved[32];
	uint64_t f[PROC_STAT_FIELDS];
	char st;

	assert_int_equal(prctl(PR_GET_NAME, saved), 0);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		assert_int_equal(prctl(PR_SET_NAME, names[i]), 0);
		assert_int_equal(proc_stat_read(getpid(), f, &st), 0);
		assert_int_equal(st, 'R');
		assert_int_equal(f[4], getppid());
		assert_int_equal(f[20], 1);
		assert_int_equal(f[52], 0);
	}
	assert_int_equal(prctl(PR_SET_NAME, saved), 0);
}

static void *sleeper(void *arg)
{
	pause();
	return NULL;
}

static void test_comm_tasks_limits_ns(void **state)
{
	char comm[64], want[32];
	pid_t *tids;
	pthread_t th;
	uint64_t cur[16], max[16];
	int n;

	assert_int_equal(prctl(PR_GET_NAME, want), 0);
	assert_int_equal(proc_comm(getpid(), getpid(), comm, sizeof(comm)), 0);
	assert_string_equal(comm, want);
	assert_int_equal(proc_comm(getpid(), getpid(), comm, 3), 0);
	assert_int_equal(strlen(comm), 2);

	n = proc_tasks(getpid(), &tids);
	assert_int_equal(n, 1);
	assert_int_equal(tids[0], getpid());
	free(tids);
	assert_int_equal(pthread_create(&th, NULL, sleeper, NULL), 0);
	n = proc_tasks(getpid(), &tids);
	assert_int_equal(n, 2);
	free(tids);
	pthread_cancel(th);
	pthread_join(th, NULL);

	assert_int_equal(proc_limits(getpid(), cur, max), 0);
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit rl;
		assert_int_equal(getrlimit(r, &rl), 0);
		if (cur[r] != rl.rlim_cur || max[r] != rl.rlim_max)
			fail_msg("limit %d: %llu/%llu, getrlimit %llu/%llu", r,
				 (unsigned long long)cur[r], (unsigned long long)max[r],
				 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	}
	assert_int_equal(proc_ns_differs(getpid(), "pid"), 0);
	assert_int_equal(proc_ns_differs(getpid(), "mnt"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_self),
		cmocka_unit_test(test_status_nums_self),
		cmocka_unit_test(test_status_crafted),
		cmocka_unit_test(test_status_long_line),
		cmocka_unit_test(test_status_many_groups_self),
		cmocka_unit_test(test_stat_self),
		cmocka_unit_test(test_stat_odd_comm),
		cmocka_unit_test(test_comm_tasks_limits_ns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
