/*
 * CPU facts that decide whether a process dumped on one machine can run
 * on another: the xsave layout (XCR0, size) and the CPUID feature words
 * that glibc and compilers use to pick code paths.
 */
#ifndef RTCR_ARCH_CPU_H
#define RTCR_ARCH_CPU_H

#include <stdint.h>
#include <stddef.h>

#define CPU_NR_FEATURE_WORDS 8

struct cpu_info {
	char vendor[13];
	uint64_t xfeatures;       /* XCR0 */
	uint32_t xsave_size;      /* CPUID 0xD.0 EBX: size for XCR0 features */
	uint32_t features[CPU_NR_FEATURE_WORDS];
};

void cpu_info_get(struct cpu_info *ci);
/* Name of feature bit (word, bit) if rtcr knows it, else NULL. */
const char *cpu_feature_name(int word, int bit);
/*
 * Can code that ran on 'dumped' run here? Fills msg with the first
 * missing feature. 0 if compatible, -1 if not.
 */
int cpu_compatible(const struct cpu_info *dumped, const struct cpu_info *here, char *msg, size_t len);

#endif
