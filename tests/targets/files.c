/*
 * Regular files, directories and simple devices on sparse fd numbers.
 *
 *   files DIR [pipe]
 *
 * DIR/ro, DIR/wo, DIR/rw, DIR/app, DIR/nb hold 64 known bytes each
 * (byte i of file k is 'a' + (i + k) % 26). Opened before READY:
 *   fd 3    DIR/ro  O_RDONLY              at offset 5
 *   fd 7    DIR/wo  O_WRONLY|O_CLOEXEC    at offset 11
 *   fd 100  DIR/rw  O_RDWR|O_CLOEXEC      at offset 17
 *   fd 12   dup of fd 100 (shares the offset; no FD_CLOEXEC)
 *   fd 8    DIR/app O_WRONLY|O_APPEND     at offset 3
 *   fd 20   DIR/nb  O_RDONLY|O_NONBLOCK   at offset 0
 *   fd 21   DIR/nb  O_WRONLY|O_SYNC|O_NOATIME at offset 1000 (past the end)
 *   fd 30   DIR/d   directory, after one short getdents64 call
 *   fd 40   /dev/null O_WRONLY, fd 41 /dev/zero O_RDONLY|O_CLOEXEC
 *   fd 42   /dev/full O_RDWR, fd 43 /dev/urandom O_RDONLY|O_NONBLOCK,
 *   fd 44   /dev/random O_RDONLY
 * and stdout's offset is noted (a regular file unless "pipe").
 * After the trigger: exactly these fds (and 0-2) are open, with their
 * flags, FD_CLOEXEC and offsets; reads/writes land where they should;
 * the dup still shares its offset; the directory listing continues
 * where it stopped and fchdir works; the devices behave.
 */
#include "target.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static char dir[3500];

static void path(char *buf, const char *name)
{
	snprintf(buf, 4096, "%s/%s", dir, name);
}

static char pat(int k, int i)
{
	return 'a' + (i + k) % 26;
}

static void make(const char *name, int k)
{
	char p[4096], buf[64];
	int fd;

	for (int i = 0; i < 64; i++)
		buf[i] = pat(k, i);
	path(p, name);
	fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0 || write(fd, buf, 64) != 64)
		fail("%s: %s", p, strerror(errno));
	close(fd);
}

static void put(int fd, const char *name, int flags, off_t off)
{
	char p[4096];
	int t;

	path(p, name);
	t = open(p, flags);
	if (t < 0)
		fail("open %s: %s", p, strerror(errno));
	if (off && lseek(t, off, SEEK_SET) != off)
		fail("lseek %s", p);
	if (t != fd) {
		if (dup3(t, fd, flags & O_CLOEXEC) != fd)
			fail("dup3 %d: %s", fd, strerror(errno));
		close(t);
	}
}

static off_t pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

/* getdents64 into names, returns how many. */
static int list(int fd, char names[][64], int max, size_t bufsz)
{
	char buf[4096];
	int n = 0;
	long r;

	while (n < max && (r = syscall(SYS_getdents64, fd, buf, bufsz)) > 0) {
		for (long o = 0; o < r;) {
			struct { unsigned long long ino; long long off; unsigned short reclen;
				 unsigned char type; char name[]; } *d = (void *)(buf + o);
			if (n < max)
				snprintf(names[n++], 64, "%s", d->name);
			o += d->reclen;
		}
		if (bufsz < sizeof(buf))
			break;   /* the first, short call: one batch only */
	}
	return n;
}

