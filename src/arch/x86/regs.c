#include "arch/x86/regs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "common/util.h"

#define R(f) out->f = r->f
void regs_to_image(const struct user_regs_struct *r, Rtcr__X86Regs *out)
{
	R(r15); R(r14); R(r13); R(r12); R(rbp); R(rbx); R(r11); R(r10); R(r9); R(r8);
	R(rax); R(rcx); R(rdx); R(rsi); R(rdi); R(orig_rax); R(rip); R(cs); R(eflags);
	R(rsp); R(ss); R(fs_base); R(gs_base); R(ds); R(es); R(fs); R(gs);
}
#undef R

#define R(f) r->f = in->f
void regs_from_image(const Rtcr__X86Regs *in, struct user_regs_struct *r)
{
	memset(r, 0, sizeof(*r));
	R(r15); R(r14); R(r13); R(r12); R(rbp); R(rbx); R(r11); R(r10); R(r9); R(r8);
	R(rax); R(rcx); R(rdx); R(rsi); R(rdi); R(orig_rax); R(rip); R(cs); R(eflags);
	R(rsp); R(ss); R(fs_base); R(gs_base); R(ds); R(es); R(fs); R(gs);
}
#undef R

/*
 * A call stopped with ERESTART_RESTARTBLOCK would continue, in the kernel,
 * from its restart block (remaining time, end time). A new task has no
 * restart block, but re-issuing the original call with its registers
 * (which the kernel left untouched) is exactly the same when no relative
 * timeout was being consumed.
 */
static bool reissue_is_exact(const struct user_regs_struct *r)
{
	switch ((long)r->orig_rax) {
	case __NR_poll:
		return (int)r->rdx < 0;                 /* no timeout */
	case __NR_ppoll:
		return r->r10 == 0;                     /* NULL timespec */
	case __NR_futex:
		/* FUTEX_WAIT_BITSET takes an absolute timeout. */
		return (r->rsi & 0x7f) == 9;
	}
	return false;
}

bool regs_resume_syscall(struct user_regs_struct *r)
{
	long nr = (long)r->orig_rax;
	unsigned long long err = -r->rax;   /* unsigned: no overflow for any rax */

	r->orig_rax = (unsigned long long)-1;
	if (nr < 0)
		return false;
	switch (err) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		r->rax = nr;
		r->rip -= 2;
		break;
	case ERESTART_RESTARTBLOCK:
		r->orig_rax = nr;
		if (reissue_is_exact(r)) {
			r->rax = nr;
			r->rip -= 2;
		} else {
			/* nanosleep & co: their remaining time is already written
			 * back to the caller; a signal handler would cause this too */
			r->rax = (unsigned long long)-EINTR;
		}
		r->orig_rax = (unsigned long long)-1;
		break;
	}
	return true;
}

const char *regs_syscall_state(const struct user_regs_struct *r, char *buf, size_t len)
{
	long nr = (long)r->orig_rax;
	unsigned long long err = -r->rax;
	const char *what;

	if (nr < 0) {
		snprintf(buf, len, "running in user space");
		return buf;
	}
	switch (err) {
	case ERESTARTSYS: case ERESTARTNOINTR: case ERESTARTNOHAND:
		what = "restarts on resume"; break;
	case ERESTART_RESTARTBLOCK:
		what = reissue_is_exact(r) ? "restarts on resume" : "returns EINTR on resume"; break;
	default:
		what = "returned"; break;
	}
	snprintf(buf, len, "in syscall %ld, %s", nr, what);
	return buf;
}

size_t scratch_frame_size(size_t xsave_size)
{
	/* ucontext + alignment + xsave + FP_XSTATE_MAGIC2 */
	return ALIGN_UP(1024 + xsave_size + 64 + 4, 64);
}

size_t scratch_size(size_t xsave_size, unsigned nslots)
{
	return ALIGN_UP(SCRATCH_FRAMES_OFF + nslots * scratch_frame_size(xsave_size), PAGE_SIZE);
}

