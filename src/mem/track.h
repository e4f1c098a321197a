/*
 * Dirty-page tracking between dumps, for incremental checkpoints, on
 * kernels without soft-dirty bits: userfaultfd asynchronous
 * write-protection, read back with PAGEMAP_SCAN.
 *
 * The target runs one injected userfaultfd(); the fd stays in the target
 * (at a high number, close-on-exec) so the registration outlives rtcr,
 * and rtcr takes a copy with pidfd_getfd to register and protect areas.
 * From then on the kernel resolves the target's first write to each
 * protected page by itself (no stop, ~0.7 us) and marks the page
 * written; PAGEMAP_SCAN reports PAGE_IS_WRITTEN and, with
 * PM_SCAN_WP_MATCHING, protects it again.
 *
 * Which image the written bits are relative to is kept outside the
 * target, in /run/rtcr/track/PID-STARTTIME: the id of the image whose
 * dump last reset them. It is written before a dump resets the bits, so
 * a dump that fails or is killed afterwards leaves a state that matches
 * no image, and the next incremental dump falls back to a full one.
 */
#ifndef RTCR_MEM_TRACK_H
#define RTCR_MEM_TRACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"
#include "mem/vma.h"
#include "task/inject.h"

struct track {
	pid_t pid;
	int target_fd;          /* our userfaultfd in the target, -1: none */
	bool valid;             /* pages not written since the parent image are in it */
	char why[200];          /* if not valid: why, for the message */
};

/*
 * What tracking pid has now, relative to the image prev_id (NULL: no
 * parent). Never fails: a missing or stale state just is not valid.
 */
void track_probe(struct track *t, pid_t pid, const uint8_t prev_id[16]);

/*
 * While pid is frozen and injected into (its main thread): make sure it
 * has a tracker, register every private area not registered yet, record
 * new_id as the image the bits now refer to, and protect every page
 * again. A tracker that cannot be set up is not an error for the dump:
 * it is reported (the next dump will be a full one) and 0 returned;
 * -errno only if the target could not be driven.
 */
int track_arm(struct track *t, struct inject *in, const struct vma_list *vl,
	      const uint8_t new_id[16]) __must_check;

/* The pieces of track_arm(), for live dumps (mem/live.h). */
/* Make the tracker in the target (an injected userfaultfd, moved high);
 * 1 if the kernel refused one (logged), -errno if the target failed. */
int track_create(struct track *t, struct inject *in) __must_check;
/* rtcr's own copy of the tracker (set up first if fresh); fd or -errno. */
int track_take(struct track *t, bool fresh) __must_check;
/* Register one area and protect all its pages: 0, 1 if it cannot be
 * registered (it is then stored whole each time), or -errno. */
int track_protect(int uffd, const struct vma *v) __must_check;
/* Areas rtcr tracks: private anonymous and private file mappings. */
bool track_trackable(const struct vma *v);
/* Close the tracker in the target (injected) and forget its state. */
int track_drop(struct track *t, struct inject *in) __must_check;
/* Record that the bits are now being reset for image id. */
int track_set_image(const struct track *t, const uint8_t id[16]) __must_check;

/* Forget pid's state (its tracker is gone or useless). */
void track_forget(pid_t pid);
/* Remove the states of processes that are gone (killed without a dump,
 * exited). Not while anything is frozen: it reads every state's /proc. */
void track_prune(void);

#endif
