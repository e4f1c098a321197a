/*
 * A shell job on a terminal (tests/integration/tty.sh).
 *
 *   tty_job          the foreground job: turns echo off, opens its terminal
 *                    again at fd 9 (O_NONBLOCK), prints READY; then reads
 *                    lines from fd 0 and answers each with
 *                    "GOT <line> echo=E icanon=I fg=F nb9=N size=RxC",
 *                    also writing "VIA9 <line>" through fd 9; "quit" ends
 *                    it (exit 0), leaving echo off (rtcr gives its own
 *                    settings back).
 *   tty_job bg       a background job: touches no setting, prints READY,
 *                    waits for $RTCR_TRIGGER, prints "BG fg=F", exits 0.
 *   tty_job pty      a pty pair of its own: master at fd 7, slave at fd 8
 *                    (the dump refuses it by name); prints READY, waits.
 */
#include "target.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

static void say(const char *fmt, const char *line)
{
	struct termios t;
	struct winsize ws = { 0 };
	int fl = fcntl(9, F_GETFL);

	tcgetattr(0, &t);
	ioctl(0, TIOCGWINSZ, &ws);
	printf(fmt, line);
	printf(" echo=%d icanon=%d fg=%d nb9=%d size=%ux%u\n", !!(t.c_lflag & ECHO),
	       !!(t.c_lflag & ICANON), tcgetpgrp(0) == getpgrp(), fl >= 0 && (fl & O_NONBLOCK),
	       ws.ws_row, ws.ws_col);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "fg";
	char line[256];

	if (!strcmp(mode, "bg")) {
		printf("READY pid=%d\n", getpid());
		fflush(stdout);
		trigger_wait();
		printf("BG fg=%d\n", tcgetpgrp(1) == getpgrp());
		return 0;
	}
	if (!strcmp(mode, "pty")) {
		int m = posix_openpt(O_RDWR | O_NOCTTY), s;
		CHECK(m >= 0 && !grantpt(m) && !unlockpt(m), "posix_openpt");
		s = open(ptsname(m), O_RDWR | O_NOCTTY);
		CHECK(s >= 0 && dup2(m, 7) == 7 && dup2(s, 8) == 8, "pty slave");
		close(m);
		close(s);
		ready();
		trigger_wait();
		return 0;
	}
	{
		struct termios t;
		int fd = open(ttyname(0), O_RDWR | O_NONBLOCK | O_NOCTTY);
		CHECK(fd >= 0 && dup2(fd, 9) == 9, "opening the terminal again");
		close(fd);
		CHECK(tcgetattr(0, &t) == 0, "tcgetattr");
		t.c_lflag &= ~ECHO;
		CHECK(tcsetattr(0, TCSANOW, &t) == 0, "tcsetattr");
	}
	printf("READY pid=%d\n", getpid());
	say("STATE%s", "");
	for (;;) {
		size_t n = 0;
		ssize_t r = 1;
		while (n < sizeof(line) - 1 && (r = read(0, line + n, 1)) == 1 && line[n] != '\n')
			n++;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail("read from the terminal: %s", r ? strerror(errno) : "end of file");
		line[n] = 0;
		if (!strcmp(line, "quit")) {
			printf("BYE\n");
			return 0;
		}
		dprintf(9, "VIA9 %s\n", line);
		say("GOT %s", line);
	}
}
