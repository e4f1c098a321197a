/*
 * Per-thread signal state: blocked masks, thread-directed pending
 * signals, alternate signal stacks. Main and four workers; the workers
 * wait for the trigger in a 1 ms nanosleep loop.
 *
 *   thread  blocked                 pending (sent by main before READY)
 *   main    SIGWINCH                -
 *   w0      SIGUSR2                 -
 *   w1      SIGUSR1 SIGRTMIN+1      SIGUSR1 (pthread_kill: SI_TKILL)
 *   w2      SIGHUP SIGRTMIN+2       SIGHUP (pthread_kill), SIGRTMIN+2
 *                                   value 77 then 78 (pthread_sigqueue)
 *   w3      nothing                 -
 * Every other thread leaves those signals unblocked: a thread-directed
 * signal that became process-wide (or went to the wrong thread) is
 * delivered at once to another thread, and that is caught. Nothing is
 * pending for the process as a whole.
 *
 * Altstacks: w<i> has its own mmap'ed sigaltstack of (64 + 32 i) KiB
 * (w2 with SS_AUTODISARM); main has none. Every handler has SA_ONSTACK.
 *
 * After the trigger, in order (barriers between the phases):
 *   1. every thread: tid (raw gettid) unchanged; blocked mask exactly as
 *      set; sigpending() exactly its own pending set (main: empty, so
 *      nothing shared either); sigaltstack() reads back its own (main:
 *      disabled). Then main: no handler has run anywhere yet.
 *   2. every thread unblocks everything: its pending signals are
 *      delivered in it (handler sees its tid, si_code, si_value; SIGRTMIN+2
 *      77 before 78, on its own altstack), then it raises SIGPROF, whose
 *      handler must run on its own altstack (main: on its normal stack).
 *   3. main: each signal was delivered exactly as often as sent.
 */
#include <sys/mman.h>

#include "thr.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

#define NW 4
#define NSIG_ 65

struct rec {
	pid_t tid;
	int code, val;
	uintptr_t local;
	int ss_flags;
};

#define NREC 8
static struct rec recs[NSIG_][NREC];
static volatile int cnt[NSIG_];
static volatile int total;

struct th {
	int idx;            /* -1: main */
	pthread_t th;
	pid_t tid;
	sigset_t mask, pend;
	char *alt;
	size_t altsz;
	int altflags;
	volatile int ready, verified;
	char err[1024];
	size_t errlen;
};

static struct th T[NW + 1];   /* T[0..3] workers, T[4] main */
static pthread_barrier_t bar;
static volatile int sent;
static const char *trig;
static int R1, R2;   /* SIGRTMIN+1, SIGRTMIN+2 */

static __attribute__((format(printf, 2, 3))) void terr(struct th *t, const char *fmt, ...)
{
	va_list ap;
	if (t->errlen >= sizeof(t->err) - 8)
		return;
	if (t->errlen)
		t->errlen += snprintf(t->err + t->errlen, sizeof(t->err) - t->errlen, "; ");
	va_start(ap, fmt);
	t->errlen += vsnprintf(t->err + t->errlen, sizeof(t->err) - t->errlen, fmt, ap);
	va_end(ap);
	if (t->errlen >= sizeof(t->err))
		t->errlen = sizeof(t->err) - 1;
}

static void h(int sig, siginfo_t *si, void *uc)
{
	volatile int local = sig;
	stack_t cur;
	int n = __atomic_fetch_add(&cnt[sig], 1, __ATOMIC_SEQ_CST);
	(void)uc;
	__atomic_add_fetch(&total, 1, __ATOMIC_SEQ_CST);
	sigaltstack(NULL, &cur);
	if (n < NREC)
		recs[sig][n] = (struct rec){ (pid_t)syscall(SYS_gettid), si->si_code,
					     si->si_value.sival_int, (uintptr_t)&local, cur.ss_flags };
}

static int usable(int s)
{
	return s != SIGKILL && s != SIGSTOP && !(s > 31 && s < SIGRTMIN);
}

static void set_of(sigset_t *set, int a, int b)
{
	sigemptyset(set);
	if (a)
		sigaddset(set, a);
	if (b)
		sigaddset(set, b);
}

static void fmt_set(const sigset_t *s, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int i = 1; i < NSIG_ && n < len - 8; i++)
		if (usable(i) && sigismember(s, i))
			n += snprintf(buf + n, len - n, "%s%d", n ? "," : "", i);
	if (!n)
		snprintf(buf, len, "none");
}

static void check_set(struct th *t, const char *what, const sigset_t *got, const sigset_t *want)
{
	for (int s = 1; s < NSIG_; s++)
		if (usable(s) && sigismember(got, s) != sigismember(want, s)) {
			char g[256], w[256];
			fmt_set(got, g, sizeof(g));
			fmt_set(want, w, sizeof(w));
			terr(t, "%s {%s}, expected {%s}", what, g, w);
			return;
		}
}

