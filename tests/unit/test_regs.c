/*
 * src/arch/x86/regs.c: the kernel's syscall-restart rule, xstate fitting,
 * the injection scratch code and its rt_sigreturn frame (checked against
 * glibc's ucontext_t layout, then executed for real in a child process).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cpuid.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "arch/x86/cpu.h"
#include "arch/x86/regs.h"
#include "common/util.h"
#include "unit_util.h"

#define MAGIC1 0x46505853u   /* FP_XSTATE_MAGIC1 */
#define MAGIC2 0x46505845u   /* FP_XSTATE_MAGIC2 */

static struct user_regs_struct base_regs(void)
{
	struct user_regs_struct r;
	memset(&r, 0, sizeof(r));
	r.rip = 0x401002;
	r.rsp = 0x7ffc00001000ULL;
	r.cs = 0x33;
	r.ss = 0x2b;
	r.eflags = 0x246;
	r.rdi = 11; r.rsi = 22; r.rdx = 33; r.r10 = 44; r.r8 = 55; r.r9 = 66;
	r.orig_rax = (unsigned long long)-1;
	return r;
}

/* ---- regs_resume_syscall ---- */

static void test_resume_not_in_syscall(void **state)
{
	struct user_regs_struct r = base_regs(), want;

	r.rax = 12345;
	want = r;
	assert_false(regs_resume_syscall(&r));
	assert_memory_equal(&r, &want, sizeof(r));

	/* rax that looks like a restart code does not matter outside a syscall. */
	r.rax = (unsigned long long)-ERESTARTSYS;
	want = r;
	assert_false(regs_resume_syscall(&r));
	assert_memory_equal(&r, &want, sizeof(r));
}

static void test_resume_restarts(void **state)
{
	static const int codes[] = { ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND };

	for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
		struct user_regs_struct r = base_regs(), want;
		r.orig_rax = SYS_read;
		r.rax = (unsigned long long)-codes[i];
		want = r;
		assert_true(regs_resume_syscall(&r));
		/* Back onto the 2-byte syscall instruction, with the number in rax
		 * and the arguments untouched. */
		want.rip -= 2;
		want.rax = SYS_read;
		want.orig_rax = (unsigned long long)-1;
		assert_memory_equal(&r, &want, sizeof(r));
	}
}

static void test_resume_restart_block(void **state)
{
	struct user_regs_struct r = base_regs(), want;

	r.orig_rax = SYS_nanosleep;
	r.rax = (unsigned long long)-ERESTART_RESTARTBLOCK;
	want = r;
	assert_true(regs_resume_syscall(&r));
	want.rax = (unsigned long long)-EINTR;
	want.orig_rax = (unsigned long long)-1;
	assert_memory_equal(&r, &want, sizeof(r));
}

static void test_resume_finished_syscall(void **state)
{
	unsigned long long results[] = { 0, 7, (unsigned long long)-EAGAIN,
					 (unsigned long long)-EINTR, (unsigned long long)-ENOSYS,
					 (unsigned long long)-515 /* not a restart code */ };

	for (size_t i = 0; i < ARRAY_SIZE(results); i++) {
		struct user_regs_struct r = base_regs(), want;
		r.orig_rax = SYS_write;
		r.rax = results[i];
		want = r;
		assert_true(regs_resume_syscall(&r));
		want.orig_rax = (unsigned long long)-1;
		assert_memory_equal(&r, &want, sizeof(r));
	}
}

/*
 * rax can hold anything while a task runs in user space, including
 * 0x8000000000000000. Both functions compute -(long)rax before looking at
 * orig_rax: signed overflow (undefined behaviour; with SAN=1, UBSan aborts).
 * Run in a child so the verdict is a test failure, not a crash.
 */
