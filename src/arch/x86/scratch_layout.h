/*
 * Layout of the injection scratch area (shared by C and assembly).
 *
 *   +0x0000  one 16-byte stub per thread slot (up to SCRATCH_MAX_SLOTS):
 *              syscall                    <- the tracer stops at its exit
 *              lea FRAME_i(%rip), %rsp    <- only if the tracer died:
 *              jmp ROLLBACK                  back to the saved state
 *   +0x1000  batch executor (scratch.S): runs the call table, then traps
 *            (int3) or waits in the thread's stub (ppoll) for rtcr
 *   +0x1800  rollback (scratch_code()), with %rsp at the thread's frame:
 *              sched_setaffinity(0, 128, frame + size - 128)
 *              rt_sigreturn               <- to the saved state in the frame
 *            (the mask is the thread's own CPU set if rtcr moved it to
 *            its CPU while driving it, else empty: EINVAL, no change)
 *   +0x2000  data: arguments of injected calls; for a batch:
 *              +0 count, +8 done, +16 the stub wait's timeout (timespec),
 *              +64 table of struct inj_call (64 bytes each)
 *   +0x6000  one signal frame per slot, with that thread's original state
 */
#ifndef RTCR_ARCH_SCRATCH_LAYOUT_H
#define RTCR_ARCH_SCRATCH_LAYOUT_H

#define SCRATCH_STUB_SIZE  16
#define SCRATCH_MAX_SLOTS  256
#define SCRATCH_BATCH_OFF  0x1000
#define SCRATCH_BATCH_MAX  0x100
#define SCRATCH_ROLLBACK_OFF 0x1800
#define SCRATCH_CPUSET_LEN 128     /* bytes of the saved CPU set, at the frame's end */
#define SCRATCH_DATA_OFF   0x2000
#define SCRATCH_DATA_LEN   0x4000
#define SCRATCH_FRAMES_OFF (SCRATCH_DATA_OFF + SCRATCH_DATA_LEN)
#define BATCH_COUNT        0
#define BATCH_DONE         8
#define BATCH_TIMEOUT      16
#define BATCH_TABLE        64
#define BATCH_MAY_FAIL_BIT 63      /* in a call's number: its failure does not stop the batch */
#define BATCH_CALL_SIZE    64
#define BATCH_MAX          ((SCRATCH_DATA_LEN - BATCH_TABLE) / BATCH_CALL_SIZE)

#endif
