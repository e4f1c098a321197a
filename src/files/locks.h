/*
 * File locks and signal-driven I/O of any fd (locks.c).
 */
#ifndef RTCR_FILES_LOCKS_H
#define RTCR_FILES_LOCKS_H

#include "files/files.h"

struct inject;

/* Dump: fi's locks, and its owner/signal/O_ASYNC, into e. *pidfd: a
 * pidfd of fi's process, opened on first need (the caller closes it). */
int fdstate_dump(const struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *e,
		 int *pidfd) __must_check;
/* Restore, in rtcr, on a description just opened: O_ASYNC off until the end. */
int fdstate_open_fixup(const Rtcr__Fd *e, int fd) __must_check;
/* Restore, in process f by injected calls, last (credentials restored,
 * rtcr's helper fds closed): owners, signals, O_ASYNC, then locks. */
int fdstate_restore_inj(struct inject *in, const Rtcr__Files *f,
			const struct files_restore_ctx *ctx) __must_check;
/* Appends ", flock shared lock whole file, async, owner pid 12" & co. */
void fdstate_describe(const Rtcr__Fd *e, char *buf, size_t len);

#endif
