/*
 * The spare CPU (spare.h).
 */
#include "common/spare.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool have_worker;
static pthread_t th;
static cpu_set_t allowed;          /* rtcr's CPUs when the worker began */
static atomic_uint gen;            /* bumped by each arm; the worker sleeps on it */
static atomic_bool armed;
static struct spare_job *_Atomic cur;    /* the job under way, if any */
static atomic_int busy;            /* the worker holds a pointer to a job */

static void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static void take(struct spare_job *j)
{
	for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
		j->fn(j->arg, i);
		atomic_fetch_sub(&j->left, 1);
	}
}

/*
 * Waiting, it yields its CPU at each turn: any other task there (a
 * process of the tree that rtcr seizes, anything else) runs first. Not
 * SCHED_IDLE: holding a piece, it must not be starved while rtcr's main
 * thread waits for it.
 */
static void *worker(void *unused)
{
	unsigned seen = 0;

	(void)unused;
	for (;;) {
		unsigned g = atomic_load(&gen);
		uint64_t t0;

		if (g == seen) {
			syscall(SYS_futex, &gen, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
			continue;
		}
		seen = g;
		t0 = now_ns();
		while (atomic_load(&armed)) {
			struct spare_job *j;

			atomic_fetch_add(&busy, 1);
			j = atomic_load(&cur);
			if (j)
				take(j);
			atomic_fetch_sub(&busy, 1);
			/* Armed again meanwhile: the limit counts from then. */
			if ((g = atomic_load(&gen)) != seen) {
				seen = g;
				t0 = now_ns();
			}
			if (now_ns() - t0 > SPARE_SPIN_MAX_MS * 1000000ull)
				break;
			sched_yield();
		}
	}
	return NULL;
}

static void start(void)
{
	const char *e = getenv("RTCR_SPARE");
	sigset_t all, old;
	pthread_attr_t at;
	int err;

	if ((e && !strcmp(e, "0")) || sched_getaffinity(0, sizeof(allowed), &allowed) ||
	    CPU_COUNT(&allowed) < 2)
		return;
	/* Signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 << 10);
	err = pthread_create(&th, &at, worker, NULL);
	have_worker = !err;
	pthread_attr_destroy(&at);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		pr_debug("no spare CPU worker: %s", strerror(err));
}

void spare_arm(void)
{
	cpu_set_t other;
	int me;

	pthread_once(&once, start);
	if (!have_worker)
		return;
	/* Not on this CPU: woken there, it would take it from the caller
	 * for a time slice. */
	other = allowed;
	me = sched_getcpu();
	if (me >= 0 && CPU_ISSET(me, &other)) {
		CPU_CLR(me, &other);
		pthread_setaffinity_np(th, sizeof(other), &other);
	}
	atomic_store(&armed, true);
	atomic_fetch_add(&gen, 1);
	syscall(SYS_futex, &gen, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void spare_disarm(void)
{
	atomic_store(&armed, false);
}

/* Until *v is 0; yielding after a while: should the worker share this
 * CPU, it runs. */
static void wait_zero(atomic_int *v)
{
	for (unsigned k = 0; atomic_load(v) > 0; k++) {
		if (k < 4096)
			cpu_relax();
		else
			sched_yield();
	}
}

void spare_post(struct spare_job *j, void (*fn)(void *arg, int i), void *arg, int n)
{
	struct spare_job *none = NULL;

	j->fn = fn;
	j->arg = arg;
	j->n = n;
	atomic_init(&j->next, 0);
	atomic_init(&j->left, n);
	j->posted = have_worker && atomic_load(&armed) &&
		    atomic_compare_exchange_strong(&cur, &none, j);
	/* A worker past its spin limit sleeps: woken (and its limit counted
	 * from now) by a new generation. */
	if (j->posted) {
		atomic_fetch_add(&gen, 1);
		syscall(SYS_futex, &gen, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

void spare_cancel(struct spare_job *j)
{
	int k = atomic_exchange(&j->next, j->n);

	/* Pieces from k on are never taken: not waited for. */
	if (k < j->n)
		atomic_fetch_sub(&j->left, j->n - k);
	spare_join(j);
}

void spare_join(struct spare_job *j)
{
	take(j);
	if (!j->posted)
		return;
	/* The worker's last piece; then it lets go of j. */
	wait_zero(&j->left);
	atomic_store(&cur, NULL);
	wait_zero(&busy);
	j->posted = false;
}
