/*
 * The heap: malloc'ed data (a 1 MiB block and a linked list of small
 * ones) and the break moved with sbrk(). After restore the data is back,
 * sbrk(0) is where it was, and brk()/sbrk() still grow the heap from
 * there (and shrink it).
 */
#include "memcheck.h"

#define BIG (1UL << 20)
#define NODES 2000
#define GROW (512UL << 10)

struct node {
	struct node *next;
	uint64_t v[7];
};

static struct mapsnap before;

static int in_heap(const void *a)
{
	unsigned long x = (unsigned long)a;
	char *line, *next;

	read_proc("/proc/self/maps");
	for (line = proc_buf; line && *line; line = next) {
		unsigned long s, e;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && x >= s && x < e)
			return strstr(line, "[heap]") != NULL;
	}
	return 0;
}

int main(void)
{
	uint64_t *big;
	struct node *head = NULL;
	char *brk0, *brk1, *grown, *brk2;

	stdout_warm();
	/* malloc first: later sbrk() memory lies above glibc's arena top. */
	big = malloc(BIG);
	CHECK(big, "malloc");
	fill(big, BIG, 11);
	for (int i = 0; i < NODES; i++) {
		struct node *n = malloc(sizeof(*n));
		CHECK(n, "malloc");
		for (int k = 0; k < 7; k++)
			n->v[k] = pat(20000 + i, k);
		n->next = head;
		head = n;
	}
	brk0 = sbrk(0);
	CHECK(sbrk(GROW) == brk0, "sbrk(+%lu) did not return the old break", GROW);
	brk1 = sbrk(0);
	CHECK(brk1 == brk0 + GROW, "break did not move");
	fill(brk0, GROW, 12);
	CHECK(in_heap(brk0) && in_heap(brk1 - 1), "sbrk memory not in [heap] before the dump");

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	check_fill("malloc'ed block", big, BIG, 11);
	{
		int i = NODES - 1, count = 0;
		for (struct node *n = head; n; n = n->next, i--, count++)
			for (int k = 0; k < 7; k++)
				CHECK(n->v[k] == pat(20000 + i, k), "list node %d word %d wrong", i, k);
		CHECK(count == NODES, "list has %d nodes, expected %d", count, NODES);
	}
	check_fill("sbrk'ed memory", brk0, GROW, 12);
	CHECK(sbrk(0) == brk1, "break is %p after restore, was %p", sbrk(0), brk1);

	/* Grow from where it was. */
	grown = sbrk(GROW);
	CHECK(grown == brk1, "sbrk(+%lu) after restore returned %p, expected %p (%s)", GROW,
	      grown, brk1, grown == (void *)-1 ? strerror(errno) : "moved");
	brk2 = sbrk(0);
	CHECK(brk2 == brk1 + GROW, "break %p after growing, expected %p", brk2, brk1 + GROW);
	check_zero("newly grown heap", grown, GROW);
	fill(grown, GROW, 13);
	check_fill("newly grown heap", grown, GROW, 13);
	CHECK(in_heap(grown) && in_heap(brk2 - 1), "grown memory is not [heap]");
	check_fill("sbrk'ed memory", brk0, GROW, 12);

	/* Shrink, then grow once more with brk(). */
	CHECK(brk(brk1) == 0, "brk(shrink): %s", strerror(errno));
	CHECK(sbrk(0) == brk1, "break %p after shrinking, expected %p", sbrk(0), brk1);
	CHECK(brk(brk1 + 2 * GROW) == 0, "brk(grow): %s", strerror(errno));
	check_zero("heap grown again after a shrink", brk1, 2 * GROW);
	memset(brk1, 0x5a, 2 * GROW);
	check_fill("sbrk'ed memory", brk0, GROW, 12);
	check_fill("malloc'ed block", big, BIG, 11);

	/* malloc still works too. */
	{
		void *p = malloc(3 << 20), *q = malloc(100);
		CHECK(p && q, "malloc after restore");
		memset(p, 1, 3 << 20);
		memset(q, 2, 100);
		free(p);
		free(q);
	}
	pass();
}
