/*
 * Signal actions, ignored signals and the blocked mask.
 *
 * Before READY: handlers with SA_RESTART, SA_SIGINFO, SA_NODEFER,
 * SA_RESETHAND, SA_ONSTACK and various sa_masks; some signals set to
 * SIG_IGN; a blocked mask. The raw kernel actions of all 64 signals and
 * the mask are saved. After the trigger: every action is read back and
 * compared with the saved ones, then signals are really delivered:
 * handlers run with the right mask, SA_SIGINFO sees si_value,
 * SA_RESETHAND resets, SA_RESTART restarts a blocking read and its
 * absence makes it fail with EINTR, ignored signals do nothing.
 */
#include "target.h"

#include <signal.h>
#include <sys/wait.h>

struct ksa {
	unsigned long handler, flags, restorer, mask;
};

static void kget(int sig, struct ksa *k)
{
	memset(k, 0, sizeof(*k));
	if (syscall(SYS_rt_sigaction, sig, NULL, k, 8) < 0)
		fail("rt_sigaction(%d): %s", sig, strerror(errno));
}

static unsigned long kmask(void)
{
	unsigned long m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

#define BIT(s) (1UL << ((s) - 1))

static volatile int hits[65];
static volatile unsigned long mask_in[65];
static volatile int info_val, info_code, info_pid;
static int pipe_w = -1;

static void h_plain(int sig)
{
	hits[sig]++;
	mask_in[sig] = kmask();
	/* SIGALRM is the SA_RESTART probe: it feeds the read it interrupts. */
	if (sig == SIGALRM && pipe_w >= 0) {
		if (write(pipe_w, "x", 1) != 1)
			_exit(3);
	}
}

static void h_info(int sig, siginfo_t *si, void *uc)
{
	hits[sig]++;
	mask_in[sig] = kmask();
	info_val = si->si_value.sival_int;
	info_code = si->si_code;
	info_pid = si->si_pid;
}

static void set(int sig, void *h, int flags, const int *maskv)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = h;
	else
		sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	for (; maskv && *maskv; maskv++)
		sigaddset(&sa.sa_mask, *maskv);
	if (sigaction(sig, &sa, NULL))
		fail("sigaction(%d): %s", sig, strerror(errno));
}

static int flags_of(int sig)
{
	struct sigaction sa;
	sigaction(sig, NULL, &sa);
	return sa.sa_flags;
}

/* A child sends SIG to us while we block in read() on a pipe. */
static ssize_t read_interrupted_by(int sig, int *err)
{
	int p[2];
	char c;
	ssize_t n;
	pid_t ch, me = getpid();

	if (pipe(p))
		fail("pipe: %s", strerror(errno));
	pipe_w = p[1];
	ch = fork();
	if (ch < 0)
		fail("fork: %s", strerror(errno));
	if (ch == 0) {
		/* Wait until the parent blocks in read(2) (syscall 0). */
		char path[64], line[32] = "";
		snprintf(path, sizeof(path), "/proc/%d/syscall", me);
		for (int i = 0; i < 5000; i++) {
			FILE *f = fopen(path, "r");
			if (f && fgets(line, sizeof(line), f) && !strncmp(line, "0 ", 2)) {
				fclose(f);
				break;
			}
			if (f)
				fclose(f);
			usleep(1000);
		}
		usleep(5000);
		kill(me, sig);
		_exit(0);
	}
	n = read(p[0], &c, 1);
	*err = errno;
	waitpid(ch, NULL, 0);
	close(p[0]);
	close(p[1]);
	pipe_w = -1;
	return n;
}