int main(int argc, char **argv)
{
	static const int fds[] = { 0, 1, 2, 3, 7, 8, 12, 20, 21, 30, 40, 41, 42, 43, 44, 100 };
	static char first[64][64], rest[64][64];
	int stdout_pipe = argc > 2 && !strcmp(argv[2], "pipe");
	int nfirst, nrest, fl;
	struct stat dst, st;
	off_t out_pos = -1;
	char p[4096], buf[128];

	if (argc < 2)
		fail("usage: files DIR [pipe]");
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	make("ro", 0); make("wo", 1); make("rw", 2); make("app", 3); make("nb", 4);
	path(p, "d");
	mkdir(p, 0755);
	for (int i = 0; i < 40; i++) {
		char e[64];
		snprintf(e, sizeof(e), "d/entry-%02d", i);
		make(e, 5);
	}

	put(3, "ro", O_RDONLY, 5);
	put(7, "wo", O_WRONLY | O_CLOEXEC, 11);
	put(100, "rw", O_RDWR | O_CLOEXEC, 17);
	if (dup2(100, 12) != 12)
		fail("dup2: %s", strerror(errno));
	put(8, "app", O_WRONLY | O_APPEND, 3);
	put(20, "nb", O_RDONLY | O_NONBLOCK, 0);
	put(21, "nb", O_WRONLY | O_SYNC | O_NOATIME, 1000);
	put(30, "d", O_RDONLY | O_DIRECTORY, 0);
	if (fstat(30, &dst))
		fail("fstat dir");
	/* A small buffer: a few entries now, the rest after the restore. */
	nfirst = list(30, first, 64, 120);
	CHECK(nfirst > 0 && nfirst < 20, "first getdents returned %d entries", nfirst);
	{
		int t = open("/dev/null", O_WRONLY);
		dup2(t, 40);
		close(t);
		t = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		dup3(t, 41, O_CLOEXEC);
		close(t);
		t = open("/dev/full", O_RDWR);
		dup2(t, 42);
		close(t);
		t = open("/dev/urandom", O_RDONLY | O_NONBLOCK);
		dup2(t, 43);
		close(t);
		t = open("/dev/random", O_RDONLY);
		dup2(t, 44);
		close(t);
	}
	printf("some output before READY\n");
	fflush(stdout);
	if (!stdout_pipe)
		out_pos = pos(1);
	ready();
	out_pos = stdout_pipe ? -1 : out_pos + 6;   /* READY\n */
	trigger_wait();

	/* Exactly our fds are open. */
	for (int fd = 0; fd < 1024; fd++) {
		int want = 0;
		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			want |= fds[i] == fd;
		CHECK((fcntl(fd, F_GETFD) >= 0) == want, "fd %d is %s", fd, want ? "closed" : "open");
	}
	/* Access modes and status flags. */
	CHECK(((fl = fcntl(3, F_GETFL)) & O_ACCMODE) == O_RDONLY, "fd 3 flags %#x", fl);
	CHECK(((fl = fcntl(7, F_GETFL)) & O_ACCMODE) == O_WRONLY && !(fl & O_APPEND), "fd 7 flags %#x", fl);
	CHECK(((fl = fcntl(100, F_GETFL)) & O_ACCMODE) == O_RDWR, "fd 100 flags %#x", fl);
	CHECK(((fl = fcntl(8, F_GETFL)) & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND),
	      "fd 8 flags %#x (want O_WRONLY|O_APPEND)", fl);
	CHECK((fl = fcntl(20, F_GETFL)) & O_NONBLOCK, "fd 20 lost O_NONBLOCK (flags %#x)", fl);
	CHECK(!(fcntl(3, F_GETFL) & O_NONBLOCK), "fd 3 gained O_NONBLOCK");
	fl = fcntl(21, F_GETFL);
	CHECK((fl & O_ACCMODE) == O_WRONLY && (fl & O_SYNC) == O_SYNC && (fl & O_NOATIME),
	      "fd 21 flags %#x (want O_WRONLY|O_SYNC|O_NOATIME)", fl);
	CHECK(((fl = fcntl(40, F_GETFL)) & O_ACCMODE) == O_WRONLY, "fd 40 flags %#x", fl);
	/* Close-on-exec is per fd. */
	CHECK(fcntl(7, F_GETFD) == FD_CLOEXEC, "fd 7 lost FD_CLOEXEC");
	CHECK(fcntl(100, F_GETFD) == FD_CLOEXEC, "fd 100 lost FD_CLOEXEC");
	CHECK(fcntl(41, F_GETFD) == FD_CLOEXEC, "fd 41 lost FD_CLOEXEC");
	CHECK(fcntl(12, F_GETFD) == 0, "fd 12 (dup) gained FD_CLOEXEC");
	CHECK(fcntl(3, F_GETFD) == 0 && fcntl(8, F_GETFD) == 0 && fcntl(30, F_GETFD) == 0,
	      "FD_CLOEXEC appeared");
	/* Offsets. */
	CHECK(pos(3) == 5, "fd 3 offset %lld, was 5", (long long)pos(3));
	CHECK(pos(7) == 11, "fd 7 offset %lld, was 11", (long long)pos(7));
	CHECK(pos(100) == 17, "fd 100 offset %lld, was 17", (long long)pos(100));
	CHECK(pos(12) == 17, "fd 12 offset %lld, was 17", (long long)pos(12));
	CHECK(pos(8) == 3, "fd 8 offset %lld, was 3", (long long)pos(8));
	CHECK(pos(20) == 0, "fd 20 offset %lld, was 0", (long long)pos(20));
	CHECK(pos(21) == 1000, "fd 21 offset %lld, was 1000 (past the end)", (long long)pos(21));
	if (!stdout_pipe) {
		CHECK(pos(1) == out_pos, "stdout offset %lld, was %lld", (long long)pos(1),
		      (long long)out_pos);
	}
	/* Reads at the offset. */
	CHECK(read(3, buf, 4) == 4 && buf[0] == pat(0, 5) && buf[3] == pat(0, 8),
	      "fd 3 read the wrong bytes");
	CHECK(read(100, buf, 2) == 2 && buf[0] == pat(2, 17), "fd 100 read the wrong bytes");
	CHECK(pos(12) == 19, "fd 12 does not share fd 100's offset (%lld)", (long long)pos(12));
	lseek(12, 40, SEEK_SET);
	CHECK(pos(100) == 40, "seeking fd 12 did not move fd 100 (%lld)", (long long)pos(100));
	CHECK(read(20, buf, 64) == 64 && buf[0] == pat(4, 0), "fd 20 read");
	/* Writes at the offset, and appends at the end. */
	CHECK(write(7, "XY", 2) == 2, "write fd 7: %s", strerror(errno));
	CHECK(write(100, "Q", 1) == 1, "write fd 100");
	CHECK(write(8, "END", 3) == 3, "write fd 8");
	{
		int fd;
		path(p, "wo");
		fd = open(p, O_RDONLY);
		CHECK(pread(fd, buf, 64, 0) == 64 && buf[11] == 'X' && buf[12] == 'Y' &&
		      buf[10] == pat(1, 10) && buf[13] == pat(1, 13), "write via fd 7 landed elsewhere");
		close(fd);
		path(p, "rw");
		fd = open(p, O_RDONLY);
		CHECK(pread(fd, buf, 64, 0) == 64 && buf[40] == 'Q', "write via fd 100 landed elsewhere");
		close(fd);
		path(p, "app");
		CHECK(stat(p, &st) == 0 && st.st_size == 67, "append file size %lld, want 67",
		      (long long)st.st_size);
		fd = open(p, O_RDONLY);
		CHECK(pread(fd, buf, 3, 64) == 3 && !memcmp(buf, "END", 3), "O_APPEND write not at the end");
		CHECK(pread(fd, buf, 3, 0) == 3 && buf[0] == pat(3, 0), "O_APPEND write overwrote the start");
		close(fd);
	}
	/* The directory: same inode, listing continues, fchdir works. */
	CHECK(fstat(30, &st) == 0 && st.st_ino == dst.st_ino && S_ISDIR(st.st_mode),
	      "fd 30 is not the directory");
	nrest = list(30, rest, 64, sizeof(buf) * 32);
	CHECK(nfirst + nrest == 42, "directory listing: %d entries before, %d after, want 42 in all",
	      nfirst, nrest);
	for (int i = 0; i < nfirst; i++)
		for (int j = 0; j < nrest; j++)
			CHECK(strcmp(first[i], rest[j]), "entry %s listed twice", first[i]);
	CHECK(fchdir(30) == 0, "fchdir: %s", strerror(errno));
	CHECK(stat("entry-07", &st) == 0, "relative stat after fchdir: %s", strerror(errno));
	/* Devices. */
	CHECK(write(40, "gone", 4) == 4, "/dev/null write");
	memset(buf, 1, 16);
	CHECK(read(41, buf, 16) == 16 && !buf[0] && !buf[15], "/dev/zero read");
	CHECK(fstat(41, &st) == 0 && S_ISCHR(st.st_mode), "fd 41 not a char device");
	errno = 0;
	CHECK(write(42, "x", 1) < 0 && errno == ENOSPC, "/dev/full write: %s", strerror(errno));
	CHECK(read(42, buf, 16) == 16 && !buf[0], "/dev/full read");
	CHECK((fcntl(42, F_GETFL) & O_ACCMODE) == O_RDWR, "fd 42 access mode");
	CHECK(read(43, buf, 16) == 16 && (fcntl(43, F_GETFL) & O_NONBLOCK), "/dev/urandom");
	CHECK(read(44, buf, 16) == 16, "/dev/random read");
	CHECK(fstat(44, &st) == 0 && major(st.st_rdev) == 1 && minor(st.st_rdev) == 8,
	      "fd 44 is not /dev/random");
	if (stdout_pipe) {
		CHECK(fstat(1, &st) == 0, "fstat stdout");
	}
	pass();
}
