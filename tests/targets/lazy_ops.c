/*
 * Lazy restore (tests/integration/lazy.sh): what a process does to its
 * memory before the lazy page server has filled it.
 *
 *   lazy_ops [MiB]    (default 64)
 *
 * One private anonymous area, every word its own pattern. After the
 * trigger (made right after the restore, while the server holds back its
 * background fill: RTCR_TEST_LAZY_BG_DELAY_MS) it prints, per region,
 * "UNFILLED name yes|no" (mincore: nothing of it resident yet, so the op
 * really met missing pages), then:
 *   read      read(2) from a pipe into the middle of unfilled pages: the
 *             bytes read land, the rest of those pages keeps its data
 *   pvr       process_vm_readv of its own unfilled pages
 *   write     write(2) from unfilled pages into a pipe, read back
 *   dontneed  MADV_DONTNEED of unfilled pages: they read zeros
 *   munmap    munmap of unfilled pages, a new mapping there reads zeros
 *   mremap    unfilled pages moved elsewhere keep their data there
 *   fork      a child checks unfilled pages (and the parent after it)
 * and checks every other page. It then waits for "$RTCR_TRIGGER.2"
 * (made once the server reported its last page) and checks all again:
 * the dropped range must still read zeros (the background fill must not
 * have filled it), the moved one its data.
 */
#include "memcheck.h"

#include <sys/uio.h>
#include <sys/wait.h>

#define MB (1UL << 20)

static uint64_t *area;
static size_t len;

static void check_at(const char *what, const void *p, size_t n, size_t word0)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < n / 8; i++)
		if (w[i] != pat(7, word0 + i))
			fail("%s: word %zu is %#llx, expected %#llx", what, i, (unsigned long long)w[i],
			     (unsigned long long)pat(7, word0 + i));
}

static char *R(size_t off) { return (char *)area + off; }

static void unfilled(const char *name, size_t off, size_t n)
{
	printf("UNFILLED %s %s\n", name, resident(R(off), n) ? "no" : "yes");
	fflush(stdout);
}

/* Everything but the regions changed on purpose. */
static void check_rest(void)
{
	static const size_t skip[][2] = { { 0, 5 * PG }, { 8 * MB, 9 * MB }, { 12 * MB, 13 * MB },
					   { 16 * MB, 18 * MB } };
	size_t at = 0;
	for (size_t k = 0; k <= 4; k++) {
		size_t end = k < 4 ? skip[k][0] : len;
		check_at("area", R(at), end - at, at / 8);
		if (k < 4)
			at = skip[k][1];
	}
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	static char buf[64 << 10], trig2[4096];
	static uint64_t tmp[(2 * MB) / 8];
	int fds[2], st;
	void *moved;
	pid_t kid;

	stdout_warm();
	if (mib < 64)
		fail("needs 64 MiB at least");
	len = mib * MB;
	area = map_anon(len, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(area, len, 7);
	snprintf(trig2, sizeof(trig2), "%s.2", trigger_path());
	ready();
	trigger_wait();

	unfilled("read", 0, MB);
	unfilled("pvr", 4 * MB, MB);
	unfilled("write", 6 * MB, MB);
	unfilled("dontneed", 8 * MB, MB);
	unfilled("munmap", 12 * MB, MB);
	unfilled("mremap", 16 * MB, 2 * MB);
	unfilled("fork", 32 * MB, 32 * MB);

	/* read(2) into missing pages, not page-aligned. */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31 + 5);
	if (pipe(fds) || write(fds[1], buf, 20000) != 20000 || read(fds[0], R(100), 20000) != 20000)
		fail("pipe read into the lazy area: %s", strerror(errno));
	if (memcmp(R(100), buf, 20000))
		fail("read(2) into the lazy area: the bytes read are not there");
	check_at("read: the bytes before", R(0), 96, 0);
	check_at("read: the rest of the last page", R(20104), 5 * PG - 20104, 20104 / 8);

	/* process_vm_readv of its own missing pages. */
	{
		struct iovec l = { tmp, MB }, r = { R(4 * MB), MB };
		if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != (ssize_t)MB)
			fail("process_vm_readv of the lazy area: %s", strerror(errno));
		check_at("process_vm_readv", tmp, MB, 4 * MB / 8);
	}

	/* write(2) from missing pages. */
	if (write(fds[1], R(6 * MB), sizeof(buf)) != (ssize_t)sizeof(buf) ||
	    read(fds[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		fail("write(2) from the lazy area: %s", strerror(errno));
	check_at("write(2) from the lazy area", buf, sizeof(buf), 6 * MB / 8);

	if (madvise(R(8 * MB), MB, MADV_DONTNEED))
		fail("madvise: %s", strerror(errno));
	check_zero("after MADV_DONTNEED", R(8 * MB), MB);

	if (munmap(R(12 * MB), MB) ||
	    mmap(R(12 * MB), MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
		 0) != R(12 * MB))
		fail("munmap + mmap: %s", strerror(errno));
	check_zero("a new mapping where lazy pages were unmapped", R(12 * MB), MB);

	moved = mmap(NULL, 2 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (moved == MAP_FAILED ||
	    mremap(R(16 * MB), 2 * MB, 2 * MB, MREMAP_MAYMOVE | MREMAP_FIXED, moved) != moved)
		fail("mremap: %s", strerror(errno));
	if (mmap(R(16 * MB), 2 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) != R(16 * MB))
		fail("mmap where the moved pages were: %s", strerror(errno));
	check_at("pages moved by mremap", moved, 2 * MB, 16 * MB / 8);
	check_zero("where the moved pages were", R(16 * MB), 2 * MB);

	kid = fork();
	if (kid < 0)
		fail("fork: %s", strerror(errno));
	if (kid == 0) {
		check_at("the child: pages missing at fork", R(32 * MB), 32 * MB, 32 * MB / 8);
		check_rest();
		_exit(0);
	}
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("the child forked after the lazy restore found wrong memory (status %#x)", st);
	check_rest();
	printf("CHECKED\n");
	fflush(stdout);

	while (!trigger_set(trig2))
		tick();
	check_zero("after MADV_DONTNEED, once all pages are in", R(8 * MB), MB);
	check_zero("the new mapping, once all pages are in", R(12 * MB), MB);
	check_at("pages moved by mremap, once all pages are in", moved, 2 * MB, 16 * MB / 8);
	check_rest();
	pass();
}
