/*
 * Where a span of time went: named phases, each the sum of the spans that
 * ended with a mark of its name (a tree's processes add up). `rtcr dump
 * --stats` shows the frozen time this way.
 */
#ifndef RTCR_PHASES_H
#define RTCR_PHASES_H

#include <stdint.h>
#include <stdio.h>

#define PHASES_MAX 32

struct phases {
	uint64_t last;                  /* the previous mark; 0: not started */
	int n;
	const char *name[PHASES_MAX];   /* in the order first seen */
	uint64_t ns[PHASES_MAX];
};

/* Start the clock. */
void phase_start(struct phases *ph);
/* The time since the previous mark (or the start) went to `name`. */
void phase_mark(struct phases *ph, const char *name);
/* "name 1.234, name 0.567, ... (ms)" on one line, after `prefix`. */
void phases_print(const struct phases *ph, FILE *f, const char *prefix);

#endif
