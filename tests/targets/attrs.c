/*
 * Process attributes, one per mode (argv[1]):
 *
 *   cwd DIR      chdir into DIR, create DIR/marker; after: getcwd is DIR
 *                and the relative name opens the same file
 *   umask        umask 027; after: umask reads 027, new files get 0640
 *   rlimits      lower soft (and some hard) limits; after: all 16 read
 *                back the same; RLIMIT_NOFILE is enforced
 *   comm         PR_SET_NAME; after: PR_GET_NAME and /proc/self/comm
 *   personality  UNAME26|ADDR_NO_RANDOMIZE; after: same, and uname says 2.6
 *   rie          READ_IMPLIES_EXEC; after: same, and every mapped byte has
 *                the protections it had (/proc/self/maps; areas may merge)
 *   rseq         glibc's rseq area: after, the kernel keeps its cpu_id
 *                up to date when we move between CPUs, and another
 *                registration fails (one is registered)
 *   nnp          PR_SET_NO_NEW_PRIVS
 *   dumpable     PR_SET_DUMPABLE 0
 *   pdeathsig    PR_SET_PDEATHSIG SIGUSR1, with a handler: after the
 *                check prints CHECKED and waits for the signal (the test
 *                kills rtcr restore, the parent) and prints PASS from it
 *   subreaper    PR_SET_CHILD_SUBREAPER; after: an orphaned grandchild
 *                is reparented to us
 */
#include "target.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static void m_cwd(const char *dir)
{
	char buf[4096];
	struct stat a, b;
	int fd;

	if (chdir(dir))
		fail("chdir %s: %s", dir, strerror(errno));
	fd = open("marker", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0 || fstat(fd, &a))
		fail("marker: %s", strerror(errno));
	close(fd);
	ready();
	trigger_wait();
	CHECK(getcwd(buf, sizeof(buf)), "getcwd: %s", strerror(errno));
	CHECK(!strcmp(buf, dir), "cwd is %s, was %s", buf, dir);
	CHECK(stat("marker", &b) == 0, "relative marker: %s", strerror(errno));
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "relative marker is another file");
	pass();
}

static void m_umask(void)
{
	char probe[4096];
	struct stat st;
	mode_t m;
	int fd;

	umask(027);
	ready();
	trigger_wait();
	m = umask(0);
	CHECK(m == 027, "umask is %03o, was 027", m);
	umask(m);
	/* A new file next to the trigger file (in the test's own dir). */
	snprintf(probe, sizeof(probe), "%s.umask-probe", trigger_path());
	unlink(probe);
	fd = open(probe, O_CREAT | O_WRONLY | O_EXCL, 0666);
	CHECK(fd >= 0 && fstat(fd, &st) == 0, "probe file %s: %s", probe, strerror(errno));
	close(fd);
	unlink(probe);
	CHECK((st.st_mode & 0777) == 0640, "new file mode %03o, expected 640", st.st_mode & 0777);
	pass();
}

static void m_rlimits(void)
{
	static const struct { int r; rlim_t cur, max; int set_max; } set[] = {
		{ RLIMIT_NOFILE, 64, 0, 0 },
		{ RLIMIT_CORE, 4096, 1 << 20, 1 },
		{ RLIMIT_STACK, 4 << 20, 0, 0 },
		{ RLIMIT_CPU, 1000, 2000, 1 },
		{ RLIMIT_FSIZE, 1ULL << 30, 0, 0 },
		{ RLIMIT_DATA, 1ULL << 34, 0, 0 },
		{ RLIMIT_AS, 1ULL << 40, 0, 0 },
		{ RLIMIT_NPROC, 500, 0, 0 },
		{ RLIMIT_MEMLOCK, 4096, 0, 0 },
		{ RLIMIT_MSGQUEUE, 4096, 0, 0 },
		{ RLIMIT_SIGPENDING, 1000, 0, 0 },
		{ RLIMIT_LOCKS, 100, 200, 1 },
		{ RLIMIT_RTTIME, 1000000, 2000000, 1 },
	};
	struct rlimit before[RLIM_NLIMITS], after[RLIM_NLIMITS];

	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		struct rlimit rl;
		getrlimit(set[i].r, &rl);
		rl.rlim_cur = set[i].cur;
		if (set[i].set_max)
			rl.rlim_max = set[i].max;
		if (rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		if (setrlimit(set[i].r, &rl))
			fail("setrlimit %d: %s", set[i].r, strerror(errno));
	}
	for (int r = 0; r < RLIM_NLIMITS; r++)
		getrlimit(r, &before[r]);
	ready();
	trigger_wait();
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		getrlimit(r, &after[r]);
		CHECK(after[r].rlim_cur == before[r].rlim_cur && after[r].rlim_max == before[r].rlim_max,
		      "limit %d: %llx/%llx, was %llx/%llx", r, (unsigned long long)after[r].rlim_cur,
		      (unsigned long long)after[r].rlim_max, (unsigned long long)before[r].rlim_cur,
		      (unsigned long long)before[r].rlim_max);
	}
	CHECK(dup2(0, 63) == 63, "dup2 to fd 63 under RLIMIT_NOFILE 64: %s", strerror(errno));
	close(63);
	CHECK(dup2(0, 64) < 0 && errno == EBADF, "dup2 to fd 64 allowed under RLIMIT_NOFILE 64");
	pass();
}