static void test_resume_rax_long_min(void **state)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct user_regs_struct r = base_regs();
		char buf[64];
		r.rax = 0x8000000000000000ULL;
		if (regs_resume_syscall(&r) || r.rax != 0x8000000000000000ULL)
			_exit(2);
		r.orig_rax = SYS_read;
		r.rax = 0x8000000000000000ULL;
		if (!regs_resume_syscall(&r) || r.rax != 0x8000000000000000ULL)
			_exit(3);
		r.orig_rax = SYS_read;
		regs_syscall_state(&r, buf, sizeof(buf));
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("regs_resume_syscall/regs_syscall_state with rax=0x8000000000000000: "
			 "child %s %d (signed overflow in -(long)r->rax?)",
			 WIFEXITED(st) ? "exited" : "killed by signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void test_syscall_state_text(void **state)
{
	struct user_regs_struct r = base_regs();
	char buf[128];

	assert_string_equal(regs_syscall_state(&r, buf, sizeof(buf)), "running in user space");
	r.orig_rax = SYS_read;
	r.rax = (unsigned long long)-ERESTARTSYS;
	assert_string_equal(regs_syscall_state(&r, buf, sizeof(buf)),
			    "in syscall 0, restarts on resume");
	r.orig_rax = SYS_nanosleep;
	r.rax = (unsigned long long)-ERESTART_RESTARTBLOCK;
	assert_string_equal(regs_syscall_state(&r, buf, sizeof(buf)),
			    "in syscall 35, returns EINTR on resume");
	r.rax = 0;
	assert_string_equal(regs_syscall_state(&r, buf, sizeof(buf)), "in syscall 35, returned");
	/* Truncation is safe. */
	assert_string_equal(regs_syscall_state(&r, buf, 5), "in s");
}

/* ---- xstate_adapt ---- */

static uint8_t *xs_pattern(size_t len, uint64_t bv)
{
	uint8_t *b = malloc(len);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 7 + 1);
	memcpy(b + XSAVE_HDR_OFF, &bv, 8);
	return b;
}

static void test_xstate_adapt_refuses(void **state)
{
	uint8_t *s = xs_pattern(1024, 0x7);
	const char *log;

	log_capture_begin();
	assert_null(xstate_adapt(s, 575, 1024, 0x7));
	assert_null(xstate_adapt(s, 1024, 575, 0x7));
	assert_null(xstate_adapt(s, 0, 1024, 0x7));
	log = log_capture_end();
	assert_non_null(strstr(log, "too short"));

	/* Saved with AVX (bit 2) state, host without AVX. */
	log_capture_begin();
	assert_null(xstate_adapt(s, 1024, 1024, 0x3));
	log = log_capture_end();
	assert_non_null(strstr(log, "0x4"));
	free(s);
}

static void check_adapted(const uint8_t *out, const uint8_t *in, size_t in_len, size_t out_len)
{
	for (size_t i = 0; i < out_len; i++) {
		uint8_t want = i >= 464 && i < 512 ? 0 : i < in_len ? in[i] : 0;
		if (out[i] != want)
			fail_msg("byte %zu of the adapted xstate is %#x, want %#x (saved %zu, host %zu)",
				 i, out[i], want, in_len, out_len);
	}
}

