/*
 * Threads created and exiting all the time, also while rtcr freezes the
 * process.
 *
 *   thr_churn STATUSFILE [PAUSE_US]
 *
 * Two spawner threads each loop: create a short-lived thread (kept in a
 * ring of 4), join the oldest when the ring is full, pause PAUSE_US
 * microseconds (default 1000, about 1500 threads a second in all; 0 is a
 * really tight loop, but that burns through this machine's 32768 pids in
 * a second or two, which could take a pid another test's restore needs).
 * A short-lived thread bumps "started", then spins ~100 us (odd sequence
 * numbers) or sleeps 1 ms (even), bumps "finished" and returns its
 * sequence number ^ MAGIC; its spawner checks that value on join. So at
 * any moment a few are alive, starting, running, sleeping or exiting.
 * At any moment joined <= finished <= started <= created, and per
 * spawner created == joined + live; main checks the first chain every
 * ~10 ms and writes "created joined" totals to STATUSFILE (fixed-size
 * line at offset 0).
 *
 * After the trigger the spawners stop creating and join what is left.
 * Then: created == joined == started == finished, every join value was
 * right, pthread_create never failed, per-spawner bookkeeping holds, and
 * the process is back to one thread (the restore left no extra task).
 */
#include "thr.h"

#define RING 4
#define MAGIC 0x7c3a5e00000000UL

static volatile unsigned long started, finished, joined_total, created_total;
static volatile int stop;
static long pause_us = 1000;

struct spawner {
	int idx;
	pthread_t th;
	pthread_t ring[RING];
	unsigned long seq[RING];
	int head, live;
	unsigned long created, joined, bad_values;
	int create_err;
};

static struct spawner S[2];

static void *shortlived(void *arg)
{
	volatile unsigned long x = 0;
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	if ((uintptr_t)arg & 1) {
		for (int i = 0; i < 100000; i++)
			x += i;
	} else {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);   /* EINTR (from a dump) just ends it early */
	}
	__atomic_add_fetch(&finished, 1, __ATOMIC_SEQ_CST);
	return (void *)((uintptr_t)arg ^ MAGIC);
}

static void join_oldest(struct spawner *s)
{
	void *ret = NULL;
	int r = pthread_join(s->ring[s->head], &ret);
	TCHECK(r == 0, "spawner %d: pthread_join: %s", s->idx, strerror(r));
	if ((uintptr_t)ret != (s->seq[s->head] ^ MAGIC))
		s->bad_values++;
	s->head = (s->head + 1) % RING;
	s->live--;
	s->joined++;
	__atomic_add_fetch(&joined_total, 1, __ATOMIC_SEQ_CST);
	TCHECK(s->created == s->joined + s->live, "spawner %d: created %lu, joined %lu, live %d",
	       s->idx, s->created, s->joined, s->live);
}

static void *spawner(void *arg)
{
	struct spawner *s = arg;
	struct timespec ts = { 0, pause_us * 1000 };

	while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
		int slot, r;
		unsigned long seq;
		if (s->live == RING)
			join_oldest(s);
		slot = (s->head + s->live) % RING;
		seq = ((unsigned long)s->idx << 40) | s->created;
		/* Counted as created before the thread can start. */
		__atomic_add_fetch(&created_total, 1, __ATOMIC_SEQ_CST);
		r = pthread_create(&s->ring[slot], NULL, shortlived, (void *)seq);
		if (r) {
			__atomic_sub_fetch(&created_total, 1, __ATOMIC_SEQ_CST);
			s->create_err = r;
			break;
		}
		s->seq[slot] = seq;
		s->live++;
		s->created++;
		if (pause_us)
			nanosleep(&ts, NULL);
	}
	while (s->live)
		join_oldest(s);
	return NULL;
}

static void snapshot_check(void)
{
	/* Read in the reverse order of the events: each read is then a
	 * bound for the next one. */
	unsigned long j = __atomic_load_n(&joined_total, __ATOMIC_SEQ_CST);
	unsigned long f = __atomic_load_n(&finished, __ATOMIC_SEQ_CST);
	unsigned long st = __atomic_load_n(&started, __ATOMIC_SEQ_CST);
	unsigned long c = __atomic_load_n(&created_total, __ATOMIC_SEQ_CST);
	TCHECK(j <= f && f <= st && st <= c,
	       "bookkeeping: joined %lu, finished %lu, started %lu, created %lu", j, f, st, c);
}

static void on_alarm(int sig)
{
	static const char m[] = "FAIL: spawners still running 10 s after the trigger\n";
	(void)sig;
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(2);
	_exit(1);
}

int main(int argc, char **argv)
{
	const char *trig = trigger_path();
	char line[128];
	int fd, n;

	if (argc < 2)
		fail("usage: thr_churn STATUSFILE [PAUSE_US]");
	if (argc > 2)
		pause_us = atol(argv[2]);
	CHECK(pause_us >= 0 && pause_us < 1000000, "bad PAUSE_US");
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("%s: %s", argv[1], strerror(errno));
	thr_status(fd, "0 0", 48);
	signal(SIGALRM, on_alarm);
	for (int i = 0; i < 2; i++) {
		S[i].idx = i;
		CHECK(pthread_create(&S[i].th, NULL, spawner, &S[i]) == 0, "pthread_create spawner");
	}
	for (n = 0; n < 5000 && created_total < 20; n++)
		tick();
	CHECK(created_total >= 20, "spawners created only %lu threads in 5 s", created_total);
	ready();
	for (n = 0; !trigger_set(trig); n++) {
		if (n % 10 == 0) {
			snapshot_check();
			snprintf(line, sizeof(line), "%lu %lu", created_total, joined_total);
			thr_status(fd, line, 48);
		}
		tick();
	}
	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	alarm(10);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_join(S[i].th, NULL) == 0, "pthread_join spawner");
	alarm(0);
	snapshot_check();
	for (int i = 0; i < 2; i++) {
		struct spawner *s = &S[i];
		printf("spawner %d: created %lu joined %lu\n", i, s->created, s->joined);
		CHECK(!s->create_err, "spawner %d: pthread_create: %s", i, strerror(s->create_err));
		CHECK(!s->bad_values, "spawner %d: %lu joins returned the wrong value", i,
		      s->bad_values);
		CHECK(s->live == 0 && s->created == s->joined, "spawner %d: created %lu joined %lu",
		      i, s->created, s->joined);
	}
	printf("count %lu\n", created_total);
	CHECK(created_total == S[0].created + S[1].created, "created %lu, spawners say %lu",
	      created_total, S[0].created + S[1].created);
	CHECK(created_total == joined_total && joined_total == finished && finished == started,
	      "created %lu, joined %lu, finished %lu, started %lu", created_total, joined_total,
	      finished, started);
	n = thr_wait_count(1);
	CHECK(n == 1, "%d threads left after every thread was joined", n);
	pass();
}
