/*
 * Files deleted while open. argv[1]: a directory. Before READY:
 *   DIR/del-a: 3 pages of a pattern, mode 0640, mapped MAP_SHARED; fd 10
 *              O_RDWR at offset 7, fd 11 O_WRONLY|O_APPEND (another
 *              description); then unlinked;
 *   DIR/del-b: 200 KiB, fd 12 O_RDONLY at offset 4096, never mapped;
 *              unlinked.
 * After the trigger: both still deleted (no name in DIR, no link) and in
 * DIR, with their mode, size, data, flags and offsets; a write through
 * fd 10 shows in the mapping, one through fd 11 lands at the end.
 */
#include "target.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define SZ (3 * 4096)
#define BSZ (200 << 10)

static char pat(size_t i)
{
	return (char)('A' + (i * 11) % 26);
}

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing fd at %d: %s", at, strerror(errno));
	close(fd);
}

static void deleted_in(int fd, const char *dir)
{
	char p[64], l[4096];
	ssize_t n;
	struct stat st;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	CHECK(n > 0, "readlink fd %d", fd);
	l[n] = 0;
	CHECK(!strncmp(l, dir, strlen(dir)) && l[strlen(dir)] == '/', "fd %d is %s, not in %s", fd, l, dir);
	CHECK(n > 10 && !strcmp(l + n - 10, " (deleted)"), "fd %d is %s, not deleted", fd, l);
	CHECK(!fstat(fd, &st) && st.st_nlink == 0, "fd %d has links", fd);
}

int main(int argc, char **argv)
{
	static char buf[BSZ];
	char a[4096], b[4096], *m;
	struct stat st;
	const char *dir = argc > 1 ? argv[1] : "/tmp";

	snprintf(a, sizeof(a), "%s/del-a", dir);
	snprintf(b, sizeof(b), "%s/del-b", dir);
	place(open(a, O_RDWR | O_CREAT | O_TRUNC, 0640), 10);
	CHECK(!fchmod(10, 0640), "fchmod");
	for (size_t i = 0; i < BSZ; i++)
		buf[i] = pat(i);
	CHECK(write(10, buf, SZ) == SZ, "write a");
	m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, 10, 0);
	CHECK(m != MAP_FAILED, "mmap");
	CHECK(lseek(10, 7, SEEK_SET) == 7, "lseek");
	place(open(a, O_WRONLY | O_APPEND), 11);
	place(open(b, O_RDWR | O_CREAT | O_TRUNC, 0600), 12);
	CHECK(write(12, buf, BSZ) == BSZ, "write b");
	close(12);
	place(open(b, O_RDONLY), 12);
	CHECK(lseek(12, 4096, SEEK_SET) == 4096, "lseek b");
	CHECK(!unlink(a) && !unlink(b), "unlink");
	ready();
	trigger_wait();

	deleted_in(10, dir);
	deleted_in(11, dir);
	deleted_in(12, dir);
	CHECK(access(a, F_OK) < 0 && access(b, F_OK) < 0, "a deleted file has its name back");
	CHECK(!fstat(10, &st) && (st.st_mode & 07777) == 0640 && st.st_size == SZ, "a: mode %o size %lld",
	      st.st_mode & 07777, (long long)st.st_size);
	CHECK((fcntl(10, F_GETFL) & O_ACCMODE) == O_RDWR, "fd 10 mode");
	CHECK((fcntl(11, F_GETFL) & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND), "fd 11 flags");
	CHECK((fcntl(12, F_GETFL) & O_ACCMODE) == O_RDONLY, "fd 12 mode");
	CHECK(lseek(10, 0, SEEK_CUR) == 7 && lseek(12, 0, SEEK_CUR) == 4096, "offsets");
	for (size_t i = 0; i < SZ; i++)
		CHECK(m[i] == pat(i), "a: byte %zu", i);
	CHECK(write(10, "hello", 5) == 5 && !memcmp(m + 7, "hello", 5), "fd 10 write not in the mapping");
	CHECK(write(11, "tail", 4) == 4 && !fstat(10, &st) && st.st_size == SZ + 4,
	      "append through fd 11: size %lld", (long long)st.st_size);
	CHECK(pread(10, a, 4, SZ) == 4 && !memcmp(a, "tail", 4), "fd 11's append not seen by fd 10");
	memset(buf, 0, BSZ);
	CHECK(!fstat(12, &st) && st.st_size == BSZ && (st.st_mode & 07777) == 0600, "b: size/mode");
	CHECK(read(12, buf, BSZ) == BSZ - 4096, "read b");
	for (size_t i = 0; i < BSZ - 4096; i++)
		CHECK(buf[i] == pat(i + 4096), "b: byte %zu", i + 4096);
	pass();
}
