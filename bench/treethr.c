/*
 * Benchmark target for bench/tree_threads.sh (not a test: it checks
 * nothing after restore, it only has to be restorable and idle).
 *
 *   treethr THREADS PROCS ROOT_MIB CHILD_MIB
 *
 * The root forks PROCS-1 children first (so they share none of its
 * memory); each child writes every page of CHILD_MIB MiB of fresh
 * anonymous memory, reports to the root through a pipe, then sleeps in
 * pause() with PR_SET_PDEATHSIG(SIGKILL). The root then writes ROOT_MIB
 * MiB, starts THREADS-1 threads that block in FUTEX_WAIT on a word that
 * never changes, and prints "PIDS root child..." then "READY" on stdout;
 * its main thread sleeps in pause().
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int never;
static volatile int started;

static void die(const char *what)
{
	fprintf(stdout, "FAIL: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void touch(size_t mib)
{
	size_t len = mib << 20;
	unsigned long *p;

	if (!len)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < len / sizeof(*p); i += 512)
		p[i] = i * 2654435761UL + 1;
}

static void *idle_thread(void *arg)
{
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	for (;;)
		syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return arg;
}

int main(int argc, char **argv)
{
	int nthr, nproc, p[2];
	size_t root_mib, child_mib;
	pid_t *kids;
	pthread_attr_t at;
	char c;

	if (argc != 5) {
		fprintf(stderr, "usage: treethr THREADS PROCS ROOT_MIB CHILD_MIB\n");
		return 2;
	}
	nthr = atoi(argv[1]);
	nproc = atoi(argv[2]);
	root_mib = strtoul(argv[3], NULL, 10);
	child_mib = strtoul(argv[4], NULL, 10);
	if (nthr < 1 || nproc < 1)
		return 2;
	kids = calloc(nproc, sizeof(*kids));
	if (!kids || pipe(p))
		die("setup");
	for (int i = 1; i < nproc; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			close(p[0]);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1)
				_exit(1);
			touch(child_mib);
			if (write(p[1], "r", 1) != 1)
				_exit(1);
			close(p[1]);
			for (;;)
				pause();
		}
	}
	close(p[1]);
	for (int i = 1; i < nproc; i++)
		if (read(p[0], &c, 1) != 1)
			die("child not ready");
	close(p[0]);
	touch(root_mib);
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 << 10);
	for (int i = 1; i < nthr; i++) {
		pthread_t t;
		errno = pthread_create(&t, &at, idle_thread, NULL);
		if (errno)
			die("pthread_create");
	}
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < nthr - 1)
		usleep(1000);
	usleep(10000); /* let the last ones reach FUTEX_WAIT */
	printf("PIDS %d", getpid());
	for (int i = 1; i < nproc; i++)
		printf(" %d", kids[i]);
	printf("\nREADY\n");
	fflush(stdout);
	for (;;)
		pause();
}
