/*
 * Eight worker threads (plus main), each with its own register, TLS and
 * scheduling state, checkpointed while they run on 2 CPUs.
 *
 *   thr_regs STATUSFILE
 *
 * Worker i (0..7), before READY:
 *   - name "rtcr-w<i>" (pthread_setname_np);
 *   - CPU affinity: with >= 2 allowed CPUs a < b, i%3 == 0: {a},
 *     1: {b}, 2: {a,b} (all {a} with one CPU);
 *   - nice (setpriority(PRIO_PROCESS, tid)): 0 5 1 9 2 10 3 -3 (-3 falls
 *     back to 4 without the privilege);
 *   - policy: w1, w4 SCHED_BATCH; w3 SCHED_FIFO prio 2; w5 SCHED_RR prio 1
 *     (both fall back to SCHED_OTHER without the privilege); others
 *     SCHED_OTHER;
 *   - TLS: a __thread value and a 64-byte __thread array, distinct per
 *     thread, at an address recorded with fs_base;
 *   - then the register loop of regloop.h, holding 12 GPRs (rbx rbp rdx
 *     rsi rdi r8 r9 r10 r12-r15), ymm0-15 (xmm0-15 without AVX) and
 *     MXCSR with values distinct per thread. Even workers spin (caught in
 *     user space), odd ones sleep 1 ms between polls (caught in
 *     nanosleep). The loop's poll count is the thread's counter.
 * Main writes the 8 poll counts to STATUSFILE every ~10 ms (one
 * fixed-size line, "c0 c1 ... c7", pwrite at offset 0), so the test can
 * see every thread keep counting after the restore.
 *
 * After the trigger, each worker leaves its loop and checks: its
 * registers and MXCSR, its TLS value/array/address, fs_base and %fs:0,
 * its tid (raw gettid) against the one it had, its name, affinity, nice,
 * policy and priority. Main checks its own TLS, tid (== pid) and that
 * the process has 9 threads. All failures are reported together.
 */
#include <asm/prctl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "regloop.h"
#include "thr.h"

#define NW 8
#define VEC_OFF 128
#define MXCSR_OFF 96

static const int nices[NW] = { 0, 5, 1, 9, 2, 10, 3, -3 };
static const int policies[NW] = { SCHED_OTHER, SCHED_BATCH, SCHED_OTHER, SCHED_FIFO,
				  SCHED_BATCH, SCHED_RR, SCHED_OTHER, SCHED_OTHER };
static const int prios[NW] = { 0, 0, 0, 2, 0, 1, 0, 0 };

static const char *const gpr_names[] = {
	"rbx", "rbp", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r12", "r13", "r14", "r15",
};

#define GPR_LOAD                                                              \
	"	mov " RC_IN "+0(%rdi), %rbx\n"                                     \
	"	mov " RC_IN "+8(%rdi), %rbp\n"                                     \
	"	mov " RC_IN "+16(%rdi), %rdx\n"                                    \
	"	mov " RC_IN "+24(%rdi), %rsi\n"                                    \
	"	mov " RC_IN "+40(%rdi), %r8\n"                                     \
	"	mov " RC_IN "+48(%rdi), %r9\n"                                     \
	"	mov " RC_IN "+56(%rdi), %r10\n"                                    \
	"	mov " RC_IN "+64(%rdi), %r12\n"                                    \
	"	mov " RC_IN "+72(%rdi), %r13\n"                                    \
	"	mov " RC_IN "+80(%rdi), %r14\n"                                    \
	"	mov " RC_IN "+88(%rdi), %r15\n"                                    \
	"	ldmxcsr " RC_IN "+96(%rdi)\n"                                      \
	"	mov " RC_IN "+32(%rdi), %rdi\n"
