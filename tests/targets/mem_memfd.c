/*
 * memfd mappings, shared with a child:
 *   m1 "rtcr-memfd" 5 pages + 10 bytes, pages 0-2 and the tail written,
 *      page 3 a hole; mode 0640; mapped shared (whole) and private (a
 *      private copy of page 0 written); seals GROW|SHRINK added after
 *   m2 "rtcr-sealed" one page, sealed WRITE|SEAL, mapped read-only shared
 *   m3 "rtcr-nosealing" without MFD_ALLOW_SEALING, mapped shared
 * No fd is kept. After restore: names, sizes, mode, seals, contents, the
 * private copy, the private mapping still backed by the memfd (a write
 * through the shared mapping shows in its unwritten pages), the child's
 * write seen by the parent.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <signal.h>
#include <sys/prctl.h>

#include "memcheck.h"

#define M1 (5 * PG + 10)

static struct mapsnap before;

static int reopen(void *p, size_t len)
{
	char path[96];
	int fd;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + len);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	return fd;
}

static void check_name(void *p, const char *want)
{
	static char line[512];
	char *l;
	unsigned long a = (unsigned long)p;
	read_proc("/proc/self/maps");
	snprintf(line, sizeof(line), "%lx-", a);
	l = strstr(proc_buf, line);
	CHECK(l, "no mapping at %p", p);
	*strchr(l, '\n') = 0;
	CHECK(strstr(l, want), "mapping '%s' is not of %s", l, want);
}

int main(void)
{
	int m1, m2, m3, fd, st;
	char *s1, *p1, *s2, *s3;
	struct stat sb;
	pid_t child;
	volatile int *flag;

	stdout_warm();
	m1 = memfd_create("rtcr-memfd", MFD_ALLOW_SEALING);
	m2 = memfd_create("rtcr-sealed", MFD_ALLOW_SEALING);
	m3 = memfd_create("rtcr-nosealing", 0);
	CHECK(m1 >= 0 && m2 >= 0 && m3 >= 0, "memfd_create: %s", strerror(errno));
	CHECK(ftruncate(m1, M1) == 0 && ftruncate(m2, PG) == 0 && ftruncate(m3, 2 * PG) == 0,
	      "ftruncate");
	CHECK(fchmod(m1, 0640) == 0, "fchmod");
	s1 = mmap(NULL, M1, PROT_READ | PROT_WRITE, MAP_SHARED, m1, 0);
	p1 = mmap(NULL, M1, PROT_READ | PROT_WRITE, MAP_PRIVATE, m1, 0);
	CHECK(s1 != MAP_FAILED && p1 != MAP_FAILED, "mmap: %s", strerror(errno));
	for (int pg = 0; pg < 3; pg++)
		fill(s1 + pg * PG, PG, 100 + pg);
	memset(s1 + 5 * PG, 0x6b, 10);
	fill(p1, PG, 2);           /* private copy of page 0 */
	CHECK(fcntl(m1, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) == 0, "seal: %s", strerror(errno));

	{
		char buf[PG];
		for (size_t i = 0; i < PG; i++)
			buf[i] = (char)(i * 7);
		CHECK(pwrite(m2, buf, PG, 0) == PG, "pwrite");
	}
	CHECK(fcntl(m2, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) == 0, "seal m2: %s", strerror(errno));
	s2 = mmap(NULL, PG, PROT_READ, MAP_SHARED, m2, 0);
	s3 = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, m3, 0);
	CHECK(s2 != MAP_FAILED && s3 != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(s3 + PG, PG, 3);
	close(m1);
	close(m2);
	close(m3);
	flag = (volatile int *)(s3 + 64);

	fflush(stdout);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a failed test */
		while (*flag != 1)
			tick();
		fill(s1 + 4 * PG, PG, 44);
		*flag = 2;
		_exit(0);
	}

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	check_name(s1, "/memfd:rtcr-memfd (deleted)");
	check_name(s2, "/memfd:rtcr-sealed (deleted)");
	check_name(s3, "/memfd:rtcr-nosealing (deleted)");
	for (int pg = 0; pg < 3; pg++)
		check_fill("m1 shared pages 0-2", s1 + pg * PG, PG, 100 + pg);
	check_zero("m1 hole (page 3)", s1 + 3 * PG, PG);
	for (int i = 0; i < 10; i++)
		CHECK(s1[5 * PG + i] == 0x6b, "m1 tail byte %d", i);
	check_fill("m1 private copy of page 0", p1, PG, 2);
	check_fill("m1 private mapping, page 1 (the file's)", p1 + PG, PG, 101);
	for (size_t i = 0; i < PG; i++)
		CHECK(s2[i] == (char)(i * 7), "m2 byte %zu", i);
	check_fill("m3 page 1", s3 + PG, PG, 3);

	fd = reopen(s1, 6 * PG);
	CHECK(fstat(fd, &sb) == 0 && sb.st_size == M1, "m1 size %lld", (long long)sb.st_size);
	CHECK((sb.st_mode & 07777) == 0640, "m1 mode %o", sb.st_mode & 07777);
	CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_GROW | F_SEAL_SHRINK), "m1 seals %#x",
	      fcntl(fd, F_GET_SEALS));
	close(fd);
	fd = reopen(s2, PG);
	CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_WRITE | F_SEAL_SEAL), "m2 seals %#x",
	      fcntl(fd, F_GET_SEALS));
	close(fd);
	fd = reopen(s3, 2 * PG);
	CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL, "m3 seals %#x (made without sealing)",
	      fcntl(fd, F_GET_SEALS));
	close(fd);

	/* The private mapping still reads the memfd where it has no copy. */
	fill(s1 + PG, PG, 9);
	check_fill("m1 private mapping follows the file", p1 + PG, PG, 9);
	check_fill("m1 private copy stays", p1, PG, 2);

	/* One memfd for parent and child. */
	*flag = 1;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child failed");
	CHECK(*flag == 2, "the child's write to m3 is not seen");
	check_fill("m1 page written by the child", s1 + 4 * PG, PG, 44);
	pass();
}
