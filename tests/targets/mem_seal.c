/*
 * A sealed area (mseal(2), VmFlags "sl") holding data, next to an
 * unsealed one. After restore the data is back, the area is still sealed
 * (mprotect and munmap fail with EPERM) and its neighbour is not. Skips
 * (77) if the kernel has no mseal.
 */
#include <sys/syscall.h>

#include "memcheck.h"

#ifndef SYS_mseal
#define SYS_mseal 462
#endif

#define LEN (64UL << 10)

static struct mapsnap before;

int main(void)
{
	char *area, *sealed, *plain;

	stdout_warm();
	area = map_anon(2 * LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	sealed = area;
	plain = area + LEN;
	fill(area, 2 * LEN, 80);
	if (syscall(SYS_mseal, sealed, LEN, 0))
		skip("mseal() not available here");
	if (!has_vmflag(vmflags_of(sealed), "sl"))
		skip("sealed areas do not show as 'sl' in VmFlags here");

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	check_fill("sealed and plain areas", area, 2 * LEN, 80);
	{
		const char *f = vmflags_of(sealed);
		CHECK(has_vmflag(f, "sl"), "sealed area lost 'sl' (VmFlags:%s)", f);
		f = vmflags_of(plain);
		CHECK(!has_vmflag(f, "sl"), "plain area is sealed (VmFlags:%s)", f);
	}
	errno = 0;
	CHECK(mprotect(sealed, LEN, PROT_READ) < 0 && errno == EPERM,
	      "mprotect of the sealed area: %s, expected EPERM", errno ? strerror(errno) : "succeeded");
	errno = 0;
	CHECK(munmap(sealed, LEN) < 0 && errno == EPERM,
	      "munmap of the sealed area: %s, expected EPERM", errno ? strerror(errno) : "succeeded");
	sealed[5] = 1;   /* still writable */
	CHECK(mprotect(plain, LEN, PROT_READ) == 0, "mprotect of the plain area: %s",
	      strerror(errno));
	pass();
}
