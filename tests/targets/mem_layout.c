/*
 * The mm layout the kernel keeps for a process (set back on restore with
 * prctl(PR_SET_MM_MAP)): code/data/brk/stack/args/env bounds as
 * /proc/self/stat shows them, the auxiliary vector (/proc/self/auxv,
 * getauxval), the command line and environment (/proc/self/cmdline and
 * environ, which the kernel reads from the saved bounds), and the stack
 * still growing down on demand after restore (2 MiB deeper than ever
 * before).
 */
#include <sys/auxv.h>

#include "memcheck.h"

static struct mapsnap before;
static char stat_before[4096], auxv_before[4096], cmdline_before[4096], environ_before[8192];
static size_t auxv_len, cmdline_len, environ_len;

/* Fields 26-28 and 45-51 of /proc/self/stat (1-based), space-separated. */
static void layout_fields(char *out, size_t len)
{
	char *p, *tok, *save;
	int field = 3;   /* after "pid (comm) " the next token is field 3 */
	size_t n = 0;

	read_proc("/proc/self/stat");
	p = strrchr(proc_buf, ')');
	CHECK(p, "bad /proc/self/stat");
	for (tok = strtok_r(p + 2, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save), field++)
		if ((field >= 26 && field <= 28) || (field >= 45 && field <= 51))
			n += snprintf(out + n, len - n, "%d=%s ", field, tok);
	CHECK(field > 51, "/proc/self/stat has only %d fields", field - 1);
}

static size_t copy_proc(const char *path, char *dst, size_t cap)
{
	size_t n = read_proc(path);
	CHECK(n < cap, "%s too large", path);
	memcpy(dst, proc_buf, n);
	return n;
}

static void __attribute__((noinline)) grow_stack(size_t depth)
{
	volatile char b[16384];
	for (size_t i = sizeof(b); i > 0; i -= 1024)
		b[i - 1] = (char)depth;
	if (depth > 16384)
		grow_stack(depth - 16384);
	for (size_t i = sizeof(b); i > 0; i -= 1024)
		CHECK(b[i - 1] == (char)depth, "deep stack data lost");
}

int main(int argc, char **argv)
{
	char now[4096];
	unsigned long pagesz = getauxval(AT_PAGESZ), phdr = getauxval(AT_PHDR),
		      entry = getauxval(AT_ENTRY), random = getauxval(AT_RANDOM);
	unsigned char random_bytes[16];

	stdout_warm();
	memcpy(random_bytes, (void *)random, 16);
	layout_fields(stat_before, sizeof(stat_before));
	auxv_len = copy_proc("/proc/self/auxv", auxv_before, sizeof(auxv_before));
	cmdline_len = copy_proc("/proc/self/cmdline", cmdline_before, sizeof(cmdline_before));
	environ_len = copy_proc("/proc/self/environ", environ_before, sizeof(environ_before));
	CHECK(cmdline_len > 0 && environ_len > 0, "empty cmdline or environ");

	stack_reserve();
	maps_take(&before);
	ready();
	trigger_wait();

	maps_check(&before);
	layout_fields(now, sizeof(now));
	CHECK(!strcmp(now, stat_before), "mm layout in /proc/self/stat: now '%s', was '%s'", now,
	      stat_before);
	CHECK(read_proc("/proc/self/auxv") == auxv_len && !memcmp(proc_buf, auxv_before, auxv_len),
	      "/proc/self/auxv differs");
	CHECK(read_proc("/proc/self/cmdline") == cmdline_len &&
	      !memcmp(proc_buf, cmdline_before, cmdline_len), "/proc/self/cmdline differs");
	CHECK(read_proc("/proc/self/environ") == environ_len &&
	      !memcmp(proc_buf, environ_before, environ_len), "/proc/self/environ differs");
	CHECK(getauxval(AT_PAGESZ) == pagesz && getauxval(AT_PHDR) == phdr &&
	      getauxval(AT_ENTRY) == entry && getauxval(AT_RANDOM) == random, "getauxval differs");
	CHECK(!memcmp((void *)random, random_bytes, 16), "AT_RANDOM bytes differ");
	CHECK(argc == 3 && !strcmp(argv[1], "arg-one") && !strcmp(argv[2], "arg two"),
	      "argv differs");
	CHECK(getenv("RTCR_TRIGGER") != NULL, "environment lost");
	/* The stack grows on demand: 2 MiB deeper than it ever was. */
	grow_stack(2 << 20);
	pass();
}
