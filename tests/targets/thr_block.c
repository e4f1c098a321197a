/*
 * Threads checkpointed while blocked in synchronization or system calls.
 *
 *   thr_block MODE      MODE: mutex cond robust barrier nanosleep read join
 *                       or all (every one of them at once)
 *
 * Before READY each blocking thread is seen inside its system call
 * (/proc/self/task/TID/syscall: futex, nanosleep or read); main waits for
 * the trigger in a 1 ms nanosleep loop. After the trigger:
 *
 *   mutex     a holder thread locked mutex M before the two waiters
 *             blocked in pthread_mutex_lock(M); it polls the trigger, then
 *             ~100 ms later sets "released" and unlocks. Each waiter must
 *             get M (return 0) only with "released" set.
 *   cond      two threads in pthread_cond_wait (predicate loop); main sets
 *             the predicate and broadcasts. Both must return holding the
 *             mutex with the predicate set (spurious wakeups are counted).
 *   robust    an owner thread locked a robust mutex (PTHREAD_MUTEX_ROBUST)
 *             before a waiter blocked in pthread_mutex_lock. ~100 ms after
 *             the trigger the owner exits WITHOUT unlocking: the kernel
 *             walks its robust list (set_robust_list) and marks the mutex
 *             owner-dead, so the waiter's lock must return EOWNERDEAD.
 *             Needs the owner's robust list head and its tid (in the
 *             mutex word) restored.
 *   barrier   two threads in pthread_barrier_wait (count 3); main is the
 *             third after the trigger. All three return, exactly one with
 *             PTHREAD_BARRIER_SERIAL_THREAD, the two only after main came.
 *   nanosleep a thread in a raw nanosleep(2) of 2 s, retried with the time
 *             left on EINTR: it must end with 0 after >= 2 s (CLOCK_
 *             MONOTONIC, dump and restore included), not earlier; and not
 *             later than 2 s + the time the process was frozen + 0.5 s
 *             (main measures the freeze as the longest gap in its 1 ms
 *             trigger polling), so a sleep restarted from the start after
 *             the restore fails if the dump came >= 0.8 s after READY.
 *   read      a thread in a raw read(2) on stdin: the test writes
 *             "rtcr-input-threads\n" (after restore: to rtcr restore's
 *             stdin); it must read exactly that, with no EINTR.
 *   join      thread X runs (polls the trigger) while thread J is blocked
 *             in pthread_join(X). ~100 ms after the trigger X returns
 *             0x5eed1234; J's join must return 0 with that value. Needs
 *             X's clear_child_tid (set_tid_address) restored: the kernel
 *             clears and wakes X's tid word when it exits.
 *
 * Main then joins every thread; one still blocked 10 s after the trigger
 * fails the run (SIGALRM names it). Finally the process must be back to
 * one thread.
 */
#include <linux/futex.h>

#include "thr.h"

#define MAXB 16

struct blocker {
	const char *what;
	pthread_t th;
	volatile pid_t tid;
	long nr;            /* system call it must block in (-1: do not wait) */
	const char *hint;   /* what a thread stuck here suggests */
	int main_joins;     /* main joins it (not J's target X) */
	volatile int done;
	char err[256];
};

static struct blocker B[MAXB];
static int nb;
static const char *trig;

static struct blocker *add(const char *what, long nr, int main_joins)
{
	struct blocker *b = &B[nb++];
	b->what = what;
	b->nr = nr;
	b->main_joins = main_joins;
	return b;
}

static void start(struct blocker *b, void *(*fn)(void *))
{
	CHECK(pthread_create(&b->th, NULL, fn, b) == 0, "pthread_create %s", b->what);
	for (int i = 0; i < 5000 && !b->tid; i++)
		tick();
	CHECK(b->tid, "%s did not start", b->what);
	if (b->nr >= 0)
		thr_wait_in_syscall(b->tid, b->nr, b->what);
}

#define BERR(b, ...) snprintf((b)->err, sizeof((b)->err), __VA_ARGS__)

static void poll_trigger_then(long ms)
{
	while (!trigger_set(trig))
		tick();
	thr_sleep_ms(ms);
}

/* ---- mutex ---- */
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static volatile int m_released, m_held;

static void *m_holder(void *a)
{
	struct blocker *b = a;
	b->tid = thr_tid();
	CHECK(pthread_mutex_lock(&M) == 0, "holder lock");
	m_held = 1;
	poll_trigger_then(100);
	__atomic_store_n(&m_released, 1, __ATOMIC_SEQ_CST);
	CHECK(pthread_mutex_unlock(&M) == 0, "holder unlock");
	b->done = 1;
	return NULL;
}

