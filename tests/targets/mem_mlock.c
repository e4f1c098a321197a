/*
 * Locked memory: an area locked with mlock() (VmFlags lo), one locked
 * with mlock2(MLOCK_ONFAULT) (lo and the on-fault flag, if the kernel
 * shows one), and a plain one between them. After restore the flags and
 * data are back, and VmLck in /proc/self/status is what it was.
 */
#include <sys/mman.h>
#include <sys/syscall.h>

#include "memcheck.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

#define LEN (512UL << 10)

static struct mapsnap before;

static unsigned long vmlck(void)
{
	char *p;
	read_proc("/proc/self/status");
	p = strstr(proc_buf, "VmLck:");
	CHECK(p, "no VmLck in /proc/self/status");
	return strtoul(p + 6, NULL, 10);
}

int main(void)
{
	char *area, *locked, *plain, *onfault;
	unsigned long lck;
	char of_flags[256];

	stdout_warm();
	area = map_anon(3 * LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	locked = area;
	plain = area + LEN;
	onfault = area + 2 * LEN;
	fill(area, 2 * LEN, 40);
	fill(onfault, LEN / 2, 41);          /* half of it faulted in */
	CHECK(mlock(locked, LEN) == 0, "mlock: %s", strerror(errno));
	CHECK(syscall(SYS_mlock2, onfault, LEN, MLOCK_ONFAULT) == 0, "mlock2: %s", strerror(errno));
	CHECK(has_vmflag(vmflags_of(locked), "lo"), "mlock'ed area has no 'lo' before the dump");
	snprintf(of_flags, sizeof(of_flags), "%s", vmflags_of(onfault));
	lck = vmlck();
	CHECK(lck >= (LEN + LEN / 2) / 1024, "VmLck %lu kB before the dump", lck);

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	{
		const char *f = vmflags_of(locked);
		CHECK(has_vmflag(f, "lo"), "mlock'ed area lost 'lo' (VmFlags:%s)", f);
		f = vmflags_of(plain);
		CHECK(!has_vmflag(f, "lo"), "plain area is locked (VmFlags:%s)", f);
		f = vmflags_of(onfault);
		CHECK(!strcmp(f, of_flags), "MLOCK_ONFAULT area: VmFlags:%s, was:%s", f, of_flags);
	}
	CHECK(vmlck() == lck, "VmLck %lu kB after restore, was %lu kB", vmlck(), lck);
	check_fill("locked and plain areas", area, 2 * LEN, 40);
	check_fill("MLOCK_ONFAULT area", onfault, LEN / 2, 41);
	check_zero("MLOCK_ONFAULT area, unfaulted half", onfault + LEN / 2, LEN / 2);
	pass();
}
