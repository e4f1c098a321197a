/*
 * What a dump asked a process through injected calls, kept for the next
 * periodic checkpoint (task.h: struct answers).
 *
 * Each injected call is a ptrace round trip of a stopped thread, and the
 * freeze of a periodic checkpoint is what a real-time task feels: ~0.6 ms
 * of a ~2 ms freeze went to asking, each time, what had not changed. The
 * answers are reused only while mem/mapwatch.h's mw_attrs counted no call
 * (and no signal delivery) that can change any of them since the freeze
 * they are of; answers_take() keeps none for a process whose answers
 * change by themselves (armed interval timers, POSIX timers: their
 * remaining time).
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "task/task.h"

struct thread_answers {
	pid_t tid;
	bool has_altstack;
	uint64_t ss_sp, ss_size;
	uint32_t ss_flags;
	uint64_t clear_tid;
	uint32_t securebits;       /* its own credentials', or the process's */
};

struct answers {
	int32_t dumpable, thp_disable, pdeathsig;
	bool child_subreaper;
	uint64_t xcomp_perm;
	uint32_t securebits;
	uint64_t brk;
	Rtcr__SigAction *sigactions;
	size_t n_sigactions;
	struct thread_answers *t;
	size_t nt;
};

struct answers *answers_take(const Rtcr__Process *p, const Rtcr__Mm *mm)
{
	struct answers *a;

	if (!p || !mm || !p->creds || p->n_itimers || p->n_posix_timers)
		return NULL;
	a = xzalloc(sizeof(*a));
	a->dumpable = p->dumpable;
	a->thp_disable = p->thp_disable;
	a->pdeathsig = p->pdeathsig;
	a->child_subreaper = p->child_subreaper;
	a->xcomp_perm = p->xcomp_perm;
	a->securebits = p->creds->securebits;
	a->brk = mm->brk;
	a->n_sigactions = p->n_sigactions;
	a->sigactions = xzalloc((p->n_sigactions ? p->n_sigactions : 1) * sizeof(*a->sigactions));
	for (size_t i = 0; i < p->n_sigactions; i++)
		a->sigactions[i] = *p->sigactions[i];
	a->nt = p->n_threads;
	a->t = xzalloc((p->n_threads ? p->n_threads : 1) * sizeof(*a->t));
	for (size_t i = 0; i < p->n_threads; i++) {
		const Rtcr__Thread *t = p->threads[i];
		struct thread_answers *ta = &a->t[i];
		ta->tid = t->tid;
		ta->has_altstack = t->altstack != NULL;
		if (t->altstack) {
			ta->ss_sp = t->altstack->sp;
			ta->ss_size = t->altstack->size;
			ta->ss_flags = t->altstack->flags;
		}
		ta->clear_tid = t->clear_tid;
		ta->securebits = t->creds ? t->creds->securebits : p->creds->securebits;
	}
	return a;
}

static const struct thread_answers *thread_of(const struct answers *a, pid_t tid)
{
	for (size_t i = 0; i < a->nt; i++)
		if (a->t[i].tid == tid)
			return &a->t[i];
	return NULL;
}

bool answers_cover(const struct answers *a, const pid_t *tids, int n)
{
	if (!a)
		return false;
	for (int i = 0; i < n; i++)
		if (!thread_of(a, tids[i]))
			return false;
	return true;
}

void answers_apply(const struct answers *a, Rtcr__Process *p, struct attrs_more *more)
{
	p->dumpable = a->dumpable;
	p->thp_disable = a->thp_disable;
	p->pdeathsig = a->pdeathsig;
	p->child_subreaper = a->child_subreaper;
	p->xcomp_perm = a->xcomp_perm;
	more->securebits = a->securebits;
	more->brk = a->brk;
	p->sigactions = xzalloc((a->n_sigactions ? a->n_sigactions : 1) * sizeof(*p->sigactions));
	for (size_t i = 0; i < a->n_sigactions; i++) {
		Rtcr__SigAction *s = xzalloc(sizeof(*s));
		*s = a->sigactions[i];   /* (no pointers in it) */
		p->sigactions[p->n_sigactions++] = s;
	}
	for (size_t i = 0; i < p->n_threads; i++) {
		Rtcr__Thread *t = p->threads[i];
		const struct thread_answers *ta = thread_of(a, t->tid);
		if (!ta)
			continue;    /* (answers_cover() said it is there) */
		if (ta->has_altstack) {
			t->altstack = xzalloc(sizeof(*t->altstack));
			rtcr__sig_alt_stack__init(t->altstack);
			t->altstack->sp = ta->ss_sp;
			t->altstack->size = ta->ss_size;
			t->altstack->flags = ta->ss_flags;
		}
		t->clear_tid = ta->clear_tid;
	}
}

long answers_thread_securebits(const struct answers *a, pid_t tid)
{
	const struct thread_answers *ta = thread_of(a, tid);

	return ta ? (long)ta->securebits : 0;
}

void answers_free(struct answers *a)
{
	if (!a)
		return;
	free(a->sigactions);
	free(a->t);
	free(a);
}
