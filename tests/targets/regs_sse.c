/*
 * SSE registers held across the checkpoint: xmm0-15 hold distinct
 * 128-bit values in an assembly loop (see regloop.h). argv[1]: spin or
 * sleep.
 */
#include "regloop.h"

static const char *const names[] = {
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
};

#define L(i) "	movdqu " RC_IN "+" #i "*16(%rdi), %xmm" #i "\n"
#define S(i) "	movdqu %xmm" #i ", " RC_OUT "+" #i "*16(%rax)\n"

REG_FUNC(sse_loop,
	L(0) L(1) L(2) L(3) L(4) L(5) L(6) L(7) L(8) L(9) L(10) L(11) L(12) L(13) L(14) L(15),
	S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7) S(8) S(9) S(10) S(11) S(12) S(13) S(14) S(15));

static struct regctx ctx;

int main(int argc, char **argv)
{
	regctx_init(&ctx, argc, argv);
	fill_regvals(ctx.in, 16, 2);
	ready();
	sse_loop(&ctx);
	compare_regs(names, &ctx, 16, 2);
	pass();
}
