/*
 * The alternate signal stack.
 *
 *   altstack basic       sigaltstack on an mmap'ed area; SIGUSR1 has
 *                        SA_ONSTACK, SIGUSR2 not. After the trigger the
 *                        altstack reads back the same, SIGUSR1's handler
 *                        runs on it (address of a local), SIGUSR2's not.
 *   altstack autodisarm  the same with SS_AUTODISARM: inside the handler
 *                        the altstack reads as disabled, after it as set.
 *   altstack inhandler   the process is dumped while running inside the
 *                        SIGUSR1 handler on the altstack (it prints READY
 *                        from there and waits for the trigger). After the
 *                        restore it is still on the altstack (SS_ONSTACK,
 *                        local address), returns from the handler to main,
 *                        whose state and mask are intact, and the next
 *                        signal uses the altstack again.
 */
#include "target.h"

#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

#define SZ (256 * 1024)

static char *alt;
static int mode_autodisarm, mode_inhandler;
static volatile uintptr_t local_addr[65];
static volatile int hits[65];
static volatile int in_handler_flags = -1;
static volatile int checked_inside;

static int on_alt(uintptr_t a)
{
	return a >= (uintptr_t)alt && a < (uintptr_t)alt + SZ;
}

static unsigned long kmask(void)
{
	unsigned long m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static void h(int sig)
{
	volatile int local = sig;
	stack_t cur;

	local_addr[sig] = (uintptr_t)&local;
	hits[sig]++;
	sigaltstack(NULL, &cur);
	in_handler_flags = cur.ss_flags;
	if (mode_inhandler && sig == SIGUSR1 && hits[sig] == 1) {
		static const char r[] = "READY\n";
		if (write(1, r, sizeof(r) - 1) != sizeof(r) - 1)
			_exit(2);
		trigger_wait();
		/* Restored here: still on the altstack. */
		sigaltstack(NULL, &cur);
		CHECK(cur.ss_flags & SS_ONSTACK, "restored in the handler: ss_flags %#x, not on stack",
		      cur.ss_flags);
		CHECK(cur.ss_sp == alt && cur.ss_size == SZ, "restored in the handler: altstack %p+%zu",
		      cur.ss_sp, cur.ss_size);
		CHECK(on_alt((uintptr_t)&local) && local == SIGUSR1,
		      "restored in the handler: local %p (%d) not on the altstack %p", (void *)&local,
		      local, alt);
		CHECK(kmask() & (1UL << (SIGUSR1 - 1)), "in the handler SIGUSR1 is not blocked");
		checked_inside = 1;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "basic";
	volatile unsigned long main_local = 0x1234567890abcdefUL;
	unsigned long mask0;
	struct sigaction sa;
	stack_t ss, cur;

	mode_autodisarm = !strcmp(mode, "autodisarm");
	mode_inhandler = !strcmp(mode, "inhandler");
	alt = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (alt == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	ss.ss_sp = alt;
	ss.ss_size = SZ;
	ss.ss_flags = mode_autodisarm ? SS_AUTODISARM : 0;
	if (sigaltstack(&ss, NULL))
		fail("sigaltstack: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_flags = 0;
	sigaction(SIGUSR2, &sa, NULL);
	mask0 = kmask();

	if (mode_inhandler) {
		raise(SIGUSR1);   /* READY, dump and restore happen in there */
		CHECK(checked_inside, "handler returned without its checks");
		CHECK(main_local == 0x1234567890abcdefUL, "main's local changed");
		CHECK(kmask() == mask0, "mask after the handler %#lx, was %#lx", kmask(), mask0);
		sigaltstack(NULL, &cur);
		CHECK(!(cur.ss_flags & SS_ONSTACK), "after the handler: still on the altstack");
		CHECK(cur.ss_sp == alt && cur.ss_size == SZ, "after the handler: altstack %p+%zu",
		      cur.ss_sp, cur.ss_size);
		raise(SIGUSR1);
		CHECK(hits[SIGUSR1] == 2 && on_alt(local_addr[SIGUSR1]),
		      "second SIGUSR1 not on the altstack (local at %#lx)", local_addr[SIGUSR1]);
		pass();
	}

	raise(SIGUSR1);   /* works before the dump too */
	CHECK(on_alt(local_addr[SIGUSR1]), "before dump: handler not on the altstack");
	ready();
	trigger_wait();

	sigaltstack(NULL, &cur);
	CHECK(cur.ss_sp == alt && cur.ss_size == SZ, "altstack is %p+%zu, was %p+%d", cur.ss_sp,
	      cur.ss_size, alt, SZ);
	CHECK(cur.ss_flags == ss.ss_flags, "altstack flags %#x, were %#x", cur.ss_flags,
	      ss.ss_flags);
	local_addr[SIGUSR1] = 0;
	raise(SIGUSR1);
	CHECK(hits[SIGUSR1] == 2, "SIGUSR1 handler did not run");
	CHECK(on_alt(local_addr[SIGUSR1]), "SA_ONSTACK handler's local at %#lx, not on %p+%d",
	      local_addr[SIGUSR1], alt, SZ);
	if (mode_autodisarm)
		CHECK(in_handler_flags & SS_DISABLE, "SS_AUTODISARM: in the handler flags %#x",
		      in_handler_flags);
	else
		CHECK(in_handler_flags & SS_ONSTACK, "in the handler flags %#x", in_handler_flags);
	raise(SIGUSR2);
	CHECK(hits[SIGUSR2] == 1 && !on_alt(local_addr[SIGUSR2]),
	      "handler without SA_ONSTACK ran on the altstack");
	sigaltstack(NULL, &cur);
	CHECK(cur.ss_flags == ss.ss_flags && cur.ss_sp == alt, "altstack after handlers: %p flags %#x",
	      cur.ss_sp, cur.ss_flags);
	pass();
}
