/*
 * x87 and MXCSR state held across the checkpoint by an assembly loop
 * (see regloop.h):
 *   - the x87 control word with rounding toward +inf and 53-bit
 *     precision (0x0a7f, not the default 0x037f),
 *   - MXCSR with rounding toward zero, flush-to-zero and
 *     denormals-are-zero (0xffc0, not the default 0x1f80),
 *   - all eight x87 stack registers holding distinct 80-bit values.
 * After the trigger, still inside the loop function, the modes are also
 * used: x87 fistp of 2.5 (up: 3) and cvtsd2si of 2.7 (toward zero: 2).
 * argv[1]: spin or sleep.
 */
#include "regloop.h"

#define FCW    0x0a7f
#define MXCSR  0xffc0

/*
 * in:  +0 fcw (2 bytes), +4 mxcsr, +8 default mxcsr 0x1f80, +12 default
 *      fcw 0x037f, +16 the doubles 2.5 and 2.7, +64.. 8 x 16-byte slots
 *      holding 80-bit values (slot i is pushed i-th, so it ends in st(7-i))
 * out: +0 fcw, +4 mxcsr, +8 fsw, +16 fistp(2.5) (8 bytes), +24 cvtsd2si(2.7),
 *      +64.. st(7-i) in slot i
 */
#define LD(i) "	fldt " RC_IN "+64+" #i "*16(%rdi)\n"
#define ST(i) "	fstpt " RC_OUT "+64+" #i "*16(%rax)\n"

REG_FUNC(x87_loop,
	"	fninit\n"
	"	fldcw " RC_IN "+0(%rdi)\n"
	"	ldmxcsr " RC_IN "+4(%rdi)\n"
	LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7),
	"	fnstcw " RC_OUT "+0(%rax)\n"
	"	stmxcsr " RC_OUT "+4(%rax)\n"
	"	fnstsw " RC_OUT "+8(%rax)\n"
	/* top of stack is slot 7's value: pop in reverse order */
	ST(7) ST(6) ST(5) ST(4) ST(3) ST(2) ST(1) ST(0)
	"	fldl " RC_IN "+16(%rax)\n"
	"	fistpll " RC_OUT "+16(%rax)\n"
	"	cvtsd2si " RC_IN "+24(%rax), %rcx\n"
	"	mov %rcx, " RC_OUT "+24(%rax)\n"
	"	fldcw " RC_IN "+12(%rax)\n"
	"	ldmxcsr " RC_IN "+8(%rax)\n");

static struct regctx ctx;

struct in_layout {
	uint16_t fcw, pad0;
	uint32_t mxcsr, def_mxcsr;
	uint16_t def_fcw, pad1;
	double d25, d27;
	unsigned char pad2[32];
	unsigned char st[8][16];
};

int main(int argc, char **argv)
{
	struct in_layout *in = (struct in_layout *)ctx.in;
	struct in_layout *out = (struct in_layout *)ctx.out;
	int64_t fist, cvt;
	uint16_t fsw;

	_Static_assert(offsetof(struct in_layout, d25) == 16, "layout");
	_Static_assert(offsetof(struct in_layout, st) == 64, "layout");
	regctx_init(&ctx, argc, argv);
	in->fcw = FCW;
	in->mxcsr = MXCSR;
	in->def_mxcsr = 0x1f80;
	in->def_fcw = 0x037f;
	in->d25 = 2.5;
	in->d27 = 2.7;
	for (int i = 0; i < 8; i++) {
		/* 80-bit: 64-bit mantissa with the explicit integer bit, then
		 * sign + exponent; all normal, all different. */
		uint64_t mant = regval(60 + i, 0) | (1ULL << 63);
		uint16_t se = (uint16_t)(0x3fff + 3 * i - 10) | (i & 1 ? 0x8000 : 0);
		memcpy(in->st[i], &mant, 8);
		memcpy(in->st[i] + 8, &se, 2);
	}
	ready();
	x87_loop(&ctx);

	CHECK(out->fcw == FCW, "x87 control word is %#x, expected %#x", out->fcw, FCW);
	CHECK(out->mxcsr == MXCSR, "MXCSR is %#x, expected %#x", out->mxcsr, MXCSR);
	fsw = *(uint16_t *)(ctx.out + 8);
	CHECK(((fsw >> 11) & 7) == 0, "x87 stack top is %d, expected 0 (fsw %#x)", (fsw >> 11) & 7,
	      fsw);
	for (int i = 0; i < 8; i++)
		CHECK(!memcmp(out->st[i], in->st[i], 10),
		      "x87 st(%d) differs: %016llx:%04x, expected %016llx:%04x", 7 - i,
		      *(unsigned long long *)out->st[i], *(uint16_t *)(out->st[i] + 8),
		      *(unsigned long long *)in->st[i], *(uint16_t *)(in->st[i] + 8));
	memcpy(&fist, ctx.out + 16, 8);
	memcpy(&cvt, ctx.out + 24, 8);
	CHECK(fist == 3, "x87 rounding: fistp(2.5) gave %lld, expected 3 (round up)",
	      (long long)fist);
	CHECK(cvt == 2, "SSE rounding: cvtsd2si(2.7) gave %lld, expected 2 (toward zero)",
	      (long long)cvt);
	CHECK(ctx.polls > 0, "never polled");
	pass();
}
