/* Reading /proc/PID: status fields, stat fields, limits, namespaces. */
#ifndef RTCR_PROC_H
#define RTCR_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/log.h"

struct proc_status {
	char *buf;                /* the whole file */
};

int proc_status_read(pid_t pid, struct proc_status *ps) __must_check;
void proc_status_free(struct proc_status *ps);
/* Value of "Key:" (leading blanks skipped), or NULL: a pointer into the
 * file text, running to the end of its line ('\n' or NUL). */
const char *proc_status_get(const struct proc_status *ps, const char *key);
/* The same, as a NUL-terminated copy to free(). */
char *proc_status_dup(const struct proc_status *ps, const char *key);
/* Parse helpers; return 0 or -EINVAL. */
int proc_status_u64(const struct proc_status *ps, const char *key, uint64_t *v, int base);
/* All whitespace-separated numbers of key's line, malloc'ed into *v.
 * Returns how many (0 if none or no such key). */
int proc_status_nums(const struct proc_status *ps, const char *key, uint64_t **v);

/* /proc/PID/stat fields 3..52 (man 5 proc numbering): f[k] is field k. */
#define PROC_STAT_FIELDS 53
int proc_stat_read(pid_t pid, uint64_t f[PROC_STAT_FIELDS], char *state) __must_check;

/* The comm (thread name) of pid/tid. */
int proc_comm(pid_t pid, pid_t tid, char *buf, size_t len) __must_check;

/* Threads of pid into a malloc'ed array; returns count or -errno. */
int proc_tasks(pid_t pid, pid_t **tids) __must_check;
/* Children of every thread of pid; count or -errno. */
int proc_children(pid_t pid, pid_t **kids) __must_check;

/*
 * Pid namespaces. /proc/PID/status's NSpid line lists a task's ids from
 * the namespace of rtcr's /proc down to the task's own. proc_ns_id()
 * gives the innermost one (the id the task sees for itself), -errno if
 * unreadable; proc_ns_depth() how many namespaces below ours it is in.
 * proc_host_tid() finds the thread of pid whose innermost id is nstid.
 */
pid_t proc_ns_id(pid_t tid);
int proc_ns_depth(pid_t tid);
pid_t proc_host_tid(pid_t pid, pid_t nstid);

/* Limits from /proc/PID/limits (used when prlimit(2) is refused). */
int proc_limits(pid_t pid, uint64_t cur[16], uint64_t max[16]) __must_check;

/* Namespace of pid differs from ours? name is "pid", "mnt", ... (ours
 * are read once: whoever makes rtcr enter another calls proc_ns_forget()) */
int proc_ns_differs(pid_t pid, const char *name) __must_check;
void proc_ns_forget(void);

#endif
