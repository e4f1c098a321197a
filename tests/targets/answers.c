/*
 * What only injected calls read at dump, changed between periodic
 * checkpoints without rtcr seeing the process stop: a periodic live dump
 * reuses the last checkpoint's answers only while no call (or signal
 * delivery) that changes them was counted (src/task/answers.c).
 *
 * Before READY: SIGUSR1 -> h1 (SA_RESTART), SIGUSR2 -> h_reset
 * (SA_RESETHAND: a delivery sets it back to SIG_DFL), an alternate stack
 * of 64 KiB, PR_SET_PDEATHSIG SIGWINCH, clear-tid at &tid_word1.
 * While waiting (polling files, no signal):
 *   $RTCR_TRIGGER.change appears: SIGUSR1 -> h2 (SA_SIGINFO), another
 *      alternate stack (32 KiB), pdeathsig SIGURG, clear-tid at
 *      &tid_word2; prints CHANGED.
 *   SIGUSR2 sent by the test: h_reset siglongjmps out of the handler, so
 *      no rt_sigreturn is made: only the delivery shows; prints RESET.
 * After the trigger: every one of these is read back and compared with
 * what the flags in memory say it should be.
 */
#include "target.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/prctl.h>

struct ksa {
	unsigned long handler, flags, restorer, mask;
};

static char stack1[65536], stack2[32768];
static int tid_word1, tid_word2;
static volatile sig_atomic_t changed, reset;
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

static void say(const char *what)
{
	printf("%s\n", what);
	fflush(stdout);
}

int main(void)
{
	char change[4096];
	struct ksa k;
	stack_t ss;
	int sig = 0;
	int *tidp = NULL;

	snprintf(change, sizeof(change), "%s.change", trigger_path());
	set(SIGUSR1, h1, SA_RESTART);
	set(SIGUSR2, h_reset, SA_RESETHAND | SA_NODEFER);
	altstack(stack1, sizeof(stack1));
	CHECK(!prctl(PR_SET_PDEATHSIG, SIGWINCH), "PR_SET_PDEATHSIG: %s", strerror(errno));
	syscall(SYS_set_tid_address, &tid_word1);
	if (sigsetjmp(back, 1))
		say("RESET");
	else
		ready();
	while (!trigger_set(trigger_path())) {
		if (!changed && trigger_set(change)) {
			struct sigaction sa;
			memset(&sa, 0, sizeof(sa));
			sa.sa_sigaction = h2;
			sa.sa_flags = SA_SIGINFO;
			sigemptyset(&sa.sa_mask);
			CHECK(!sigaction(SIGUSR1, &sa, NULL), "sigaction: %s", strerror(errno));
			altstack(stack2, sizeof(stack2));
			CHECK(!prctl(PR_SET_PDEATHSIG, SIGURG), "PR_SET_PDEATHSIG: %s", strerror(errno));
			syscall(SYS_set_tid_address, &tid_word2);
			changed = 1;
			say("CHANGED");
		}
		tick();
	}

	CHECK(!syscall(SYS_rt_sigaction, SIGUSR1, NULL, &k, 8), "rt_sigaction: %s", strerror(errno));
	CHECK(k.handler == (unsigned long)(changed ? (void *)h2 : (void *)h1),
	      "SIGUSR1's handler is %#lx, not %s's", k.handler, changed ? "h2" : "h1");
	CHECK(!!(k.flags & SA_SIGINFO) == !!changed, "SIGUSR1's flags %#lx", k.flags);
	CHECK(!syscall(SYS_rt_sigaction, SIGUSR2, NULL, &k, 8), "rt_sigaction: %s", strerror(errno));
	CHECK(k.handler == (unsigned long)(reset ? SIG_DFL : (void *)h_reset),
	      "SIGUSR2's handler is %#lx, not %s", k.handler,
	      reset ? "SIG_DFL (reset by its delivery)" : "h_reset");
	CHECK(!sigaltstack(NULL, &ss), "sigaltstack: %s", strerror(errno));
	CHECK(ss.ss_sp == (changed ? stack2 : stack1) &&
	      ss.ss_size == (changed ? sizeof(stack2) : sizeof(stack1)),
	      "alternate stack %p+%zu, not the %s one", ss.ss_sp, ss.ss_size,
	      changed ? "second" : "first");
	CHECK(!prctl(PR_GET_PDEATHSIG, &sig), "PR_GET_PDEATHSIG: %s", strerror(errno));
	CHECK(sig == (changed ? SIGURG : SIGWINCH), "parent-death signal %d", sig);
	CHECK(!prctl(PR_GET_TID_ADDRESS, &tidp), "PR_GET_TID_ADDRESS: %s", strerror(errno));
	CHECK(tidp == (changed ? &tid_word2 : &tid_word1), "clear-tid %p", (void *)tidp);
	pass();
}
