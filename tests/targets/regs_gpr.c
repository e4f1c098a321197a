/*
 * General-purpose registers held across the checkpoint: rbx, rbp, rdx,
 * rsi, rdi, r8, r9, r10, r12, r13, r14, r15 hold distinct 64-bit values
 * in an assembly loop (see regloop.h; rax, rcx and r11 are clobbered by
 * every syscall and are not checked). argv[1]: spin or sleep.
 */
#include "regloop.h"

static const char *const names[] = {
	"rbx", "rbp", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r12", "r13", "r14", "r15",
};
#define NREGS 12

REG_FUNC(gpr_loop,
	"	mov " RC_IN "+0(%rdi), %rbx\n"
	"	mov " RC_IN "+8(%rdi), %rbp\n"
	"	mov " RC_IN "+16(%rdi), %rdx\n"
	"	mov " RC_IN "+24(%rdi), %rsi\n"
	"	mov " RC_IN "+40(%rdi), %r8\n"
	"	mov " RC_IN "+48(%rdi), %r9\n"
	"	mov " RC_IN "+56(%rdi), %r10\n"
	"	mov " RC_IN "+64(%rdi), %r12\n"
	"	mov " RC_IN "+72(%rdi), %r13\n"
	"	mov " RC_IN "+80(%rdi), %r14\n"
	"	mov " RC_IN "+88(%rdi), %r15\n"
	"	mov " RC_IN "+32(%rdi), %rdi\n",
	"	mov %rbx, " RC_OUT "+0(%rax)\n"
	"	mov %rbp, " RC_OUT "+8(%rax)\n"
	"	mov %rdx, " RC_OUT "+16(%rax)\n"
	"	mov %rsi, " RC_OUT "+24(%rax)\n"
	"	mov %rdi, " RC_OUT "+32(%rax)\n"
	"	mov %r8, " RC_OUT "+40(%rax)\n"
	"	mov %r9, " RC_OUT "+48(%rax)\n"
	"	mov %r10, " RC_OUT "+56(%rax)\n"
	"	mov %r12, " RC_OUT "+64(%rax)\n"
	"	mov %r13, " RC_OUT "+72(%rax)\n"
	"	mov %r14, " RC_OUT "+80(%rax)\n"
	"	mov %r15, " RC_OUT "+88(%rax)\n");

static struct regctx ctx;

int main(int argc, char **argv)
{
	regctx_init(&ctx, argc, argv);
	fill_regvals(ctx.in, NREGS, 1);
	ready();
	gpr_loop(&ctx);
	compare_regs(names, &ctx, NREGS, 1);
	pass();
}
