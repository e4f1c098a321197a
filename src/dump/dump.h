#ifndef RTCR_DUMP_H
#define RTCR_DUMP_H

#include <stdbool.h>
#include <sys/types.h>

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool stats;
	bool track_mem;          /* keep tracking written pages for a next --prev */
	const char *prev;        /* incremental: the parent image's directory */
	bool unix_reconnect;   /* connect outside unix peers again at restore */
	bool tcp_established;  /* dump established TCP connections (repair mode) */
};

/* Checkpoint opts->pid into opts->dir. 0 or -errno (logged). */
int dump_run(const struct dump_opts *o);

#endif
