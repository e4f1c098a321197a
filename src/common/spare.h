/*
 * The spare CPU: a worker thread that shares the frozen phase's
 * page-table walks with rtcr's main thread.
 *
 * While the tree is frozen, rtcr works on one CPU and the other CPUs are
 * idle; the walk of the tracker's bits (PAGEMAP_SCAN, ~0.5-1 ms per GiB)
 * is the part of the freeze that grows with the memory. Split in pieces,
 * it runs on two CPUs at once (walks of different page tables only
 * share the memory map's lock, for reading).
 *
 * Waking a sleeping thread on an idle virtual CPU costs 0.05-2 ms here,
 * more than it would save, so the worker is woken just before the freeze
 * begins (spare_arm()), on another CPU than the caller's, and waits for
 * work there until spare_disarm() (or SPARE_SPIN_MAX_MS), yielding its
 * CPU at each turn: any other task there runs first. Work is shared by
 * taking pieces: the caller takes pieces too, and a worker that arrives
 * late only takes fewer. Nothing ever waits for the worker but for the
 * piece it is doing (the caller yields while it waits, should the two
 * share a CPU).
 *
 * With one usable CPU (or RTCR_SPARE=0) there is no worker and
 * spare_join() does every piece itself.
 */
#ifndef RTCR_COMMON_SPARE_H
#define RTCR_COMMON_SPARE_H

#include <stdatomic.h>
#include <stdbool.h>

#define SPARE_SPIN_MAX_MS 200   /* a worker never spins longer than this per arm */

void spare_arm(void);
void spare_disarm(void);

/*
 * fn(arg, i) for i in [0, n), shared with the worker if armed (fn must be
 * safe to run concurrently for distinct i), in two steps so that the
 * caller does other work meanwhile: spare_post() hands the pieces to the
 * worker, which begins at once; spare_join() does the pieces it has not
 * taken and waits for the one it is doing. One job is posted at a time: a job posted while
 * another is, or with no worker, is all done by spare_join(). j is the
 * caller's and must live until spare_join() returns.
 */
struct spare_job {
	void (*fn)(void *arg, int i);
	void *arg;
	int n;
	atomic_int next;   /* the next piece to take */
	atomic_int left;   /* pieces not done yet */
	bool posted;       /* the worker may take pieces */
};
void spare_post(struct spare_job *j, void (*fn)(void *arg, int i), void *arg, int n);
void spare_join(struct spare_job *j);
/* The same, but the pieces nobody has taken yet are never done. */
void spare_cancel(struct spare_job *j);

#endif
