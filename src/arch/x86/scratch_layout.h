/*
 * Layout of the injection scratch area (shared by C and assembly).
 *
 *   +0x0000  code (scratch.S)
 *            +0x00  syscall; rollback: lea FRAME(%rip),%rsp; mov $15,%eax; syscall
 *            +0x40  batch executor: runs the call table, traps (int3)
 *   +0x1000  data: arguments of injected calls; for a batch:
 *            +0 count, +8 done, +64 table of struct inj_call (64 bytes each)
 *   +FRAME   signal frame with the task's original state (rollback)
 */
#ifndef RTCR_ARCH_SCRATCH_LAYOUT_H
#define RTCR_ARCH_SCRATCH_LAYOUT_H

#define SCRATCH_CODE_OFF   0x0
#define SCRATCH_BATCH_OFF  0x40
#define SCRATCH_CODE_MAX   0x100
#define SCRATCH_DATA_OFF   0x1000
#define SCRATCH_DATA_LEN   0x4000
#define SCRATCH_FRAME_OFF  (SCRATCH_DATA_OFF + SCRATCH_DATA_LEN)
#define BATCH_COUNT        0
#define BATCH_DONE         8
#define BATCH_TABLE        64
#define BATCH_CALL_SIZE    64
#define BATCH_MAX          ((SCRATCH_DATA_LEN - BATCH_TABLE) / BATCH_CALL_SIZE)

#endif