static void test_xstate_adapt_sizes(void **state)
{
	static const struct { size_t saved, host; uint64_t bv, xcr0; } cases[] = {
		{ 576, 576, 0x3, 0x3 },
		{ 576, 1024, 0x3, 0x7 },     /* host has more components */
		{ 2696, 832, 0x7, 0x7 },     /* host buffer smaller, state fits */
		{ 832, 832, 0x0, 0x7 },      /* everything in init state */
		{ 11008, 11008, 0x602e7, 0x602e7 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t *s = xs_pattern(cases[i].saved, cases[i].bv);
		uint8_t *o = xstate_adapt(s, cases[i].saved, cases[i].host, cases[i].xcr0);
		assert_non_null(o);
		check_adapted(o, s, cases[i].saved, cases[i].host);
		free(o);
		free(s);
	}
}

/* ---- scratch code ---- */

static void test_scratch_code(void **state)
{
	static const uint8_t want[] = {
		0x0f, 0x05,                               /* syscall */
		0x48, 0x8d, 0x25, 0, 0, 0, 0,             /* lea disp32(%rip),%rsp */
		0xe9, 0, 0, 0, 0,                         /* jmp rollback */
	};
	static const uint8_t rollback_head[] = {
		0xb8, 0xcb, 0x00, 0x00, 0x00,             /* mov $203,%eax */
		0x31, 0xff,                               /* xor %edi,%edi */
		0xbe, SCRATCH_CPUSET_LEN, 0x00, 0x00, 0x00, /* mov $128,%esi */
		0x48, 0x8d, 0x94, 0x24,                   /* lea disp32(%rsp),%rdx */
	};
	static const uint8_t rollback_tail[] = {
		0x0f, 0x05,                               /* syscall */
		0xb8, 0x0f, 0x00, 0x00, 0x00,             /* mov $15,%eax */
		0x0f, 0x05,                               /* syscall */
	};
	const size_t xs = 832;
	uint8_t *code = malloc(SCRATCH_DATA_OFF), *rb = code + SCRATCH_ROLLBACK_OFF;
	int32_t disp;
	size_t n;

	_Static_assert(sizeof(want) <= SCRATCH_STUB_SIZE, "stub size");
	n = scratch_code(code, xs, 3);
	assert_true(n > SCRATCH_ROLLBACK_OFF && n <= SCRATCH_DATA_OFF);
	for (unsigned slot = 0; slot < 3; slot++) {
		const uint8_t *c = code + scratch_stub_off(slot);
		assert_memory_equal(c, want, 5);
		assert_int_equal(c[9], 0xe9);
		/* The lea ends at +9 of the stub; %rsp must land on the slot's frame. */
		memcpy(&disp, c + 5, 4);
		assert_int_equal(scratch_stub_off(slot) + 9 + disp, scratch_frame_off(xs, slot));
		/* The jmp ends at +14: every stub goes to the one rollback. */
		memcpy(&disp, c + 10, 4);
		assert_int_equal(scratch_stub_off(slot) + 14 + disp, SCRATCH_ROLLBACK_OFF);
	}
	/* The rollback: the CPU set at the frame's end, then rt_sigreturn. */
	assert_memory_equal(rb, rollback_head, sizeof(rollback_head));
	memcpy(&disp, rb + sizeof(rollback_head), 4);
	assert_int_equal(disp, scratch_cpuset_off(xs));
	assert_int_equal(scratch_cpuset_off(xs), scratch_frame_size(xs) - SCRATCH_CPUSET_LEN);
	assert_memory_equal(rb + sizeof(rollback_head) + 4, rollback_tail, sizeof(rollback_tail));
	assert_int_equal(rollback_tail[3], SYS_rt_sigreturn);
	/* No stub for slot 3. */
	assert_int_equal(code[scratch_stub_off(3)], 0xcc);
	free(code);
}

static void test_scratch_size(void **state)
{
	static const size_t sizes[] = { 576, 832, 1088, 2696, 2704, 11008 };

	assert_true(SCRATCH_DATA_OFF >= SCRATCH_BATCH_OFF + SCRATCH_BATCH_MAX);
	assert_int_equal(SCRATCH_FRAMES_OFF, SCRATCH_DATA_OFF + SCRATCH_DATA_LEN);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t sz = scratch_size(sizes[i], 1), fs = scratch_frame_size(sizes[i]);
		assert_int_equal(sz % PAGE_SIZE, 0);
		/* ucontext (304) rounded to 64, the xsave area, magic2, and
		 * the saved CPU set at the end. */
		assert_true(fs >= 320 + sizes[i] + 4 + SCRATCH_CPUSET_LEN);
		assert_int_equal(fs % 64, 0);
		assert_true(sz >= SCRATCH_FRAMES_OFF + fs);
		assert_true(scratch_size(sizes[i], 8) >= SCRATCH_FRAMES_OFF + 8 * fs);
		assert_int_equal(scratch_frame_off(sizes[i], 2), SCRATCH_FRAMES_OFF + 2 * fs);
	}
}

/* ---- scratch frame, by layout ---- */

#define GREG(buf, R) (*(uint64_t *)((uint8_t *)(buf) + offsetof(ucontext_t, uc_mcontext.gregs[R])))

