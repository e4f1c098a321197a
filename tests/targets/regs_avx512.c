/*
 * AVX-512 registers held across the checkpoint: zmm0-31 hold distinct
 * 512-bit values and k0-k7 distinct masks (64-bit with AVX512BW, else
 * 16-bit) in an assembly loop (see regloop.h). Skips (77) if the CPU or
 * the kernel lacks AVX-512F. argv[1]: spin or sleep.
 */
#include <cpuid.h>

#include "regloop.h"

static const char *const znames[] = {
	"zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7",
	"zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15",
	"zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23",
	"zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "zmm30", "zmm31",
};
static const char *const knames[] = { "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7" };

#define L(i) "	vmovdqu64 " RC_IN "+" #i "*64(%rdi), %zmm" #i "\n"
#define S(i) "	vmovdqu64 %zmm" #i ", " RC_OUT "+" #i "*64(%rax)\n"
#define LZ L(0) L(1) L(2) L(3) L(4) L(5) L(6) L(7) L(8) L(9) L(10) L(11) L(12) L(13) L(14) L(15) \
	L(16) L(17) L(18) L(19) L(20) L(21) L(22) L(23) L(24) L(25) L(26) L(27) L(28) L(29) L(30) L(31)
#define SZ S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7) S(8) S(9) S(10) S(11) S(12) S(13) S(14) S(15) \
	S(16) S(17) S(18) S(19) S(20) S(21) S(22) S(23) S(24) S(25) S(26) S(27) S(28) S(29) S(30) S(31)
/* k registers at in/out + 2048, 8 bytes each */
#define LKQ(i) "	kmovq " RC_IN "+2048+" #i "*8(%rdi), %k" #i "\n"
#define SKQ(i) "	kmovq %k" #i ", " RC_OUT "+2048+" #i "*8(%rax)\n"
#define LKW(i) "	kmovw " RC_IN "+2048+" #i "*8(%rdi), %k" #i "\n"
#define SKW(i) "	kmovw %k" #i ", " RC_OUT "+2048+" #i "*8(%rax)\n"

/* The k loads come first: the zmm loads then use %rdi as base too. */
REG_FUNC(avx512bw_loop,
	LKQ(0) LKQ(1) LKQ(2) LKQ(3) LKQ(4) LKQ(5) LKQ(6) LKQ(7) LZ,
	SZ SKQ(0) SKQ(1) SKQ(2) SKQ(3) SKQ(4) SKQ(5) SKQ(6) SKQ(7) "	vzeroupper\n");
REG_FUNC(avx512f_loop,
	LKW(0) LKW(1) LKW(2) LKW(3) LKW(4) LKW(5) LKW(6) LKW(7) LZ,
	SZ SKW(0) SKW(1) SKW(2) SKW(3) SKW(4) SKW(5) SKW(6) SKW(7) "	vzeroupper\n");

static struct regctx ctx;

static int os_has_avx512(void)
{
	unsigned a, b, c, d, lo, hi;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))   /* OSXSAVE */
		return 0;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	/* XCR0: SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM */
	return (lo & 0xe6) == 0xe6;
}

int main(int argc, char **argv)
{
	int bw;
	uint64_t *k;

	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512f"))
		skip("the CPU lacks AVX-512F");
	if (!os_has_avx512())
		skip("the kernel does not enable AVX-512 state (XCR0)");
	bw = __builtin_cpu_supports("avx512bw");
	regctx_init(&ctx, argc, argv);
	fill_regvals(ctx.in, 32, 8);
	k = (uint64_t *)(ctx.in + 2048);
	for (int i = 0; i < 8; i++)
		k[i] = bw ? regval(40 + i, 0) : (regval(40 + i, 0) & 0xffff);
	ready();
	if (bw)
		avx512bw_loop(&ctx);
	else
		avx512f_loop(&ctx);
	compare_regs(znames, &ctx, 32, 8);
	{
		/* the k block */
		static struct regctx kc;
		memcpy(kc.in, ctx.in + 2048, 64);
		memcpy(kc.out, ctx.out + 2048, 64);
		kc.polls = ctx.polls;
		compare_regs(knames, &kc, 8, 1);
	}
	pass();
}
