#include "arch/x86/cpu.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static struct cpu_info cached;
static pthread_once_t cached_once = PTHREAD_ONCE_INIT;
static void cpu_info_read(struct cpu_info *ci);

static void read_cached(void)
{
	cpu_info_read(&cached);
}

/* Read once: in a VM each cpuid is a trap to the hypervisor (~7 us here),
 * and dumps ask while the processes are frozen. */
void cpu_info_get(struct cpu_info *ci)
{
	pthread_once(&cached_once, read_cached);
	*ci = cached;
}

static void cpu_info_read(struct cpu_info *ci)
{
	unsigned a, b, c, d, max, maxext;

	memset(ci, 0, sizeof(*ci));
	__cpuid(0, max, b, c, d);
	memcpy(ci->vendor, &b, 4);
	memcpy(ci->vendor + 4, &d, 4);
	memcpy(ci->vendor + 8, &c, 4);
	__cpuid(1, a, b, c, d);
	ci->features[0] = c;
	ci->features[1] = d;
	if (max >= 7) {
		__cpuid_count(7, 0, a, b, c, d);
		ci->features[2] = b;
		ci->features[3] = c;
		ci->features[4] = d;
	}
	if (max >= 0xd) {
		__cpuid_count(0xd, 1, a, b, c, d);
		ci->features[5] = a;
		__cpuid_count(0xd, 0, a, b, c, d);
		ci->xsave_size = b;
	}
	__cpuid(0x80000000, maxext, b, c, d);
	if (maxext >= 0x80000001) {
		__cpuid(0x80000001, a, b, c, d);
		ci->features[6] = c;
		ci->features[7] = d;
	}
	if (ci->features[0] & (1u << 27))   /* OSXSAVE */
		ci->xfeatures = xgetbv0();
}

static const struct {
	int word, bit;
	const char *name;
} names[] = {
	{ 0, 0, "sse3" }, { 0, 9, "ssse3" }, { 0, 12, "fma" }, { 0, 19, "sse4.1" },
	{ 0, 20, "sse4.2" }, { 0, 22, "movbe" }, { 0, 23, "popcnt" }, { 0, 25, "aes" },
	{ 0, 26, "xsave" }, { 0, 28, "avx" }, { 0, 29, "f16c" }, { 0, 30, "rdrand" },
	{ 1, 25, "sse" }, { 1, 26, "sse2" },
	{ 2, 0, "fsgsbase" }, { 2, 3, "bmi1" }, { 2, 5, "avx2" }, { 2, 8, "bmi2" },
	{ 2, 9, "erms" }, { 2, 16, "avx512f" }, { 2, 17, "avx512dq" }, { 2, 18, "rdseed" },
	{ 2, 19, "adx" }, { 2, 28, "avx512cd" }, { 2, 29, "sha" }, { 2, 30, "avx512bw" },
	{ 2, 31, "avx512vl" },
	{ 3, 1, "avx512vbmi" }, { 3, 6, "avx512vbmi2" }, { 3, 8, "gfni" }, { 3, 9, "vaes" },
	{ 3, 10, "vpclmulqdq" }, { 3, 11, "avx512vnni" }, { 3, 12, "avx512bitalg" },
	{ 3, 14, "avx512vpopcntdq" }, { 3, 22, "rdpid" },
	{ 4, 4, "fsrm" }, { 4, 22, "amx-bf16" }, { 4, 24, "amx-tile" }, { 4, 25, "amx-int8" },
	{ 5, 0, "xsaveopt" }, { 5, 1, "xsavec" }, { 5, 3, "xsaves" },
	{ 6, 0, "lahf_lm" }, { 6, 5, "abm/lzcnt" }, { 6, 6, "sse4a" },
	{ 7, 27, "rdtscp" },
};

const char *cpu_feature_name(int word, int bit)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].word == word && names[i].bit == bit)
			return names[i].name;
	return NULL;
}

int cpu_compatible(const struct cpu_info *dumped, const struct cpu_info *here, char *msg, size_t len)
{
	uint64_t xmissing = dumped->xfeatures & ~here->xfeatures;

	if (xmissing) {
		snprintf(msg, len, "this CPU lacks xsave state components %#llx (XCR0 here %#llx, "
			 "dumped on %#llx)", (unsigned long long)xmissing,
			 (unsigned long long)here->xfeatures, (unsigned long long)dumped->xfeatures);
		return -1;
	}
	/* Only named features are compared: the others are not used to pick
	 * instruction sets, and some bits (APIC id, hypervisor) differ
	 * between identical CPUs. */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint32_t bit = 1u << names[i].bit;
		if ((dumped->features[names[i].word] & bit) && !(here->features[names[i].word] & bit)) {
			snprintf(msg, len, "this CPU lacks %s, which the dumping CPU had and the "
				 "process may use", names[i].name);
			return -1;
		}
	}
	return 0;
}