#define GPR_STORE                                                             \
	"	mov %rbx, " RC_OUT "+0(%rax)\n"                                    \
	"	mov %rbp, " RC_OUT "+8(%rax)\n"                                    \
	"	mov %rdx, " RC_OUT "+16(%rax)\n"                                   \
	"	mov %rsi, " RC_OUT "+24(%rax)\n"                                   \
	"	mov %rdi, " RC_OUT "+32(%rax)\n"                                   \
	"	mov %r8, " RC_OUT "+40(%rax)\n"                                    \
	"	mov %r9, " RC_OUT "+48(%rax)\n"                                    \
	"	mov %r10, " RC_OUT "+56(%rax)\n"                                   \
	"	mov %r12, " RC_OUT "+64(%rax)\n"                                   \
	"	mov %r13, " RC_OUT "+72(%rax)\n"                                   \
	"	mov %r14, " RC_OUT "+80(%rax)\n"                                   \
	"	mov %r15, " RC_OUT "+88(%rax)\n"                                   \
	"	stmxcsr " RC_OUT "+96(%rax)\n"

#define YL(i) "	vmovdqu " RC_IN "+128+" #i "*32(%rdi), %ymm" #i "\n"
#define YS(i) "	vmovdqu %ymm" #i ", " RC_OUT "+128+" #i "*32(%rax)\n"
#define XL(i) "	movdqu " RC_IN "+128+" #i "*32(%rdi), %xmm" #i "\n"
#define XS(i) "	movdqu %xmm" #i ", " RC_OUT "+128+" #i "*32(%rax)\n"

REG_FUNC(thr_loop_avx,
	 YL(0) YL(1) YL(2) YL(3) YL(4) YL(5) YL(6) YL(7) YL(8) YL(9) YL(10) YL(11) YL(12) YL(13)
	 YL(14) YL(15) GPR_LOAD,
	 YS(0) YS(1) YS(2) YS(3) YS(4) YS(5) YS(6) YS(7) YS(8) YS(9) YS(10) YS(11) YS(12) YS(13)
	 YS(14) YS(15) GPR_STORE "	vzeroupper\n");

REG_FUNC(thr_loop_sse,
	 XL(0) XL(1) XL(2) XL(3) XL(4) XL(5) XL(6) XL(7) XL(8) XL(9) XL(10) XL(11) XL(12) XL(13)
	 XL(14) XL(15) GPR_LOAD,
	 XS(0) XS(1) XS(2) XS(3) XS(4) XS(5) XS(6) XS(7) XS(8) XS(9) XS(10) XS(11) XS(12) XS(13)
	 XS(14) XS(15) GPR_STORE);

struct worker {
	int idx;
	pthread_t th;
	struct regctx *c;
	volatile pid_t tid;
	volatile int set_up;
	char name[16];
	cpu_set_t mask;
	int nice, policy, prio;
	uint32_t mxcsr;
	uint64_t fs;
	volatile uint64_t *tls_addr;
	char err[1024];
	size_t errlen;
};

static struct worker W[NW];
static int use_avx, vec_words;
static __thread volatile uint64_t tls_val;
static __thread unsigned char tls_arr[64];

static uint64_t tls_expect(int i)
{
	return 0x544c5300000000a5ULL ^ ((uint64_t)(i + 1) << 24) ^ ((uint64_t)(i * 77 + 5) << 40);
}

static uint64_t get_fs(void)
{
	uint64_t v = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
	return v;
}

static uint64_t fs0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(v));
	return v;
}

static __attribute__((format(printf, 2, 3))) void werr(struct worker *w, const char *fmt, ...)
{
	va_list ap;
	if (w->errlen >= sizeof(w->err) - 8)
		return;
	if (w->errlen)
		w->errlen += snprintf(w->err + w->errlen, sizeof(w->err) - w->errlen, "; ");
	va_start(ap, fmt);
	w->errlen += vsnprintf(w->err + w->errlen, sizeof(w->err) - w->errlen, fmt, ap);
	va_end(ap);
	if (w->errlen >= sizeof(w->err))
		w->errlen = sizeof(w->err) - 1;
}

static const char *pol_name(int p)
{
	switch (p) {
	case SCHED_OTHER: return "OTHER";
	case SCHED_BATCH: return "BATCH";
	case SCHED_FIFO: return "FIFO";
	case SCHED_RR: return "RR";
	case SCHED_IDLE: return "IDLE";
	}
	return "?";
}

