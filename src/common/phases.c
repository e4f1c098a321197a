#include "common/phases.h"

#include <string.h>

#include "common/util.h"

void phase_start(struct phases *ph)
{
	ph->last = now_ns();
}

void phase_mark(struct phases *ph, const char *name)
{
	uint64_t t = now_ns();
	int i;

	if (!ph->last)
		return;
	for (i = 0; i < ph->n && strcmp(ph->name[i], name); i++)
		;
	if (i == ph->n) {
		if (ph->n == PHASES_MAX)
			return;
		ph->name[ph->n++] = name;
	}
	ph->ns[i] += t - ph->last;
	ph->last = t;
}

void phases_print(const struct phases *ph, FILE *f, const char *prefix)
{
	if (!ph->n)
		return;
	fputs(prefix, f);
	for (int i = 0; i < ph->n; i++)
		fprintf(f, "%s%s %.3f", i ? ", " : "", ph->name[i], ph->ns[i] / 1e6);
	fputs(" (ms)\n", f);
}
