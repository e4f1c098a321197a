/*
 * Register-holding loops for the regs_* targets (tests/integration/regs.sh).
 *
 * REG_FUNC(name, LOAD, STORE) defines, in assembly, a function
 *     void name(struct regctx *c);
 * that loads registers from c->in (LOAD, with the context in %rdi), then
 * loops until the trigger file exists, then saves the registers into
 * c->out (STORE, with the context in %rax; %rcx and %r11 are free too).
 * The C side compares c->out with c->in afterwards.
 *
 * The loop touches nothing but %rax, %rcx and %r11 (which the syscall
 * instruction clobbers anyway) and memory: it polls the trigger with a
 * raw access(2) and, in "sleep" mode, sleeps 1 ms with a raw nanosleep(2)
 * between polls. %rdi and %rsi carry the syscall arguments, so they are
 * pushed around the syscalls and held in registers only in user space.
 *
 *   mode "spin":  ~2M iterations of a register-only countdown between
 *                 polls: the process is nearly always in user space, and
 *                 the dump catches it there.
 *   mode "sleep": the process is nearly always inside nanosleep, and the
 *                 dump catches it in the system call.
 */
#ifndef REGLOOP_H
#define REGLOOP_H

#include <stddef.h>
#include <stdint.h>

#include "target.h"

struct regctx {
	const char *path;       /* 0: the trigger file */
	long spin;              /* 8: countdown iterations between polls (>= 1) */
	long sleep;             /* 16: nanosleep 1 ms after each poll */
	long polls;             /* 24: polls made */
	struct timespec ts;     /* 32: 1 ms */
	long pad[2];
	unsigned char in[4096] __attribute__((aligned(64)));   /* 64 */
	unsigned char out[4096] __attribute__((aligned(64)));  /* 4160 */
};

#define RC_IN  "64"
#define RC_OUT "4160"

_Static_assert(offsetof(struct regctx, spin) == 8, "layout");
_Static_assert(offsetof(struct regctx, sleep) == 16, "layout");
_Static_assert(offsetof(struct regctx, polls) == 24, "layout");
_Static_assert(offsetof(struct regctx, ts) == 32, "layout");
_Static_assert(offsetof(struct regctx, in) == 64, "layout");
_Static_assert(offsetof(struct regctx, out) == 4160, "layout");

/* The context pointer sits at 0(%rsp) inside the loop. */
#define REG_LOOP                                                              \
	"1:	mov (%rsp), %r11\n"                                               \
	"	mov 8(%r11), %rcx\n"                                              \
	"2:	dec %rcx\n"                                                       \
	"	jnz 2b\n"                                                         \
	"	push %rdi\n"                                                      \
	"	push %rsi\n"                                                      \
	"	mov 16(%rsp), %r11\n"                                             \
	"	incq 24(%r11)\n"                                                  \
	"	mov 0(%r11), %rdi\n"                                              \
	"	xor %esi, %esi\n"                                                 \
	"	mov $21, %eax\n"             /* SYS_access */                     \
	"	syscall\n"                                                        \
	"	test %rax, %rax\n"                                                \
	"	jz 3f\n"                                                          \
	"	mov 16(%rsp), %r11\n"                                             \
	"	cmpq $0, 16(%r11)\n"                                              \
	"	je 4f\n"                                                          \
	"	lea 32(%r11), %rdi\n"                                             \
	"	xor %esi, %esi\n"                                                 \
	"	mov $35, %eax\n"             /* SYS_nanosleep */                  \
	"	syscall\n"                                                        \
	"4:	pop %rsi\n"                                                       \
	"	pop %rdi\n"                                                       \
	"	jmp 1b\n"                                                         \
	"3:	pop %rsi\n"                                                       \
	"	pop %rdi\n"

#define REG_FUNC(name, LOAD, STORE)                                           \
	void name(struct regctx *c);                                          \
	__asm__(".text\n"                                                     \
		".globl " #name "\n"                                          \
		".type " #name ", @function\n"                                \
		#name ":\n"                                                   \
		"	push %rbx\n"                                          \
		"	push %rbp\n"                                          \
		"	push %r12\n"                                          \
		"	push %r13\n"                                          \
		"	push %r14\n"                                          \
		"	push %r15\n"                                          \
		"	push %rdi\n"                                          \
		LOAD                                                          \
		REG_LOOP                                                      \
		"	mov (%rsp), %rax\n"                                   \
		STORE                                                         \
		"	pop %rdi\n"                                           \
		"	pop %r15\n"                                           \
		"	pop %r14\n"                                           \
		"	pop %r13\n"                                           \
		"	pop %r12\n"                                           \
		"	pop %rbp\n"                                           \
		"	pop %rbx\n"                                           \
		"	ret\n"                                                \
		".size " #name ", .-" #name "\n")

/* Set the context up from argv ("spin" or "sleep"). */
static inline void regctx_init(struct regctx *c, int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "spin";

	memset(c, 0, sizeof(*c));
	c->path = trigger_path();
	c->ts.tv_nsec = 1000000;
	if (!strcmp(mode, "spin")) {
		c->spin = 2000000;
	} else if (!strcmp(mode, "sleep")) {
		c->spin = 1;
		c->sleep = 1;
	} else {
		fail("unknown mode '%s' (spin or sleep)", mode);
	}
}

/* A distinct, recognizable 64-bit value for register r, word w. */
static inline uint64_t regval(int r, int w)
{
	uint64_t x = 0xa5a5000000000000ULL ^ ((uint64_t)(r + 1) << 40) ^ ((uint64_t)w << 32) ^
		     ((uint64_t)(r * 131 + w * 7 + 1) * 0x9e3779b9ULL);
	return x;
}

static inline void fill_regvals(unsigned char *buf, int nregs, int words)
{
	uint64_t *p = (uint64_t *)buf;
	for (int r = 0; r < nregs; r++)
		for (int w = 0; w < words; w++)
			p[r * words + w] = regval(r, w);
}

/* Compare nregs registers of 'words' 64-bit words each; fail naming all
 * that differ. */
static inline void compare_regs(const char *const *names, const struct regctx *c, int nregs,
				int words)
{
	const uint64_t *in = (const uint64_t *)c->in, *out = (const uint64_t *)c->out;
	char msg[2048];
	size_t n = 0;
	int bad = 0;

	msg[0] = 0;
	for (int r = 0; r < nregs; r++)
		for (int w = 0; w < words; w++) {
			int i = r * words + w;
			if (in[i] == out[i])
				continue;
			if (n < sizeof(msg) - 200)
				n += snprintf(msg + n, sizeof(msg) - n, "%s%s[%d]=%#llx (expected %#llx)",
					      bad ? ", " : "", names[r], w, (unsigned long long)out[i],
					      (unsigned long long)in[i]);
			bad++;
		}
	if (bad)
		fail("%d register words differ after %ld polls: %s", bad, c->polls, msg);
	if (c->polls < 1)
		fail("the loop never polled");
}

#endif