/* Set up the thread's scheduling state; what it really got becomes the
 * expectation (a fallback is noted on stdout). */
static void set_sched(struct worker *w)
{
	struct sched_param sp = { 0 };
	int pol, r;

	TCHECK(sched_setaffinity(0, sizeof(w->mask), &w->mask) == 0, "w%d: sched_setaffinity: %s",
	       w->idx, strerror(errno));
	w->nice = nices[w->idx];
	if (setpriority(PRIO_PROCESS, w->tid, w->nice)) {
		TCHECK(w->nice < 0, "w%d: setpriority(%d): %s", w->idx, w->nice, strerror(errno));
		printf("note: w%d: nice %d not permitted, using 4\n", w->idx, w->nice);
		w->nice = 4;
		TCHECK(setpriority(PRIO_PROCESS, w->tid, w->nice) == 0, "setpriority: %s",
		       strerror(errno));
	}
	w->policy = policies[w->idx];
	w->prio = prios[w->idx];
	sp.sched_priority = w->prio;
	r = pthread_setschedparam(pthread_self(), w->policy, &sp);
	if (r == EPERM && (w->policy == SCHED_FIFO || w->policy == SCHED_RR)) {
		printf("note: w%d: SCHED_%s not permitted, staying SCHED_OTHER\n", w->idx,
		       pol_name(w->policy));
		w->policy = SCHED_OTHER;
		w->prio = 0;
	} else {
		TCHECK(r == 0, "w%d: pthread_setschedparam(%s): %s", w->idx, pol_name(w->policy),
		       strerror(r));
	}
	/* Read back through the kernel. */
	pol = sched_getscheduler(w->tid);
	TCHECK(pol == w->policy, "w%d: policy %d after setting %d", w->idx, pol, w->policy);
	errno = 0;
	r = getpriority(PRIO_PROCESS, w->tid);
	TCHECK(errno == 0 && r == w->nice, "w%d: nice %d after setting %d", w->idx, r, w->nice);
}

static void check_sched(struct worker *w)
{
	cpu_set_t m;
	struct sched_param sp;
	int pol, r;
	char name[32] = "";

	CPU_ZERO(&m);
	if (sched_getaffinity(0, sizeof(m), &m))
		werr(w, "sched_getaffinity: %s", strerror(errno));
	else if (!CPU_EQUAL(&m, &w->mask))
		werr(w, "affinity has %d CPUs (cpu0 %d cpu1 %d), expected %d (cpu0 %d cpu1 %d)",
		     CPU_COUNT(&m), CPU_ISSET(0, &m), CPU_ISSET(1, &m), CPU_COUNT(&w->mask),
		     CPU_ISSET(0, &w->mask), CPU_ISSET(1, &w->mask));
	errno = 0;
	r = getpriority(PRIO_PROCESS, w->tid);
	if (errno || r != w->nice)
		werr(w, "nice %d, expected %d", r, w->nice);
	/* From the kernel (pthread_getschedparam may answer from glibc's cache). */
	pol = sched_getscheduler(0);
	r = sched_getparam(0, &sp);
	if (pol < 0 || r)
		werr(w, "sched_getscheduler/sched_getparam: %s", strerror(errno));
	else if (pol != w->policy || sp.sched_priority != w->prio)
		werr(w, "policy SCHED_%s prio %d, expected SCHED_%s prio %d", pol_name(pol),
		     sp.sched_priority, pol_name(w->policy), w->prio);
	if (prctl(PR_GET_NAME, name, 0, 0, 0) || strcmp(name, w->name))
		werr(w, "name '%s', expected '%s'", name, w->name);
}

