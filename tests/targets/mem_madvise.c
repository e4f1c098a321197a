/*
 * madvise() state, as /proc/self/smaps VmFlags show it:
 *   dc  MADV_DONTFORK      (also: a forked child does not get the area)
 *   hg  MADV_HUGEPAGE      (a 4 MiB area, 2 MiB aligned, fully written)
 *   nh  MADV_NOHUGEPAGE
 *   dd  MADV_DONTDUMP
 *   wf  MADV_WIPEONFORK    (also: a forked child sees it zeroed)
 *   nr  not an madvise() but an mmap() flag: MAP_NORESERVE
 * each on an area holding data, next to plain areas so the kernel has to
 * keep them split. Skips (77) if the kernel does not show a flag before
 * the dump (e.g. no transparent huge pages).
 */
#include <sys/wait.h>

#include "memcheck.h"

#define LEN (256UL << 10)
#define HLEN (4UL << 20)

static struct mapsnap before;

static const struct {
	const char *flag;
	int advice;
	const char *name;
} adv[] = {
	{ "dc", MADV_DONTFORK, "MADV_DONTFORK" },
	{ "nh", MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE" },
	{ "dd", MADV_DONTDUMP, "MADV_DONTDUMP" },
	{ "wf", MADV_WIPEONFORK, "MADV_WIPEONFORK" },
};
#define NADV (sizeof(adv) / sizeof(adv[0]))

int main(void)
{
	char *area, *huge, *raw, *norsv;
	pid_t child;
	int st;

	stdout_warm();
	/* One mapping: [plain][adv0][plain][adv1][plain]...; each LEN. */
	area = map_anon(LEN * (2 * NADV + 1), PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(area, LEN * (2 * NADV + 1), 30);
	for (size_t i = 0; i < NADV; i++) {
		char *a = area + LEN * (2 * i + 1);
		const char *f;
		CHECK(madvise(a, LEN, adv[i].advice) == 0, "madvise(%s): %s", adv[i].name,
		      strerror(errno));
		f = vmflags_of(a);
		if (!has_vmflag(f, adv[i].flag)) {
			printf("SKIP: %s does not show as '%s' in VmFlags here\n", adv[i].name,
			       adv[i].flag);
			fflush(stdout);
			exit(77);
		}
	}
	/* A 2 MiB-aligned area for MADV_HUGEPAGE. */
	raw = map_anon(HLEN + (2UL << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE);
	huge = (char *)(((unsigned long)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	if (madvise(huge, HLEN, MADV_HUGEPAGE) || !has_vmflag(vmflags_of(huge), "hg"))
		skip("MADV_HUGEPAGE not available (no transparent huge pages?)");
	fill(huge, HLEN, 31);
	norsv = map_anon(HLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
	if (!has_vmflag(vmflags_of(norsv), "nr"))
		skip("MAP_NORESERVE does not show as 'nr' here (vm.overcommit_memory=2?)");
	fill(norsv, LEN, 32);

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	check_fill("areas with madvise state", area, LEN * (2 * NADV + 1), 30);
	check_fill("MADV_HUGEPAGE area", huge, HLEN, 31);
	for (size_t i = 0; i < NADV; i++) {
		char *a = area + LEN * (2 * i + 1);
		char *plain = area + LEN * (2 * i);
		const char *f = vmflags_of(a);
		CHECK(has_vmflag(f, adv[i].flag), "%s area lost VmFlag '%s' (VmFlags:%s)",
		      adv[i].name, adv[i].flag, f);
		f = vmflags_of(plain);
		CHECK(!has_vmflag(f, adv[i].flag), "plain area next to the %s one has '%s' (VmFlags:%s)",
		      adv[i].name, adv[i].flag, f);
	}
	{
		const char *f = vmflags_of(huge);
		CHECK(has_vmflag(f, "hg"), "MADV_HUGEPAGE area lost VmFlag 'hg' (VmFlags:%s)", f);
		f = vmflags_of(area);
		CHECK(!has_vmflag(f, "hg"), "plain area has 'hg'");
		CHECK(!has_vmflag(f, "nr"), "plain area has 'nr'");
		f = vmflags_of(norsv);
		CHECK(has_vmflag(f, "nr"), "MAP_NORESERVE area lost VmFlag 'nr' (VmFlags:%s)", f);
		check_fill("MAP_NORESERVE area", norsv, LEN, 32);
		check_zero("MAP_NORESERVE area, unwritten", norsv + LEN, HLEN - LEN);
	}

	/* The flags act too: DONTFORK areas are absent in a child, WIPEONFORK
	 * ones are zero there. */
	fflush(stdout);
	child = fork();
	CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		char *dc = area + LEN * 1, *wf = area + LEN * 7;
		unsigned char vec;
		/* Not mapped in the child: mincore fails with ENOMEM. */
		if (mincore(dc, PG, &vec) == 0 || errno != ENOMEM)
			_exit(10);
		for (size_t k = 0; k < LEN; k++)
			if (wf[k])
				_exit(11);
		_exit(0);
	}
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st), "child died");
	CHECK(WEXITSTATUS(st) != 10, "MADV_DONTFORK area is mapped in a forked child");
	CHECK(WEXITSTATUS(st) != 11, "MADV_WIPEONFORK area is not zero in a forked child");
	CHECK(WEXITSTATUS(st) == 0, "child exited %d", WEXITSTATUS(st));
	pass();
}
