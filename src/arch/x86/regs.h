/*
 * x86-64 register state: conversion to and from the image, the kernel's
 * syscall-restart rule, and the code and signal frame rtcr places in a
 * target for injected system calls.
 */
#ifndef RTCR_ARCH_REGS_H
#define RTCR_ARCH_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

#include "image/pb.h"

/* Kernel-internal errnos a stopped syscall may show in rax. */
#define ERESTARTSYS           512
#define ERESTARTNOINTR        513
#define ERESTARTNOHAND        514
#define ERESTART_RESTARTBLOCK 516

void regs_to_image(const struct user_regs_struct *r, Rtcr__X86Regs *out);
void regs_from_image(const Rtcr__X86Regs *in, struct user_regs_struct *r);

/*
 * What the kernel does to a task that stopped inside a system call and is
 * resumed without running a signal handler: the call restarts (rip back
 * onto the syscall instruction, rax = its number), except calls that
 * need their kernel restart block, which a new task does not have: those
 * are re-issued when that is exactly equivalent (poll without timeout,
 * futex with an absolute one) and otherwise return EINTR, as after a
 * signal handler (nanosleep: its remaining time is already written back).
 * Sets orig_rax to -1 so the kernel does not apply the rule a second
 * time. Returns true if the state was in a syscall.
 */
bool regs_resume_syscall(struct user_regs_struct *r);
/* "in nanosleep, will restart" style description for inspect. */
const char *regs_syscall_state(const struct user_regs_struct *r, char *buf, size_t len);

#include "arch/x86/scratch_layout.h"

/* Bytes of one slot's rollback frame, and of a whole scratch area. */
size_t scratch_frame_size(size_t xsave_size);
size_t scratch_size(size_t xsave_size, unsigned nslots);
static inline uint64_t scratch_stub_off(unsigned slot)
{
	return (uint64_t)slot * SCRATCH_STUB_SIZE;
}
static inline uint64_t scratch_frame_off(size_t xsave_size, unsigned slot)
{
	return SCRATCH_FRAMES_OFF + (uint64_t)slot * scratch_frame_size(xsave_size);
}
/* Where in a slot's frame its saved CPU set is (SCRATCH_CPUSET_LEN bytes
 * at the end, after the xsave area and its magic). */
static inline uint64_t scratch_cpuset_off(size_t xsave_size)
{
	return scratch_frame_size(xsave_size) - SCRATCH_CPUSET_LEN;
}
/* The code part of a scratch area: nslots stubs, each returning to its own
 * frame, then the batch executor. code must hold SCRATCH_DATA_OFF bytes;
 * returns how many were written. */
size_t scratch_code(uint8_t *code, size_t xsave_size, unsigned nslots);
/*
 * Build, in buf (scratch_frame_size() bytes, which will live at remote
 * address 'remote'), an rt_sigreturn frame that returns to 'r' with
 * 'xstate' and signal mask 'blocked'. Returns 0 or -EINVAL.
 */
int scratch_frame(void *buf, size_t len, uint64_t remote, const struct user_regs_struct *r,
		  const void *xstate, size_t xstate_len, uint64_t blocked);

/*
 * Fit a saved xstate buffer to this host's ptrace size (which
 * PTRACE_SETREGSET requires exactly). Components this host does not have
 * must be in their initial state. Returns a malloc'ed buffer or NULL
 * with a message.
 */
void *xstate_adapt(const void *saved, size_t saved_len, size_t host_len, uint64_t host_xcr0);

/* Offset of the XSTATE_BV word in an xsave buffer. */
#define XSAVE_HDR_OFF 512

#endif
