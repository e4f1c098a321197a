#ifndef RTCR_RESTORE_H
#define RTCR_RESTORE_H

#include <stdbool.h>

struct restore_opts {
	const char *dir;
	bool detach;
	bool stats;
	bool pidns;         /* restore the tree under a new pid namespace's init */
	bool shell_job;     /* attach the job to rtcr's terminal (files/tty.c) */
	const char *netns;  /* restore the tree in this network namespace (name or path) */
	bool lazy;          /* memory on first touch and in the background (mem/lazy.h) */
};

/* rtcr unlock: remove the network lock an image records (netlock.h), in
 * netns (name or path) if given. 0 or -errno (logged). */
int restore_unlock(const char *dir, const char *netns);

/* Restore the image in opts->dir. Without detach, waits for the process
 * and returns its exit status as rtcr's (>= 0); -errno on failure. */
int restore_run(const struct restore_opts *o);

#endif