static void test_scratch_frame_layout(void **state)
{
	const size_t xs = 1024;
	size_t len = scratch_frame_size(xs);
	uint8_t *buf = malloc(len), *x = xs_pattern(xs, 0x7);
	const uint64_t remote = 0x7f0000005000ULL;
	struct user_regs_struct r = base_regs();
	uint64_t fp, u64;
	uint32_t u32;
	int32_t i32;

	r.r8 = 8; r.r9 = 9; r.r10 = 10; r.r11 = 11; r.r12 = 12; r.r13 = 13; r.r14 = 14;
	r.r15 = 15; r.rbp = 0xb9; r.rbx = 0xb8; r.rcx = 0xc0; r.rax = 0xa0;
	r.fs_base = 0xdead0000;

	assert_int_equal(scratch_frame(buf, len, remote, &r, x, xs, 0x1234500000000002ULL), 0);
	assert_int_equal(*(uint64_t *)buf, 0x7);   /* FP_XSTATE | SIGCONTEXT_SS | STRICT_RESTORE_SS */
	memcpy(&i32, buf + offsetof(ucontext_t, uc_stack.ss_flags), 4);
	assert_int_equal(i32, 0x7fff);
	assert_int_equal(GREG(buf, REG_R8), 8);
	assert_int_equal(GREG(buf, REG_R9), 9);
	assert_int_equal(GREG(buf, REG_R10), 10);
	assert_int_equal(GREG(buf, REG_R11), 11);
	assert_int_equal(GREG(buf, REG_R12), 12);
	assert_int_equal(GREG(buf, REG_R13), 13);
	assert_int_equal(GREG(buf, REG_R14), 14);
	assert_int_equal(GREG(buf, REG_R15), 15);
	assert_int_equal(GREG(buf, REG_RDI), 11);
	assert_int_equal(GREG(buf, REG_RSI), 22);
	assert_int_equal(GREG(buf, REG_RBP), 0xb9);
	assert_int_equal(GREG(buf, REG_RBX), 0xb8);
	assert_int_equal(GREG(buf, REG_RDX), 33);
	assert_int_equal(GREG(buf, REG_RAX), 0xa0);
	assert_int_equal(GREG(buf, REG_RCX), 0xc0);
	assert_int_equal(GREG(buf, REG_RSP), r.rsp);
	assert_int_equal(GREG(buf, REG_RIP), r.rip);
	assert_int_equal(GREG(buf, REG_EFL), 0x246);
	/* cs, gs, fs, ss as four shorts. */
	assert_int_equal(GREG(buf, REG_CSGSFS) & 0xffff, 0x33);
	assert_int_equal(GREG(buf, REG_CSGSFS) >> 48, 0x2b);
	memcpy(&u64, buf + offsetof(ucontext_t, uc_sigmask), 8);
	assert_int_equal(u64, 0x1234500000000002ULL);

	memcpy(&fp, buf + offsetof(ucontext_t, uc_mcontext.fpregs), 8);
	assert_int_equal(fp % 64, 0);
	/* After the kernel's ucontext, which ends with an 8-byte sigmask. */
	assert_true(fp >= remote + offsetof(ucontext_t, uc_sigmask) + 8);
	fp -= remote;
	assert_true(fp + xs + 4 <= len);
	/* The xsave image, with the software bytes filled in. */
	assert_memory_equal(buf + fp, x, 464);
	assert_memory_equal(buf + fp + 512, x + 512, xs - 512);
	memcpy(&u32, buf + fp + 464, 4);
	assert_int_equal(u32, MAGIC1);
	memcpy(&u32, buf + fp + 468, 4);
	assert_int_equal(u32, xs + 4);                  /* extended_size */
	memcpy(&u64, buf + fp + 472, 8);
	assert_int_equal(u64 & 0x7, 0x7);               /* xfeatures: at least XSTATE_BV */
	memcpy(&u32, buf + fp + 480, 4);
	assert_int_equal(u32, xs);                      /* xstate_size */
	memcpy(&u32, buf + fp + xs, 4);
	assert_int_equal(u32, MAGIC2);
	free(buf);
	free(x);
}