int main(void)
{
	static struct ksa before[65], after[65];
	static char altstack[65536];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0 };
	int rtmin = SIGRTMIN;
	unsigned long blocked_before, blocked_after;
	sigset_t bl;
	int err;
	ssize_t n;

	if (sigaltstack(&ss, NULL))
		fail("sigaltstack: %s", strerror(errno));
	set(SIGUSR1, h_plain, SA_RESTART, (int[]){ SIGUSR2, SIGRTMIN + 4, 0 });
	set(SIGUSR2, h_info, SA_SIGINFO, NULL);
	set(SIGHUP, h_plain, SA_NODEFER, (int[]){ SIGINT, 0 });
	set(SIGTERM, h_plain, SA_RESETHAND, NULL);
	set(SIGURG, h_plain, SA_ONSTACK | SA_RESTART, (int[]){ SIGWINCH, 0 });
	set(SIGALRM, h_plain, SA_RESTART, NULL);
	set(SIGRTMIN + 2, h_info, SA_SIGINFO | SA_RESTART | SA_NODEFER,
	    (int[]){ SIGUSR1, SIGRTMAX, 0 });
	signal(SIGPIPE, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGRTMIN + 3, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);

	sigemptyset(&bl);
	sigaddset(&bl, SIGPWR);
	sigaddset(&bl, SIGXCPU);
	sigaddset(&bl, SIGRTMIN + 6);
	sigaddset(&bl, SIGRTMAX);
	sigprocmask(SIG_SETMASK, &bl, NULL);

	for (int s = 1; s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP)
			kget(s, &before[s]);
	blocked_before = kmask();
	CHECK(blocked_before == (BIT(SIGPWR) | BIT(SIGXCPU) | BIT(rtmin + 6) | BIT(SIGRTMAX)),
	      "blocked mask before: %#lx", blocked_before);
	ready();
	trigger_wait();

	/* 1. Read back: the kernel's view of every action, bit for bit. */
	for (int s = 1; s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		kget(s, &after[s]);
		CHECK(!memcmp(&before[s], &after[s], sizeof(after[s])),
		      "signal %d (%s): action was handler %#lx flags %#lx restorer %#lx mask %#lx, "
		      "now handler %#lx flags %#lx restorer %#lx mask %#lx", s, strsignal(s),
		      before[s].handler, before[s].flags, before[s].restorer, before[s].mask,
		      after[s].handler, after[s].flags, after[s].restorer, after[s].mask);
	}
	blocked_after = kmask();
	CHECK(blocked_after == blocked_before, "blocked mask %#lx, was %#lx", blocked_after,
	      blocked_before);
	/* The same through libc, flag by flag. */
	CHECK(flags_of(SIGUSR1) & SA_RESTART, "SIGUSR1 lost SA_RESTART");
	CHECK(flags_of(SIGUSR2) & SA_SIGINFO, "SIGUSR2 lost SA_SIGINFO");
	CHECK(flags_of(SIGHUP) & SA_NODEFER, "SIGHUP lost SA_NODEFER");
	CHECK(flags_of(SIGTERM) & SA_RESETHAND, "SIGTERM lost SA_RESETHAND");
	CHECK(flags_of(SIGURG) & SA_ONSTACK, "SIGURG lost SA_ONSTACK");
	{
		struct sigaction sa;
		sigaction(SIGQUIT, NULL, &sa);
		CHECK(sa.sa_handler == SIG_IGN, "SIGQUIT no longer ignored");
		sigaction(SIGRTMIN + 3, NULL, &sa);
		CHECK(sa.sa_handler == SIG_IGN, "SIGRTMIN+3 no longer ignored");
		sigaction(SIGUSR1, NULL, &sa);
		CHECK(sa.sa_handler == h_plain, "SIGUSR1 handler is %p", (void *)sa.sa_handler);
		CHECK(sigismember(&sa.sa_mask, SIGUSR2) && sigismember(&sa.sa_mask, SIGRTMIN + 4) &&
		      !sigismember(&sa.sa_mask, SIGHUP), "SIGUSR1 sa_mask changed");
	}

	/* 2. Delivery. The mask inside a handler is the blocked mask, plus
	 * sa_mask, plus the signal itself unless SA_NODEFER. */
	raise(SIGUSR1);
	CHECK(hits[SIGUSR1] == 1, "SIGUSR1 handler did not run");
	CHECK(mask_in[SIGUSR1] == (blocked_before | BIT(SIGUSR1) | BIT(SIGUSR2) | BIT(rtmin + 4)),
	      "mask in SIGUSR1 handler %#lx", mask_in[SIGUSR1]);
	{
		union sigval v = { .sival_int = 4242 };
		sigqueue(getpid(), SIGUSR2, v);
	}
	CHECK(hits[SIGUSR2] == 1, "SIGUSR2 (SA_SIGINFO) handler did not run");
	CHECK(info_val == 4242 && info_code == SI_QUEUE && info_pid == getpid(),
	      "SIGUSR2 siginfo: value %d code %d pid %d", info_val, info_code, info_pid);
	CHECK(mask_in[SIGUSR2] == (blocked_before | BIT(SIGUSR2)), "mask in SIGUSR2 handler %#lx",
	      mask_in[SIGUSR2]);
	raise(SIGHUP);
	CHECK(hits[SIGHUP] == 1, "SIGHUP handler did not run");
	CHECK(mask_in[SIGHUP] == (blocked_before | BIT(SIGINT)),
	      "mask in SIGHUP (SA_NODEFER) handler %#lx", mask_in[SIGHUP]);
	{
		union sigval v = { .sival_int = -77 };
		sigqueue(getpid(), SIGRTMIN + 2, v);
	}
	CHECK(hits[rtmin + 2] == 1 && info_val == -77, "SIGRTMIN+2 handler: hits %d value %d",
	      hits[rtmin + 2], info_val);
	CHECK(mask_in[rtmin + 2] == (blocked_before | BIT(SIGUSR1) | BIT(SIGRTMAX)),
	      "mask in SIGRTMIN+2 handler %#lx", mask_in[rtmin + 2]);
	raise(SIGTERM);
	CHECK(hits[SIGTERM] == 1, "SIGTERM handler did not run");
	{
		struct sigaction sa;
		sigaction(SIGTERM, NULL, &sa);
		CHECK(sa.sa_handler == SIG_DFL, "SA_RESETHAND: SIGTERM handler not reset after delivery");
	}
	/* Ignored: nothing happens, we live on. */
	raise(SIGQUIT);
	raise(SIGINT);
	raise(SIGRTMIN + 3);
	raise(SIGTSTP);
	/* Blocked: SIGPWR would kill us; it stays pending instead. */
	raise(SIGPWR);
	{
		sigset_t p;
		sigpending(&p);
		CHECK(sigismember(&p, SIGPWR), "blocked SIGPWR not pending");
	}

	/* 3. SA_RESTART: the read goes on after the handler (which writes
	 * the byte it reads); without it, the read fails with EINTR. */
	n = read_interrupted_by(SIGALRM, &err);
	CHECK(n == 1, "read interrupted by SIGALRM (SA_RESTART): %zd, %s", n, strerror(err));
	n = read_interrupted_by(SIGHUP, &err);
	CHECK(n < 0 && err == EINTR, "read interrupted by SIGHUP (no SA_RESTART): %zd, %s", n,
	      strerror(err));
	pass();
}
