/*
 * File locks across a checkpoint. argv[1]: a directory. Before READY:
 *   fd 10 DIR/fl   flock LOCK_EX
 *   fd 11 DIR/fl2  flock LOCK_SH
 *   fd 12 DIR/px   POSIX write lock on bytes 10-29, read lock 100-EOF;
 *   fd 15          dup of fd 12 (the same description)
 *   fd 13 DIR/ofd  OFD write lock on byte 5, OFD read lock 50-59
 *   fd 14 DIR/map  POSIX write lock 0-4095, and mapped MAP_SHARED (the
 *                  restore opens the file for the mapping and closes
 *                  that open again, which must not cost the lock)
 * and a child that inherits every fd and blocks in F_SETLKW for a write
 * lock on DIR/px 20-24 (the parent holds it).
 *
 * After the trigger, a checker (a fresh child, its own opens) finds every
 * lock exactly (F_GETLK, F_OFD_GETLK, flock LOCK_NB: type, range, holder)
 * and the gaps free; then the parent releases them one by one, the
 * checker finds each free, and the blocked child gets its lock (its
 * F_SETLKW went on across the checkpoint) and exits 0.
 */
#include "target.h"

#include <sys/prctl.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>

static char dir[3000];
static pid_t holder;

static const char *path(const char *name)
{
	static char p[4][3100];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing fd at %d: %s", at, strerror(errno));
	close(fd);
}

static void setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	CHECK(!fcntl(fd, cmd, &fl), "fd %d: lock %d %lld+%lld: %s", fd, type, (long long)start,
	      (long long)len, strerror(errno));
}

/* In the checker: what F_GETLK (or F_OFD_GETLK) says about a 'type' lock
 * on [start, start+len). Returns the conflicting lock's type or F_UNLCK. */
static short getlk(const char *name, int cmd, short type, off_t start, off_t len, struct flock *out)
{
	int fd = open(path(name), O_RDWR);
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	CHECK(fd >= 0, "open %s", name);
	CHECK(!fcntl(fd, cmd, &fl), "getlk %s: %s", name, strerror(errno));
	close(fd);
	if (out)
		*out = fl;
	return fl.l_type;
}

static void held(const char *name, int cmd, short probe, off_t at, short type, off_t start, off_t len)
{
	struct flock fl;
	short t = getlk(name, cmd, probe, at, 1, &fl);
	pid_t want = cmd == F_GETLK ? holder : -1;
	CHECK(t == type && fl.l_start == start && fl.l_len == len && fl.l_pid == want,
	      "%s byte %lld: found type %d %lld+%lld pid %d, expected type %d %lld+%lld pid %d", name,
	      (long long)at, t, (long long)fl.l_start, (long long)fl.l_len, fl.l_pid, type,
	      (long long)start, (long long)len, want);
}

static void free_at(const char *name, int cmd, short probe, off_t at)
{
	struct flock fl;
	CHECK(getlk(name, cmd, probe, at, 1, &fl) == F_UNLCK, "%s byte %lld (probe %d): locked by %d",
	      name, (long long)at, probe, fl.l_pid);
}

/* flock probe on a new description: 0 if 'op' could be taken. */
static int flock_probe(const char *name, int op)
{
	int fd = open(path(name), O_RDONLY), r;
	CHECK(fd >= 0, "open %s", name);
	r = flock(fd, op | LOCK_NB);
	if (r && errno != EWOULDBLOCK)
		fail("flock %s: %s", name, strerror(errno));
	close(fd);
	return r;
}

/* Run 'stage' of the checks in a fresh child: it holds nothing. */
static void check(int stage)
{
	pid_t c = fork();
	int st;
	CHECK(c >= 0, "fork");
	if (c == 0) {
		switch (stage) {
		case 0:  /* everything held, exactly */
			CHECK(flock_probe("fl", LOCK_SH), "fl: LOCK_EX not held");
			CHECK(!flock_probe("fl2", LOCK_SH), "fl2: a second LOCK_SH refused");
			CHECK(flock_probe("fl2", LOCK_EX), "fl2: LOCK_SH not held");
			free_at("px", F_GETLK, F_WRLCK, 9);
			held("px", F_GETLK, F_RDLCK, 10, F_WRLCK, 10, 20);
			held("px", F_GETLK, F_RDLCK, 29, F_WRLCK, 10, 20);
			free_at("px", F_GETLK, F_WRLCK, 30);
			free_at("px", F_GETLK, F_WRLCK, 99);
			free_at("px", F_GETLK, F_RDLCK, 100);
			held("px", F_GETLK, F_WRLCK, 100, F_RDLCK, 100, 0);
			held("px", F_GETLK, F_WRLCK, 1 << 30, F_RDLCK, 100, 0);
			free_at("ofd", F_OFD_GETLK, F_WRLCK, 4);
			held("ofd", F_OFD_GETLK, F_RDLCK, 5, F_WRLCK, 5, 1);
			free_at("ofd", F_OFD_GETLK, F_WRLCK, 6);
			free_at("ofd", F_OFD_GETLK, F_WRLCK, 49);
			free_at("ofd", F_OFD_GETLK, F_RDLCK, 50);
			held("ofd", F_OFD_GETLK, F_WRLCK, 59, F_RDLCK, 50, 10);
			free_at("ofd", F_OFD_GETLK, F_WRLCK, 60);
			held("map", F_GETLK, F_RDLCK, 0, F_WRLCK, 0, 4096);
			held("map", F_GETLK, F_RDLCK, 4095, F_WRLCK, 0, 4096);
			free_at("map", F_GETLK, F_WRLCK, 4096);
			break;
		case 1:  /* all released */
			CHECK(!flock_probe("fl", LOCK_EX), "fl: still locked");
			CHECK(!flock_probe("fl2", LOCK_EX), "fl2: still locked");
			free_at("px", F_GETLK, F_WRLCK, 10);
			free_at("px", F_GETLK, F_WRLCK, 1000);
			free_at("ofd", F_OFD_GETLK, F_WRLCK, 5);
			free_at("ofd", F_OFD_GETLK, F_WRLCK, 55);
			free_at("map", F_GETLK, F_WRLCK, 0);
			break;
		}
		_exit(0);
	}
	CHECK(waitpid(c, &st, 0) == c, "waitpid checker");
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail("checker stage %d failed (status %#x)", stage, st);
}

