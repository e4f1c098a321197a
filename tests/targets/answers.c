/*
 * What only injected calls read at dump, changed between periodic
 * checkpoints without rtcr seeing the process stop: a periodic live dump
 * reuses the last checkpoint's answers only while no call (or signal
 * delivery) that changes them was counted (src/task/answers.c).
 *
 * Before READY: SIGUSR1 -> h1 (SA_RESTART), SIGUSR2 -> h_reset
 * (SA_RESETHAND: a delivery sets it back to SIG_DFL), an alternate stack
 * of 64 KiB, PR_SET_PDEATHSIG SIGWINCH, clear-tid at &tid_word1.
 * While waiting (polling files, no signal), $RTCR_TRIGGER.cK appears:
 *   c1: SIGUSR1 -> h2 (SA_SIGINFO)             (rt_sigaction)
 *   c2: another alternate stack (32 KiB)       (sigaltstack)
 *   c3: parent-death signal SIGURG             (prctl)
 *   c4: clear-tid at &tid_word2                (set_tid_address)
 *   c5: the break 64 KiB higher                (brk)
 * each made once, then "CHANGED K" printed. SIGUSR2 sent by the test:
 * h_reset siglongjmps out of the handler, so no rt_sigreturn is made:
 * only the delivery shows; prints RESET.
 * After the trigger: every one of these is read back and compared with
 * what the flags in memory say it should be.
 */
#include "target.h"

#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>

struct ksa {
	unsigned long handler, flags, restorer, mask;
};

#define NCH 5
static char stack1[65536], stack2[32768];
static int tid_word1, tid_word2;
static volatile sig_atomic_t changed[NCH + 1], reset;
static void *brk0, *brk1;
static sigjmp_buf back;

static void h1(int sig) { (void)sig; }
static void h2(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }

static void h_reset(int sig)
{
	(void)sig;
	reset = 1;
	siglongjmp(back, 1);
}

static void set(int sig, void *h, int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = h;
	else
		sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	CHECK(!sigaction(sig, &sa, NULL), "sigaction(%d): %s", sig, strerror(errno));
}

static void altstack(char *base, size_t size)
{
	stack_t ss = { .ss_sp = base, .ss_size = size };
	CHECK(!sigaltstack(&ss, NULL), "sigaltstack: %s", strerror(errno));
}

static void change(int k)
{
	switch (k) {
	case 1: set(SIGUSR1, h2, SA_SIGINFO); break;
	case 2: altstack(stack2, sizeof(stack2)); break;
	case 3: CHECK(!prctl(PR_SET_PDEATHSIG, SIGURG), "PR_SET_PDEATHSIG: %s", strerror(errno)); break;
	case 4: syscall(SYS_set_tid_address, &tid_word2); break;
	case 5:
		brk1 = (char *)brk0 + 65536;
		CHECK(syscall(SYS_brk, brk1) == (long)(uintptr_t)brk1, "brk: %s", strerror(errno));
		break;
	}
	changed[k] = 1;
	printf("CHANGED %d\n", k);
	fflush(stdout);
}

int main(void)
{
	char files[NCH + 1][4096];
	struct ksa k;
	stack_t ss;
	int sig = 0;
	int *tidp = NULL;

	static char obuf[4096];

	/* (stdio's own buffer would come from the break) */
	setvbuf(stdout, obuf, _IOLBF, sizeof(obuf));
	for (int i = 1; i <= NCH; i++)
		snprintf(files[i], sizeof(files[i]), "%s.c%d", trigger_path(), i);
	set(SIGUSR1, h1, SA_RESTART);
	set(SIGUSR2, h_reset, SA_RESETHAND | SA_NODEFER);
	altstack(stack1, sizeof(stack1));
	CHECK(!prctl(PR_SET_PDEATHSIG, SIGWINCH), "PR_SET_PDEATHSIG: %s", strerror(errno));
	syscall(SYS_set_tid_address, &tid_word1);
	brk0 = (void *)syscall(SYS_brk, 0);
	if (sigsetjmp(back, 1)) {
		printf("RESET\n");
		fflush(stdout);
	} else {
		ready();
	}
	while (!trigger_set(trigger_path())) {
		for (int i = 1; i <= NCH; i++)
			if (!changed[i] && trigger_set(files[i]))
				change(i);
		tick();
	}

	CHECK(!syscall(SYS_rt_sigaction, SIGUSR1, NULL, &k, 8), "rt_sigaction: %s", strerror(errno));
	CHECK(k.handler == (unsigned long)(changed[1] ? (void *)h2 : (void *)h1),
	      "SIGUSR1's handler is %#lx, not %s's", k.handler, changed[1] ? "h2" : "h1");
	CHECK(!!(k.flags & SA_SIGINFO) == !!changed[1], "SIGUSR1's flags %#lx", k.flags);
	CHECK(!syscall(SYS_rt_sigaction, SIGUSR2, NULL, &k, 8), "rt_sigaction: %s", strerror(errno));
	CHECK(k.handler == (unsigned long)(reset ? SIG_DFL : (void *)h_reset),
	      "SIGUSR2's handler is %#lx, not %s", k.handler,
	      reset ? "SIG_DFL (reset by its delivery)" : "h_reset");
	CHECK(!sigaltstack(NULL, &ss), "sigaltstack: %s", strerror(errno));
	CHECK(ss.ss_sp == (changed[2] ? stack2 : stack1) &&
	      ss.ss_size == (changed[2] ? sizeof(stack2) : sizeof(stack1)),
	      "alternate stack %p+%zu, not the %s one", ss.ss_sp, ss.ss_size,
	      changed[2] ? "second" : "first");
	CHECK(!prctl(PR_GET_PDEATHSIG, &sig), "PR_GET_PDEATHSIG: %s", strerror(errno));
	CHECK(sig == (changed[3] ? SIGURG : SIGWINCH), "parent-death signal %d", sig);
	CHECK(!prctl(PR_GET_TID_ADDRESS, &tidp), "PR_GET_TID_ADDRESS: %s", strerror(errno));
	CHECK(tidp == (changed[4] ? &tid_word2 : &tid_word1), "clear-tid %p", (void *)tidp);
	CHECK((void *)syscall(SYS_brk, 0) == (changed[5] ? brk1 : brk0), "the break is %p, not %p",
	      (void *)syscall(SYS_brk, 0), changed[5] ? brk1 : brk0);
	pass();
}