static void test_scratch_frame_restart_and_sizes(void **state)
{
	const size_t xs = 576;
	size_t len = 320 + xs + 4 + SCRATCH_CPUSET_LEN;   /* exactly enough */
	uint8_t *buf = malloc(len), *x = xs_pattern(xs, 0x3);
	struct user_regs_struct r = base_regs();
	uint32_t sw[2] = { MAGIC1, 0 };
	uint64_t feat = 0x2e7, u64;

	/* Stopped in read(2) with -ERESTARTSYS: the frame restarts it. */
	r.orig_rax = SYS_read;
	r.rax = (unsigned long long)-ERESTARTSYS;
	assert_int_equal(scratch_frame(buf, len, 0x10000, &r, x, xs, 0), 0);
	assert_int_equal(GREG(buf, REG_RIP), r.rip - 2);
	assert_int_equal(GREG(buf, REG_RAX), SYS_read);
	/* The caller's registers are left alone. */
	assert_int_equal(r.orig_rax, SYS_read);

	/* Software bytes as ptrace gives them: their feature mask is kept. */
	memcpy(x + 464, sw, 8);
	memcpy(x + 472, &feat, 8);
	assert_int_equal(scratch_frame(buf, len, 0x10000, &r, x, xs, 0), 0);
	memcpy(&u64, buf + 320 + 472, 8);
	assert_int_equal(u64, feat);

	/* Too small: buffer, or an xsave area shorter than legacy + header. */
	assert_int_equal(scratch_frame(buf, len - 1, 0x10000, &r, x, xs, 0), -EINVAL);
	assert_int_equal(scratch_frame(buf, len, 0x10000, &r, x, 575, 0), -EINVAL);
	free(buf);
	free(x);
}

/* ---- scratch frame, executed: rt_sigreturn through the scratch code ---- */

void rt_land(void);
void rt_land_avx(void);
void rt_land_c(uint64_t r12, uint64_t r13, uint64_t xmm0, uint64_t ymm0hi);

__asm__(".text\n"
	".globl rt_land_avx\n"
	"rt_land_avx:\n"
	"	vextractf128 $1, %ymm0, %xmm1\n"
	"	movq %xmm1, %rcx\n"
	"	jmp 1f\n"
	".globl rt_land\n"
	"rt_land:\n"
	"	xor %ecx, %ecx\n"
	"1:	movq %xmm0, %rdx\n"
	"	mov %r12, %rdi\n"
	"	mov %r13, %rsi\n"
	"	and $-16, %rsp\n"
	"	call rt_land_c\n"
	"	ud2\n");

#define LAND_R12  0x1122334455667788ULL
#define LAND_R13  0x99aabbccddeeff00ULL
#define LAND_XMM0 0x0123456789abcdefULL
#define LAND_YMM0 0xfedcba9876543210ULL

static int land_want_avx;

void rt_land_c(uint64_t r12, uint64_t r13, uint64_t xmm0, uint64_t ymm0hi)
{
	sigset_t cur;
	int code = 42;

	sigprocmask(SIG_BLOCK, NULL, &cur);
	if (r12 != LAND_R12 || r13 != LAND_R13)
		code = 10;
	else if (xmm0 != LAND_XMM0)
		code = 11;
	else if (land_want_avx && ymm0hi != LAND_YMM0)
		code = 12;
	else if (!sigismember(&cur, SIGUSR2) || sigismember(&cur, SIGUSR1))
		code = 13;
	_exit(code);
}

static int avx_offset(void)
{
	unsigned a, b, c, d;
	__cpuid_count(0xd, 2, a, b, c, d);
	return (int)b;
}

/* In a child: build a two-slot scratch area and jump to slot 1's lea
 * (what a tracer that died mid-injection leaves that thread to run). */
