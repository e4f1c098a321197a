/*
 * Standard input, output and error connected to something outside the
 * image (a pipe from a shell, a socket): on restore they are connected to
 * what rtcr restore's own fds 0, 1 and 2 are, the way a program started
 * from that shell would be. Only fds 0-2 qualify; a pipe at any other
 * number is a handle of its own kind. A terminal is not stdio: it is a
 * shell job's (tty.c, --shell-job).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "files/files.h"

static bool inherit_match(const struct fd_info *fi)
{
	if (fi->fd > 2)
		return false;
	if (!strncmp(fi->link, "pipe:", 5))
		return !fi->pipe_internal;
	return !strncmp(fi->link, "socket:", 7) || S_ISFIFO(fi->st.st_mode);
}

static int inherit_dump(struct files_collect *fc, const struct fd_info *fi, Rtcr__Fd *out,
			Rtcr__Files *files)
{
	Rtcr__InheritFd *in = xzalloc(sizeof(*in));
	rtcr__inherit_fd__init(in);
	in->desc = xstrdup(fi->link);
	in->flags = fi->flags;
	out->inherit = in;
	return 0;
}

static void inherit_describe(const Rtcr__Fd *e, char *buf, size_t len)
{
	snprintf(buf, len, "stdio (was %s): connected to rtcr restore's fd %d", e->inherit->desc,
		 e->fd);
}


const struct fd_ops inherit_fd_ops = {
	.name = "inherited stdio",
	.kind = RTCR__FD_KIND__FD_INHERIT,
	.match = inherit_match,
	.dump = inherit_dump,
	.describe = inherit_describe,
};