static void *m_waiter(void *a)
{
	struct blocker *b = a;
	int r;
	b->tid = thr_tid();
	r = pthread_mutex_lock(&M);
	if (r)
		BERR(b, "pthread_mutex_lock returned %s", strerror(r));
	else if (!__atomic_load_n(&m_released, __ATOMIC_SEQ_CST))
		BERR(b, "got the mutex while its holder still held it");
	if (!r)
		pthread_mutex_unlock(&M);
	b->done = 1;
	return NULL;
}

static void setup_mutex(void)
{
	start(add("mutex holder", -1, 1), m_holder);
	for (int i = 0; i < 5000 && !m_held; i++)
		tick();
	CHECK(m_held, "mutex holder did not lock");
	start(add("mutex waiter 1", SYS_futex, 1), m_waiter);
	start(add("mutex waiter 2", SYS_futex, 1), m_waiter);
}

/* ---- cond ---- */
static pthread_mutex_t CM = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t CV = PTHREAD_COND_INITIALIZER;
static int c_pred;
static volatile int c_spurious;

static void *c_waiter(void *a)
{
	struct blocker *b = a;
	int r = 0;
	b->tid = thr_tid();
	pthread_mutex_lock(&CM);
	while (!c_pred && !r) {
		r = pthread_cond_wait(&CV, &CM);
		if (!c_pred)
			__atomic_add_fetch(&c_spurious, 1, __ATOMIC_SEQ_CST);
	}
	if (r)
		BERR(b, "pthread_cond_wait returned %s", strerror(r));
	else if (c_pred != 1)
		BERR(b, "predicate %d", c_pred);
	else if (pthread_mutex_trylock(&CM) != EBUSY)
		BERR(b, "returned without the mutex held");
	pthread_mutex_unlock(&CM);
	b->done = 1;
	return NULL;
}

static void setup_cond(void)
{
	start(add("cond waiter 1", SYS_futex, 1), c_waiter);
	start(add("cond waiter 2", SYS_futex, 1), c_waiter);
}

static void release_cond(void)
{
	pthread_mutex_lock(&CM);
	c_pred = 1;
	pthread_cond_broadcast(&CV);
	pthread_mutex_unlock(&CM);
}

/* ---- robust ---- */
static pthread_mutex_t RM;
static volatile int r_locked, r_exiting;

static void *r_owner(void *a)
{
	struct blocker *b = a;
	b->tid = thr_tid();
	CHECK(pthread_mutex_lock(&RM) == 0, "robust owner lock");
	r_locked = 1;
	poll_trigger_then(100);
	__atomic_store_n(&r_exiting, 1, __ATOMIC_SEQ_CST);
	b->done = 1;
	return NULL;   /* exits holding RM */
}

static void *r_waiter(void *a)
{
	struct blocker *b = a;
	int r;
	b->tid = thr_tid();
	r = pthread_mutex_lock(&RM);
	if (r != EOWNERDEAD) {
		BERR(b, "pthread_mutex_lock on the robust mutex returned %s, expected EOWNERDEAD",
		     r ? strerror(r) : "0");
	} else if (!__atomic_load_n(&r_exiting, __ATOMIC_SEQ_CST)) {
		BERR(b, "EOWNERDEAD before the owner exited");
	} else if ((r = pthread_mutex_consistent(&RM)) || (r = pthread_mutex_unlock(&RM)) ||
		   (r = pthread_mutex_lock(&RM)) || (r = pthread_mutex_unlock(&RM))) {
		BERR(b, "robust mutex unusable after EOWNERDEAD: %s", strerror(r));
	}
	b->done = 1;
	return NULL;
}

static void setup_robust(void)
{
	struct blocker *b;
	pthread_mutexattr_t at;
	pthread_mutexattr_init(&at);
	CHECK(pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST) == 0, "setrobust");
	CHECK(pthread_mutex_init(&RM, &at) == 0, "robust mutex init");
	start(add("robust mutex owner", -1, 1), r_owner);
	for (int i = 0; i < 5000 && !r_locked; i++)
		tick();
	CHECK(r_locked, "robust owner did not lock");
	b = add("robust mutex waiter", SYS_futex, 1);
	b->hint = "the owner exited but the kernel did not mark the mutex owner-dead: "
		  "robust list head or owner tid lost?";
	start(b, r_waiter);
}

