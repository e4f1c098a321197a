/*
 * Anonymous areas named with prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME):
 * a private one (shows as [anon:rtcr-test-private]) and a shared one
 * ([anon_shmem:rtcr-test-shared]), each holding data, next to an unnamed
 * area. The names must be back after restore (the maps comparison
 * includes them). Skips (77) if the kernel cannot name areas.
 */
#include <sys/prctl.h>

#include "memcheck.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

#define LEN (128UL << 10)

static struct mapsnap before;

static int named(const void *p, const char *name)
{
	unsigned long x = (unsigned long)p;
	char *line, *next;
	read_proc("/proc/self/maps");
	for (line = proc_buf; line && *line; line = next) {
		unsigned long s, e;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && x >= s && x < e)
			return strstr(line, name) != NULL;
	}
	return 0;
}

int main(void)
{
	char *priv, *shr;

	stdout_warm();
	priv = map_anon(2 * LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(priv, 2 * LEN, 70);
	if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)priv, LEN,
		  (unsigned long)"rtcr-test-private"))
		skip("prctl(PR_SET_VMA_ANON_NAME) not supported by this kernel (CONFIG_ANON_VMA_NAME)");
	shr = map_anon(LEN, PROT_READ | PROT_WRITE, MAP_SHARED);
	fill(shr, LEN, 71);
	CHECK(prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)shr, LEN,
		    (unsigned long)"rtcr-test-shared") == 0, "naming a shared area: %s", strerror(errno));
	CHECK(named(priv, "[anon:rtcr-test-private]"), "private area not named before the dump");
	CHECK(named(shr, "[anon_shmem:rtcr-test-shared]"), "shared area not named before the dump");

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	CHECK(named(priv, "[anon:rtcr-test-private]"), "private area lost its name");
	CHECK(!named(priv + LEN, "[anon:"), "unnamed area next to it got a name");
	CHECK(named(shr, "[anon_shmem:rtcr-test-shared]"), "shared area lost its name");
	check_fill("named areas", priv, 2 * LEN, 70);
	check_fill("named shared area", shr, LEN, 71);
	pass();
}
