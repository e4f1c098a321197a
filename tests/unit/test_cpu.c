/* src/arch/x86/cpu.c: CPU compatibility between dump and restore hosts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "arch/x86/cpu.h"

/* Words: 0 = 1.ECX, 1 = 1.EDX, 2 = 7.0.EBX, 3 = 7.0.ECX, 4 = 7.0.EDX,
 * 5 = 0xD.1.EAX, 6 = 0x80000001.ECX, 7 = 0x80000001.EDX */
static struct cpu_info typical(void)
{
	struct cpu_info c;
	memset(&c, 0, sizeof(c));
	memcpy(c.vendor, "GenuineIntel", 13);
	c.xfeatures = 0x7;
	c.xsave_size = 832;
	c.features[0] = (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 28);
	c.features[1] = (1u << 25) | (1u << 26);
	c.features[2] = (1u << 5);   /* avx2 */
	return c;
}

static void test_identical_and_self(void **state)
{
	struct cpu_info a = typical(), b = typical(), here;
	char msg[256] = "untouched";

	assert_int_equal(cpu_compatible(&a, &b, msg, sizeof(msg)), 0);
	cpu_info_get(&here);
	assert_int_equal(cpu_compatible(&here, &here, msg, sizeof(msg)), 0);
	/* The host really reports what rtcr needs. */
	assert_true(here.xfeatures & 0x3);
	assert_true(here.xsave_size >= 576);
	assert_true(here.features[1] & (1u << 26));   /* sse2 on every x86-64 */
}

static void test_missing_named_feature(void **state)
{
	struct cpu_info dumped = typical(), here = typical();
	char msg[256];

	here.features[2] &= ~(1u << 5);
	msg[0] = 0;
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "avx2"));

	here = typical();
	here.features[0] &= ~(1u << 20);
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "sse4.2"));

	/* Highest word and bit rtcr names. */
	dumped = typical();
	here = typical();
	dumped.features[7] |= 1u << 27;
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "rdtscp"));
	/* Bit 31 (avx512vl) does not trip over the shift. */
	dumped = typical();
	dumped.features[2] |= 1u << 31;
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "avx512vl"));
}

static void test_unnamed_and_extra_features(void **state)
{
	struct cpu_info dumped = typical(), here = typical();
	char msg[256];

	/* Bits that differ between identical CPUs (hypervisor: 1.ECX bit 31;
	 * 1.EDX bit 9 apic) or that rtcr does not name are not compared. */
	dumped.features[0] |= 1u << 31;
	dumped.features[1] |= 1u << 9;
	dumped.features[4] |= 1u << 30;
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), 0);
	/* A better CPU here is fine. */
	dumped = typical();
	here.features[2] |= (1u << 16) | (1u << 30);
	here.xfeatures |= 0xe0;
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), 0);
}

static void test_xsave_components(void **state)
{
	struct cpu_info dumped = typical(), here = typical();
	char msg[256];

	dumped.xfeatures = 0xe7;    /* AVX-512 state */
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "xsave state components 0xe0"));
	/* Reported before any feature word. */
	here.features[2] = 0;
	assert_int_equal(cpu_compatible(&dumped, &here, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "xsave"));
}

static void test_message_truncation(void **state)
{
	struct cpu_info dumped = typical(), here = typical();
	char msg[12];

	memset(msg, 'x', sizeof(msg));
	here.features[2] = 0;
	assert_int_equal(cpu_compatible(&dumped, &here, msg, 8), -1);
	assert_int_equal(strlen(msg), 7);
	assert_int_equal(msg[8], 'x');
}

static void test_feature_names(void **state)
{
	assert_string_equal(cpu_feature_name(2, 5), "avx2");
	assert_string_equal(cpu_feature_name(1, 26), "sse2");
	assert_string_equal(cpu_feature_name(5, 1), "xsavec");
	assert_null(cpu_feature_name(0, 31));
	assert_null(cpu_feature_name(8, 0));
	assert_null(cpu_feature_name(-1, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical_and_self),
		cmocka_unit_test(test_missing_named_feature),
		cmocka_unit_test(test_unnamed_and_extra_features),
		cmocka_unit_test(test_xsave_components),
		cmocka_unit_test(test_message_truncation),
		cmocka_unit_test(test_feature_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
