/*
 * The code rtcr copies into a target's scratch area (layout in
 * scratch_layout.h). Position independent: data is reached relative to
 * the code's own base, whatever address the scratch was mapped at.
 */
#include "arch/x86/scratch_layout.h"

	.section .rodata.rtcr_scratch, "a"
	.p2align 6
	.globl rtcr_scratch_code
	.globl rtcr_scratch_code_end
rtcr_scratch_code:
.Lbase:
	/* One injected call; the tracer takes the task at its exit. */
	syscall
	/* Only reached if the tracer died: return to the saved state. */
	lea	.Lbase + SCRATCH_FRAME_OFF(%rip), %rsp
	mov	$15, %eax		/* rt_sigreturn */
	syscall
	int3

	.org	.Lbase + SCRATCH_BATCH_OFF, 0xcc
	/* Batch: run table[0..count) in order, store each result, stop at
	 * the first error (-4095..-1), record how many ran, trap. Used only
	 * in restoring children, which die with rtcr (PTRACE_O_EXITKILL). */
	lea	.Lbase + SCRATCH_DATA_OFF + BATCH_TABLE(%rip), %rbx
	mov	.Lbase + SCRATCH_DATA_OFF + BATCH_COUNT(%rip), %r12
	xor	%r13, %r13
1:	cmp	%r12, %r13
	jae	3f
	mov	(%rbx), %rax
	mov	8(%rbx), %rdi
	mov	16(%rbx), %rsi
	mov	24(%rbx), %rdx
	mov	32(%rbx), %r10
	mov	40(%rbx), %r8
	mov	48(%rbx), %r9
	syscall
	mov	%rax, 56(%rbx)
	cmp	$-4095, %rax
	jae	2f
	add	$BATCH_CALL_SIZE, %rbx
	inc	%r13
	jmp	1b
2:	inc	%r13			/* the failed call ran too */
3:	mov	%r13, .Lbase + SCRATCH_DATA_OFF + BATCH_DONE(%rip)
	int3
rtcr_scratch_code_end:
	/* Fails to assemble ("move .org backwards") if the code outgrew
	 * its room before the data area. */
	.org	.Lbase + SCRATCH_CODE_MAX, 0xcc

	.section .note.GNU-stack,"",@progbits