extern const uint8_t rtcr_batch_code[], rtcr_batch_code_end[];

size_t scratch_code(uint8_t *code, size_t xsave_size, unsigned nslots)
{
	size_t n = rtcr_batch_code_end - rtcr_batch_code;

	_Static_assert(SCRATCH_MAX_SLOTS * SCRATCH_STUB_SIZE <= SCRATCH_BATCH_OFF, "stubs fit");
	_Static_assert(SCRATCH_BATCH_OFF + SCRATCH_BATCH_MAX <= SCRATCH_DATA_OFF, "batch fits");
	_Static_assert(SCRATCH_BATCH_OFF + SCRATCH_BATCH_MAX <= SCRATCH_ROLLBACK_OFF &&
		       SCRATCH_ROLLBACK_OFF + 64 <= SCRATCH_DATA_OFF, "rollback fits");
	memset(code, 0xcc, SCRATCH_DATA_OFF);
	for (unsigned i = 0; i < nslots && i < SCRATCH_MAX_SLOTS; i++) {
		uint8_t *c = code + scratch_stub_off(i);
		/* lea disp32(%rip), %rsp: relative to the end of the lea, at +9 */
		int32_t disp = (int32_t)(scratch_frame_off(xsave_size, i) - (scratch_stub_off(i) + 9));
		/* jmp rel32: relative to the end of the jmp, at +14 */
		int32_t jmp = (int32_t)(SCRATCH_ROLLBACK_OFF - (scratch_stub_off(i) + 14));
		c[0] = 0x0f; c[1] = 0x05;                            /* syscall */
		c[2] = 0x48; c[3] = 0x8d; c[4] = 0x25;               /* lea ...,%rsp */
		memcpy(c + 5, &disp, 4);
		c[9] = 0xe9;                                         /* jmp rollback */
		memcpy(c + 10, &jmp, 4);
	}
	memcpy(code + SCRATCH_BATCH_OFF, rtcr_batch_code, n);
	{
		/* The rollback: the thread's CPU set, then its saved state. */
		static const uint8_t head[] = {
			0xb8, 0xcb, 0x00, 0x00, 0x00,            /* mov $203,%eax (sched_setaffinity) */
			0x31, 0xff,                              /* xor %edi,%edi */
			0xbe, SCRATCH_CPUSET_LEN, 0x00, 0x00, 0x00, /* mov $128,%esi */
			0x48, 0x8d, 0x94, 0x24,                  /* lea disp32(%rsp),%rdx */
		};
		static const uint8_t tail[] = {
			0x0f, 0x05,                              /* syscall */
			0xb8, 0x0f, 0x00, 0x00, 0x00,            /* mov $15,%eax (rt_sigreturn) */
			0x0f, 0x05,                              /* syscall */
		};
		uint8_t *c = code + SCRATCH_ROLLBACK_OFF;
		int32_t mask = (int32_t)scratch_cpuset_off(xsave_size);
		memcpy(c, head, sizeof(head));
		memcpy(c + sizeof(head), &mask, 4);
		memcpy(c + sizeof(head) + 4, tail, sizeof(tail));
	}
	return SCRATCH_ROLLBACK_OFF + 64;
}

/* The kernel's x86-64 struct sigcontext and ucontext layout. */
struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2;
	uint64_t fpstate;
	uint64_t reserved1[8];
};

struct k_stack {
	uint64_t ss_sp;
	int32_t ss_flags;
	int32_t pad;
	uint64_t ss_size;
};

struct k_ucontext {
	uint64_t uc_flags;
	uint64_t uc_link;
	struct k_stack uc_stack;
	struct k_sigcontext uc_mcontext;
	uint64_t uc_sigmask;
};

#define UC_FP_XSTATE          0x1
#define UC_SIGCONTEXT_SS      0x2
#define UC_STRICT_RESTORE_SS  0x4
#define FP_XSTATE_MAGIC1      0x46505853u
#define FP_XSTATE_MAGIC2      0x46505845u

