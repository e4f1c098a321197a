/*
 * FIFOs across a checkpoint. argv[1]: a directory. Before READY:
 *   DIR/f1: fd 10 O_RDONLY|O_NONBLOCK, fd 11 O_WRONLY, "hello fifo" in
 *           flight (written through fd 11);
 *   DIR/f2: fd 12 O_RDWR alone, "abcde" in flight.
 * After the trigger: the paths and flags are back; fd 10 reads exactly
 * the bytes in flight, then EAGAIN; what fd 11 writes fd 10 reads; once
 * fd 11 is closed fd 10 reads EOF (no other writer, rtcr's own open is
 * gone); f2 gives its bytes back and still loops through itself.
 */
#include "target.h"

#include <fcntl.h>
#include <sys/stat.h>

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		fail("placing fd at %d: %s", at, strerror(errno));
	close(fd);
}

static void link_is(int fd, const char *want)
{
	char p[64], l[4096];
	ssize_t n;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	CHECK(n > 0, "readlink fd %d", fd);
	l[n] = 0;
	CHECK(!strcmp(l, want), "fd %d is %s, expected %s", fd, l, want);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	char f1[4096], f2[4096], buf[64];
	struct stat a, b;

	snprintf(f1, sizeof(f1), "%s/f1", dir);
	snprintf(f2, sizeof(f2), "%s/f2", dir);
	if (access(f1, F_OK))
		CHECK(!mkfifo(f1, 0600) && !mkfifo(f2, 0600), "mkfifo: %s", strerror(errno));
	place(open(f1, O_RDONLY | O_NONBLOCK), 10);
	place(open(f1, O_WRONLY), 11);
	CHECK(write(11, "hello fifo", 10) == 10, "write f1");
	place(open(f2, O_RDWR), 12);
	CHECK(write(12, "abcde", 5) == 5, "write f2");
	ready();
	trigger_wait();

	link_is(10, f1);
	link_is(11, f1);
	link_is(12, f2);
	CHECK(!fstat(10, &a) && !fstat(11, &b) && a.st_ino == b.st_ino && S_ISFIFO(a.st_mode), "f1 fds");
	CHECK((fcntl(10, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK), "fd 10 flags %#x",
	      fcntl(10, F_GETFL));
	CHECK((fcntl(11, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == O_WRONLY, "fd 11 flags %#x",
	      fcntl(11, F_GETFL));
	CHECK((fcntl(12, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == O_RDWR, "fd 12 flags");
	memset(buf, 0, sizeof(buf));
	CHECK(read(10, buf, sizeof(buf)) == 10 && !memcmp(buf, "hello fifo", 10), "f1 data: '%s'", buf);
	CHECK(read(10, buf, sizeof(buf)) < 0 && errno == EAGAIN, "f1 not empty after its data");
	CHECK(write(11, "more", 4) == 4, "write fd 11");
	CHECK(read(10, buf, sizeof(buf)) == 4 && !memcmp(buf, "more", 4), "fd 11 -> fd 10");
	close(11);
	CHECK(read(10, buf, sizeof(buf)) == 0, "f1 has another writer (no EOF)");
	CHECK(read(12, buf, 5) == 5 && !memcmp(buf, "abcde", 5), "f2 data");
	CHECK(write(12, "xy", 2) == 2 && read(12, buf, 2) == 2 && !memcmp(buf, "xy", 2), "f2 loop");
	pass();
}