static void m_comm(void)
{
	const char *name = "rtcr-comm-h2";
	char got[32] = "", proc[64] = "";
	FILE *f;

	prctl(PR_SET_NAME, name, 0, 0, 0);
	ready();
	trigger_wait();
	prctl(PR_GET_NAME, got, 0, 0, 0);
	CHECK(!strcmp(got, name), "PR_GET_NAME says '%s', was '%s'", got, name);
	f = fopen("/proc/self/comm", "r");
	CHECK(f && fgets(proc, sizeof(proc), f), "/proc/self/comm: %s", strerror(errno));
	fclose(f);
	proc[strcspn(proc, "\n")] = 0;
	CHECK(!strcmp(proc, name), "/proc/self/comm says '%s'", proc);
	pass();
}

/* The areas of /proc/self/maps: range, protections, name. */
struct area {
	unsigned long start, end;
	char perms[8], path[200];
};

static int read_maps(struct area *v, int max)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		fail("/proc/self/maps: %s", strerror(errno));
	while (n < max && fgets(line, sizeof(line), f)) {
		v[n].path[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %199s", &v[n].start, &v[n].end, v[n].perms,
			   v[n].path) >= 3)
			n++;
	}
	fclose(f);
	return n;
}

/* Every byte covered before is covered now with the same protections and
 * name. Adjacent areas may merge or split: that is not a difference. */
static void same_protections(const struct area *b, int nb, const struct area *a, int na)
{
	for (int i = 0; i < nb; i++) {
		unsigned long at = b[i].start;
		for (int j = 0; j < na && at < b[i].end; j++) {
			if (a[j].end <= at || a[j].start > at)
				continue;
			CHECK(!strcmp(a[j].perms, b[i].perms) && !strcmp(a[j].path, b[i].path),
			      "%lx-%lx %s %s is now %lx-%lx %s %s", b[i].start, b[i].end, b[i].perms,
			      b[i].path, a[j].start, a[j].end, a[j].perms, a[j].path);
			at = a[j].end;
		}
		CHECK(at >= b[i].end, "%lx-%lx %s %s: %lx on not mapped any more", b[i].start,
		      b[i].end, b[i].perms, b[i].path, at);
	}
}

static void m_personality(int rie)
{
	unsigned long want = PER_LINUX | (rie ? READ_IMPLIES_EXEC : (UNAME26 | ADDR_NO_RANDOMIZE));
	static struct area before[512], after[512];
	int nb = 0, na;
	struct utsname u;
	int p;

	if (personality(want) < 0)
		fail("personality: %s", strerror(errno));
	if (rie) {
		/* One area mapped after the switch (so it is r-x) and the rest. */
		void *a = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(a != MAP_FAILED, "mmap: %s", strerror(errno));
		nb = read_maps(before, 512);
	}
	p = personality(0xffffffff);
	CHECK((unsigned long)p == want, "personality %#x right after setting %#lx", p, want);
	ready();
	trigger_wait();
	p = personality(0xffffffff);
	CHECK((unsigned long)p == want, "personality %#x, was %#lx", p, want);
	if (rie) {
		na = read_maps(after, 512);
		same_protections(before, nb, after, na);
	} else {
		uname(&u);
		CHECK(!strncmp(u.release, "2.6.", 4), "UNAME26: uname release %s", u.release);
	}
	pass();
}

static int getcpu_raw(void)
{
	unsigned cpu = ~0U;
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	return (int)cpu;
}

