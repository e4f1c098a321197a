/* What rtcr restore tells the lazy page server (mem/lazy.c). */
#ifndef RTCR_MEM_LAZY_MSG_H
#define RTCR_MEM_LAZY_MSG_H

#include <stdint.h>

enum { LAZY_MSG_SPACE = 'S', LAZY_MSG_RUNNING = 'R', LAZY_MSG_ABORT = 'A' };

struct lazy_msg {
	uint32_t type;
	int32_t pid;             /* S: the process's id in the image */
	int32_t hpid;            /* S: its pid as rtcr (and the server) see it */
	uint32_t pad;
	uint64_t t;              /* R: when the tree ran (now_ns()) */
};

#endif