static void check_regs(struct worker *w)
{
	const uint64_t *in = (const uint64_t *)w->c->in, *out = (const uint64_t *)w->c->out;
	uint32_t mx;

	for (int r = 0; r < 12; r++)
		if (in[r] != out[r])
			werr(w, "%s=%#llx (expected %#llx)", gpr_names[r], (unsigned long long)out[r],
			     (unsigned long long)in[r]);
	for (int r = 0; r < 16; r++)
		for (int k = 0; k < vec_words; k++) {
			int i = (VEC_OFF / 8) + r * 4 + k;
			if (in[i] != out[i])
				werr(w, "%smm%d[%d]=%#llx (expected %#llx)", use_avx ? "y" : "x", r, k,
				     (unsigned long long)out[i], (unsigned long long)in[i]);
		}
	memcpy(&mx, w->c->out + MXCSR_OFF, 4);
	if (mx != w->mxcsr)
		werr(w, "mxcsr %#x (expected %#x)", mx, w->mxcsr);
	if (w->c->polls < 1)
		werr(w, "the loop never polled");
}

static void check_tls(struct worker *w)
{
	if (&tls_val != w->tls_addr)
		werr(w, "TLS variable at %p, was %p", (void *)&tls_val, (void *)w->tls_addr);
	if (tls_val != tls_expect(w->idx))
		werr(w, "TLS value %#llx, expected %#llx", (unsigned long long)tls_val,
		     (unsigned long long)tls_expect(w->idx));
	for (int k = 0; k < 64; k++)
		if (tls_arr[k] != (unsigned char)(w->idx * 31 + k)) {
			werr(w, "TLS array byte %d is %#x", k, tls_arr[k]);
			break;
		}
	if (get_fs() != w->fs)
		werr(w, "fs_base %#llx, was %#llx", (unsigned long long)get_fs(),
		     (unsigned long long)w->fs);
	if (fs0() != w->fs)
		werr(w, "%%fs:0 %#llx, fs_base was %#llx", (unsigned long long)fs0(),
		     (unsigned long long)w->fs);
	if (thr_tid() != w->tid)
		werr(w, "gettid %d, was %d", thr_tid(), w->tid);
	errno = 0;
	if (close(-1) == 0 || errno != EBADF)
		werr(w, "errno (TLS) broken");
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	uint64_t *in = (uint64_t *)w->c->in;
	int i = w->idx;

	w->tid = thr_tid();
	TCHECK(pthread_setname_np(pthread_self(), w->name) == 0, "pthread_setname_np");
	set_sched(w);
	tls_val = tls_expect(i);
	for (int k = 0; k < 64; k++)
		tls_arr[k] = (unsigned char)(i * 31 + k);
	w->tls_addr = &tls_val;
	w->fs = get_fs();
	TCHECK(fs0() == w->fs, "w%d: %%fs:0 is not fs_base", i);
	for (int r = 0; r < 12; r++)
		in[r] = regval(r + 40 * (i + 1), 0);
	for (int r = 0; r < 16; r++)
		for (int k = 0; k < 4; k++)
			in[VEC_OFF / 8 + r * 4 + k] = regval(12 + r + 40 * (i + 1), k);
	/* Exceptions masked; rounding mode i&3; FTZ and DAZ for i&4. */
	w->mxcsr = 0x1f80 | ((i & 3) << 13) | ((i & 4) ? 0x8040 : 0);
	memcpy(w->c->in + MXCSR_OFF, &w->mxcsr, 4);
	__atomic_store_n(&w->set_up, 1, __ATOMIC_RELEASE);
	if (use_avx)
		thr_loop_avx(w->c);
	else
		thr_loop_sse(w->c);
	check_regs(w);
	check_tls(w);
	check_sched(w);
	return NULL;
}