static void live_child(int variant)
{
	struct cpu_info ci;
	size_t xs, total;
	uint8_t *base, *stack, *x;
	struct user_regs_struct r;
	uint64_t bv;

	cpu_info_get(&ci);
	xs = ci.xsave_size;
	total = scratch_size(xs, 2);
	base = mmap(NULL, total, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	stack = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x = aligned_alloc(64, ALIGN_UP(xs, 64));
	if (base == MAP_FAILED || stack == MAP_FAILED || !x)
		_exit(90);
	memset(x, 0, ALIGN_UP(xs, 64));
	__asm__ volatile("xsave (%0)" : : "r"(x), "a"((uint32_t)ci.xfeatures),
			 "d"((uint32_t)(ci.xfeatures >> 32)) : "memory");
	scratch_code(base, xs, 2);

	memset(&r, 0, sizeof(r));
	r.cs = 0x33;
	r.ss = 0x2b;
	r.eflags = 0x202;
	r.rsp = (uintptr_t)stack + (1 << 16) - 64 - 8;
	if (variant == 0) {
		/* Stopped at the exit of exit_group(42) with -ERESTARTSYS at
		 * scratch+0: restarting it must exit the child with 42. */
		r.orig_rax = SYS_exit_group;
		r.rax = (unsigned long long)-ERESTARTSYS;
		r.rdi = 42;
		r.rip = (uintptr_t)base + scratch_stub_off(1) + 2;
	} else {
		land_want_avx = variant == 2;
		r.orig_rax = (unsigned long long)-1;
		r.rip = (uintptr_t)(variant == 2 ? rt_land_avx : rt_land);
		r.r12 = LAND_R12;
		r.r13 = LAND_R13;
		r.rax = 0x5555;
		memcpy(x + 160, &(uint64_t){ LAND_XMM0 }, 8);   /* xmm0, low half */
		memcpy(&bv, x + XSAVE_HDR_OFF, 8);
		bv |= 0x2;
		if (variant == 2) {
			memcpy(x + avx_offset(), &(uint64_t){ LAND_YMM0 }, 8);   /* ymm0, bits 128..191 */
			bv |= 0x4;
		}
		memcpy(x + XSAVE_HDR_OFF, &bv, 8);
	}
	if (scratch_frame(base + scratch_frame_off(xs, 1), scratch_frame_size(xs),
			  (uintptr_t)base + scratch_frame_off(xs, 1), &r, x, xs,
			  1ULL << (SIGUSR2 - 1)))
		_exit(91);
	__asm__ volatile("jmp *%0" : : "r"(base + scratch_stub_off(1) + 2) : "memory");
	_exit(92);
}

static void run_live(int variant)
{
	pid_t pid;
	int st;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		live_child(variant);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st))
		fail_msg("variant %d: the child died of signal %d (bad rt_sigreturn frame)", variant,
			 WTERMSIG(st));
	if (WEXITSTATUS(st) != 42)
		fail_msg("variant %d: child exit %d (10 regs, 11 xmm0, 12 ymm0, 13 sigmask, 9x setup)",
			 variant, WEXITSTATUS(st));
}

/* ---- the batch executor, executed: calls, may-fail, the stub's wait ---- */

static uint8_t *batch_base;

static void batch_land(void)
{
	const uint8_t *d = batch_base + SCRATCH_DATA_OFF;
	const struct { uint64_t nr, a[6]; int64_t ret; } *t = (const void *)(d + BATCH_TABLE);
	uint64_t done;

	memcpy(&done, d + BATCH_DONE, 8);
	if (done != 4)
		_exit(20 + (int)done);
	if (t[0].ret != getpid() || t[1].ret != -EBADF || t[2].ret != getppid() ||
	    t[3].ret != -EBADF)
		_exit(30);
	if (t[4].ret != 0x77)
		_exit(31);   /* ran after a failure */
	_exit(42);
}

/* In a child: run a batch whose end waits in slot 1's stub (1 ms), then
 * rolls back through slot 1's frame into batch_land(): what a dump's
 * thread does if rtcr dies after a batch. */
