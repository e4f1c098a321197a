/*
 * fs_base and gs_base: thread-local variables keep their address and
 * values (a TLS counter keeps counting in step with a stack counter),
 * arch_prctl(ARCH_GET_FS) and %fs:0 (the TCB's self pointer) are what
 * they were, and a gs_base set with arch_prctl(ARCH_SET_GS) still points
 * at its buffer.
 */
#include <asm/prctl.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "target.h"

static __thread volatile uint64_t tls_val = 0x1111;
static __thread volatile uint64_t tls_count;
static __thread char tls_arr[256];
static uint64_t gsbuf[4] = { 0x6773626173654e21ULL, 2, 3, 4 };

static uint64_t arch_get(int code)
{
	uint64_t v = 0;
	CHECK(syscall(SYS_arch_prctl, code, &v) == 0, "arch_prctl(%#x): %s", code, strerror(errno));
	return v;
}

static uint64_t fs0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(v));
	return v;
}

static uint64_t gs0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%gs:0, %0" : "=r"(v));
	return v;
}

int main(void)
{
	const char *trig = trigger_path();
	volatile uint64_t *addr_val = &tls_val;
	char *addr_arr = tls_arr;
	uint64_t fs, self;
	volatile unsigned long stack_count = 0;

	tls_val = 0x746c732d76616c21ULL;
	for (int i = 0; i < 256; i++)
		tls_arr[i] = (char)(i * 3 + 1);
	fs = arch_get(ARCH_GET_FS);
	self = fs0();
	CHECK(self == fs, "%%fs:0 is %#llx, fs_base %#llx", (unsigned long long)self,
	      (unsigned long long)fs);
	CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)gsbuf) == 0, "ARCH_SET_GS: %s",
	      strerror(errno));
	CHECK(gs0() == gsbuf[0], "%%gs:0 does not read gsbuf before the dump");

	ready();
	while (!trigger_set(trig)) {
		tls_count++;
		stack_count++;
		tick();
	}
	CHECK(arch_get(ARCH_GET_FS) == fs, "fs_base is %#llx, was %#llx",
	      (unsigned long long)arch_get(ARCH_GET_FS), (unsigned long long)fs);
	CHECK(fs0() == fs, "%%fs:0 is %#llx, expected fs_base %#llx", (unsigned long long)fs0(),
	      (unsigned long long)fs);
	CHECK(&tls_val == addr_val, "TLS variable moved: %p, was %p", (void *)&tls_val,
	      (void *)addr_val);
	CHECK(tls_arr == addr_arr, "TLS array moved");
	CHECK(tls_val == 0x746c732d76616c21ULL, "TLS value is %#llx",
	      (unsigned long long)tls_val);
	for (int i = 0; i < 256; i++)
		CHECK(tls_arr[i] == (char)(i * 3 + 1), "TLS array byte %d wrong", i);
	CHECK(tls_count == stack_count && stack_count > 0, "TLS counter %llu, stack counter %lu",
	      (unsigned long long)tls_count, (unsigned long)stack_count);
	CHECK(arch_get(ARCH_GET_GS) == (uint64_t)gsbuf, "gs_base is %#llx, was %p",
	      (unsigned long long)arch_get(ARCH_GET_GS), (void *)gsbuf);
	CHECK(gs0() == gsbuf[0], "%%gs:0 reads %#llx, expected %#llx", (unsigned long long)gs0(),
	      (unsigned long long)gsbuf[0]);
	/* errno is thread-local too, and printf uses TLS: both work. */
	errno = 0;
	CHECK(close(-1) < 0 && errno == EBADF, "errno (TLS) broken");
	pass();
}
