/*
 * Checkpointed while waiting for input on stdin (a pipe). argv[1]:
 *   read     read(0)
 *   select   raw select(2), 60 s timeout
 *   pselect  raw pselect6(2), 60 s timeout, no mask
 *   poll     raw poll(2), 60 s timeout
 *   pollinf  raw poll(2), no timeout
 *   ppoll    raw ppoll(2), 60 s timeout, no mask
 * After restore stdin is rtcr restore's stdin: the test writes
 * "rtcr-input-<argv[2]>\n" there, and the target must read exactly that.
 * Calls the kernel restarts (read, select, pselect, pollinf, ppoll) must
 * not fail with EINTR; poll with a timeout may (its restart block cannot
 * be checkpointed) and is called again. None may time out.
 */
#include <poll.h>
#include <sys/select.h>

#include "scwait.h"

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "read";
	char want[64], buf[128];
	int eintr = 0;
	ssize_t n;
	long r;

	snprintf(want, sizeof(want), "rtcr-input-%s\n", argc > 2 ? argv[2] : "0");
	ready();
	for (;;) {
		if (!strcmp(mode, "read")) {
			r = rawsys(SYS_read, 0, (long)buf, sizeof(buf) - 1, 0, 0, 0);
			CHECK(r != -EINTR, "read(stdin) failed with EINTR: it should restart");
			CHECK(r >= 0, "read(stdin): %s", strerror(-r));
			n = r;
			goto got;
		} else if (!strcmp(mode, "select") || !strcmp(mode, "pselect")) {
			fd_set rfds;
			struct timeval tv = { 60, 0 };
			struct timespec ts = { 60, 0 };
			FD_ZERO(&rfds);
			FD_SET(0, &rfds);
			if (mode[0] == 's')
				r = rawsys(SYS_select, 1, (long)&rfds, 0, 0, (long)&tv, 0);
			else
				r = rawsys(SYS_pselect6, 1, (long)&rfds, 0, 0, (long)&ts, 0);
			CHECK(r != -EINTR, "%s failed with EINTR: it should restart", mode);
			CHECK(r >= 0, "%s: %s", mode, strerror(-r));
			CHECK(r != 0, "%s timed out", mode);
			CHECK(r == 1 && FD_ISSET(0, &rfds), "%s returned %ld", mode, r);
			break;
		} else if (!strcmp(mode, "poll") || !strcmp(mode, "pollinf") || !strcmp(mode, "ppoll")) {
			struct pollfd p = { 0, POLLIN, 0 };
			struct timespec ts = { 60, 0 };
			if (!strcmp(mode, "ppoll"))
				r = rawsys(SYS_ppoll, (long)&p, 1, (long)&ts, 0, 8, 0);
			else
				r = rawsys(SYS_poll, (long)&p, 1, !strcmp(mode, "poll") ? 60000 : -1, 0, 0, 0);
			if (r == -EINTR && !strcmp(mode, "poll")) {
				CHECK(++eintr < 5, "poll: EINTR again and again");
				continue;
			}
			CHECK(r != -EINTR, "%s failed with EINTR: it should restart", mode);
			CHECK(r >= 0, "%s: %s", mode, strerror(-r));
			CHECK(r != 0, "%s timed out", mode);
			CHECK(r == 1 && (p.revents & POLLIN), "%s returned %ld, revents %#x", mode, r,
			      p.revents);
			break;
		} else {
			fail("unknown mode %s", mode);
		}
	}
	n = read(0, buf, sizeof(buf) - 1);
	CHECK(n >= 0, "read(stdin): %s", strerror(errno));
got:
	buf[n] = 0;
	CHECK(!strcmp(buf, want), "read '%s' from stdin, expected '%s'", buf, want);
	printf("%s: got the input, %d EINTR\n", mode, eintr);
	pass();
}