static void batch_child(void)
{
	struct cpu_info ci;
	struct user_regs_struct r;
	uint8_t *stack, *x, *d;
	size_t xs;
	struct { uint64_t nr, a[6]; int64_t ret; } t[5] = {
		{ SYS_getpid, { 0 }, 0 },
		{ SYS_close | (1ULL << BATCH_MAY_FAIL_BIT), { (uint64_t)-1 }, 0 },
		{ SYS_getppid, { 0 }, 0 },
		{ SYS_close, { (uint64_t)-1 }, 0 },
		{ SYS_getpid, { 0 }, 0x77 },
	};
	uint64_t hdr[4] = { 5, 0, 0, 1000000 };   /* count, done, 1 ms */

	cpu_info_get(&ci);
	xs = ci.xsave_size;
	batch_base = mmap(NULL, scratch_size(xs, 2), PROT_READ | PROT_WRITE | PROT_EXEC,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	stack = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x = aligned_alloc(64, ALIGN_UP(xs, 64));
	if (batch_base == MAP_FAILED || stack == MAP_FAILED || !x)
		_exit(90);
	memset(x, 0, ALIGN_UP(xs, 64));
	__asm__ volatile("xsave (%0)" : : "r"(x), "a"((uint32_t)ci.xfeatures),
			 "d"((uint32_t)(ci.xfeatures >> 32)) : "memory");
	scratch_code(batch_base, xs, 2);
	d = batch_base + SCRATCH_DATA_OFF;
	memcpy(d + BATCH_TABLE, t, sizeof(t));
	memcpy(d + BATCH_COUNT, hdr, sizeof(hdr));
	memset(&r, 0, sizeof(r));
	r.cs = 0x33;
	r.ss = 0x2b;
	r.eflags = 0x202;
	r.rsp = (uintptr_t)stack + (1 << 16) - 64 - 8;
	r.orig_rax = (unsigned long long)-1;
	r.rip = (uintptr_t)batch_land;
	if (scratch_frame(batch_base + scratch_frame_off(xs, 1), scratch_frame_size(xs),
			  (uintptr_t)batch_base + scratch_frame_off(xs, 1), &r, x, xs, 0))
		_exit(91);
	__asm__ volatile("mov %0, %%r15\n\tjmp *%1"
			 : : "r"(batch_base + scratch_stub_off(1)), "r"(batch_base + SCRATCH_BATCH_OFF)
			 : "r15", "memory");
	_exit(92);
}

static void test_batch_executor_live(void **state)
{
	struct cpu_info ci;
	pid_t pid;
	int st;

	(void)state;
	cpu_info_get(&ci);
	if (!(ci.features[0] & (1u << 27)) || ci.xsave_size < 576)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		batch_child();
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st))
		fail_msg("the child died of signal %d (the executor trapped, or a bad frame)",
			 WTERMSIG(st));
	if (WEXITSTATUS(st) != 42)
		fail_msg("child exit %d (2x: done count, 30 results, 31 ran past a failure, 9x setup)",
			 WEXITSTATUS(st));
}

static void test_scratch_frame_live(void **state)
{
	struct cpu_info ci;

	cpu_info_get(&ci);
	if (!(ci.features[0] & (1u << 27)) || ci.xsave_size < 576)
		skip();
	run_live(0);   /* restart rule + rip/rax/rdi through the frame */
	run_live(1);   /* callee-saved regs, xmm0, signal mask */
	if (ci.xfeatures & 0x4)
		run_live(2);   /* AVX upper halves: the full xsave area was accepted */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resume_not_in_syscall),
		cmocka_unit_test(test_resume_restarts),
		cmocka_unit_test(test_resume_restart_block),
		cmocka_unit_test(test_resume_finished_syscall),
		cmocka_unit_test(test_resume_rax_long_min),
		cmocka_unit_test(test_syscall_state_text),
		cmocka_unit_test(test_xstate_adapt_refuses),
		cmocka_unit_test(test_xstate_adapt_sizes),
		cmocka_unit_test(test_scratch_code),
		cmocka_unit_test(test_scratch_size),
		cmocka_unit_test(test_scratch_frame_layout),
		cmocka_unit_test(test_scratch_frame_restart_and_sizes),
		cmocka_unit_test(test_scratch_frame_live),
		cmocka_unit_test(test_batch_executor_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