/* Blocked in a system call nr? (/proc/PID/syscall) */
static int in_syscall(pid_t p, long nr)
{
	char f[64], b[256];
	FILE *fp;
	long n = -1;
	snprintf(f, sizeof(f), "/proc/%d/syscall", p);
	fp = fopen(f, "r");
	if (!fp)
		return 0;
	if (!fgets(b, sizeof(b), fp))
		b[0] = 0;
	fclose(fp);
	n = strtol(b, NULL, 10);
	return n == nr;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "fl", "fl2", "px", "ofd", "map" };
	char *m;
	pid_t waiter;
	int st;

	snprintf(dir, sizeof(dir), "%s", argc > 1 ? argv[1] : "/tmp");
	holder = getpid();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int fd = open(path(names[i]), O_RDWR | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0 && !ftruncate(fd, 8192), "create %s", names[i]);
		close(fd);
	}
	place(open(path("fl"), O_RDONLY), 10);
	place(open(path("fl2"), O_RDONLY), 11);
	place(open(path("px"), O_RDWR), 12);
	place(open(path("ofd"), O_RDWR), 13);
	place(open(path("map"), O_RDWR), 14);
	CHECK(dup2(12, 15) == 15, "dup2");
	CHECK(!flock(10, LOCK_EX) && !flock(11, LOCK_SH), "flock");
	setlk(12, F_SETLK, F_WRLCK, 10, 20);
	setlk(12, F_SETLK, F_RDLCK, 100, 0);
	setlk(13, F_OFD_SETLK, F_WRLCK, 5, 1);
	setlk(13, F_OFD_SETLK, F_RDLCK, 50, 10);
	setlk(14, F_SETLK, F_WRLCK, 0, 4096);
	m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, 14, 0);
	CHECK(m != MAP_FAILED, "mmap");
	memcpy(m, "mapped", 6);

	waiter = fork();
	CHECK(waiter >= 0, "fork");
	if (waiter == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 5 };
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlives a failed test */
		int r = fcntl(12, F_SETLKW, &fl);
		if (r)
			_exit(10 + (errno & 63));
		/* Got it: the parent released its lock. It is this process's now. */
		if (getppid() != holder)
			_exit(3);
		_exit(0);
	}
	for (int i = 0; i < 5000 && !in_syscall(waiter, SYS_fcntl); i++)
		usleep(1000);
	CHECK(in_syscall(waiter, SYS_fcntl), "the waiter is not blocked in fcntl");
	check(0);
	ready();
	trigger_wait();

	CHECK(!memcmp(m, "mapped", 6), "mapping lost its contents");
	/* Back in its F_SETLKW once it runs again (not failed with EINTR). */
	for (int i = 0; i < 5000 && !in_syscall(waiter, SYS_fcntl); i++) {
		if (waitpid(waiter, &st, WNOHANG) == waiter)
			fail("the waiter ended (status %#x) instead of waiting on", st);
		usleep(1000);
	}
	CHECK(in_syscall(waiter, SYS_fcntl), "the waiter is not blocked in fcntl after the restore");
	check(0);
	/* Release the waiter's range only: it gets it; the rest stays held. */
	setlk(12, F_SETLK, F_UNLCK, 20, 5);
	CHECK(waitpid(waiter, &st, 0) == waiter, "waitpid waiter");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the waiter: status %#x", st);
	CHECK(!flock(10, LOCK_UN) && !flock(11, LOCK_UN), "flock LOCK_UN");
	setlk(12, F_SETLK, F_UNLCK, 0, 0);
	setlk(13, F_OFD_SETLK, F_UNLCK, 0, 0);
	setlk(14, F_SETLK, F_UNLCK, 0, 0);
	check(1);
	pass();
}