static void m_rseq(void)
{
	struct rseq *rs;
	cpu_set_t allowed;
	int ncpus = 0, moves = 0;
	long r;

	if (__rseq_size == 0)
		skip("glibc did not register rseq");
	rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	CHECK((int)rs->cpu_id >= 0, "before dump: rseq cpu_id %d", (int)rs->cpu_id);
	sched_getaffinity(0, sizeof(allowed), &allowed);
	ready();
	trigger_wait();

	CHECK((int)rs->cpu_id >= 0, "rseq cpu_id %d", (int)rs->cpu_id);
	/* Move around: a registered area follows. */
	for (int round = 0; round < 2; round++)
		for (int c = 0; c < CPU_SETSIZE; c++) {
			cpu_set_t one;
			if (!CPU_ISSET(c, &allowed))
				continue;
			ncpus += round == 0;
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			if (sched_setaffinity(0, sizeof(one), &one))
				continue;
			CHECK(getcpu_raw() == c, "not on cpu %d after setaffinity", c);
			CHECK((int)rs->cpu_id == c, "on cpu %d, rseq cpu_id says %d: not registered?",
			      c, (int)rs->cpu_id);
			moves++;
		}
	sched_setaffinity(0, sizeof(allowed), &allowed);
	/* A registration of the same area finds it registered (EBUSY); of
	 * another, finds another registered (EINVAL). Success = none was. */
	r = syscall(SYS_rseq, rs, 32, 0, RSEQ_SIG);
	CHECK(r < 0 && errno == EBUSY, "re-registering glibc's rseq area: %ld (%s), expected EBUSY",
	      r, r < 0 ? strerror(errno) : "succeeded");
	{
		static struct rseq other __attribute__((aligned(32)));
		r = syscall(SYS_rseq, &other, 32, 0, RSEQ_SIG);
		CHECK(r < 0 && (errno == EINVAL || errno == EBUSY),
		      "registering a second rseq area: %ld (%s)", r,
		      r < 0 ? strerror(errno) : "succeeded");
	}
	printf("rseq: %d cpus, %d moves checked\n", ncpus, moves);
	pass();
}

static void m_prctl_flag(const char *what)
{
	if (!strcmp(what, "nnp")) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		ready();
		trigger_wait();
		CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs lost");
	} else {
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		ready();
		trigger_wait();
		CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, "dumpable is %d, was 0",
		      prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
	}
	pass();
}

static void on_pdeath(int sig)
{
	static const char m[] = "PASS\n";
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(2);
	_exit(0);
}

static void m_pdeathsig(void)
{
	int s = -1;

	signal(SIGUSR1, on_pdeath);
	prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
	ready();
	trigger_wait();
	prctl(PR_GET_PDEATHSIG, &s, 0, 0, 0);
	CHECK(s == SIGUSR1, "parent-death signal %d, was %d", s, SIGUSR1);
	printf("CHECKED\n");
	fflush(stdout);
	for (int i = 0; i < 10000; i++)
		tick();
	fail("no parent-death signal within 10 s");
}

static void m_subreaper(void)
{
	int fds[2], v = -1;
	pid_t ch, gc = 0, pp = 0;

	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	ready();
	trigger_wait();
	prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0);
	CHECK(v == 1, "child subreaper is %d", v);
	if (pipe(fds))
		fail("pipe");
	ch = fork();
	if (ch == 0) {
		pid_t mid = getpid();
		if (fork() == 0) {
			/* Wait until orphaned, report our new parent. */
			pid_t me = getpid(), p;
			while (getppid() == mid)
				usleep(1000);
			p = getppid();
			if (write(fds[1], &me, sizeof(me)) < 0 || write(fds[1], &p, sizeof(p)) < 0)
				_exit(1);
			_exit(0);
		}
		_exit(0);
	}
	waitpid(ch, NULL, 0);
	/* The grandchild's parent is gone: it must now be ours. */
	if (read(fds[0], &gc, sizeof(gc)) != sizeof(gc) || read(fds[0], &pp, sizeof(pp)) != sizeof(pp))
		fail("grandchild report");
	CHECK(pp == getpid(), "orphaned grandchild reparented to %d, not to us (%d)", pp, getpid());
	CHECK(waitpid(gc, NULL, 0) == gc, "cannot reap the grandchild");
	pass();
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	if (!strcmp(m, "cwd") && argc > 2)
		m_cwd(argv[2]);
	if (!strcmp(m, "umask"))
		m_umask();
	if (!strcmp(m, "rlimits"))
		m_rlimits();
	if (!strcmp(m, "comm"))
		m_comm();
	if (!strcmp(m, "personality"))
		m_personality(0);
	if (!strcmp(m, "rie"))
		m_personality(1);
	if (!strcmp(m, "rseq"))
		m_rseq();
	if (!strcmp(m, "nnp") || !strcmp(m, "dumpable"))
		m_prctl_flag(m);
	if (!strcmp(m, "pdeathsig"))
		m_pdeathsig();
	if (!strcmp(m, "subreaper"))
		m_subreaper();
	fail("usage: attrs cwd DIR|umask|rlimits|comm|personality|rie|rseq|nnp|dumpable|pdeathsig|subreaper");
}