static int on_own_alt(const struct th *t, uintptr_t a)
{
	return t->alt && a >= (uintptr_t)t->alt && a < (uintptr_t)t->alt + t->altsz;
}

static int on_any_alt(uintptr_t a)
{
	for (int i = 0; i < NW; i++)
		if (on_own_alt(&T[i], a))
			return 1;
	return 0;
}

/* Phase 1: the state as restored. */
static void phase1(struct th *t)
{
	sigset_t cur;
	stack_t ss;

	if (thr_tid() != t->tid)
		terr(t, "gettid %d, was %d", thr_tid(), t->tid);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	check_set(t, "blocked", &cur, &t->mask);
	sigpending(&cur);
	check_set(t, "pending", &cur, &t->pend);
	sigaltstack(NULL, &ss);
	if (t->alt) {
		if (ss.ss_sp != t->alt || ss.ss_size != t->altsz || ss.ss_flags != t->altflags)
			terr(t, "altstack %p+%zu flags %#x, expected %p+%zu flags %#x", ss.ss_sp,
			     ss.ss_size, ss.ss_flags, t->alt, t->altsz, t->altflags);
	} else if (!(ss.ss_flags & SS_DISABLE)) {
		terr(t, "altstack %p+%zu flags %#x, expected none", ss.ss_sp, ss.ss_size, ss.ss_flags);
	}
}

static void want_rec(struct th *t, int sig, int n, int code, int val)
{
	const struct rec *r = &recs[sig][n];
	if (cnt[sig] <= n) {
		terr(t, "signal %d #%d not delivered on unblocking", sig, n + 1);
		return;
	}
	if (r->tid != t->tid)
		terr(t, "signal %d #%d delivered to tid %d", sig, n + 1, r->tid);
	if (r->code != code || (code == SI_QUEUE && r->val != val))
		terr(t, "signal %d #%d: si_code %d value %d, expected %d value %d", sig, n + 1,
		     r->code, r->val, code, val);
	if (!on_own_alt(t, r->local))
		terr(t, "signal %d #%d handled at %#lx, not on this thread's altstack", sig, n + 1,
		     (unsigned long)r->local);
}

/* Phase 2: unblock (pending signals arrive here), probe the altstack. */
static void phase2(struct th *t)
{
	sigset_t none;
	int n;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	if (t->idx == 1) {
		want_rec(t, SIGUSR1, 0, SI_TKILL, 0);
	} else if (t->idx == 2) {
		want_rec(t, SIGHUP, 0, SI_TKILL, 0);
		want_rec(t, R2, 0, SI_QUEUE, 77);
		want_rec(t, R2, 1, SI_QUEUE, 78);
	}
	/* One thread at a time raises SIGPROF (records are per signal). */
	while (__atomic_load_n(&cnt[SIGPROF], __ATOMIC_SEQ_CST) != (t->idx < 0 ? NW : t->idx))
		tick();
	n = cnt[SIGPROF];
	syscall(SYS_tgkill, getpid(), thr_tid(), SIGPROF);
	if (cnt[SIGPROF] != n + 1 || n >= NREC) {
		terr(t, "SIGPROF to itself not handled at once");
	} else {
		const struct rec *r = &recs[SIGPROF][n];
		if (r->tid != t->tid)
			terr(t, "SIGPROF handled by tid %d", r->tid);
		if (t->alt && !on_own_alt(t, r->local))
			terr(t, "SA_ONSTACK handler ran at %#lx, not on this thread's altstack %p+%zu",
			     (unsigned long)r->local, t->alt, t->altsz);
		if (t->alt && t->altflags == (int)SS_AUTODISARM && !(r->ss_flags & SS_DISABLE))
			terr(t, "SS_AUTODISARM: altstack flags %#x inside the handler", r->ss_flags);
		if (t->alt && !t->altflags && !(r->ss_flags & SS_ONSTACK))
			terr(t, "altstack flags %#x inside the handler, expected SS_ONSTACK",
			     r->ss_flags);
	}
}

static void *worker(void *arg)
{
	struct th *t = arg;
	stack_t ss;
	sigset_t cur;

	t->tid = thr_tid();
	CHECK(pthread_sigmask(SIG_SETMASK, &t->mask, NULL) == 0, "pthread_sigmask");
	t->altsz = (64 + 32 * t->idx) * 1024;
	t->alt = mmap(NULL, t->altsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(t->alt != MAP_FAILED, "mmap");
	t->altflags = t->idx == 2 ? (int)SS_AUTODISARM : 0;
	ss.ss_sp = t->alt;
	ss.ss_size = t->altsz;
	ss.ss_flags = t->altflags;
	CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack: %s", strerror(errno));
	__atomic_store_n(&t->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&sent, __ATOMIC_SEQ_CST))
		tick();
	sigpending(&cur);
	check_set(t, "before READY: pending", &cur, &t->pend);
	TCHECK(!t->errlen, "w%d: %s", t->idx, t->err);
	__atomic_store_n(&t->verified, 1, __ATOMIC_SEQ_CST);

	while (!trigger_set(trig))
		tick();
	phase1(t);
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);   /* main checked that nothing was delivered */
	phase2(t);
	pthread_barrier_wait(&bar);
	return NULL;
}

