#include "common/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/util.h"

int proc_status_read(pid_t pid, struct proc_status *ps)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	n = read_file(path, &ps->buf);
	return n < 0 ? (int)n : 0;
}

void proc_status_free(struct proc_status *ps)
{
	free(ps->buf);
	ps->buf = NULL;
}

const char *proc_status_get(const struct proc_status *ps, const char *key)
{
	size_t klen = strlen(key);
	const char *p = ps->buf;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			const char *v = p + klen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

char *proc_status_dup(const struct proc_status *ps, const char *key)
{
	const char *v = proc_status_get(ps, key);
	size_t n;
	char *s;

	if (!v)
		return NULL;
	n = strcspn(v, "\n");
	s = xmalloc(n + 1);
	memcpy(s, v, n);
	s[n] = 0;
	return s;
}

int proc_status_u64(const struct proc_status *ps, const char *key, uint64_t *v, int base)
{
	const char *s = proc_status_get(ps, key);
	char *end;
	if (!s)
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, base);
	return errno || end == s ? -EINVAL : 0;
}

int proc_status_nums(const struct proc_status *ps, const char *key, uint64_t **v)
{
	const char *s = proc_status_get(ps, key);
	int n = 0, cap = 16;

	*v = xmalloc(cap * sizeof(**v));
	if (!s)
		return 0;
	for (;;) {
		char *end;
		uint64_t x;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '\n')
			break;
		x = strtoull(s, &end, 10);
		if (end == s)
			break;
		if (n == cap)
			*v = xrealloc(*v, (cap *= 2) * sizeof(**v));
		(*v)[n++] = x;
		s = end;
	}
	return n;
}

int proc_stat_read(pid_t pid, uint64_t f[PROC_STAT_FIELDS], char *state)
{
	char path[64], *buf, *p;
	int k = 3;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	n = read_file(path, &buf);
	if (n < 0)
		return (int)n;
	memset(f, 0, PROC_STAT_FIELDS * sizeof(*f));
	p = strrchr(buf, ')');   /* comm may contain anything but ends at the last ')' */
	if (!p || p[1] != ' ') {
		free(buf);
		return -EINVAL;
	}
	p += 2;
	if (state)
		*state = *p;
	p += 1;
	while (*p && k < PROC_STAT_FIELDS - 1) {
		char *end;
		k++;
		f[k] = strtoull(p, &end, 10);
		if (end == p)
			break;
		p = end;
	}
	free(buf);
	return 0;
}

int proc_comm(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[64], *s;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	n = read_file(path, &s);
	if (n < 0)
		return (int)n;
	if (n > 0 && s[n - 1] == '\n')
		s[n - 1] = 0;
	snprintf(buf, len, "%s", s);
	free(s);
	return 0;
}

int proc_tasks(pid_t pid, pid_t **tids)
{
	char path[64];
	struct dirent *de;
	int n = 0, cap = 8;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	*tids = xmalloc(cap * sizeof(pid_t));
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap)
			*tids = xrealloc(*tids, (cap *= 2) * sizeof(pid_t));
		(*tids)[n++] = atoi(de->d_name);
	}
	closedir(d);
	return n;
}

int proc_children(pid_t pid, pid_t **kids)
{
	pid_t *tids;
	int nt = proc_tasks(pid, &tids), n = 0, cap = 8;

	if (nt < 0)
		return nt;
	*kids = xmalloc(cap * sizeof(pid_t));
	for (int i = 0; i < nt; i++) {
		char path[96], *buf, *p;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[i]);
		if (read_file(path, &buf) < 0)
			continue;
		for (p = buf; *p; ) {
			char *end;
			long v = strtol(p, &end, 10);
			if (end == p)
				break;
			if (n == cap)
				*kids = xrealloc(*kids, (cap *= 2) * sizeof(pid_t));
			(*kids)[n++] = v;
			p = end;
		}
		free(buf);
	}
	free(tids);
	return n;
}