/* ---- barrier ---- */
static pthread_barrier_t BAR;
static volatile int bar_main_came, bar_serial;

static void *bar_waiter(void *a)
{
	struct blocker *b = a;
	int r;
	b->tid = thr_tid();
	r = pthread_barrier_wait(&BAR);
	if (r == PTHREAD_BARRIER_SERIAL_THREAD)
		__atomic_add_fetch(&bar_serial, 1, __ATOMIC_SEQ_CST);
	else if (r)
		BERR(b, "pthread_barrier_wait returned %s", strerror(r));
	if (!__atomic_load_n(&bar_main_came, __ATOMIC_SEQ_CST))
		BERR(b, "left the barrier before main reached it");
	b->done = 1;
	return NULL;
}

static void setup_barrier(void)
{
	CHECK(pthread_barrier_init(&BAR, NULL, 3) == 0, "barrier init");
	start(add("barrier waiter 1", SYS_futex, 1), bar_waiter);
	start(add("barrier waiter 2", SYS_futex, 1), bar_waiter);
}

static void release_barrier(void)
{
	int r;
	__atomic_store_n(&bar_main_came, 1, __ATOMIC_SEQ_CST);
	r = pthread_barrier_wait(&BAR);
	if (r == PTHREAD_BARRIER_SERIAL_THREAD)
		__atomic_add_fetch(&bar_serial, 1, __ATOMIC_SEQ_CST);
	else
		CHECK(r == 0, "main: pthread_barrier_wait returned %s", strerror(r));
}

/* ---- nanosleep ---- */
#define SLEEP_NS 2000000000LL
static volatile int64_t ns_elapsed;
static volatile int ns_eintr;

static void *ns_sleeper(void *a)
{
	struct blocker *b = a;
	struct timespec req = { SLEEP_NS / 1000000000LL, SLEEP_NS % 1000000000LL }, rem;
	int64_t t0 = thr_mono_ns();
	long r;
	b->tid = thr_tid();
	for (;;) {
		r = syscall(SYS_nanosleep, &req, &rem);
		if (r == 0)
			break;
		if (errno != EINTR) {
			BERR(b, "nanosleep: %s", strerror(errno));
			break;
		}
		ns_eintr++;
		req = rem;
	}
	ns_elapsed = thr_mono_ns() - t0;
	if (r == 0 && ns_elapsed < SLEEP_NS)
		BERR(b, "nanosleep of %lld ms ended after %lld ms (%d EINTR)", SLEEP_NS / 1000000,
		     (long long)ns_elapsed / 1000000, ns_eintr);
	b->done = 1;
	return NULL;
}

static void setup_nanosleep(void)
{
	start(add("nanosleep sleeper", SYS_nanosleep, 1), ns_sleeper);
}

/* ---- read ---- */
static void *rd_reader(void *a)
{
	struct blocker *b = a;
	static const char want[] = "rtcr-input-threads\n";
	char buf[128];
	long r;
	b->tid = thr_tid();
	r = syscall(SYS_read, 0, buf, sizeof(buf) - 1);
	if (r < 0) {
		BERR(b, "read(stdin): %s%s", strerror(errno),
		     errno == EINTR ? " (read must restart, not fail)" : "");
	} else {
		buf[r] = 0;
		if (strcmp(buf, want))
			BERR(b, "read '%s' from stdin, expected '%s'", buf, want);
	}
	b->done = 1;
	return NULL;
}

static void setup_read(void)
{
	start(add("stdin reader", SYS_read, 1), rd_reader);
}

/* ---- join ---- */
#define JOIN_VAL ((void *)0x5eed1234UL)
static struct blocker *jx;
static volatile int jx_returning;

static void *j_target(void *a)
{
	struct blocker *b = a;
	b->tid = thr_tid();
	poll_trigger_then(100);
	__atomic_store_n(&jx_returning, 1, __ATOMIC_SEQ_CST);
	b->done = 1;
	return JOIN_VAL;
}

static void *j_joiner(void *a)
{
	struct blocker *b = a;
	void *ret = NULL;
	int r;
	b->tid = thr_tid();
	r = pthread_join(jx->th, &ret);
	if (r)
		BERR(b, "pthread_join returned %s", strerror(r));
	else if (ret != JOIN_VAL)
		BERR(b, "pthread_join gave %p, expected %p", ret, JOIN_VAL);
	else if (!__atomic_load_n(&jx_returning, __ATOMIC_SEQ_CST))
		BERR(b, "pthread_join returned before the thread did");
	b->done = 1;
	return NULL;
}

