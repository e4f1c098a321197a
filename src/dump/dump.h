#ifndef RTCR_DUMP_H
#define RTCR_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct live_proc;
/* Periodic live dumps: what one dump leaves the next (mem/live.h,
 * live_resume()). Each dump_run() takes them all, and gives them back
 * only if it succeeded. */
struct live_set {
	struct live_proc **lp;
	int n;
};
void live_set_free(struct live_set *s);

/* --live: how long a dump waits at most for the process's idle time
 * before a pause (--idle-wait MS; 0: pause at once). */
#define DUMP_IDLE_WAIT_MS 20

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool stats;
	bool track_mem;          /* keep tracking written pages for a next --prev */
	const char *prev;        /* incremental: the parent image's directory */
	bool unix_reconnect;   /* connect outside unix peers again at restore */
	bool tcp_established;  /* dump established TCP connections (repair mode) */
	bool live;             /* copy memory while the process runs (mem/live.h) */
	bool shell_job;        /* fds on the controlling terminal of a shell job (files/tty.c) */
	struct live_set *kept; /* live: the copies of the last dump (with prev), and for the next */
	unsigned idle_wait_ms; /* live: wait at most this for the root's idle time before
				* each pause (task_wait_quiet()); 0: pause at once */
};

/* What a dump did, for callers that run many (periodic checkpoints). */
struct dump_result {
	uint64_t frozen_ns;
	uint64_t pages;          /* stored */
	uint64_t inherited;      /* left in the parent image */
	uint64_t image_bytes;
};

/* Checkpoint opts->pid into opts->dir. 0 or -errno (logged). res may be
 * NULL. */
int dump_run(const struct dump_opts *o, struct dump_result *res);
/* A SIGINT, SIGTERM, SIGHUP or SIGQUIT arrived (it abandons a dump under
 * way; the handlers stay installed after dump_run()). */
bool dump_interrupted(void);

struct periodic_opts {
	pid_t pid;
	const char *base;        /* checkpoints go to BASE/ckpt-NNNNNN */
	unsigned interval_ms;
	unsigned keep;           /* 0: keep all */
	unsigned count;          /* 0: until the process ends or a signal */
	bool stats;
	bool live;               /* each dump a live one (--live) */
	bool shell_job;
	unsigned idle_wait_ms;       /* (dump_opts) */
};

/*
 * Checkpoint pid every interval_ms, incrementally (the first one full,
 * with dirty tracking; each next one with the previous as its parent),
 * leaving it running. BASE/latest points at the newest checkpoint. With
 * keep, only the newest keep checkpoints stay: the oldest kept one is
 * merged with its parents (keeping its image id) before they go, so each
 * of them stays restorable. Ends when the process exits, after count
 * checkpoints, or on SIGINT/SIGTERM (after the dump under way, which
 * is abandoned cleanly). 0 or -errno.
 */
int periodic_run(const struct periodic_opts *o);

#endif
