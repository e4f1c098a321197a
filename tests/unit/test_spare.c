/*
 * src/common/spare.c: spare_post() then spare_join() runs every piece
 * exactly once, armed (shared with the worker) or not, and is done with
 * its job when the join returns (under ASan, a worker touching the job,
 * on the stack of run_job() below, after that would be a stack use after
 * return). Which thread ran each piece is
 * recorded: with the worker armed on a machine with two CPUs, some
 * pieces are expected to be the worker's, but that is not asserted (it
 * yields its CPU to anything else there).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "common/spare.h"
#include "common/util.h"

#define PIECES 64

/* Under ASan, a job used after run_job() returned is reported only with
 * this (GCC leaves it off by default); without ASan it is never read. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_stack_use_after_return=1";
}

struct pieces {
	atomic_int runs[PIECES];
	pthread_t by[PIECES];
};

static pthread_t main_thread;

static void piece(void *arg, int i)
{
	struct pieces *p = arg;
	volatile uint64_t x = 0;
	/* ~10 us of work, so that two threads overlap; 10 times more on the
	 * worker, so that the caller runs out of pieces first and must wait
	 * for the worker's last one. */
	int work = pthread_equal(pthread_self(), main_thread) ? 20000 : 200000;

	for (int k = 0; k < work; k++)
		x += k;
	atomic_fetch_add(&p->runs[i], 1);
	p->by[i] = pthread_self();
}

/* Can the worker run here (two CPUs, not turned off)? */
static bool worker_expected(void)
{
	const char *e = getenv("RTCR_SPARE");
	cpu_set_t cpus;

	return !(e && !strcmp(e, "0")) && !sched_getaffinity(0, sizeof(cpus), &cpus) &&
	       CPU_COUNT(&cpus) >= 2;
}

/* A job on this function's stack, posted and joined. */
static void run_job(void (*fn)(void *arg, int i), void *arg, int n)
{
	struct spare_job j;

	spare_post(&j, fn, arg, n);
	spare_join(&j);
}

static int run_rounds(bool arm)
{
	int others = 0;

	main_thread = pthread_self();
	for (int r = 0; r < 100; r++) {
		struct pieces p;

		memset(&p, 0, sizeof(p));
		if (arm)
			spare_arm();
		run_job(piece, &p, PIECES);
		if (arm)
			spare_disarm();
		for (int i = 0; i < PIECES; i++) {
			assert_int_equal(atomic_load(&p.runs[i]), 1);
			others += !pthread_equal(p.by[i], pthread_self());
		}
	}
	return others;
}

static void test_unarmed_runs_all_here(void **state)
{
	(void)state;
	/* Never armed: no worker takes a piece. */
	assert_int_equal(run_rounds(false), 0);
}

static void test_armed_runs_each_once(void **state)
{
	int others;

	(void)state;
	others = run_rounds(true);
	print_message("  %d of %d pieces ran on the spare CPU's worker\n", others, 100 * PIECES);
	/* Disarmed again: only this thread. */
	assert_int_equal(run_rounds(false), 0);
}

/*
 * spare_post() then spare_join() with work of the caller between: every
 * piece once. A second job posted while the first is under way is not
 * handed to the worker: its join does it all, here.
 */
static void test_posted_then_joined(void **state)
{
	int others = 0, second_others = 0;

	(void)state;
	main_thread = pthread_self();
	for (int r = 0; r < 50; r++) {
		struct pieces p, q;
		struct spare_job j, k;
		volatile uint64_t x = 0;

		memset(&p, 0, sizeof(p));
		memset(&q, 0, sizeof(q));
		spare_arm();
		spare_post(&j, piece, &p, PIECES);
		spare_post(&k, piece, &q, PIECES);
		if (worker_expected())
			assert_true(j.posted);
		assert_false(k.posted);
		for (int w = 0; w < 200000; w++)   /* the caller's own work */
			x += w;
		spare_join(&k);
		spare_join(&j);
		spare_disarm();
		for (int i = 0; i < PIECES; i++) {
			assert_int_equal(atomic_load(&p.runs[i]), 1);
			assert_int_equal(atomic_load(&q.runs[i]), 1);
			others += !pthread_equal(p.by[i], pthread_self());
			second_others += !pthread_equal(q.by[i], pthread_self());
		}
	}
	print_message("  %d of %d posted pieces ran on the worker\n", others, 50 * PIECES);
	assert_int_equal(second_others, 0);
}

/* spare_cancel(): the pieces under way end, the others never run; it
 * returns (no wait for pieces nobody will take). */
static void test_cancelled(void **state)
{
	int ran = 0;

	(void)state;
	main_thread = pthread_self();
	for (int r = 0; r < 50; r++) {
		struct pieces p;
		struct spare_job j;

		memset(&p, 0, sizeof(p));
		spare_arm();
		spare_post(&j, piece, &p, PIECES);
		if (worker_expected())
			assert_true(j.posted);
		spare_cancel(&j);
		spare_disarm();
		for (int i = 0; i < PIECES; i++) {
			assert_true(atomic_load(&p.runs[i]) <= 1);
			ran += atomic_load(&p.runs[i]);
		}
	}
	print_message("  %d of %d pieces ran before their cancel\n", ran, 50 * PIECES);
	assert_true(ran < 50 * PIECES);
}

static void test_zero_pieces(void **state)
{
	(void)state;
	spare_arm();
	run_job(piece, NULL, 0);
	spare_disarm();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unarmed_runs_all_here),
		cmocka_unit_test(test_armed_runs_each_once),
		cmocka_unit_test(test_posted_then_joined),
		cmocka_unit_test(test_cancelled),
		cmocka_unit_test(test_zero_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