int main(int argc, char **argv)
{
	cpu_set_t all, main_mask;
	int cpus[2] = { -1, -1 }, ncpu = 0, fd, bad = 0;
	const char *trig = trigger_path();
	pid_t pid = getpid();
	uint64_t main_fs;

	if (argc < 2)
		fail("usage: thr_regs STATUSFILE");
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("%s: %s", argv[1], strerror(errno));
	thr_status(fd, "0", 8 * 13 + 1);
	__builtin_cpu_init();
	use_avx = __builtin_cpu_supports("avx");
	vec_words = use_avx ? 4 : 2;
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0, "sched_getaffinity");
	main_mask = all;
	for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
		if (CPU_ISSET(c, &all))
			cpus[ncpu++] = c;
	if (ncpu < 2)
		cpus[1] = cpus[0];
	printf("vector registers: %s, CPUs %d and %d\n", use_avx ? "ymm (AVX)" : "xmm (SSE)",
	       cpus[0], cpus[1]);

	tls_val = tls_expect(100);
	main_fs = get_fs();
	for (int i = 0; i < NW; i++) {
		struct worker *w = &W[i];
		w->idx = i;
		w->c = aligned_alloc(64, sizeof(*w->c));
		CHECK(w->c, "aligned_alloc");
		memset(w->c, 0, sizeof(*w->c));
		w->c->path = trig;
		w->c->ts.tv_nsec = 1000000;
		if (i % 2 == 0) {
			w->c->spin = 2000000;
		} else {
			w->c->spin = 1;
			w->c->sleep = 1;
		}
		snprintf(w->name, sizeof(w->name), "rtcr-w%d", i);
		CPU_ZERO(&w->mask);
		if (i % 3 != 1)
			CPU_SET(cpus[0], &w->mask);
		if (i % 3 != 0)
			CPU_SET(cpus[1], &w->mask);
		CHECK(pthread_create(&w->th, NULL, worker, w) == 0, "pthread_create");
	}
	/* Every worker set up and inside its loop. */
	for (int i = 0; i < NW; i++) {
		int k;
		for (k = 0; k < 5000; k++) {
			if (__atomic_load_n(&W[i].set_up, __ATOMIC_ACQUIRE) &&
			    __atomic_load_n(&W[i].c->polls, __ATOMIC_RELAXED) > 0)
				break;
			tick();
		}
		CHECK(k < 5000, "worker %d did not start its loop within 5 s", i);
	}
	CHECK(thr_count() == NW + 1, "%d threads, expected %d", thr_count(), NW + 1);
	for (int i = 0; i < NW; i++)
		printf("w%d: tid %d nice %d SCHED_%s prio %d mxcsr %#x %s\n", i, W[i].tid, W[i].nice,
		       pol_name(W[i].policy), W[i].prio, W[i].mxcsr,
		       W[i].c->sleep ? "sleeps" : "spins");
	ready();

	for (int n = 0; !trigger_set(trig); n++) {
		if (n % 10 == 0) {
			char line[256];
			size_t len = 0;
			for (int i = 0; i < NW; i++)
				len += snprintf(line + len, sizeof(line) - len, "%s%ld", i ? " " : "",
						__atomic_load_n(&W[i].c->polls, __ATOMIC_RELAXED));
			thr_status(fd, line, 8 * 13 + 1);
		}
		tick();
	}

	thr_watchdog(10, "workers still in their loops 10 s after the trigger");
	for (int i = 0; i < NW; i++)
		CHECK(pthread_join(W[i].th, NULL) == 0, "pthread_join w%d", i);
	alarm(0);
	for (int i = 0; i < NW; i++) {
		printf("w%d: %ld polls\n", i, W[i].c->polls);
		if (W[i].errlen) {
			printf("w%d (tid %d, %s): %s\n", i, W[i].tid, W[i].c->sleep ? "sleeping" :
			       "spinning", W[i].err);
			bad++;
		}
	}
	CHECK(!bad, "%d of %d threads have wrong state (see above)", bad, NW);
	CHECK(thr_tid() == pid && getpid() == pid, "main: tid %d pid %d, was %d", thr_tid(),
	      getpid(), pid);
	CHECK(tls_val == tls_expect(100), "main: TLS value %#llx", (unsigned long long)tls_val);
	CHECK(get_fs() == main_fs && fs0() == main_fs, "main: fs_base %#llx, was %#llx",
	      (unsigned long long)get_fs(), (unsigned long long)main_fs);
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0 && CPU_EQUAL(&all, &main_mask),
	      "main: affinity changed");
	pass();
}
