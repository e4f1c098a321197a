/*
 * A small process tree: the parent shares anonymous memory with its child,
 * writes into a pipe the child reads (some bytes stay in flight across the
 * checkpoint), and has a zombie child it reaps only after the trigger.
 * After restore: both see each other's writes to the shared memory, the
 * pipe delivers the bytes in flight then new ones, the zombie is there
 * with its exit status, parent/child links and process group hold.
 */
#include "target.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

int main(void)
{
	volatile unsigned long *shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int p[2], st;
	pid_t child, zombie;

	if (shm == MAP_FAILED || pipe(p))
		fail("setup");
	zombie = fork();
	if (zombie == 0)
		_exit(42);
	child = fork();
	if (child == 0) {
		char buf[64];
		ssize_t n;
		close(p[1]);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		shm[1] = 0xc0ffee;
		/* Wait for the parent's go, then read what is in the pipe. */
		while (shm[0] != 2)
			tick();
		n = read(p[0], buf, 11);
		if (n != 11 || memcmp(buf, "in flight\n\n", 11))
			_exit(10);
		n = read(p[0], buf, 4);
		if (n != 4 || memcmp(buf, "new\n", 4))
			_exit(11);
		if (getpgid(0) != getpid() || getppid() == 1)
			_exit(12);
		shm[2] = 0xd00d;
		_exit(0);
	}
	close(p[0]);
	if (write(p[1], "in flight\n\n", 11) != 11)
		fail("write");
	while (shm[1] != 0xc0ffee)
		tick();
	/* The zombie must be dead before READY. */
	while (waitid(P_PID, zombie, &(siginfo_t){ 0 }, WEXITED | WNOWAIT))
		tick();
	shm[0] = 1;
	ready();
	trigger_wait();
	CHECK(shm[1] == 0xc0ffee, "shared memory lost the child's write");
	CHECK(getpgid(child) == child, "child's process group %d", getpgid(child));
	if (write(p[1], "new\n", 4) != 4)
		fail("write after restore");
	shm[0] = 2;
	CHECK(waitpid(child, &st, 0) == child, "waitpid(child)");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(shm[2] == 0xd00d, "the child's last write is not shared");
	CHECK(waitpid(zombie, &st, 0) == zombie, "waitpid(zombie): %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42, "zombie status %#x", st);
	pass();
}