struct fpx_sw_bytes {
	uint32_t magic1;
	uint32_t extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size;
	uint32_t padding[7];
};

int scratch_frame(void *buf, size_t len, uint64_t remote, const struct user_regs_struct *r,
		  const void *xstate, size_t xstate_len, uint64_t blocked)
{
	struct k_ucontext *uc = buf;
	size_t fp_off = ALIGN_UP(sizeof(*uc), 64);
	struct fpx_sw_bytes *sw;
	struct user_regs_struct rr = *r;
	uint32_t magic2 = FP_XSTATE_MAGIC2;

	if (fp_off + xstate_len + 4 + SCRATCH_CPUSET_LEN > len || xstate_len < 576)
		return -EINVAL;
	/* rt_sigreturn leaves orig_rax at -1: apply the restart rule now. */
	regs_resume_syscall(&rr);

	memset(buf, 0, len);
	uc->uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	/* An invalid ss_flags makes rt_sigreturn leave the alternate signal
	 * stack alone (restore_altstack() ignores the EINVAL). */
	uc->uc_stack.ss_flags = 0x7fff;
	uc->uc_mcontext.r8 = rr.r8;   uc->uc_mcontext.r9 = rr.r9;
	uc->uc_mcontext.r10 = rr.r10; uc->uc_mcontext.r11 = rr.r11;
	uc->uc_mcontext.r12 = rr.r12; uc->uc_mcontext.r13 = rr.r13;
	uc->uc_mcontext.r14 = rr.r14; uc->uc_mcontext.r15 = rr.r15;
	uc->uc_mcontext.rdi = rr.rdi; uc->uc_mcontext.rsi = rr.rsi;
	uc->uc_mcontext.rbp = rr.rbp; uc->uc_mcontext.rbx = rr.rbx;
	uc->uc_mcontext.rdx = rr.rdx; uc->uc_mcontext.rax = rr.rax;
	uc->uc_mcontext.rcx = rr.rcx; uc->uc_mcontext.rsp = rr.rsp;
	uc->uc_mcontext.rip = rr.rip; uc->uc_mcontext.eflags = rr.eflags;
	uc->uc_mcontext.cs = rr.cs;   uc->uc_mcontext.ss = rr.ss;
	uc->uc_mcontext.fpstate = remote + fp_off;
	uc->uc_sigmask = blocked;

	memcpy((char *)buf + fp_off, xstate, xstate_len);
	sw = (struct fpx_sw_bytes *)((char *)buf + fp_off + 464);
	/* ptrace fills these software bytes with the kernel's own; keep its
	 * feature mask so XRSTOR restores every component. */
	if (sw->magic1 != FP_XSTATE_MAGIC1) {
		memcpy(&sw->xfeatures, (char *)xstate + XSAVE_HDR_OFF, 8);
		sw->xfeatures |= 0x3;
	}
	sw->magic1 = FP_XSTATE_MAGIC1;
	sw->extended_size = xstate_len + 4;
	sw->xstate_size = xstate_len;
	memcpy((char *)buf + fp_off + xstate_len, &magic2, 4);
	return 0;
}

void *xstate_adapt(const void *saved, size_t saved_len, size_t host_len, uint64_t host_xcr0)
{
	uint64_t bv;
	char *buf;

	if (saved_len < XSAVE_HDR_OFF + 64 || host_len < XSAVE_HDR_OFF + 64) {
		pr_err("xstate of %zu bytes is too short", saved_len);
		return NULL;
	}
	memcpy(&bv, (const char *)saved + XSAVE_HDR_OFF, 8);
	if (bv & ~host_xcr0) {
		pr_err("the saved registers use xsave components %#llx this CPU lacks",
		       (unsigned long long)(bv & ~host_xcr0));
		return NULL;
	}
	buf = xzalloc(host_len);
	memcpy(buf, saved, MIN(saved_len, host_len));
	/* Software bytes describe the dumping host's buffer: drop them. */
	memset(buf + 464, 0, 48);
	return buf;
}
