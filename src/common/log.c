#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static int cur_level = LOG_WARN;
static const char *cur_prefix = "rtcr";
static int log_fd = STDERR_FILENO;

void log_set_level(int level) { cur_level = level; }
int log_get_level(void) { return cur_level; }
void log_set_prefix(const char *prefix) { cur_prefix = prefix; }
void log_set_fd(int fd) { log_fd = fd; }

void rtcr_log(int level, const char *file, int line, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char buf[2048];
	int n, saved = errno;
	va_list ap;

	if (level > cur_level)
		return;
	n = snprintf(buf, sizeof(buf), "%s: %s: ", cur_prefix, names[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n > 0 ? sizeof(buf) - n : 0, fmt, ap);
	va_end(ap);
	if (n < (int)sizeof(buf) && cur_level >= LOG_DEBUG)
		n += snprintf(buf + n, sizeof(buf) - n, " (%s:%d)", file, line);
	if (n >= (int)sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* One write(2) per message so lines from parallel threads never mix. */
	if (write(log_fd, buf, n) < 0) {
		/* nothing sensible to do */
	}
	errno = saved;
}