static void setup_join(void)
{
	struct blocker *b;

	jx = add("joined thread", -1, 0);
	start(jx, j_target);
	b = add("joiner", SYS_futex, 1);
	b->hint = "the joined thread returned but its tid word was not cleared and woken: "
		  "clear_child_tid lost?";
	start(b, j_joiner);
}

/* ---- main ---- */
static volatile int main_state;
static int64_t max_gap;   /* longest gap in main's trigger polling: the freeze */

static void on_alarm(int sig)
{
	char msg[2048];
	size_t n = 0;
	(void)sig;
	n += snprintf(msg + n, sizeof(msg) - n, "FAIL: 10 s after the trigger, still blocked:");
	for (int i = 0; i < nb; i++)
		if (!B[i].done)
			n += snprintf(msg + n, sizeof(msg) - n, " [%s, tid %d, in syscall %ld%s%s]",
				      B[i].what, B[i].tid, thr_syscall_of(B[i].tid),
				      B[i].hint ? ": " : "", B[i].hint ? B[i].hint : "");
	if (main_state == 1)
		n += snprintf(msg + n, sizeof(msg) - n, " [main in pthread_barrier_wait]");
	n += snprintf(msg + n, sizeof(msg) - n, "\n");
	if (write(1, msg, n) < 0)
		_exit(2);
	_exit(1);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "all";
	int all = !strcmp(mode, "all"), known = 0, bad = 0, n;

	trig = trigger_path();
	signal(SIGALRM, on_alarm);
#define MODE(name)                                                           \
	if (all || !strcmp(mode, #name)) {                                   \
		setup_##name();                                              \
		known = 1;                                                   \
	}
	MODE(mutex) MODE(cond) MODE(robust) MODE(barrier) MODE(nanosleep) MODE(read) MODE(join)
	CHECK(known, "unknown mode %s", mode);
	n = thr_count();
	CHECK(n == nb + 1, "%d threads, expected %d", n, nb + 1);
	for (int i = 0; i < nb; i++) {
		long sc = thr_syscall_of(B[i].tid);
		CHECK(B[i].nr < 0 || sc == B[i].nr, "%s left system call %ld (now %ld) before READY",
		      B[i].what, B[i].nr, sc);
		printf("%s: tid %d, in syscall %ld\n", B[i].what, B[i].tid, sc);
	}
	ready();
	{
		int64_t prev = thr_mono_ns(), now;
		while (!trigger_set(trig)) {
			tick();
			now = thr_mono_ns();
			if (now - prev > max_gap)
				max_gap = now - prev;
			prev = now;
		}
	}

	alarm(10);
	for (int i = 0; i < nb; i++)
		CHECK(!B[i].done || B[i].nr == SYS_nanosleep || B[i].nr == SYS_read,
		      "%s finished before the trigger", B[i].what);
	if (all || !strcmp(mode, "cond"))
		release_cond();
	if (all || !strcmp(mode, "barrier")) {
		main_state = 1;
		release_barrier();
		main_state = 0;
	}
	for (int i = 0; i < nb; i++)
		if (B[i].main_joins)
			CHECK(pthread_join(B[i].th, NULL) == 0, "pthread_join %s", B[i].what);
	alarm(0);
	for (int i = 0; i < nb; i++) {
		if (B[i].err[0]) {
			printf("%s (tid %d): %s\n", B[i].what, B[i].tid, B[i].err);
			bad++;
		}
	}
	if (all || !strcmp(mode, "barrier"))
		CHECK(bar_serial == 1, "%d threads got PTHREAD_BARRIER_SERIAL_THREAD, expected 1",
		      bar_serial);
	if (all || !strcmp(mode, "cond"))
		printf("cond: %d spurious wakeups\n", c_spurious);
	if (all || !strcmp(mode, "nanosleep")) {
		printf("nanosleep: %lld ms, %d EINTR; main's longest polling gap %lld ms\n",
		       (long long)ns_elapsed / 1000000, ns_eintr, (long long)max_gap / 1000000);
		CHECK(ns_elapsed <= SLEEP_NS + max_gap + 500000000LL,
		      "nanosleep of %lld ms took %lld ms, with the process frozen for about %lld ms: "
		      "restarted from the start?", SLEEP_NS / 1000000,
		      (long long)ns_elapsed / 1000000, (long long)max_gap / 1000000);
	}
	CHECK(!bad, "%d blocked threads ended wrong (see above)", bad);
	n = thr_wait_count(1);
	CHECK(n == 1, "%d threads left after every thread was joined", n);
	pass();
}
