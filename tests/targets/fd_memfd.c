/*
 * memfds held as fds, with and without a mapping. Before READY:
 *   "shared" (MFD_ALLOW_SEALING, F_SEAL_SHRINK): 3 pages of a pattern,
 *           mapped MAP_SHARED; fd 10 O_RDWR at offset 5, fd 11 a second
 *           description of it, O_RDONLY (reopened through /proc/self/fd)
 *           at offset 0, FD_CLOEXEC;
 *   "alone" (no sealing): 1 MiB, data only in its first and 512th KiB,
 *           never mapped; fd 12 O_RDWR|O_APPEND at offset 1234.
 * After the trigger: names, sizes, flags, offsets, seals as they were;
 * the data is back; what is written through fd 10 shows in the mapping
 * and what is written in the mapping shows through fd 11 (one object).
 */
#include "target.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define SZ (3 * 4096)

static char pat(size_t i)
{
	return (char)('a' + (i * 7) % 26);
}

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing fd at %d: %s", at, strerror(errno));
	close(fd);
}

static void link_is(int fd, const char *want)
{
	char p[64], l[256];
	ssize_t n;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	CHECK(n > 0, "readlink fd %d", fd);
	l[n] = 0;
	CHECK(!strcmp(l, want), "fd %d is %s, expected %s", fd, l, want);
}

int main(void)
{
	char *m, buf[SZ], path[64];
	struct stat a, b;
	int fd;

	place(memfd_create("shared", MFD_ALLOW_SEALING), 10);
	for (size_t i = 0; i < SZ; i++)
		buf[i] = pat(i);
	CHECK(pwrite(10, buf, SZ, 0) == SZ, "write shared");
	CHECK(!fcntl(10, F_ADD_SEALS, F_SEAL_SHRINK), "F_ADD_SEALS");
	m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, 10, 0);
	CHECK(m != MAP_FAILED, "mmap");
	CHECK(lseek(10, 5, SEEK_SET) == 5, "lseek");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", 10);
	place(open(path, O_RDONLY), 11);
	CHECK(!fcntl(11, F_SETFD, FD_CLOEXEC), "FD_CLOEXEC");

	place(memfd_create("alone", 0), 12);
	CHECK(!ftruncate(12, 1 << 20), "ftruncate");
	CHECK(pwrite(12, "first", 5, 0) == 5 && pwrite(12, "middle", 6, 512 << 10) == 6, "write alone");
	CHECK(lseek(12, 1234, SEEK_SET) == 1234, "lseek 12");
	CHECK(!fcntl(12, F_SETFL, O_APPEND), "O_APPEND");
	ready();
	trigger_wait();

	link_is(10, "/memfd:shared (deleted)");
	link_is(11, "/memfd:shared (deleted)");
	link_is(12, "/memfd:alone (deleted)");
	CHECK(!fstat(10, &a) && !fstat(11, &b) && a.st_ino == b.st_ino, "fd 10 and 11 differ");
	CHECK(a.st_size == SZ, "shared has %lld bytes", (long long)a.st_size);
	CHECK((fcntl(10, F_GETFL) & O_ACCMODE) == O_RDWR, "fd 10 not O_RDWR");
	CHECK((fcntl(11, F_GETFL) & O_ACCMODE) == O_RDONLY, "fd 11 not O_RDONLY");
	CHECK(fcntl(11, F_GETFD) == FD_CLOEXEC && fcntl(10, F_GETFD) == 0, "FD_CLOEXEC");
	CHECK(lseek(10, 0, SEEK_CUR) == 5 && lseek(11, 0, SEEK_CUR) == 0, "offsets %lld %lld",
	      (long long)lseek(10, 0, SEEK_CUR), (long long)lseek(11, 0, SEEK_CUR));
	CHECK(fcntl(10, F_GET_SEALS) == F_SEAL_SHRINK, "seals %#x", fcntl(10, F_GET_SEALS));
	CHECK(ftruncate(10, 4096) < 0 && errno == EPERM, "shrinking a F_SEAL_SHRINK memfd worked");
	CHECK(pread(11, buf, SZ, 0) == SZ, "read shared");
	for (size_t i = 0; i < SZ; i++)
		CHECK(buf[i] == pat(i) && m[i] == pat(i), "shared byte %zu", i);
	/* One object: fd -> mapping, mapping -> the other description. */
	CHECK(write(10, "XYZ", 3) == 3, "write fd 10");
	CHECK(!memcmp(m + 5, "XYZ", 3), "write through fd 10 not in the mapping");
	m[100] = '#';
	CHECK(pread(11, buf, 1, 100) == 1 && buf[0] == '#', "mapping write not seen through fd 11");
	CHECK(write(11, "x", 1) < 0 && errno == EBADF, "fd 11 writable");

	CHECK(!fstat(12, &a) && a.st_size == 1 << 20, "alone has %lld bytes", (long long)a.st_size);
	CHECK(fcntl(12, F_GET_SEALS) == F_SEAL_SEAL, "alone: seals %#x", fcntl(12, F_GET_SEALS));
	CHECK(fcntl(12, F_GETFL) & O_APPEND, "fd 12 lost O_APPEND");
	CHECK(lseek(12, 0, SEEK_CUR) == 1234, "fd 12 offset");
	CHECK(pread(12, buf, 5, 0) == 5 && !memcmp(buf, "first", 5), "alone: first");
	CHECK(pread(12, buf, 6, 512 << 10) == 6 && !memcmp(buf, "middle", 6), "alone: middle");
	CHECK(pread(12, buf, 5, 100 << 10) == 5 && !memcmp(buf, "\0\0\0\0\0", 5), "alone: hole");
	CHECK(write(12, "end", 3) == 3 && !fstat(12, &a) && a.st_size == (1 << 20) + 3,
	      "append on alone");
	/* Not re-created twice: memfds are new objects, but one per memfd. */
	fd = memfd_create("later", 0);
	CHECK(fd >= 0, "memfd_create after");
	pass();
}
