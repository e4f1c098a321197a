/*
 * inotify instances across a checkpoint: watches on a directory and on
 * files, with gaps in their wd numbers, masks with IN_ONESHOT and
 * IN_EXCL_UNLINK, flags of the instances.
 *
 *   fd_inotify DIR          after the trigger: the same wds with the same
 *                           masks (its own fdinfo), an empty queue, new
 *                           events arrive with the right wd, a new watch
 *                           gets the next number
 *   fd_inotify DIR pending  an event is left unread: rtcr must refuse;
 *                           the event must still be there afterwards
 *
 * fd 15: nonblocking, cloexec; watches DIR/w (wd 1: create,delete),
 *        DIR/w/f2 (wd 3: modify,oneshot), DIR/w/f3 (wd 4:
 *        modify,close_write), DIR/w/f4 (wd 10: attrib,excl_unlink).
 * fd 16: blocking; watches DIR (wd 1: all events).
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "target.h"

static char dir[4096];

static char *path(const char *name)
{
	static char buf[4][4200];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static int watch(int in, const char *name, uint32_t mask, int expect_wd)
{
	int wd = inotify_add_watch(in, path(name), mask);
	CHECK(wd == expect_wd, "watch on %s: wd %d, expected %d (%s)", name, wd, expect_wd,
	      strerror(errno));
	return wd;
}

static void touch(const char *name)
{
	int fd = open(path(name), O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0, "create %s: %s", name, strerror(errno));
	close(fd);
}

/* Read everything queued on a nonblocking instance. */
static int drain(int in)
{
	char buf[4096];
	int n = 0;
	ssize_t r;
	while ((r = read(in, buf, sizeof(buf))) > 0)
		n += (int)r;
	CHECK(r < 0 && errno == EAGAIN, "drain: %s", strerror(errno));
	return n;
}

/* The next event must be exactly this one. */
static void next_event(int in, int wd, uint32_t mask, const char *name, const char *step)
{
	static char buf[4096] __attribute__((aligned(8)));
	static size_t len, off;
	struct inotify_event *ev;

	if (off >= len) {
		struct pollfd p = { .fd = in, .events = POLLIN };
		ssize_t r;
		CHECK(poll(&p, 1, 5000) == 1, "%s: no event within 5 s", step);
		r = read(in, buf, sizeof(buf));
		CHECK(r > 0, "%s: read: %s", step, strerror(errno));
		len = (size_t)r;
		off = 0;
	}
	ev = (struct inotify_event *)(buf + off);
	off += sizeof(*ev) + ev->len;
	CHECK(ev->wd == wd && ev->mask == mask, "%s: event wd %d mask %#x (%s), expected wd %d mask %#x",
	      step, ev->wd, ev->mask, ev->len ? ev->name : "", wd, mask);
	CHECK(!name == !ev->len && (!name || !strcmp(name, ev->name)), "%s: name '%s', expected '%s'",
	      step, ev->len ? ev->name : "", name ? name : "");
	if (off >= len) {
		off = len = 0;
	}
}

/* The watches as the kernel shows them: wd -> mask. */
static void check_fdinfo(int fd, const int *wds, const uint32_t *masks, int n)
{
	char p[64], line[512];
	int seen = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = fopen(p, "r");
	CHECK(f, "%s", p);
	while (fgets(line, sizeof(line), f)) {
		unsigned wd, mask;
		int k;
		if (sscanf(line, "inotify wd:%x ino:%*x sdev:%*x mask:%x", &wd, &mask) != 2)
			continue;
		for (k = 0; k < n && wds[k] != (int)wd; k++)
			;
		CHECK(k < n, "fd %d: unexpected watch wd %u", fd, wd);
		CHECK(masks[k] == mask, "fd %d: wd %u: mask %#x, expected %#x", fd, wd, mask, masks[k]);
		seen++;
	}
	fclose(f);
	CHECK(seen == n, "fd %d: %d watches, expected %d", fd, seen, n);
}

