/*
 * Checkpointed inside futex(FUTEX_WAIT). argv[1]:
 *   wait     no timeout: the kernel restarts it, so it must not fail
 *            with EINTR before the signal
 *   timeout  60 s relative timeout: EINTR (the restart block cannot be
 *            checkpointed) is retried with the time left; it must not
 *            time out
 *   bitset   FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline
 *            60 s away: re-issuing it is exact, so it must not fail with
 *            EINTR before the signal, nor time out
 * The test sends SIGUSR1 after restore; the handler sets the futex word
 * and wakes it. The wait must end only then, with the word set.
 */
#include <linux/futex.h>

#include "scwait.h"

static volatile int word;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
	word = 1;
	syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "wait";
	int timed = !strcmp(mode, "timeout"), bitset = !strcmp(mode, "bitset");
	int64_t deadline = mono_ns() + 60 * 1000000000LL;
	struct timespec abs_deadline = ns_to_ts(deadline);
	int eintr = 0, eagain = 0;

	if (!timed && !bitset && strcmp(mode, "wait"))
		fail("unknown mode %s", mode);
	set_handler(SIGUSR1, on_usr1);
	ready();
	while (!word) {
		struct timespec ts = ns_to_ts(deadline - mono_ns());
		long r;
		if (bitset)
			r = rawsys(SYS_futex, (long)&word, FUTEX_WAIT_BITSET_PRIVATE, 0,
				   (long)&abs_deadline, 0, FUTEX_BITSET_MATCH_ANY);
		else
			r = rawsys(SYS_futex, (long)&word, FUTEX_WAIT_PRIVATE, 0, timed ? (long)&ts : 0,
				   0, 0);
		if (r == 0) {
			CHECK(word, "FUTEX_WAIT returned 0 but nobody woke it (word still 0)");
		} else if (r == -EINTR) {
			/* After the handler, or (timeout only) the dump's restart block. */
			CHECK(handled || timed, "FUTEX_WAIT failed with EINTR before the signal: it "
			      "should restart");
			eintr++;
		} else if (r == -EAGAIN) {
			CHECK(word, "FUTEX_WAIT: EAGAIN with the word still 0");
			eagain++;
		} else {
			CHECK(r != -ETIMEDOUT, "FUTEX_WAIT timed out");
			fail("FUTEX_WAIT: %s", strerror(-r));
		}
		CHECK(eintr < 5, "FUTEX_WAIT: EINTR again and again");
	}
	CHECK(handled == 1, "the handler ran %d times", (int)handled);
	printf("%s: woken, %d EINTR, %d EAGAIN\n", mode, eintr, eagain);
	pass();
}
