/*
 * Shared and private anonymous memory across three generations.
 *
 *   root: S1 = MAP_SHARED|MAP_ANONYMOUS (2 pages), P = private page
 *     child: its own P copy; S2 = a shared area of its own (1 page)
 *       grandchild: its own P copy; inherits S1 and S2
 *
 * Before READY each writes its mark into S1 and its own P copy; the
 * grandchild also writes S1's second page (which the root never touches)
 * and S2. Prints "pids ROOT CHILD GRANDCHILD" and "shm S1 S2" (addresses).
 * After the trigger the root lets the others go through S1: each checks
 * every mark written before the dump, writes a new one, and the others
 * must see it (in S1 for all three, in S2 for the child and grandchild);
 * each private copy still holds its own owner's bytes only.
 */
#include "target.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define PG 4096

static volatile unsigned long *s1, *s2;
static unsigned char *priv;

/* Wait until *p == v, failing after about 10 s. */
static int await(volatile unsigned long *p, unsigned long v)
{
	for (int i = 0; i < 10000; i++) {
		if (*p == v)
			return 0;
		tick();
	}
	return -1;
}

static int priv_is(unsigned char c)
{
	for (int i = 0; i < PG; i++)
		if (priv[i] != c)
			return 0;
	return 1;
}

static int pre_marks_ok(void)
{
	return s1[1] == 0x1111 && s1[2] == 0x2222 && s1[3] == 0x3333 && s1[512 + 7] == 0x7777;
}

static __attribute__((noreturn)) void grandchild(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(priv, 'G', PG);
	s1[3] = 0x3333;
	s1[512 + 7] = 0x7777;
	s2[1] = 0x62;
	s1[9] = getpid();
	s1[8] = 1;
	if (await(&s1[0], 1))
		_exit(50);
	if (!priv_is('G'))
		_exit(51);
	if (!pre_marks_ok())
		_exit(52);
	if (s2[0] != 0xc2 || s2[1] != 0x62)
		_exit(53);
	s2[2] = 0x9292;
	s1[5] = 0x9090;
	if (await(&s1[6], 0x8080))
		_exit(54);
	if (!priv_is('G'))
		_exit(55);
	_exit(0);
}

static __attribute__((noreturn)) void child(void)
{
	pid_t g;
	int st;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(priv, 'C', PG);
	s1[2] = 0x2222;
	s2 = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s2 == MAP_FAILED)
		_exit(40);
	s2[0] = 0xc2;
	s1[10] = (unsigned long)s2;
	g = fork();
	if (g < 0)
		_exit(41);
	if (g == 0)
		grandchild();
	if (await(&s1[0], 1))
		_exit(42);
	if (!priv_is('C'))
		_exit(43);
	if (!pre_marks_ok())
		_exit(44);
	s1[4] = 0xc0c0;
	if (await(&s2[2], 0x9292))
		_exit(45);
	if (waitpid(g, &st, 0) != g)
		_exit(46);
	if (!WIFEXITED(st))
		_exit(47);
	if (WEXITSTATUS(st))
		_exit(WEXITSTATUS(st));
	if (!priv_is('C'))
		_exit(48);
	_exit(0);
}

int main(void)
{
	pid_t c;
	int st;

	s1 = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	priv = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s1 == MAP_FAILED || priv == MAP_FAILED)
		fail("mmap");
	memset(priv, 'R', PG);
	s1[1] = 0x1111;
	c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0)
		child();
	if (await(&s1[8], 1))
		fail("the grandchild did not start");
	printf("pids %d %d %lu\n", getpid(), c, s1[9]);
	printf("shm %lx %lx\n", (unsigned long)s1, s1[10]);
	ready();
	trigger_wait();

	CHECK(priv_is('R'), "the root's private page changed (a child's write leaked?)");
	CHECK(pre_marks_ok(), "marks written before the dump: %#lx %#lx %#lx %#lx",
	      s1[1], s1[2], s1[3], s1[512 + 7]);
	s1[0] = 1;
	CHECK(await(&s1[4], 0xc0c0) == 0, "the child's write after the restore is not shared");
	CHECK(await(&s1[5], 0x9090) == 0, "the grandchild's write after the restore is not shared");
	s1[6] = 0x8080;
	CHECK(waitpid(c, &st, 0) == c, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x (exit code %d: see tree_shm.c)",
	      st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	CHECK(priv_is('R'), "the root's private page changed");
	pass();
}
