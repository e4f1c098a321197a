/*
 * A deleted file still mapped (argument: a directory to make it in):
 * 6 pages + 50 bytes, pages 0-2 and 5 written, 3-4 a hole, mode 0640;
 * mapped shared and private (a private copy of page 0), then unlinked
 * and closed. A forked child shares the shared mapping.
 * After restore: contents, holes, the private copy, the private mapping
 * still backed by the file, size, mode, no link, same directory in maps,
 * the child's write seen by the parent.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <signal.h>
#include <sys/prctl.h>

#include "memcheck.h"

#define SZ (5 * PG + 50)

static struct mapsnap before;

int main(int argc, char **argv)
{
	char path[4096], link[96];
	char *s, *p;
	struct stat sb;
	pid_t child;
	int fd, st;
	volatile int *flag;

	if (argc < 2)
		fail("usage: mem_deleted DIR");
	stdout_warm();
	snprintf(path, sizeof(path), "%s/mem_deleted.dat", argv[1]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK(ftruncate(fd, SZ) == 0 && fchmod(fd, 0640) == 0, "ftruncate/fchmod");
	s = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(s != MAP_FAILED && p != MAP_FAILED, "mmap: %s", strerror(errno));
	for (int pg = 0; pg < 3; pg++)
		fill(s + pg * PG, PG, 100 + pg);
	memset(s + 5 * PG, 0x33, 50);
	fill(p, PG, 2);
	CHECK(unlink(path) == 0, "unlink");
	close(fd);
	flag = (volatile int *)(s + 3 * PG + 64);

	fflush(stdout);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a failed test */
		while (*flag != 1)
			tick();
		fill(s + 4 * PG, PG, 44);
		*flag = 2;
		_exit(0);
	}

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	for (int pg = 0; pg < 3; pg++)
		check_fill("pages 0-2", s + pg * PG, PG, 100 + pg);
	check_zero("hole, page 3", s + 3 * PG, PG);
	for (int i = 0; i < 50; i++)
		CHECK(s[5 * PG + i] == 0x33, "tail byte %d", i);
	check_fill("private copy of page 0", p, PG, 2);
	check_fill("private mapping, page 1 (the file's)", p + PG, PG, 101);

	snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx", (unsigned long)s,
		 (unsigned long)s + 6 * PG);
	CHECK(stat(link, &sb) == 0, "stat %s: %s", link, strerror(errno));
	CHECK(sb.st_size == SZ, "size %lld", (long long)sb.st_size);
	CHECK((sb.st_mode & 07777) == 0640, "mode %o", sb.st_mode & 07777);
	CHECK(sb.st_nlink == 0, "the file has %lu links: not deleted", (unsigned long)sb.st_nlink);
	CHECK(access(path, F_OK) < 0, "%s exists again", path);

	fill(s + PG, PG, 9);
	check_fill("private mapping follows the file", p + PG, PG, 9);

	*flag = 1;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child failed");
	CHECK(*flag == 2, "the child's write is not seen");
	check_fill("page written by the child", s + 4 * PG, PG, 44);
	pass();
}