int main(void)
{
	struct th *m = &T[NW];
	struct sigaction sa;
	int sigs[7], bad = 0;
	union sigval v;

	trig = trigger_path();
	R1 = SIGRTMIN + 1;
	R2 = SIGRTMIN + 2;
	sigs[0] = SIGUSR1; sigs[1] = SIGUSR2; sigs[2] = SIGHUP; sigs[3] = R1; sigs[4] = R2;
	sigs[5] = SIGWINCH; sigs[6] = SIGPROF;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = h;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	for (int i = 0; i < 7; i++)
		CHECK(sigaction(sigs[i], &sa, NULL) == 0, "sigaction %d", sigs[i]);
	CHECK(pthread_barrier_init(&bar, NULL, NW + 1) == 0, "barrier");

	m->idx = -1;
	m->tid = thr_tid();
	set_of(&m->mask, SIGWINCH, 0);
	sigemptyset(&m->pend);
	set_of(&T[0].mask, SIGUSR2, 0);
	sigemptyset(&T[0].pend);
	set_of(&T[1].mask, SIGUSR1, R1);
	set_of(&T[1].pend, SIGUSR1, 0);
	set_of(&T[2].mask, SIGHUP, R2);
	set_of(&T[2].pend, SIGHUP, R2);
	sigemptyset(&T[3].mask);
	sigemptyset(&T[3].pend);
	for (int i = 0; i < NW; i++) {
		T[i].idx = i;
		CHECK(pthread_create(&T[i].th, NULL, worker, &T[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < NW; i++) {
		int k;
		for (k = 0; k < 5000 && !__atomic_load_n(&T[i].ready, __ATOMIC_SEQ_CST); k++)
			tick();
		CHECK(k < 5000, "w%d did not start", i);
	}
	CHECK(pthread_sigmask(SIG_SETMASK, &m->mask, NULL) == 0, "pthread_sigmask");
	CHECK(pthread_kill(T[1].th, SIGUSR1) == 0, "pthread_kill");
	CHECK(pthread_kill(T[2].th, SIGHUP) == 0, "pthread_kill");
	v.sival_int = 77;
	CHECK(pthread_sigqueue(T[2].th, R2, v) == 0, "pthread_sigqueue");
	v.sival_int = 78;
	CHECK(pthread_sigqueue(T[2].th, R2, v) == 0, "pthread_sigqueue");
	__atomic_store_n(&sent, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < NW; i++) {
		int k;
		for (k = 0; k < 5000 && !__atomic_load_n(&T[i].verified, __ATOMIC_SEQ_CST); k++)
			tick();
		CHECK(k < 5000, "w%d did not verify its pending set", i);
	}
	CHECK(total == 0, "%d signals delivered before READY", total);
	for (int i = 0; i < NW; i++)
		printf("w%d: tid %d, altstack %p+%zu\n", i, T[i].tid, T[i].alt, T[i].altsz);
	ready();
	trigger_wait();

	thr_watchdog(10, "threads stuck 10 s after the trigger");
	phase1(m);
	pthread_barrier_wait(&bar);
	if (total) {
		for (int s = 1; s < NSIG_; s++)
			if (cnt[s])
				terr(m, "signal %d delivered %d times before anything was unblocked "
				     "(first to tid %d)", s, cnt[s], recs[s][0].tid);
	}
	pthread_barrier_wait(&bar);
	phase2(m);
	if (m->errlen == 0 && on_any_alt(recs[SIGPROF][NW].local))
		terr(m, "main's SIGPROF handler ran on a worker's altstack");
	pthread_barrier_wait(&bar);
	for (int i = 0; i < NW; i++)
		pthread_join(T[i].th, NULL);
	alarm(0);
	{
		const int want[7] = { 1, 0, 1, 0, 2, 0, NW + 1 };
		for (int i = 0; i < 7; i++)
			if (cnt[sigs[i]] != want[i])
				terr(m, "signal %d delivered %d times in all, expected %d", sigs[i],
				     cnt[sigs[i]], want[i]);
	}
	for (int i = 0; i <= NW; i++)
		if (T[i].errlen) {
			if (i < NW)
				printf("w%d (tid %d): %s\n", i, T[i].tid, T[i].err);
			else
				printf("main: %s\n", T[i].err);
			bad++;
		}
	CHECK(!bad, "%d threads have wrong signal state (see above)", bad);
	pass();
}