/* NSpid of a task (or of a thread with path "task/TID" under pid). */
static int ns_ids(const char *path, uint64_t **v)
{
	struct proc_status ps;
	int n;

	if (read_file(path, &ps.buf) < 0)
		return -errno;
	n = proc_status_nums(&ps, "NSpid", v);
	proc_status_free(&ps);
	if (n > 0)
		return n;
	free(*v);
	return -ENOENT;
}

pid_t proc_ns_id(pid_t tid)
{
	char path[64];
	uint64_t *v;
	pid_t id;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	n = ns_ids(path, &v);
	if (n < 0)
		return n;
	id = v[n - 1];
	free(v);
	return id;
}

int proc_ns_depth(pid_t tid)
{
	char path[64];
	uint64_t *v;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	n = ns_ids(path, &v);
	if (n < 0)
		return n;
	free(v);
	return n - 1;
}

pid_t proc_host_tid(pid_t pid, pid_t nstid)
{
	pid_t *tids, found = -ESRCH;
	int nt = proc_tasks(pid, &tids);

	for (int i = 0; i < nt && found < 0; i++) {
		char path[96];
		uint64_t *v;
		int n;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tids[i]);
		n = ns_ids(path, &v);
		if (n <= 0)
			continue;
		if ((pid_t)v[n - 1] == nstid)
			found = tids[i];
		free(v);
	}
	if (nt >= 0)
		free(tids);
	return nt < 0 ? nt : found;
}

int proc_limits(pid_t pid, uint64_t cur[16], uint64_t max[16])
{
	/* Rows in the order of the RLIMIT_* numbers. */
	char path[64], *buf, *line;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	if (read_file(path, &buf) < 0)
		return -errno;
	line = strchr(buf, '\n');          /* skip the title row */
	while (line && *++line && r < RLIM_NLIMITS) {
		/* "Max cpu time   unlimited   unlimited   seconds": the name
		 * column is 26 characters wide. */
		char a[32], b[32];
		if (strlen(line) < 26 || sscanf(line + 26, "%31s %31s", a, b) != 2)
			break;
		cur[r] = !strcmp(a, "unlimited") ? RLIM_INFINITY : strtoull(a, NULL, 10);
		max[r] = !strcmp(b, "unlimited") ? RLIM_INFINITY : strtoull(b, NULL, 10);
		r++;
		line = strchr(line, '\n');
	}
	free(buf);
	return r == RLIM_NLIMITS ? 0 : -EINVAL;
}

/* rtcr's own namespaces, stat'ed once (~7 us each, 8 per process a
 * dump checks): forgotten when rtcr enters another (proc_ns_forget()). */
static struct {
	char name[8];
	dev_t dev;
	ino_t ino;
} self_ns[8];
static int nself_ns;

void proc_ns_forget(void)
{
	nself_ns = 0;
}

static int self_ns_of(const char *name, struct stat *st)
{
	char b[64];

	for (int i = 0; i < nself_ns; i++)
		if (!strcmp(self_ns[i].name, name)) {
			st->st_dev = self_ns[i].dev;
			st->st_ino = self_ns[i].ino;
			return 0;
		}
	snprintf(b, sizeof(b), "/proc/self/ns/%s", name);
	if (stat(b, st) < 0)
		return -1;
	if (nself_ns < (int)ARRAY_SIZE(self_ns) && strlen(name) < sizeof(self_ns[0].name)) {
		strcpy(self_ns[nself_ns].name, name);
		self_ns[nself_ns].dev = st->st_dev;
		self_ns[nself_ns].ino = st->st_ino;
		nself_ns++;
	}
	return 0;
}

int proc_ns_differs(pid_t pid, const char *name)
{
	char a[64];
	struct stat s1, s2;

	snprintf(a, sizeof(a), "/proc/%d/ns/%s", pid, name);
	if (stat(a, &s1) < 0 || self_ns_of(name, &s2) < 0)
		return errno == ENOENT ? 0 : -errno;
	return s1.st_ino != s2.st_ino || s1.st_dev != s2.st_dev;
}
