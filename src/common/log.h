/*
 * Logging: one message, logged once, where the failure is found.
 *
 * Errors name the object that failed ("fd 9: io_uring: not supported").
 * With -v the source location is appended so users can paste it into a
 * bug report. Functions that fail return a negative errno and log; their
 * callers only propagate.
 */
#ifndef RTCR_LOG_H
#define RTCR_LOG_H

#include <errno.h>
#include <string.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(int level);
int log_get_level(void);
void log_set_prefix(const char *prefix);
/* Send messages to fd instead of stderr (a restoring child reports
 * through a pipe: its stderr may already be the target's). */
void log_set_fd(int fd);
void rtcr_log(int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define pr_err(fmt, ...)   rtcr_log(LOG_ERR, __FILE__, __LINE__, fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  rtcr_log(LOG_WARN, __FILE__, __LINE__, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  rtcr_log(LOG_INFO, __FILE__, __LINE__, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) rtcr_log(LOG_DEBUG, __FILE__, __LINE__, fmt, ##__VA_ARGS__)
/* pr_perror: like pr_err, with ": strerror(errno)" appended. */
#define pr_perror(fmt, ...) \
	rtcr_log(LOG_ERR, __FILE__, __LINE__, fmt ": %s", ##__VA_ARGS__, strerror(errno))

#define __must_check __attribute__((warn_unused_result))

#endif
