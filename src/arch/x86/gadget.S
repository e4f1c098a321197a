/*
 * A syscall instruction in rtcr's own text. A restoring child starts as a
 * copy of rtcr, so this is where its first injected call (mapping the
 * scratch area) runs. Never called by rtcr itself.
 */
	.text
	.globl rtcr_syscall_gadget
	.type rtcr_syscall_gadget, @function
rtcr_syscall_gadget:
	syscall
	int3
	.size rtcr_syscall_gadget, . - rtcr_syscall_gadget
	.section .note.GNU-stack,"",@progbits