int main(int argc, char **argv)
{
	int pending = argc > 2 && !strcmp(argv[2], "pending");
	const uint32_t m1 = IN_CREATE | IN_DELETE, m3 = IN_MODIFY | IN_ONESHOT,
		       m4 = IN_MODIFY | IN_CLOSE_WRITE, m10 = IN_ATTRIB | IN_EXCL_UNLINK;
	int in, in2, fd;

	CHECK(argc > 1, "usage: fd_inotify DIR [pending]");
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	CHECK(mkdir(path("w"), 0755) == 0, "mkdir: %s", strerror(errno));
	touch("w/f1");
	touch("w/f2");
	touch("w/f3");
	touch("w/f4");

	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	CHECK(in >= 0 && dup3(in, 15, O_CLOEXEC) == 15, "inotify at 15");
	close(in);
	in2 = inotify_init1(0);
	CHECK(in2 >= 0 && dup2(in2, 16) == 16, "inotify at 16");
	close(in2);

	watch(15, "w", m1, 1);
	watch(15, "w/f1", IN_MODIFY, 2);
	watch(15, "w/f2", m3, 3);
	CHECK(inotify_rm_watch(15, 2) == 0, "rm wd 2");
	watch(15, "w/f3", m4, 4);
	/* Use up 5..9. */
	for (int wd = 5; wd <= 9; wd++) {
		watch(15, "w/f1", IN_MODIFY, wd);
		CHECK(inotify_rm_watch(15, wd) == 0, "rm wd %d", wd);
	}
	watch(15, "w/f4", m10, 10);
	watch(16, ".", IN_ALL_EVENTS, 1);
	/* The removals queued IN_IGNORED: read them. */
	CHECK(drain(15) > 0, "no IN_IGNORED events queued");
	if (pending)
		touch("w/new0");

	ready();
	trigger_wait();

	if (pending) {
		next_event(15, 1, IN_CREATE, "new0", "the event left pending");
		pass();
	}
	CHECK(fcntl(15, F_GETFL) & O_NONBLOCK, "fd 15: O_NONBLOCK lost");
	CHECK(fcntl(15, F_GETFD) == FD_CLOEXEC, "fd 15: FD_CLOEXEC lost");
	CHECK(!(fcntl(16, F_GETFL) & O_NONBLOCK), "fd 16: O_NONBLOCK set");
	CHECK(fcntl(16, F_GETFD) == 0, "fd 16: FD_CLOEXEC set");
	{
		int wds[] = { 1, 3, 4, 10 };
		uint32_t masks[] = { m1, m3, m4, m10 };
		int wds2[] = { 1 };
		uint32_t masks2[] = { IN_ALL_EVENTS };
		check_fdinfo(15, wds, masks, 4);
		check_fdinfo(16, wds2, masks2, 1);
	}
	CHECK(drain(15) == 0, "fd 15: events queued at restore");
	{
		int n = 0;
		CHECK(ioctl(16, FIONREAD, &n) == 0 && n == 0, "fd 16: %d bytes queued at restore", n);
	}
	/* Each watch is on the same object, under the same number. */
	watch(15, "w", m1, 1);
	watch(15, "w/f3", m4, 4);
	watch(15, "w/f4", m10, 10);
	/* New events carry the right wd. */
	touch("w/new1");
	next_event(15, 1, IN_CREATE, "new1", "create in w");
	CHECK(unlink(path("w/new1")) == 0, "unlink");
	next_event(15, 1, IN_DELETE, "new1", "delete in w");
	fd = open(path("w/f3"), O_WRONLY);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1, "write f3");
	next_event(15, 4, IN_MODIFY, NULL, "modify f3");
	close(fd);
	next_event(15, 4, IN_CLOSE_WRITE, NULL, "close f3");
	fd = open(path("w/f2"), O_WRONLY);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1, "write f2");
	close(fd);
	next_event(15, 3, IN_MODIFY, NULL, "modify f2 (one-shot)");
	next_event(15, 3, IN_IGNORED, NULL, "one-shot watch gone");
	CHECK(chmod(path("w/f4"), 0600) == 0, "chmod");
	next_event(15, 10, IN_ATTRIB, NULL, "attrib f4");
	/* The next number after the highest. */
	watch(15, "w/f1", IN_MODIFY, 11);
	/* The blocking instance on DIR. */
	touch("top");
	next_event(16, 1, IN_CREATE, "top", "create in DIR");
	next_event(16, 1, IN_OPEN, "top", "open in DIR");
	next_event(16, 1, IN_CLOSE_WRITE, "top", "close in DIR");
	pass();
}
