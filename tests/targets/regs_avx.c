/*
 * AVX registers held across the checkpoint: ymm0-15 hold distinct
 * 256-bit values (upper halves included) in an assembly loop (see
 * regloop.h). Skips (77) without AVX. argv[1]: spin or sleep.
 */
#include "regloop.h"

static const char *const names[] = {
	"ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7",
	"ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15",
};

#define L(i) "	vmovdqu " RC_IN "+" #i "*32(%rdi), %ymm" #i "\n"
#define S(i) "	vmovdqu %ymm" #i ", " RC_OUT "+" #i "*32(%rax)\n"

REG_FUNC(avx_loop,
	L(0) L(1) L(2) L(3) L(4) L(5) L(6) L(7) L(8) L(9) L(10) L(11) L(12) L(13) L(14) L(15),
	S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7) S(8) S(9) S(10) S(11) S(12) S(13) S(14) S(15)
	"	vzeroupper\n");

static struct regctx ctx;

int main(int argc, char **argv)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx"))
		skip("the CPU (or the kernel) does not support AVX");
	regctx_init(&ctx, argc, argv);
	fill_regvals(ctx.in, 16, 4);
	ready();
	avx_loop(&ctx);
	compare_regs(names, &ctx, 16, 4);
	pass();
}
