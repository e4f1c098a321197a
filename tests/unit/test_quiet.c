/*
 * src/task/quiet.c: task_wait_quiet() on child processes of three kinds:
 * a periodic one (runs ~0.2 ms, sleeps ~1 ms) is found going to sleep
 * within a few periods; one that never sleeps is not found, and the wait
 * ends after ~2 ms of it running, before its bound; one that only sleeps
 * is found asleep after ~2 ms.
 * Nothing is stopped or traced. (Loose time bounds: a shared VM stalls.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "task/task.h"

static void spin_us(unsigned us)
{
	uint64_t end = now_ns() + us * 1000ull;

	while (now_ns() < end)
		;
}

/* A child: 'p' periodic, 'b' busy, 's' asleep. Killed by the caller. */
static pid_t child(char kind)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		struct timespec ts = { 0, 1000000 };
		switch (kind) {
		case 'p': spin_us(200); nanosleep(&ts, NULL); break;
		case 'b': spin_us(1000); break;
		default: pause();
		}
	}
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_periodic_found_going_to_sleep(void **state)
{
	pid_t pid = child('p');
	struct quiet q;
	int found = 0;

	(void)state;
	usleep(20000);
	/* Most waits find it within a few periods (not all: a stall of the
	 * machine may hide a whole period from the polls). */
	for (int i = 0; i < 10; i++) {
		task_wait_quiet(pid, 50, &q);
		if (q.found && !strcmp(q.how, "as its threads went to sleep"))
			found++;
	}
	reap(pid);
	print_message("  found %d of 10 times\n", found);
	assert_true(found >= 5);
}

static void test_busy_not_found(void **state)
{
	pid_t pid = child('b');
	struct quiet q;

	(void)state;
	usleep(20000);
	task_wait_quiet(pid, 1000, &q);
	reap(pid);
	assert_false(q.found);
	assert_string_equal(q.how, "it kept running");
	assert_true(q.waited_ns >= 2000000ull);
	assert_true(q.waited_ns < 500000000ull);
}

static void test_asleep_found_after_a_while(void **state)
{
	pid_t pid = child('s');
	struct quiet q;

	(void)state;
	usleep(20000);
	task_wait_quiet(pid, 50, &q);
	reap(pid);
	assert_true(q.found);
	assert_string_equal(q.how, "while its threads slept");
	assert_true(q.waited_ns >= 2000000ull);
}

static void test_zero_waits_not(void **state)
{
	pid_t pid = child('b');
	struct quiet q;

	(void)state;
	task_wait_quiet(pid, 0, &q);
	reap(pid);
	assert_false(q.found);
	assert_int_equal(q.waited_ns, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_periodic_found_going_to_sleep),
		cmocka_unit_test(test_busy_not_found),
		cmocka_unit_test(test_asleep_found_after_a_while),
		cmocka_unit_test(test_zero_waits_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
