/*
 * The simplest target: a heap buffer with a known pattern, a counter on
 * the stack and in .data, a loop that keeps counting. After the trigger
 * it checks all three.
 */
#include "target.h"

static volatile unsigned long data_counter = 1000;

int main(void)
{
	size_t n = 1 << 20;
	unsigned char *heap = malloc(n);
	volatile unsigned long stack_counter = 0;
	unsigned long long sum;

	for (size_t i = 0; i < n; i++)
		heap[i] = (unsigned char)(i * 7 + 3);
	sum = fnv(heap, n);
	ready();
	while (!trigger_set(trigger_path())) {
		stack_counter++;
		data_counter++;
		tick();
	}
	CHECK(fnv(heap, n) == sum, "heap pattern changed");
	CHECK(data_counter - 1000 == stack_counter, "counters diverged: %lu vs %lu",
	      data_counter - 1000, (unsigned long)stack_counter);
	CHECK(stack_counter > 0, "never counted");
	pass();
}
